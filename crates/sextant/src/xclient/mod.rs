//! The XClient: one service across many servers, with discovery, selection, fail modes, circuit
//! breakers and a connection per server (rpcx's `XClient`).
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize)] #[serde(rename_all = "PascalCase")] struct Args { a: i64, b: i64 }
//! # #[derive(Serialize, Deserialize, Default)] #[serde(rename_all = "PascalCase")] struct Reply { c: i64 }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> sextant::Result<()> {
//! use sextant::discovery::MultipleServersDiscovery;
//! use sextant::xclient::{FailMode, XClient};
//! use sextant::selector::SelectMode;
//! use sextant::{Context, KVPair, Server, ServiceError};
//!
//! let mut servers = Vec::new();
//! let mut pairs = Vec::new();
//! for _ in 0..2 {
//!     let s = Server::new();
//!     s.register_fn("Arith", "Mul", |_cx: Context, a: Args| async move {
//!         Ok::<_, ServiceError>(Reply { c: a.a * a.b })
//!     })?;
//!     pairs.push(KVPair::new(s.start("tcp@127.0.0.1:0").await?.to_string(), ""));
//!     servers.push(s);
//! }
//!
//! let xclient = XClient::builder("Arith")
//!     .fail_mode(FailMode::Failover)
//!     .select_mode(SelectMode::RoundRobin)
//!     .discovery(MultipleServersDiscovery::new(pairs)?)
//!     .build()?;
//! let reply: Reply = xclient.call("Mul", &Args { a: 10, b: 20 }).await?;
//! assert_eq!(reply.c, 200);
//!
//! xclient.close();
//! for s in servers {
//!     s.shutdown(std::time::Duration::from_secs(1)).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! ## Where things are
//!
//! One concern per module: [options](XClientOptions) and [`FailMode`], the
//! [builder](XClientBuilder), the server set (discovery's list filtered into endpoints), the
//! connection pool (one [`Client`](crate::Client) and breaker per server), selection as an
//! iterator of candidates (every fail mode is "take the next one"), the call path, fork /
//! broadcast / inform, and [plugins](ClientPlugin).
//!
//! ## How a call goes
//!
//! 1. The server list comes from the [`ServiceDiscovery`] and is kept up to date by a background
//!    task: servers with `state=inactive` are dropped, and so are servers outside the configured
//!    `group` and servers whose address cannot be parsed (logged). The [`Selector`] is told of
//!    every change; connections to servers that left are closed once their calls finish.
//! 2. The selector picks a server among those whose circuit breaker is ready (and, under
//!    `Failover`, that have not failed this call yet).
//! 3. The server's connection is reused, or dialled — once, however many calls wait for it. A
//!    failed dial is not retried before a backoff (doubling from 100 ms to 5 s); calls that pick
//!    the server meanwhile fail at once with the dial's error.
//! 4. Client plugins' `pre_call` runs, the call is sent with the XClient's auth token and the
//!    call's metadata, and the deadline (if any) travels as `__ServerTimeout`.
//! 5. The outcome feeds the server's breaker, `post_call` runs, and the [`FailMode`] decides what
//!    happens to an error: a retryable one (lost connection, failed dial) may be tried again; a
//!    service error, an expired deadline and a cancelled call are returned as they are.
//!
//! The response's metadata carries `__ServerAddress`: which server answered.
//!
//! [`Selector`]: crate::selector::Selector

mod broadcast;
mod builder;
mod call;
mod candidates;
mod options;
mod plugin;
mod pool;
mod servers;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio_util::sync::CancellationToken;

pub use broadcast::Receipt;
pub use builder::XClientBuilder;
pub use call::XCall;
pub use options::{FailMode, XClientOptions};
pub use plugin::{CallInfo, ClientPlugin};

use crate::breaker::BreakerState;
use crate::client::ServerMessages;
use crate::discovery::ServiceDiscovery;
use crate::error::{Error, Result};
use crate::selector::{ClosestSelector, SelectMode, Selector, ServerNode};
use crate::util::lock;
use pool::DialConfig;
use servers::Snapshot;

/// The selector in force and the mode it came from.
struct SelectorSlot {
    mode: SelectMode,
    selector: Option<Arc<dyn Selector>>,
}

/// Wraps every selector the XClient installs (see [`XClientBuilder::wrap_selector`]).
pub(crate) type SelectorWrapper = Arc<dyn Fn(Arc<dyn Selector>) -> Arc<dyn Selector> + Send + Sync>;

struct Inner {
    service_path: String,
    wrap_selector: Option<SelectorWrapper>,
    fail_mode: FailMode,
    options: XClientOptions,
    config: Arc<DialConfig>,
    selector: ArcSwap<SelectorSlot>,
    servers: ArcSwap<Snapshot>,
    auth: ArcSwapOption<String>,
    /// Serializes changes of the server list and of the selector, so a selector never misses a
    /// list (sync code only; never held across an await).
    update_lock: Mutex<()>,
    stop: CancellationToken,
    closed: AtomicBool,
    discovery: Arc<dyn ServiceDiscovery>,
    /// The merged pushes of a bidirectional XClient, until taken.
    server_messages: Mutex<Option<ServerMessages>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Inner {
    fn install_selector(&self, mode: SelectMode, selector: Arc<dyn Selector>) {
        let selector = match &self.wrap_selector {
            Some(w) => w(selector),
            None => selector,
        };
        let _guard = lock(&self.update_lock);
        selector.update_servers(&self.servers.load().nodes);
        self.selector.store(Arc::new(SelectorSlot {
            mode,
            selector: Some(selector),
        }));
    }

    fn selector(&self) -> Result<Arc<dyn Selector>> {
        let slot = self.selector.load();
        match &slot.selector {
            Some(s) => Ok(s.clone()),
            None if slot.mode == SelectMode::Closest => Err(Error::Config(format!(
                "XClient for {}: select mode Closest needs the client's position; call \
                 config_geo_selector(latitude, longitude) or the builder's geo_position",
                self.service_path
            ))),
            None => Err(Error::Config(format!(
                "XClient for {}: select mode {} needs a selector; call set_selector or the \
                 builder's selector",
                self.service_path, slot.mode
            ))),
        }
    }
}

/// A client for one service on many servers (rpcx's `XClient`). Cheap to clone; share one per
/// service path between all tasks.
///
/// Build one with [`XClient::builder`] or, rpcx style, [`XClient::new`]. Must be built inside a
/// tokio runtime (it watches discovery in a background task, which stops when the last clone is
/// dropped or [`close`](XClient::close) is called).
#[derive(Clone)]
pub struct XClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for XClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XClient")
            .field("service_path", &self.inner.service_path)
            .field("fail_mode", &self.inner.fail_mode)
            .field("select_mode", &self.select_mode())
            .field("servers", &self.servers().len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl XClient {
    /// A builder for the XClient of `service_path`.
    pub fn builder(service_path: impl Into<String>) -> XClientBuilder {
        XClientBuilder::new(service_path.into())
    }

    /// rpcx's `NewXClient(servicePath, failMode, selectMode, discovery, option)`. For
    /// [`SelectMode::Closest`] call [`config_geo_selector`](XClient::config_geo_selector) next,
    /// for [`SelectMode::SelectByUser`] [`set_selector`](XClient::set_selector); until then calls
    /// fail with [`Error::Config`].
    pub fn new(
        service_path: &str,
        fail_mode: FailMode,
        select_mode: SelectMode,
        discovery: impl ServiceDiscovery,
        options: XClientOptions,
    ) -> Result<XClient> {
        XClient::builder(service_path)
            .fail_mode(fail_mode)
            .select_mode(select_mode)
            .discovery(discovery)
            .options(options)
            .build()
    }

    /// The service this XClient calls.
    pub fn service_path(&self) -> &str {
        &self.inner.service_path
    }

    /// The fail mode.
    pub fn fail_mode(&self) -> FailMode {
        self.inner.fail_mode
    }

    /// The select mode.
    pub fn select_mode(&self) -> SelectMode {
        self.inner.selector.load().mode
    }

    /// The options.
    pub fn options(&self) -> &XClientOptions {
        &self.inner.options
    }

    /// Sends `token` as `__AUTH` with every call from now on (rpcx's `Auth`).
    pub fn auth(&self, token: impl Into<String>) {
        self.inner.auth.store(Some(Arc::new(token.into())));
    }

    /// Routes with `selector` from now on ([`SelectMode::SelectByUser`]; rpcx's `SetSelector`).
    pub fn set_selector(&self, selector: impl Selector) {
        self.inner
            .install_selector(SelectMode::SelectByUser, Arc::new(selector));
    }

    /// Routes each call to the server closest to `latitude`, `longitude` from now on
    /// ([`SelectMode::Closest`]; rpcx's `ConfigGeoSelector`).
    pub fn config_geo_selector(&self, latitude: f64, longitude: f64) {
        self.inner.install_selector(
            SelectMode::Closest,
            Arc::new(ClosestSelector::new(latitude, longitude)),
        );
    }

    /// Adds a plugin; plugins run in the order they were added.
    pub fn add_plugin(&self, plugin: impl ClientPlugin) {
        let plugin: Arc<dyn ClientPlugin> = Arc::new(plugin);
        self.inner.config.plugins.rcu(|cur| {
            let mut v = Vec::clone(cur);
            v.push(plugin.clone());
            v
        });
    }

    /// The servers calls may go to now (after state and group filtering), in discovery order.
    pub fn servers(&self) -> Vec<ServerNode> {
        self.inner.servers.load().nodes.clone()
    }

    /// The state of `server`'s circuit breaker; `None` when it has none or is not a current
    /// server.
    pub fn breaker_state(&self, server: &str) -> Option<BreakerState> {
        self.inner
            .servers
            .load()
            .endpoints
            .get(server)
            .and_then(|ep| ep.breaker_state())
    }

    /// The current servers this XClient holds an open connection to.
    pub fn connected_servers(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .servers
            .load()
            .endpoints
            .values()
            .filter(|ep| ep.is_connected())
            .map(|ep| ep.key.to_string())
            .collect();
        v.sort();
        v
    }

    /// Whether [`close`](XClient::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// The messages its servers push (rpcx's `NewBidirectionalXClient` channel), merged into one
    /// stream, when built with [`bidirectional`](XClientBuilder::bidirectional); `None`
    /// otherwise, and after the first time. Each [`ServerMessage`](crate::client::ServerMessage)
    /// names the server it came from. Only servers this XClient has a connection to can push to
    /// it: a connection is made on the first call that picks the server. The stream ends once
    /// the XClient is closed and the queued messages are read.
    pub fn server_messages(&self) -> Option<ServerMessages> {
        lock(&self.inner.server_messages).take()
    }

    /// Closes every connection and stops watching discovery (rpcx's `Close`). Calls in flight
    /// fail with [`Error::Closed`], and so do new ones. Other XClients sharing the discovery are
    /// not affected.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.stop.cancel();
        let _guard = lock(&self.inner.update_lock);
        for ep in self.inner.servers.load().endpoints.values() {
            ep.retire(true);
        }
    }
}
