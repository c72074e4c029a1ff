//! Server plugins: rpcx's plugin points as one trait with no-op defaults.
//!
//! Hooks run in the order plugins were added, on the task that triggers them, so they must be
//! quick; a plugin with slow work (a registry write) spawns a task. Order of the per-call hooks:
//! `pre_call` after routing and before the argument is decoded, `post_call` after the response
//! frame is built (also for oneway calls, which send no response).
//!
//! The client's [`ClientPlugin`](crate::xclient::ClientPlugin) names its hooks alike:
//! `pre_call`/`post_call` around each call, `on_conn_*` for connections.

use std::time::Duration;

use futures::future::BoxFuture;

use super::Server;
use crate::context::Context;
use crate::transport::{Address, PeerAddr};

/// Hooks into a server's life (rpcx's `server.Plugin` family). Every method has a no-op default.
#[allow(unused_variables)]
pub trait ServerPlugin: Send + Sync + 'static {
    /// A listener is bound and accepting connections at `address` (registry plugins publish
    /// here, so clients never see an address that refuses connections).
    fn on_listen(&self, server: &Server, address: &Address) {}

    /// A service was registered (rpcx's `RegisterPlugin.Register` / `RegisterFunction`), with its
    /// metadata string.
    fn on_register(&self, server: &Server, service_path: &str, metadata: &str) {}

    /// A service was unregistered (rpcx's `RegisterPlugin.Unregister`).
    fn on_unregister(&self, server: &Server, service_path: &str) {}

    /// Shutdown started; awaited before connections are drained (registry plugins remove the
    /// server's entries here).
    fn on_shutdown(&self, server: &Server) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    /// A connection was accepted; returning `false` closes it at once (rpcx's
    /// `PostConnAcceptPlugin`, e.g. a blacklist).
    fn on_conn_accept(&self, peer: &PeerAddr) -> bool {
        true
    }

    /// A connection closed (rpcx's `PostConnClosePlugin`).
    fn on_conn_close(&self, peer: &PeerAddr) {}

    /// Before a call's handler runs (rpcx's `PreCallPlugin`); an `Err(text)` fails the call with
    /// that text (rate limits, access control).
    fn pre_call(&self, ctx: &Context) -> Result<(), String> {
        Ok(())
    }

    /// After a call's handler ran (rpcx's `PostCallPlugin`): its error text if it failed (a
    /// handler error, a decoding error, a panic, the deadline) and how long it took (metrics).
    /// Oneway calls are reported too, though nothing is sent back.
    fn post_call(&self, ctx: &Context, error: Option<&str>, elapsed: Duration) {}
}

/// A server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections open now.
    pub connections: usize,
    /// Connections accepted since start.
    pub total_connections: u64,
    /// Calls handled since start (heartbeats excluded).
    pub calls: u64,
}
