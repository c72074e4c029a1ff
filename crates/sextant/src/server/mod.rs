//! The rpcx server: register services, serve them on TCP or unix sockets, shut down gracefully.
//!
//! One concern per module: [`options`](ServerOptions) and the [builder](ServerBuilder), service
//! registration ([`Service`], [`RegisterOptions`]), the routing table, the typed handler adapter
//! ([`Method`]), the per-connection loop, the per-call path, and [plugins](ServerPlugin). This
//! module holds the [`Server`] itself: listening and shutting down.
//!
//! ```no_run
//! use sextant::{Context, Server, ServiceError};
//! # #[derive(serde::Deserialize)] struct Args { a: i64, b: i64 }
//! # #[derive(serde::Serialize, Default)] struct Reply { c: i64 }
//!
//! # async fn run() -> sextant::Result<()> {
//! let server = Server::new();
//! // rpcx's RegisterFunctionName: a plain async function under a service path.
//! server.register_fn("Arith", "Mul", |_cx: Context, args: Args| async move {
//!     Ok::<_, ServiceError>(Reply { c: args.a * args.b })
//! })?;
//! server.serve("tcp@127.0.0.1:8972").await
//! # }
//! ```
//!
//! ## Order of work for each request
//!
//! 1. The frame is read and checked against [`Limits`](sextant_protocol::Limits) (too large,
//!    malformed: the connection is closed).
//! 2. Heartbeats are answered at once; no auth, no handler.
//! 3. The auth function, if any, checks `__AUTH`; on failure an error is sent and the connection
//!    closed, as rpcx does.
//! 4. A concurrency permit is taken (the reader waits for one when the connection is at
//!    [`ServerOptions::max_concurrent_requests`]).
//! 5. In its own task: plugins' `post_read_request` (renames), route lookup, decompression,
//!    plugins' `pre_call` (refuse, wait), argument decoding and the handler inside the
//!    [tower layers](ServerBuilder::layer) (under the `__ServerTimeout` deadline, with panics
//!    caught), reply encoding and compression, plugins' `post_call` (replace the outcome) and
//!    `pre_write_response`.
//! 6. The response frame is queued to the connection's writer, which batches; then plugins'
//!    `post_write_response`.
//!
//! [`ServerPlugin`] lists every hook, connection hooks included; with no plugin and no layer
//! installed, steps 5 and 6 run no hook code at all.
//!
//! ## Server push
//!
//! Every rpcx connection has a [`ClientConn`] handle: [`Context::conn`](crate::Context::conn)
//! during a call, [`Server::active_connections`] at any time. Through it the server pushes
//! messages the client did not ask for ([`ClientConn::send_message`], rpcx's `SendMessage`);
//! they share the connection's writer with the replies, within a bounded share of its queue
//! ([`ServerOptions::push_queue_capacity`]), and fail at once when that share is full or the
//! connection closed.
//!
//! ## HTTP on the service port
//!
//! With the `http` feature (on by default) the first byte of each connection decides what it
//! speaks: rpcx's magic number `0x08` means rpcx frames, an upper-case letter means HTTP/1.1 or
//! HTTP/2 (served by hyper). On the HTTP side, in this order: `CONNECT /_rpcx_` (then rpcx frames
//! on that connection, as Go's `http@` clients expect), the routes added with
//! [`ServerBuilder::http_route`], JSON-RPC 2.0 (requests with `X-JSONRPC-2.0: true`), and rpcx's
//! HTTP invoke for everything else (see [`crate::http`]). HTTP calls go through the same steps 3
//! to 5 as rpcx frames: auth (`Authorization` is the token; a refusal is `401`), plugins,
//! routing, the handler. [`ServerOptions::disable_http_gateway`] and
//! [`ServerOptions::disable_jsonrpc`] turn the two off (with both off and no route, HTTP
//! connections are closed as unreadable rpcx); [`HttpOptions`] bounds bodies, header and body
//! read time, header size and HTTP/2 streams per connection.

mod builder;
mod call;
mod conn;
mod handler;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "tower")]
mod layer;
mod options;
mod plugin;
mod push;
mod router;
mod service;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use sextant_protocol::codec::Codecs;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::transport::{Address, Listener, ToAddress};
use crate::util::{lock, Backoff};
use builder::AuthFn;
pub use builder::{AuthPeer, ServerBuilder};
use handler::Env;
pub use handler::Method;
#[cfg(feature = "http")]
pub use http::{HttpHandler, HttpOptions, HttpRequest};
#[cfg(feature = "tower")]
pub use layer::{CallRequest, CallResponse, HandlerService};
pub use options::ServerOptions;
pub(crate) use plugin::PluginSet;
pub use plugin::{CallHooks, CallOutcome, ServerPlugin, ServerStats, Verdict};
pub use push::ClientConn;
use router::Router;
pub use service::{RegisterOptions, Service};

type ShutdownHook = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

pub(crate) struct ServerInner {
    router: ArcSwap<Router>,
    register_lock: Mutex<()>,
    env: Arc<Env>,
    options: ServerOptions,
    auth: Option<Box<AuthFn>>,
    /// The tower layers every handler is wrapped in, innermost first.
    #[cfg(feature = "tower")]
    layers: Vec<Box<layer::WrapHandler>>,
    /// Fired when shutdown starts: stop accepting and reading.
    shutdown: CancellationToken,
    /// Fired when the grace period is over: drop calls still running.
    force: CancellationToken,
    tracker: TaskTracker,
    on_shutdown: Mutex<Vec<ShutdownHook>>,
    addresses: Mutex<Vec<Address>>,
    plugins: ArcSwap<PluginSet>,
    pub(crate) connections: AtomicUsize,
    pub(crate) total_connections: AtomicU64,
    pub(crate) calls: AtomicU64,
    /// Bytes and pushes of the rpcx connections that have closed (open ones count their own).
    pub(crate) closed_bytes_in: AtomicU64,
    pub(crate) closed_bytes_out: AtomicU64,
    pub(crate) closed_pushes: AtomicU64,
    /// The message id of the last push (Go's `Server.seq`), shared with every [`ClientConn`].
    push_seq: Arc<AtomicU64>,
    /// Numbers rpcx connections for [`ClientConn::id`].
    next_conn_id: AtomicU64,
    /// The live rpcx connections (rpcx's `activeConn`).
    active: Mutex<HashMap<u64, ClientConn>>,
    #[cfg(feature = "http")]
    pub(crate) http: http::HttpSide,
}

impl ServerInner {
    fn new(
        options: ServerOptions,
        codecs: Codecs,
        auth: Option<Box<AuthFn>>,
        plugins: Vec<Arc<dyn ServerPlugin>>,
        #[cfg(feature = "tower")] layers: Vec<Box<layer::WrapHandler>>,
        #[cfg(feature = "http")] routes: Vec<http::Route>,
    ) -> ServerInner {
        ServerInner {
            #[cfg(feature = "tower")]
            layers,
            #[cfg(feature = "http")]
            http: http::HttpSide::new(&options.http, routes),
            router: ArcSwap::from_pointee(Router::default()),
            register_lock: Mutex::new(()),
            env: Arc::new(Env { codecs }),
            options,
            auth,
            shutdown: CancellationToken::new(),
            force: CancellationToken::new(),
            tracker: TaskTracker::new(),
            on_shutdown: Mutex::new(Vec::new()),
            addresses: Mutex::new(Vec::new()),
            plugins: ArcSwap::from_pointee(PluginSet::new(plugins)),
            connections: AtomicUsize::new(0),
            total_connections: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            closed_bytes_in: AtomicU64::new(0),
            closed_bytes_out: AtomicU64::new(0),
            closed_pushes: AtomicU64::new(0),
            push_seq: Arc::new(AtomicU64::new(0)),
            next_conn_id: AtomicU64::new(1),
            active: Mutex::new(HashMap::new()),
        }
    }

    /// `handler` inside the server's tower layers.
    pub(crate) fn wrap_handler(
        &self,
        handler: &Arc<dyn handler::Handler>,
    ) -> Arc<dyn handler::Handler> {
        #[cfg(feature = "tower")]
        {
            let mut h = handler.clone();
            for wrap in &self.layers {
                h = wrap(h, &self.env);
            }
            h
        }
        #[cfg(not(feature = "tower"))]
        handler.clone()
    }

    pub(crate) fn plugins(&self) -> arc_swap::Guard<Arc<PluginSet>> {
        self.plugins.load()
    }
}

/// An rpcx server. Cheap to clone: clones share the same services and listeners.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("services", &self.service_names())
            .field("addresses", &self.addresses())
            .finish()
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Server {
    /// A server with default options.
    pub fn new() -> Server {
        Server::builder().build()
    }

    /// A builder for options, codecs, auth and plugins.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The options in force.
    pub fn options(&self) -> &ServerOptions {
        &self.inner.options
    }

    /// Adds an HTTP route to a running server (see
    /// [`ServerBuilder::http_route`](ServerBuilder::http_route)).
    #[cfg(feature = "http")]
    pub fn http_route(&self, path: impl Into<String>, handler: impl HttpHandler) {
        let route = Arc::new(handler) as Arc<dyn HttpHandler>;
        let path = path.into();
        self.inner.http.routes.rcu(|cur| {
            let mut v: Vec<http::Route> = cur.iter().map(http::Route::clone_route).collect();
            v.push(http::Route::new(path.clone(), route.clone()));
            v
        });
    }

    /// Adds a plugin to a running server. It is told about the services already registered and
    /// the addresses already listening, as if it had been there from the start.
    pub fn add_plugin(&self, plugin: impl ServerPlugin) {
        let plugin: Arc<dyn ServerPlugin> = Arc::new(plugin);
        self.inner.plugins.rcu(|cur| cur.with(plugin.clone()));
        for name in self.service_names() {
            let meta = self.service_metadata(&name).unwrap_or_default();
            plugin.on_register(self, &name, &meta);
        }
        for a in self.addresses() {
            plugin.on_listen(self, &a);
        }
    }

    /// Connection and call counters, for metrics and registry rate figures.
    pub fn stats(&self) -> ServerStats {
        let i = &self.inner;
        let (mut bytes_in, mut bytes_out, mut pushes) = (
            i.closed_bytes_in.load(Ordering::Relaxed),
            i.closed_bytes_out.load(Ordering::Relaxed),
            i.closed_pushes.load(Ordering::Relaxed),
        );
        for c in lock(&i.active).values() {
            bytes_in += c.bytes_in();
            bytes_out += c.bytes_out();
            pushes += c.pushes();
        }
        ServerStats {
            connections: i.connections.load(Ordering::Relaxed),
            total_connections: i.total_connections.load(Ordering::Relaxed),
            calls: i.calls.load(Ordering::Relaxed),
            bytes_in,
            bytes_out,
            pushes,
        }
    }

    /// The clients' rpcx connections open now (rpcx's `ActiveClientConn`), HTTP CONNECT ones
    /// included; plain HTTP connections are not listed.
    pub fn active_connections(&self) -> Vec<ClientConn> {
        lock(&self.inner.active).values().cloned().collect()
    }

    /// Sends a message to the client on `conn` (rpcx's `SendMessage`): `payload` as it is, with
    /// serialize type none; `service_path`, `service_method` and `metadata` may be empty.
    ///
    /// Returns once the message is queued for writing, or fails at once with
    /// [`Error::Push`] when the connection has closed or its push queue
    /// ([`ServerOptions::push_queue_capacity`]) is full. See [`ClientConn::send_message`].
    pub fn send_message(
        &self,
        conn: &ClientConn,
        service_path: &str,
        service_method: &str,
        metadata: &sextant_protocol::Metadata,
        payload: &[u8],
    ) -> Result<()> {
        conn.send_message(service_path, service_method, metadata, payload)
    }

    /// The addresses this server listens on.
    pub fn addresses(&self) -> Vec<Address> {
        lock(&self.inner.addresses).clone()
    }

    /// Binds `address` (`tcp@host:port`, `unix@/path`, `inprocess@name`, `host:port` or a
    /// `SocketAddr`) and serves in a background task. Returns the bound address, with the real
    /// port when port 0 was asked for.
    ///
    /// Fails with [`Error::ServerShutdown`] once [`shutdown`](Server::shutdown) has started, and
    /// with [`Error::Bind`] when the address cannot be bound.
    pub async fn start(&self, address: impl ToAddress) -> Result<Address> {
        let listener = self.bind(address).await?;
        self.start_listener(listener).await
    }

    /// Serves on a listener that is already bound, e.g. an in-process name from
    /// [`InProcess::listen`](crate::transport::InProcess::listen), in a background task. Returns
    /// the listener's address. Fails with [`Error::ServerShutdown`] once shutdown has started.
    pub async fn start_listener(&self, listener: Listener) -> Result<Address> {
        let addr = self.listening(&listener)?;
        self.inner
            .tracker
            .spawn(accept_loop(self.inner.clone(), listener));
        for p in self.inner.plugins().iter() {
            p.on_listen(self, &addr);
        }
        Ok(addr)
    }

    /// Serves the byte streams `incoming` yields, connections the caller accepted itself
    /// (tonic's `serve_with_incoming`): a TLS terminator of their own, a socket handed over by a
    /// supervisor, a test pipe. `address` is what this listener is known as (what
    /// [`addresses`](Server::addresses) lists and registries publish); each connection's peer is
    /// [`PeerAddr::Other`](crate::PeerAddr::Other). For a full [`Accept`](crate::transport::Accept)
    /// implementation (with peers and handshakes of its own) use
    /// [`start_listener`](Server::start_listener) with
    /// [`Listener::from_accept`](crate::transport::Listener::from_accept).
    pub async fn start_incoming<S, I>(
        &self,
        address: impl ToAddress,
        incoming: S,
    ) -> Result<Address>
    where
        S: futures::Stream<Item = std::io::Result<I>> + Send + Unpin + 'static,
        I: crate::transport::Io,
    {
        let address = address.to_address()?;
        let accept = IncomingStreams {
            address,
            streams: tokio::sync::Mutex::new(incoming),
            next: AtomicU64::new(1),
        };
        self.start_listener(Listener::from_accept(accept)).await
    }

    /// Binds `address` and serves until [`shutdown`](Server::shutdown) is called (rpcx's
    /// `Serve`); returns once the shutdown has finished draining.
    pub async fn serve(&self, address: impl ToAddress) -> Result<()> {
        let listener = self.bind(address).await?;
        let addr = self.listening(&listener)?;
        // The socket is bound and listening: connections are queued from here on, so it is
        // safe to tell registries before the accept loop starts.
        for p in self.inner.plugins().iter() {
            p.on_listen(self, &addr);
        }
        accept_loop(self.inner.clone(), listener).await;
        self.inner.tracker.wait().await;
        Ok(())
    }

    fn check_running(&self) -> Result<()> {
        if self.inner.shutdown.is_cancelled() {
            Err(Error::ServerShutdown)
        } else {
            Ok(())
        }
    }

    async fn bind(&self, address: impl ToAddress) -> Result<Listener> {
        self.check_running()?;
        let address = address.to_address()?;
        Listener::bind_with(&address, &self.inner.options).await
    }

    /// Records a listener's address as one this server listens on.
    fn listening(&self, listener: &Listener) -> Result<Address> {
        self.check_running()?;
        let addr = listener.local_addr().map_err(Error::io)?;
        tracing::info!(address = %addr, "sextant server listening");
        lock(&self.inner.addresses).push(addr.clone());
        Ok(addr)
    }

    /// Adds a function to run when shutdown starts (rpcx's `RegisterOnShutdown`), e.g. to remove
    /// the server from a registry before connections are drained.
    pub fn on_shutdown<F, Fut>(&self, f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        lock(&self.inner.on_shutdown).push(Box::new(move || Box::pin(f())));
    }

    /// Whether shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Shuts down gracefully: runs the on-shutdown hooks, stops accepting connections and reading
    /// requests, and lets calls in flight finish and their responses be written, for at most
    /// `grace`. Calls still running after `grace` are dropped and their connections closed; then
    /// the result is [`Error::ShutdownTimeout`].
    pub async fn shutdown(&self, grace: Duration) -> Result<()> {
        let hooks = std::mem::take(&mut *lock(&self.inner.on_shutdown));
        for h in hooks {
            h().await;
        }
        let plugins = self.inner.plugins().clone();
        for p in plugins.iter() {
            p.on_shutdown(self).await;
        }
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        let graceful = tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_ok();
        if graceful {
            return Ok(());
        }
        let connections = self.inner.connections.load(Ordering::Relaxed);
        tracing::warn!(
            ?grace,
            connections,
            "shutdown grace period over: dropping calls still running"
        );
        self.inner.force.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tracker.wait()).await;
        Err(Error::ShutdownTimeout { grace, connections })
    }
}

async fn accept_loop(inner: Arc<ServerInner>, listener: Listener) {
    // Out of file descriptors and the like: back off as Go's net/http and rpcx do (5 ms
    // doubling up to 1 s).
    let mut backoff = Backoff::new(Duration::from_millis(5), Duration::from_secs(1));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = inner.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok(incoming) => {
                backoff.reset();
                tracing::debug!(peer = %incoming.peer(), "accepted connection");
                inner
                    .tracker
                    .spawn(conn::serve_conn(inner.clone(), incoming));
            }
            Err(e) => {
                let wait = backoff.next_delay();
                tracing::error!(error = %e, retry_in = ?wait, "accept error");
                tokio::select! {
                    _ = inner.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    if let Ok(addr) = listener.local_addr() {
        lock(&inner.addresses).retain(|a| *a != addr);
    }
}

/// A stream of byte streams as an [`Accept`](crate::transport::Accept).
struct IncomingStreams<S> {
    address: Address,
    streams: tokio::sync::Mutex<S>,
    next: AtomicU64,
}

impl<S, I> crate::transport::Accept for IncomingStreams<S>
where
    S: futures::Stream<Item = std::io::Result<I>> + Send + Unpin + 'static,
    I: crate::transport::Io,
{
    fn accept(&self) -> BoxFuture<'_, std::io::Result<crate::transport::Incoming>> {
        Box::pin(async move {
            use futures::StreamExt;
            // Only the accept loop calls this, so the lock is never contended.
            match self.streams.lock().await.next().await {
                Some(Ok(io)) => {
                    let n = self.next.fetch_add(1, Ordering::Relaxed);
                    let peer = crate::PeerAddr::Other(format!("{}#{n}", self.address));
                    Ok(crate::transport::Incoming::ready(
                        crate::transport::Stream::from_io(io),
                        peer,
                    ))
                }
                Some(Err(e)) => Err(e),
                // The stream has ended: nothing more will come; wait for shutdown.
                None => futures::future::pending().await,
            }
        })
    }

    fn local_addr(&self) -> std::io::Result<Address> {
        Ok(self.address.clone())
    }
}
