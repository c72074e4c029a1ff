//! Client plugins: rpcx's client plugin points as one trait with no-op defaults.
//!
//! Hooks run in the order the plugins were added, on the task that triggers them, so they must
//! be quick. Per call: [`pre_call`](ClientPlugin::pre_call) before each attempt is encoded and
//! sent (after the server is chosen), with the request metadata writable;
//! [`post_call`](ClientPlugin::post_call) when the attempt ends — so a call that fails over to a
//! second server runs both hooks twice. Every `pre_call` that ran is followed by its plugin's
//! `post_call`, also when a later plugin's `pre_call` refuses the attempt (then with that error),
//! and when the caller drops the call's future before it ends (then with
//! [`Error::Canceled`](crate::Error::Canceled), from the drop), so an in-flight count or a span
//! a plugin opened always closes. A hook that panics fails the attempt with an error (logged);
//! the XClient goes on. Per connection: [`wrap_conn`](ClientPlugin::wrap_conn) with the
//! new stream, [`on_conn_created`](ClientPlugin::on_conn_created) after a dial succeeds,
//! [`on_conn_create_failed`](ClientPlugin::on_conn_create_failed) after one fails, and
//! [`on_conn_close`](ClientPlugin::on_conn_close) when the XClient drops a connection (broken,
//! server left discovery, XClient closed). Around selection:
//! [`XClientBuilder::wrap_selector`](crate::XClientBuilder::wrap_selector) wraps the selector
//! (rpcx's `SelectNodePlugin`).
//!
//! The names match the server's [`ServerPlugin`](crate::ServerPlugin): `pre_call`/`post_call`
//! around a call, `on_conn_*` for connections.

use std::time::Duration;

use sextant_protocol::Metadata;

use crate::error::{Error, Result};
use crate::transport::Stream;

/// One attempt of a call, as plugins see it.
#[derive(Debug)]
#[non_exhaustive]
pub struct CallInfo<'a> {
    /// The service (rpcx's `servicePath`).
    pub service_path: &'a str,
    /// The method (rpcx's `serviceMethod`).
    pub service_method: &'a str,
    /// The server chosen for this attempt, as discovery lists it.
    pub server: &'a str,
    /// 0 for the first attempt of a call, then 1, 2, … for retries and backups.
    pub attempt: u32,
    /// The request metadata (including `__AUTH` when the XClient has a token). Writable in
    /// [`pre_call`](ClientPlugin::pre_call), which runs just before the request is encoded
    /// (rpcx's `PreCall` and `BeforeEncode`): trace context, a request id.
    pub metadata: &'a mut Metadata,
}

/// Hooks into an XClient's calls and connections (rpcx's client `Plugin` family). Every method
/// has a no-op default.
#[allow(unused_variables)]
pub trait ClientPlugin: Send + Sync + 'static {
    /// Before an attempt is encoded and sent (rpcx's `PreCallPlugin` and
    /// `ClientBeforeEncodePlugin`), with its metadata writable. An error fails the call with
    /// that error, without retrying unless the error is retryable.
    fn pre_call(&self, call: &mut CallInfo<'_>) -> Result<()> {
        Ok(())
    }

    /// After an attempt ended and its response was decoded (rpcx's `PostCallPlugin` and
    /// `ClientAfterDecodePlugin`), with its error if it failed and how long it took. `call`
    /// shows the metadata as `pre_call` left it.
    fn post_call(&self, call: &CallInfo<'_>, error: Option<&Error>, elapsed: Duration) {}

    /// The stream of a new connection to `server`, to use from now on: as it is or wrapped
    /// (rpcx's `ConnCreatedPlugin`, which may wrap the `net.Conn`).
    fn wrap_conn(&self, server: &str, stream: Stream) -> Stream {
        stream
    }

    /// A connection to `server` was established (rpcx's `ConnCreatedPlugin` /
    /// `ClientConnectedPlugin`).
    fn on_conn_created(&self, server: &str) {}

    /// Dialling `server` failed (rpcx's `ConnCreateFailedPlugin`).
    fn on_conn_create_failed(&self, server: &str, error: &Error) {}

    /// The XClient let go of its connection to `server` (rpcx's `ClientConnectionClosePlugin`).
    fn on_conn_close(&self, server: &str) {}
}
