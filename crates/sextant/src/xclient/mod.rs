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
//!     s.register_fn("Arith", "Mul", "", |_cx: Context, a: Args| async move {
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
mod options;
mod plugin;
mod pool;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::BytesMut;
use sextant_protocol::{keys, Decode, Encode};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use broadcast::Receipt;
pub use options::{FailMode, XClientOptions};
pub use plugin::{CallInfo, ClientPlugin};

use crate::breaker::BreakerState;
use crate::client::{CallOptions, PendingCall, Response};
use crate::discovery::{KVPair, Servers, ServiceDiscovery};
use crate::error::{Error, Result};
use crate::selector::{ClosestSelector, SelectContext, SelectMode, Selector, ServerNode};
use crate::transport::Address;
use pool::{DialConfig, Endpoint, Permit};

/// The selector in force and the mode it came from.
struct SelectorSlot {
    mode: SelectMode,
    selector: Option<Arc<dyn Selector>>,
}

/// The usable servers at one moment, with how many discovery listed and why others were left out.
#[derive(Default)]
struct Snapshot {
    nodes: Vec<ServerNode>,
    endpoints: HashMap<Arc<str>, Arc<Endpoint>>,
    listed: usize,
    inactive: usize,
    other_group: usize,
    invalid: usize,
}

struct Inner {
    service_path: String,
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
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
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

/// Assembles an [`XClient`]: `XClient::builder("Arith").fail_mode(..).select_mode(..)
/// .discovery(..).build()`.
pub struct XClientBuilder {
    service_path: String,
    fail_mode: FailMode,
    select_mode: SelectMode,
    discovery: Option<Arc<dyn ServiceDiscovery>>,
    options: XClientOptions,
    selector: Option<Arc<dyn Selector>>,
    plugins: Vec<Arc<dyn ClientPlugin>>,
    auth: Option<String>,
    geo: Option<(f64, f64)>,
}

impl fmt::Debug for XClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XClientBuilder")
            .field("service_path", &self.service_path)
            .field("fail_mode", &self.fail_mode)
            .field("select_mode", &self.select_mode)
            .field("options", &self.options)
            .finish()
    }
}

impl XClientBuilder {
    /// Sets the fail mode. Default: [`FailMode::Failover`].
    pub fn fail_mode(mut self, mode: FailMode) -> Self {
        self.fail_mode = mode;
        self
    }

    /// Sets the select mode. Default: [`SelectMode::Random`].
    pub fn select_mode(mut self, mode: SelectMode) -> Self {
        self.select_mode = mode;
        self
    }

    /// Sets where the servers come from. Required. Pass an `Arc` to keep a handle, e.g. to call
    /// [`MultipleServersDiscovery::update`](crate::discovery::MultipleServersDiscovery::update).
    pub fn discovery(mut self, discovery: impl ServiceDiscovery) -> Self {
        self.discovery = Some(Arc::new(discovery));
        self
    }

    /// Replaces the options.
    pub fn options(mut self, options: XClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Uses `selector` (and [`SelectMode::SelectByUser`]).
    pub fn selector(mut self, selector: impl Selector) -> Self {
        self.selector = Some(Arc::new(selector));
        self.select_mode = SelectMode::SelectByUser;
        self
    }

    /// Selects the closest server to this position (and [`SelectMode::Closest`]); see
    /// [`XClient::config_geo_selector`].
    pub fn geo_position(mut self, latitude: f64, longitude: f64) -> Self {
        self.geo = Some((latitude, longitude));
        self.select_mode = SelectMode::Closest;
        self
    }

    /// Adds a plugin; plugins run in the order they were added.
    pub fn plugin(mut self, plugin: impl ClientPlugin) -> Self {
        self.plugins.push(Arc::new(plugin));
        self
    }

    /// Sends `token` as `__AUTH` with every call (rpcx's `Auth`).
    pub fn auth(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(token.into());
        self
    }

    /// Builds the XClient. Fails when the service path is empty, no discovery was given, or it is
    /// not called inside a tokio runtime.
    pub fn build(self) -> Result<XClient> {
        if self.service_path.is_empty() {
            return Err(Error::Config(
                "XClient needs a service path, e.g. XClient::builder(\"Arith\")".into(),
            ));
        }
        let discovery = self.discovery.ok_or_else(|| {
            Error::Config(format!(
                "XClient for {} needs a discovery: call .discovery(Peer2PeerDiscovery::new(..)?) \
                 or another ServiceDiscovery",
                self.service_path
            ))
        })?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config(
                "an XClient must be built inside a tokio runtime (it watches discovery in a \
                 background task)"
                    .into(),
            )
        })?;
        let selector = match (self.select_mode, self.selector, self.geo) {
            (_, Some(s), _) => Some(s),
            (SelectMode::Closest, None, Some((lat, lon))) => {
                Some(Arc::new(ClosestSelector::new(lat, lon)) as Arc<dyn Selector>)
            }
            (mode, None, _) => mode.new_selector(),
        };
        let options = self.options;
        let config = Arc::new(DialConfig {
            client_options: options.client_options(),
            in_process: options.in_process.clone(),
            reconnect_backoff: options.reconnect_backoff,
            max_reconnect_backoff: options.max_reconnect_backoff,
            gen_breaker: options.gen_breaker.clone(),
            plugins: ArcSwap::from_pointee(self.plugins),
        });
        let inner = Arc::new(Inner {
            service_path: self.service_path,
            fail_mode: self.fail_mode,
            options,
            config,
            selector: ArcSwap::from_pointee(SelectorSlot {
                mode: self.select_mode,
                selector,
            }),
            servers: ArcSwap::from_pointee(Snapshot::default()),
            auth: ArcSwapOption::new(self.auth.map(Arc::new)),
            update_lock: Mutex::new(()),
            stop: CancellationToken::new(),
            closed: AtomicBool::new(false),
            discovery,
        });
        let mut rx = inner.discovery.watch_services();
        let first = rx.borrow_and_update().clone();
        inner.apply(&first);
        handle.spawn(watch(Arc::downgrade(&inner), rx, inner.stop.clone()));
        Ok(XClient { inner })
    }
}

/// Follows discovery until the XClient is closed or dropped, or discovery goes away (the last
/// list then stays in effect).
async fn watch(
    inner: std::sync::Weak<Inner>,
    mut rx: watch::Receiver<Servers>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
        let list = rx.borrow_and_update().clone();
        match inner.upgrade() {
            Some(i) => i.apply(&list),
            None => return,
        }
    }
}

impl Inner {
    /// Installs a new server list: filter, reuse the endpoints of servers still there, tell the
    /// selector, retire the endpoints of servers that left.
    fn apply(&self, list: &[KVPair]) {
        let _guard = self.update_lock.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.servers.load_full();
        let group = self.options.group.as_str();
        let mut snap = Snapshot {
            listed: list.len(),
            ..Snapshot::default()
        };
        for kv in list {
            let node = ServerNode::from(kv);
            if node.is_inactive() {
                snap.inactive += 1;
                continue;
            }
            if !group.is_empty() && node.get("group") != Some(group) {
                snap.other_group += 1;
                continue;
            }
            let endpoint = match old.endpoints.get(node.address()) {
                Some(ep) => ep.clone(),
                None => match Address::parse(&kv.key) {
                    Ok(a) => Arc::new(Endpoint::new(
                        node.address().clone(),
                        a,
                        self.config.clone(),
                    )),
                    Err(e) => {
                        tracing::warn!(service = %self.service_path, error = %e, "leaving out a server with an invalid address");
                        snap.invalid += 1;
                        continue;
                    }
                },
            };
            snap.endpoints.insert(node.address().clone(), endpoint);
            snap.nodes.push(node);
        }
        let snap = Arc::new(snap);
        self.servers.store(snap.clone());
        if let Some(s) = &self.selector.load().selector {
            s.update_servers(&snap.nodes);
        }
        for (k, ep) in old.endpoints.iter() {
            if !snap.endpoints.contains_key(k) {
                ep.retire(false);
            }
        }
    }

    fn install_selector(&self, mode: SelectMode, selector: Arc<dyn Selector>) {
        let _guard = self.update_lock.lock().unwrap_or_else(|p| p.into_inner());
        selector.update_servers(&self.servers.load().nodes);
        self.selector.store(Arc::new(SelectorSlot {
            mode,
            selector: Some(selector),
        }));
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
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

    fn deadline(&self, options: &CallOptions) -> Option<Instant> {
        options
            .timeout
            .or(self.options.default_timeout)
            .map(|t| Instant::now() + t)
    }

    fn add_auth(&self, options: &mut CallOptions) {
        if let Some(t) = &*self.auth.load() {
            options.metadata.insert(keys::AUTH, String::clone(t));
        }
    }

    /// Picks a server for a call and takes its breaker's permission.
    fn pick(
        &self,
        selector: &dyn Selector,
        method: &str,
        key: &CallKey<'_>,
        tried: &[Arc<Endpoint>],
    ) -> Result<Permit> {
        let snap = self.servers.load();
        let refused: RefCell<Vec<Arc<Endpoint>>> = RefCell::new(Vec::new());
        let available = |a: &str| {
            snap.endpoints.get(a).is_some_and(|ep| {
                ep.breaker_ready()
                    && !tried.iter().any(|t| Arc::ptr_eq(t, ep))
                    && !refused.borrow().iter().any(|t| Arc::ptr_eq(t, ep))
            })
        };
        // Each round either returns or refuses one more endpoint, so this ends.
        for _ in 0..=snap.endpoints.len() {
            let call = SelectContext::new(&self.service_path, method)
                .with_args(key.args)
                .with_hash_key(key.hash_key)
                .with_filter(&available);
            let Some(address) = selector.select(&call) else {
                break;
            };
            // The breaker is checked again by `acquire` below (its state may have changed since
            // the selector looked); here only what a selector must never return.
            let ep = snap.endpoints.get(&*address).filter(|ep| {
                !tried.iter().any(|t| Arc::ptr_eq(t, ep))
                    && !refused.borrow().iter().any(|t| Arc::ptr_eq(t, ep))
            });
            let Some(ep) = ep else {
                return Err(Error::NoServer(format!(
                    "{}: the {} selector chose {address}, which is not an available server \
                     (a selector must pick among the servers for which is_available is true)",
                    self.service_path,
                    selector.name()
                )));
            };
            match ep.acquire() {
                Some(p) => return Ok(p),
                // Another call took the half-open breaker's trial slot meanwhile.
                None => refused.borrow_mut().push(ep.clone()),
            }
        }
        Err(self.no_server(&snap, tried))
    }

    fn no_server(&self, snap: &Snapshot, tried: &[Arc<Endpoint>]) -> Error {
        let p = &self.service_path;
        if snap.nodes.is_empty() {
            if snap.listed == 0 {
                return Error::NoServer(format!(
                    "{p}: discovery lists no servers; check the discovery's addresses or \
                     registry"
                ));
            }
            return Error::NoServer(format!(
                "{p}: none of the {} listed servers can be used ({} inactive, {} not in group \
                 {:?}, {} with an invalid address)",
                snap.listed, snap.inactive, snap.other_group, self.options.group, snap.invalid
            ));
        }
        let untried: Vec<&Arc<Endpoint>> = snap
            .endpoints
            .values()
            .filter(|ep| !tried.iter().any(|t| Arc::ptr_eq(t, ep)))
            .collect();
        if !untried.is_empty() && untried.iter().all(|ep| !ep.breaker_ready()) {
            return Error::NoServer(format!(
                "{p}: every server's circuit breaker is open ({} of {} servers); calls go \
                 through again when a breaker's window has passed",
                untried.len(),
                snap.endpoints.len()
            ));
        }
        Error::NoServer(format!(
            "{p}: the selector found no available server among {}",
            snap.endpoints.len()
        ))
    }

    /// The encoded arguments and hash key, for selectors that route by them.
    fn call_key<'a, A: Encode + ?Sized>(
        &self,
        selector: &dyn Selector,
        args: &A,
        options: &'a CallOptions,
        buf: &'a mut BytesMut,
    ) -> Result<CallKey<'a>> {
        if !selector.uses_call_key() {
            if options.hash_key.is_some() {
                return Err(Error::Config(format!(
                    "CallOptions::hash_key is set but the {} selector does not route by key; use \
                     SelectMode::ConsistentHash (or a selector whose uses_call_key is true), or \
                     drop the key",
                    selector.name()
                )));
            }
            return Ok(CallKey::default());
        }
        if let Some(k) = &options.hash_key {
            return Ok(CallKey {
                args: &[],
                hash_key: Some(k),
            });
        }
        let st = options
            .serialize_type
            .unwrap_or(self.options.serialize_type);
        args.encode(st, &self.options.codecs, buf)?;
        Ok(CallKey {
            args: &buf[..],
            hash_key: None,
        })
    }

    fn plugins(&self) -> Option<Arc<Vec<Arc<dyn ClientPlugin>>>> {
        let g = self.config.plugins.load();
        (!g.is_empty()).then(|| Arc::clone(&g))
    }

    /// One attempt of a call on the server of `permit`.
    async fn attempt<A, R>(
        &self,
        permit: Permit,
        call: &Call<'_, A>,
        mut options: CallOptions,
        attempt: u32,
    ) -> Result<Response<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let (method, deadline) = (call.method, call.deadline);
        let ep = permit.endpoint.clone();
        let plugins = self.plugins();
        let metadata = match &plugins {
            Some(ps) => {
                let info = CallInfo {
                    service_path: &self.service_path,
                    service_method: method,
                    server: &ep.key,
                    attempt,
                    metadata: &options.metadata,
                };
                for p in ps.iter() {
                    p.pre_call(&info)?;
                }
                Some(options.metadata.clone())
            }
            None => None,
        };
        let started = Instant::now();
        let r = async {
            let client = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), ep.client())
                    .await
                    .unwrap_or(Err(Error::DeadlineExceeded))?,
                None => ep.client().await?,
            };
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::DeadlineExceeded);
                }
                options.timeout = Some(left);
            }
            let mut pending = client
                .go(&self.service_path, method, call.args, options)
                .await?;
            pending.want_metadata = call.want_metadata;
            let r = pending.await;
            if let Err(Error::ConnectionLost(_) | Error::Io(_) | Error::Protocol(_)) = &r {
                // A broken connection is dropped; the next call redials.
                client.close();
            }
            r
        }
        .await;
        permit.finish(r.as_ref().err());
        if let (Some(ps), Some(metadata)) = (plugins, metadata) {
            let info = CallInfo {
                service_path: &self.service_path,
                service_method: method,
                server: &ep.key,
                attempt,
                metadata: &metadata,
            };
            let elapsed = started.elapsed();
            for p in ps.iter() {
                p.post_call(&info, r.as_ref().err(), elapsed);
            }
        }
        r
    }
}

/// The parts of a call that stay the same across its attempts.
struct Call<'a, A: ?Sized> {
    method: &'a str,
    args: &'a A,
    /// Counted from the start of the call, across all attempts.
    deadline: Option<Instant>,
    key: CallKey<'a>,
    /// Whether the caller wants the response metadata (`call` does not: it saves building it).
    want_metadata: bool,
}

// Copied into each of fork's and broadcast's per-server futures; only references inside.
impl<A: ?Sized> Clone for Call<'_, A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A: ?Sized> Copy for Call<'_, A> {}

/// What a hashing selector routes a call by.
#[derive(Default, Clone, Copy)]
struct CallKey<'a> {
    args: &'a [u8],
    hash_key: Option<&'a str>,
}

/// Takes the options for the next attempt: a copy, or the original for the last one.
fn options_for(options: &mut CallOptions, last: bool) -> CallOptions {
    if last {
        std::mem::take(options)
    } else {
        options.clone()
    }
}

impl XClient {
    /// A builder for the XClient of `service_path`.
    pub fn builder(service_path: impl Into<String>) -> XClientBuilder {
        XClientBuilder {
            service_path: service_path.into(),
            fail_mode: FailMode::default(),
            select_mode: SelectMode::default(),
            discovery: None,
            options: XClientOptions::default(),
            selector: None,
            plugins: Vec::new(),
            auth: None,
            geo: None,
        }
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

    /// Closes every connection and stops watching discovery (rpcx's `Close`). Calls in flight
    /// fail with [`Error::Closed`], and so do new ones. Other XClients sharing the discovery are
    /// not affected.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.stop.cancel();
        let _guard = self
            .inner
            .update_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for ep in self.inner.servers.load().endpoints.values() {
            ep.retire(true);
        }
    }

    /// Calls `service_method` with `args` under the fail mode and returns the reply.
    pub async fn call<A, R>(&self, service_method: &str, args: &A) -> Result<R>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        Ok(self
            .call_inner(service_method, args, CallOptions::default(), false)
            .await?
            .reply)
    }

    /// Like [`call`](XClient::call), with per-call options (metadata, deadline, codec, hash key);
    /// returns the response metadata too, including `__ServerAddress`.
    pub async fn call_with<A, R>(
        &self,
        service_method: &str,
        args: &A,
        options: CallOptions,
    ) -> Result<Response<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        self.call_inner(service_method, args, options, true).await
    }

    async fn call_inner<A, R>(
        &self,
        service_method: &str,
        args: &A,
        mut options: CallOptions,
        want_metadata: bool,
    ) -> Result<Response<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let inner = &*self.inner;
        inner.check_open()?;
        let selector = inner.selector()?;
        let deadline = inner.deadline(&options);
        inner.add_auth(&mut options);
        let hash_key = options.hash_key.take();
        let mut buf = BytesMut::new();
        let key_options = CallOptions {
            hash_key,
            serialize_type: options.serialize_type,
            ..CallOptions::default()
        };
        let call = Call {
            method: service_method,
            args,
            deadline,
            key: inner.call_key(&*selector, args, &key_options, &mut buf)?,
            want_metadata,
        };
        match inner.fail_mode {
            FailMode::Failfast => {
                let permit = inner.pick(&*selector, service_method, &call.key, &[])?;
                inner.attempt(permit, &call, options, 0).await
            }
            FailMode::Failover => self.failover(&*selector, &call, options).await,
            FailMode::Failtry => self.failtry(&*selector, &call, options).await,
            FailMode::Failbackup => self.failbackup(&*selector, &call, options).await,
        }
    }

    async fn failover<A, R>(
        &self,
        selector: &dyn Selector,
        call: &Call<'_, A>,
        mut options: CallOptions,
    ) -> Result<Response<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let inner = &*self.inner;
        let retries = inner.options.retries;
        let mut tried: Vec<Arc<Endpoint>> = Vec::new();
        let mut last_error: Option<Error> = None;
        let (method, key) = (call.method, &call.key);
        for attempt in 0..=retries {
            let permit = match inner.pick(selector, method, key, &tried) {
                Ok(p) => p,
                Err(e) if tried.is_empty() => return Err(last_error.unwrap_or(e)),
                // Every server failed this call once: with retries left, any may go again.
                Err(_) => {
                    tried.clear();
                    match inner.pick(selector, method, key, &tried) {
                        Ok(p) => p,
                        Err(e) => return Err(last_error.unwrap_or(e)),
                    }
                }
            };
            let ep = permit.endpoint.clone();
            let o = options_for(&mut options, attempt == retries);
            match inner.attempt(permit, call, o, attempt as u32).await {
                Ok(r) => return Ok(r),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => {
                    tracing::debug!(service = %inner.service_path, server = %ep.key, error = %e, "call failed; failing over");
                    tried.push(ep);
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| inner.no_server(&inner.servers.load(), &[])))
    }

    async fn failtry<A, R>(
        &self,
        selector: &dyn Selector,
        call: &Call<'_, A>,
        mut options: CallOptions,
    ) -> Result<Response<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let inner = &*self.inner;
        let retries = inner.options.retries;
        let mut permit = inner.pick(selector, call.method, &call.key, &[])?;
        let ep = permit.endpoint.clone();
        let mut attempt = 0;
        loop {
            let o = options_for(&mut options, attempt == retries);
            let e = match inner.attempt(permit, call, o, attempt as u32).await {
                Ok(r) => return Ok(r),
                Err(e) if !e.is_retryable() || attempt == retries => return Err(e),
                Err(e) => e,
            };
            attempt += 1;
            // Wait out the redial backoff rather than failing again at once.
            let wait = ep.backoff_remaining();
            if !wait.is_zero() {
                let until = Instant::now() + wait;
                match call.deadline {
                    Some(d) if d <= until => {
                        tokio::time::sleep_until(d.into()).await;
                        return Err(Error::DeadlineExceeded);
                    }
                    _ => tokio::time::sleep_until(until.into()).await,
                }
            }
            permit = match ep.acquire() {
                Some(p) => p,
                None => return Err(e),
            };
        }
    }

    async fn failbackup<A, R>(
        &self,
        selector: &dyn Selector,
        call: &Call<'_, A>,
        options: CallOptions,
    ) -> Result<Response<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let inner = &*self.inner;
        let (method, key) = (call.method, &call.key);
        let first = inner.pick(selector, method, key, &[])?;
        let first_ep = first.endpoint.clone();
        let mut call1 = std::pin::pin!(inner.attempt::<A, R>(first, call, options.clone(), 0));
        let mut error1 = None;
        tokio::select! {
            r = &mut call1 => match r {
                Err(e) if e.is_retryable() => error1 = Some(e),
                r => return r,
            },
            _ = tokio::time::sleep(inner.options.backup_latency) => {}
        }
        let second = match inner.pick(selector, method, key, std::slice::from_ref(&first_ep)) {
            Ok(p) => p,
            // No second server: the first one's answer is all there is.
            Err(e) => {
                return match error1 {
                    Some(e1) => Err(e1),
                    None => {
                        tracing::debug!(service = %inner.service_path, error = %e, "no server for a backup request");
                        call1.await
                    }
                }
            }
        };
        let mut call2 = std::pin::pin!(inner.attempt::<A, R>(second, call, options, 1));
        if let Some(e1) = error1 {
            return call2
                .await
                .map_err(|e2| if e2.is_retryable() { e1 } else { e2 });
        }
        // Both in flight: the first answer wins and the other call is dropped (cancelled). A
        // retryable failure of one leaves the other to answer.
        let (mut done1, mut done2) = (false, false);
        loop {
            tokio::select! {
                r = &mut call1, if !done1 => match r {
                    Err(e) if e.is_retryable() && !done2 => done1 = true,
                    r => return r,
                },
                r = &mut call2, if !done2 => match r {
                    Err(e) if e.is_retryable() && !done1 => done2 = true,
                    r => return r,
                },
            }
        }
    }

    /// Sends the call to one server and returns a handle to await later (rpcx's `Go`). As in
    /// rpcx, no fail mode applies: the call is sent once. Plugins' `pre_call`/`post_call` do not
    /// run; the outcome still feeds the server's breaker. Dropping the handle cancels the call.
    pub async fn go<A, R>(
        &self,
        service_method: &str,
        args: &A,
        mut options: CallOptions,
    ) -> Result<XCall<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let inner = &*self.inner;
        inner.check_open()?;
        let selector = inner.selector()?;
        if options.timeout.is_none() {
            options.timeout = inner.options.default_timeout;
        }
        inner.add_auth(&mut options);
        let hash_key = options.hash_key.take();
        let mut buf = BytesMut::new();
        let key_options = CallOptions {
            hash_key,
            serialize_type: options.serialize_type,
            ..CallOptions::default()
        };
        let key = inner.call_key(&*selector, args, &key_options, &mut buf)?;
        let permit = inner.pick(&*selector, service_method, &key, &[])?;
        let client = match permit.endpoint.client().await {
            Ok(c) => c,
            Err(e) => {
                permit.finish(Some(&e));
                return Err(e);
            }
        };
        match client
            .go(&inner.service_path, service_method, args, options)
            .await
        {
            Ok(pending) => Ok(XCall {
                pending,
                permit: Some(permit),
            }),
            Err(e) => {
                permit.finish(Some(&e));
                Err(e)
            }
        }
    }

    /// Sends a oneway call: the server runs it and answers nothing. Returns once the request is
    /// queued for writing. `Failfast` tries one server; `Failtry` retries the same server and
    /// the other modes another one, up to `retries` times, when the server cannot be reached.
    pub async fn oneway<A>(
        &self,
        service_method: &str,
        args: &A,
        mut options: CallOptions,
    ) -> Result<()>
    where
        A: Encode + ?Sized,
    {
        let inner = &*self.inner;
        inner.check_open()?;
        let selector = inner.selector()?;
        inner.add_auth(&mut options);
        let hash_key = options.hash_key.take();
        let mut buf = BytesMut::new();
        let key_options = CallOptions {
            hash_key,
            serialize_type: options.serialize_type,
            ..CallOptions::default()
        };
        let key = inner.call_key(&*selector, args, &key_options, &mut buf)?;
        let retries = match inner.fail_mode {
            FailMode::Failfast => 0,
            _ => inner.options.retries,
        };
        let mut tried: Vec<Arc<Endpoint>> = Vec::new();
        let mut last_error = None;
        let mut same: Option<Arc<Endpoint>> = None;
        for attempt in 0..=retries {
            let permit = match &same {
                Some(ep) => ep.acquire(),
                None => inner.pick(&*selector, service_method, &key, &tried).ok(),
            };
            let Some(permit) = permit else { break };
            let ep = permit.endpoint.clone();
            let o = options_for(&mut options, attempt == retries);
            let r = match ep.client().await {
                Ok(c) => {
                    c.send_oneway(&inner.service_path, service_method, args, o)
                        .await
                }
                Err(e) => Err(e),
            };
            permit.finish(r.as_ref().err());
            match r {
                Ok(()) => return Ok(()),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => last_error = Some(e),
            }
            if inner.fail_mode == FailMode::Failtry {
                same = Some(ep);
            } else {
                tried.push(ep);
            }
        }
        Err(last_error.unwrap_or_else(|| inner.no_server(&inner.servers.load(), &tried)))
    }
}

/// A call sent by [`XClient::go`]. Await it for the reply; drop it to cancel.
#[must_use = "a call is cancelled when its handle is dropped"]
pub struct XCall<R> {
    pending: PendingCall<R>,
    permit: Option<Permit>,
}

impl<R> fmt::Debug for XCall<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XCall")
            .field("server", &self.permit.as_ref().map(|p| &*p.endpoint.key))
            .field("seq", &self.pending.seq())
            .finish()
    }
}

impl<R> XCall<R> {
    /// The server the call went to.
    pub fn server(&self) -> Option<&str> {
        self.permit.as_ref().map(|p| &*p.endpoint.key)
    }
}

impl<R: Decode> Future for XCall<R> {
    type Output = Result<Response<R>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match Pin::new(&mut this.pending).poll(cx) {
            Poll::Ready(r) => {
                if let Some(p) = this.permit.take() {
                    p.finish(r.as_ref().err());
                }
                Poll::Ready(r)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
