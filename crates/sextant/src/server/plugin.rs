//! Server plugins: rpcx's plugin points as one trait with no-op defaults (see [`ServerPlugin`]
//! for the order in which they run).
//!
//! The client's [`ClientPlugin`](crate::xclient::ClientPlugin) names its hooks alike:
//! `pre_call`/`post_call` around each call, `on_conn_*` for connections.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use sextant_protocol::Message;

use super::Server;
use crate::context::Context;
use crate::transport::{Address, PeerAddr, Stream};

/// What a [`pre_call`](ServerPlugin::pre_call) hook decides about a call.
pub enum Verdict {
    /// Go on with the call.
    Continue,
    /// Refuse the call: it fails with this error text, without running the handler.
    Reject(String),
    /// Wait for this future, then go on (`Ok`) or refuse (`Err(text)`). The wait is bounded by
    /// the call's deadline, or by
    /// [`ServerOptions::max_plugin_wait`](super::ServerOptions::max_plugin_wait) when it has
    /// none; past that the call fails.
    Wait(BoxFuture<'static, Result<(), String>>),
}

impl fmt::Debug for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Continue => f.write_str("Continue"),
            Verdict::Reject(t) => f.debug_tuple("Reject").field(t).finish(),
            Verdict::Wait(_) => f.write_str("Wait(..)"),
        }
    }
}

/// How a call ended, as [`post_call`](ServerPlugin::post_call) and the write hooks see it; in
/// `post_call` a plugin may replace the reply or the error.
#[derive(Debug)]
pub struct CallOutcome {
    pub(crate) error: Option<String>,
    pub(crate) response_len: usize,
    pub(crate) elapsed: Duration,
    pub(crate) routed: bool,
    pub(crate) replaced: Option<Result<Bytes, String>>,
}

impl CallOutcome {
    /// The error text when the call failed: the handler's error, a decoding error, a panic, the
    /// deadline, an unknown service or method, a plugin's refusal.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether the call succeeded.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }

    /// Whether the request's service and method were found (false for unknown ones and for
    /// requests refused before routing). Metrics use this to keep unknown names out of their
    /// labels.
    pub fn routed(&self) -> bool {
        self.routed
    }

    /// Time from the request being read to the handler's end (or the refusal).
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The size in bytes of the response frame (0 for oneway calls, which send none).
    pub fn response_len(&self) -> usize {
        self.response_len
    }

    /// Replaces the outcome with an error: the caller gets `text` (in `__rpcx_error__`, as any
    /// handler error).
    pub fn set_error(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.error = Some(text.clone());
        self.replaced = Some(Err(text));
    }

    /// Replaces the reply with `payload`, already encoded with the request's serialize type
    /// ([`Context::serialize_type`]); the call then succeeds.
    pub fn set_reply(&mut self, payload: Bytes) {
        self.error = None;
        self.replaced = Some(Ok(payload));
    }
}

/// A set of [`ServerPlugin`]'s per-call hooks, for [`ServerPlugin::call_hooks`]; combine them
/// with `|`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallHooks(u8);

impl CallHooks {
    /// No per-call hook.
    pub const NONE: CallHooks = CallHooks(0);
    /// [`ServerPlugin::post_read_request`].
    pub const POST_READ_REQUEST: CallHooks = CallHooks(1);
    /// [`ServerPlugin::pre_call`].
    pub const PRE_CALL: CallHooks = CallHooks(1 << 1);
    /// [`ServerPlugin::post_call`].
    pub const POST_CALL: CallHooks = CallHooks(1 << 2);
    /// [`ServerPlugin::pre_write_response`].
    pub const PRE_WRITE_RESPONSE: CallHooks = CallHooks(1 << 3);
    /// [`ServerPlugin::post_write_response`].
    pub const POST_WRITE_RESPONSE: CallHooks = CallHooks(1 << 4);
    /// All five (the default).
    pub const ALL: CallHooks = CallHooks(0b1_1111);

    /// Whether every hook of `other` is in `self`.
    pub const fn contains(self, other: CallHooks) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` share a hook.
    pub const fn intersects(self, other: CallHooks) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for CallHooks {
    type Output = CallHooks;
    fn bitor(self, rhs: CallHooks) -> CallHooks {
        CallHooks(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for CallHooks {
    fn bitor_assign(&mut self, rhs: CallHooks) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for CallHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 5] = [
            "POST_READ_REQUEST",
            "PRE_CALL",
            "POST_CALL",
            "PRE_WRITE_RESPONSE",
            "POST_WRITE_RESPONSE",
        ];
        let mut set = f.debug_set();
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                set.entry(&format_args!("{name}"));
            }
        }
        set.finish()
    }
}

/// The plugins of a server, each with the per-call hooks it implements.
pub(crate) struct PluginSet {
    list: Vec<Arc<dyn ServerPlugin>>,
    hooks: Vec<CallHooks>,
    /// Every plugin's hooks together.
    any: CallHooks,
}

impl PluginSet {
    pub(crate) fn new(list: Vec<Arc<dyn ServerPlugin>>) -> PluginSet {
        let hooks: Vec<CallHooks> = list.iter().map(|p| p.call_hooks()).collect();
        let any = hooks.iter().fold(CallHooks::NONE, |a, &h| a | h);
        PluginSet { list, hooks, any }
    }

    /// A set with `plugin` added last.
    pub(crate) fn with(&self, plugin: Arc<dyn ServerPlugin>) -> PluginSet {
        let mut list = self.list.clone();
        list.push(plugin);
        PluginSet::new(list)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every plugin, in order.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Arc<dyn ServerPlugin>> {
        self.list.iter()
    }

    /// Whether some plugin implements `hook`.
    #[inline]
    pub(crate) fn has(&self, hook: CallHooks) -> bool {
        self.any.intersects(hook)
    }

    /// The plugins implementing `hook`, in order, each with its index.
    #[inline]
    pub(crate) fn with_hook(
        &self,
        hook: CallHooks,
    ) -> impl Iterator<Item = (usize, &Arc<dyn ServerPlugin>)> {
        self.list
            .iter()
            .zip(&self.hooks)
            .enumerate()
            .filter(move |(_, (_, h))| h.intersects(hook))
            .map(|(i, (p, _))| (i, p))
    }
}

/// Hooks into a server's life (rpcx's `server.Plugin` family). Every method has a no-op
/// default.
///
/// ## When each hook runs
///
/// For a connection:
///
/// 1. [`on_conn_accept`](ServerPlugin::on_conn_accept): the peer's address, before any handshake;
///    `false` closes the connection (IP lists, connection rate limits).
/// 2. The handshake (TLS, WebSocket, QUIC), then [`wrap_conn`](ServerPlugin::wrap_conn): the
///    byte stream, which a plugin may wrap (counting, shaping, recording).
/// 3. Requests, below. Heartbeats are answered at once and reported to
///    [`on_heartbeat`](ServerPlugin::on_heartbeat).
/// 4. [`on_conn_close`](ServerPlugin::on_conn_close), once for every accepted connection
///    (refused ones and failed handshakes included).
///
/// For each request (rpcx frames, HTTP invoke and JSON-RPC alike), after the server's auth
/// function and the connection's concurrency permit, in the call's own task:
///
/// 1. [`post_read_request`](ServerPlugin::post_read_request): the request as read, before
///    routing; it may rewrite the service path, method and metadata (aliases) or refuse it.
/// 2. Routing and decompression. A request for an unknown service or method is not dropped
///    here: it goes on through the hooks with its error as the outcome.
/// 3. [`pre_call`](ServerPlugin::pre_call): the [`Context`] and the decompressed payload; it
///    may let the call go on, refuse it, or make it wait (a rate limit), never past the call's
///    deadline.
/// 4. The handler (inside the server's [tower layers](super::ServerBuilder::layer), under the
///    deadline, panics caught).
/// 5. [`post_call`](ServerPlugin::post_call): the [`CallOutcome`]; it may replace the reply or
///    the error.
/// 6. [`pre_write_response`](ServerPlugin::pre_write_response) just before the response is
///    handed to the connection's writer, [`post_write_response`](ServerPlugin::post_write_response)
///    once it has been (with whether it was); both also run for oneway calls, which send
///    nothing.
///
/// Hooks run in the order plugins were added, on the task that triggers them, so they must be
/// quick; slow work (a registry write) belongs in a spawned task, and a wait belongs in
/// [`Verdict::Wait`]. A hook that panics does not take the server down: the panic is logged and
/// the call answered with an error (a connection hook that panics refuses the connection).
/// Per-call state a plugin keeps between hooks (a start time, a span) goes in the context's
/// [extensions](Context::insert_extension).
///
/// With no plugin installed, none of this costs anything on the call path. A plugin that
/// implements only some of the per-call hooks says which in [`call_hooks`](ServerPlugin::call_hooks),
/// and the server then does not call the others for it (nor keep, for a call, what only they
/// would need).
///
#[allow(unused_variables)]
pub trait ServerPlugin: Send + Sync + 'static {
    /// The per-call hooks this plugin implements; the server calls only those (default: all
    /// five). Connection and lifecycle hooks are always called.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use sextant::{CallHooks, Context, ServerPlugin, Verdict};
    ///
    /// struct Audit;
    /// impl ServerPlugin for Audit {
    ///     fn call_hooks(&self) -> CallHooks {
    ///         CallHooks::PRE_CALL
    ///     }
    ///     fn pre_call(&self, ctx: &Context, _payload: &Bytes) -> Verdict {
    ///         println!("{}.{}", ctx.service_path(), ctx.service_method());
    ///         Verdict::Continue
    ///     }
    /// }
    /// ```
    fn call_hooks(&self) -> CallHooks {
        CallHooks::ALL
    }

    /// A listener is bound and accepting connections at `address` (registry plugins publish
    /// here, so clients never see an address that refuses connections).
    fn on_listen(&self, server: &Server, address: &Address) {}

    /// A service was registered (rpcx's `RegisterPlugin.Register` / `RegisterFunction`), with its
    /// metadata string. Called again when a function is added to an existing service.
    fn on_register(&self, server: &Server, service_path: &str, metadata: &str) {}

    /// A service was unregistered (rpcx's `RegisterPlugin.Unregister`).
    fn on_unregister(&self, server: &Server, service_path: &str) {}

    /// Shutdown started; awaited before connections are drained (registry plugins remove the
    /// server's entries here).
    fn on_shutdown(&self, server: &Server) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    /// A connection was accepted, before its handshake; returning `false` closes it at once
    /// (rpcx's `PostConnAcceptPlugin`: IP lists, connection rate limits).
    fn on_conn_accept(&self, peer: &PeerAddr) -> bool {
        true
    }

    /// The connection's byte stream after its handshake, to use from now on: return it as it
    /// is, or wrapped (rpcx's `PostConnAcceptPlugin` returning a wrapped `net.Conn`). Wrapping
    /// takes the connection off the plain-socket path, so it costs a little on every read and
    /// write.
    fn wrap_conn(&self, peer: &PeerAddr, stream: Stream) -> Stream {
        stream
    }

    /// A connection closed (rpcx's `PostConnClosePlugin`).
    fn on_conn_close(&self, peer: &PeerAddr) {}

    /// A heartbeat arrived and is being answered (rpcx's `HeartbeatPlugin`).
    fn on_heartbeat(&self, peer: &PeerAddr, request: &Message) {}

    /// A request was read, before routing (rpcx's `PostReadRequestPlugin`): the place to
    /// rewrite its service path, method or metadata (the alias plugin). The response still
    /// carries the names the caller sent. An `Err(text)` fails the call with that text.
    fn post_read_request(&self, request: &mut Message, peer: &PeerAddr) -> Result<(), String> {
        Ok(())
    }

    /// Before the handler runs (rpcx's `PreHandleRequestPlugin` / `PreCallPlugin`), with the
    /// call's context and its decompressed payload: go on, refuse, or wait (see [`Verdict`]).
    /// Runs for unknown services and methods too (the handler is then not run).
    fn pre_call(&self, ctx: &Context, payload: &Bytes) -> Verdict {
        Verdict::Continue
    }

    /// After the handler ran or the call was refused (rpcx's `PostCallPlugin`), with its
    /// outcome, which the hook may replace ([`CallOutcome::set_reply`],
    /// [`CallOutcome::set_error`]). Oneway calls are reported too, though nothing is sent back.
    /// [`Context::response_metadata`] shows what the handler set; a reply put in place of the
    /// handler's carries it too.
    fn post_call(&self, ctx: &Context, outcome: &mut CallOutcome) {}

    /// Just before the response is handed to the connection's writer (rpcx's
    /// `PreWriteResponsePlugin`); [`Context::response_metadata`] shows the metadata the
    /// handler set on the response.
    fn pre_write_response(&self, ctx: &Context, outcome: &CallOutcome) {}

    /// Once the response was handed to the connection's writer, which batches it with others
    /// (`written` is false when the connection had closed, and for oneway calls) (rpcx's
    /// `PostWriteResponsePlugin`). Metrics and spans end here.
    fn post_write_response(&self, ctx: &Context, outcome: &CallOutcome, written: bool) {}
}

/// A server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections open now: every connection past its handshake on the service's listeners,
    /// rpcx or HTTP on the same port (HTTP invoke, JSON-RPC, `/metrics` scrapes), as the
    /// listener cannot tell them apart before they speak.
    pub connections: usize,
    /// Connections accepted (past their handshake) since start, rpcx and HTTP alike.
    pub total_connections: u64,
    /// Calls handled since start (heartbeats excluded).
    pub calls: u64,
    /// Bytes read from rpcx connections since start.
    pub bytes_in: u64,
    /// Bytes written to rpcx connections since start.
    pub bytes_out: u64,
    /// Server pushes queued since start.
    pub pushes: u64,
}
