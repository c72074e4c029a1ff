//! The registry plugin: publishes a server's services in a registry and keeps them there.
//!
//! One [`RegistryPlugin`] works with any [`RegistryStore`]. What it does, in rpcx's terms:
//!
//! - **Register** (`on_register`): once the server listens, the service is written at
//!   `{basePath}/{service}/{network}@{host}:{port}` with the service's metadata string as value.
//!   Nothing is published before the first `on_listen`, so clients never see an address that
//!   refuses connections.
//! - **Refresh**: every [`update_interval`](RegistryOptions::update_interval) the entry's TTL is
//!   renewed and the rate figures (`calls`, `connections`, `tps`; see [`rates`](crate::rates)) are
//!   set in its value. The refresh reads the current value first and keeps every other key, so a
//!   `state=inactive` written by an operator stays. The TTL is twice the update interval, as in
//!   rpcx, unless set.
//! - **Re-create**: an entry found missing at a refresh (it expired during a registry outage, the
//!   registry restarted empty, someone deleted it) is written again with the registered metadata.
//! - **Retry**: a failed refresh is retried with backoff (from 100 ms up to the update interval),
//!   not only at the next interval, so entries come back soon after a registry does.
//! - **Unregister** (`on_unregister`): the service's entries are removed.
//! - **Shutdown** (`on_shutdown`, awaited by [`Server::shutdown`](sextant::Server::shutdown) before
//!   connections are drained): every entry is removed and the lease or session released.
//!
//! Registry I/O runs on one background task, in the order the hooks were called; the hooks only
//! queue work, so a slow or unreachable registry never blocks the server. Every request is bounded
//! by [`request_timeout`](RegistryOptions::request_timeout).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use sextant::transport::Network;
use sextant::{Address, CallHooks, Server, ServerPlugin};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::error::{with_timeout, RegistryError, Result};
use crate::path::{check_server_address, check_service_path, normalize_base_path, server_key};
use crate::rates::{merge_figures, RateMeter};
use crate::store::RegistryStore;
use sextant::util::lock;

/// Settings of a [`RegistryPlugin`]. Every field states its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegistryOptions {
    /// The prefix of every key (rpcx's `BasePath`), normalized as described in
    /// [`path`](crate::path): `rpcx_test` means `/rpcx_test`. Default: `/rpcx_test`, as in
    /// rpcx-examples.
    pub base_path: String,
    /// The address clients should dial, `network@host:port` (rpcx's `ServiceAddress`), e.g.
    /// `tcp@10.0.0.5:8972`. Default: `None`: each address the server listens on, as bound. A
    /// listener bound to an unspecified address (`0.0.0.0`, `[::]`) cannot be dialled as such and
    /// is then not published (an error is logged): set this instead.
    pub service_address: Option<String>,
    /// How often entries are refreshed (rpcx's `UpdateInterval`). Default: 10 s.
    pub update_interval: Duration,
    /// How long an entry outlives its last refresh. Default: `None`: twice the update interval,
    /// as rpcx. Must be longer than the update interval.
    pub ttl: Option<Duration>,
    /// Whether refreshes set the rate figures `calls`, `connections` and `tps` in the value.
    /// Default: `true`.
    pub rates: bool,
    /// The longest one registry request may take. Default: 5 s.
    pub request_timeout: Duration,
    /// What to do when the registry cannot be reached at start: `false` makes
    /// [`RegistryPlugin::start`] fail with [`RegistryError::Unreachable`]; `true` starts anyway
    /// and keeps trying in the background (entries appear once the registry answers).
    /// Default: `false`.
    pub retry_on_start: bool,
    /// How long [`Server::shutdown`] waits for the entries to be removed. Default: 5 s.
    pub shutdown_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            base_path: "/rpcx_test".into(),
            service_address: None,
            update_interval: Duration::from_secs(10),
            ttl: None,
            rates: true,
            request_timeout: Duration::from_secs(5),
            retry_on_start: false,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl RegistryOptions {
    /// Sets [`base_path`](Self::base_path).
    pub fn base_path(mut self, base_path: impl Into<String>) -> Self {
        self.base_path = base_path.into();
        self
    }

    /// Sets [`service_address`](Self::service_address).
    pub fn service_address(mut self, address: impl Into<String>) -> Self {
        self.service_address = Some(address.into());
        self
    }

    /// Sets [`update_interval`](Self::update_interval).
    pub fn update_interval(mut self, interval: Duration) -> Self {
        self.update_interval = interval;
        self
    }

    /// Sets [`ttl`](Self::ttl).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets [`rates`](Self::rates).
    pub fn rates(mut self, rates: bool) -> Self {
        self.rates = rates;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`retry_on_start`](Self::retry_on_start).
    pub fn retry_on_start(mut self, retry: bool) -> Self {
        self.retry_on_start = retry;
        self
    }

    /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The TTL in force: [`ttl`](Self::ttl), or twice the update interval.
    pub fn effective_ttl(&self) -> Duration {
        self.ttl.unwrap_or(self.update_interval * 2)
    }

    /// Checks the options and normalizes the base path.
    fn validated(mut self) -> Result<RegistryOptions> {
        self.base_path = normalize_base_path(&self.base_path)?;
        if self.update_interval.is_zero() {
            return Err(RegistryError::Config(
                "update_interval must be longer than zero (rpcx uses one minute)".into(),
            ));
        }
        if self.effective_ttl() <= self.update_interval {
            return Err(RegistryError::Config(format!(
                "ttl ({:?}) must be longer than update_interval ({:?}), or entries expire \
                 between refreshes; leave it unset for twice the interval",
                self.effective_ttl(),
                self.update_interval
            )));
        }
        if self.request_timeout.is_zero() {
            return Err(RegistryError::Config(
                "request_timeout must be longer than zero".into(),
            ));
        }
        if let Some(a) = &self.service_address {
            check_server_address(a).map_err(|why| {
                RegistryError::Config(format!("service_address {a:?} is not usable: {why}"))
            })?;
        }
        Ok(self)
    }
}

enum Command {
    Listen { address: Address, server: Server },
    Register { service: String, metadata: String },
    Unregister { service: String },
    Stop { done: oneshot::Sender<()> },
}

struct Shared {
    engine: &'static str,
    endpoints: String,
    base_path: String,
    shutdown_timeout: Duration,
    tx: mpsc::UnboundedSender<Command>,
    published: Mutex<BTreeSet<String>>,
    abort: CancellationToken,
}

/// A server plugin that publishes the server's services in a registry (rpcx's
/// `EtcdV3RegisterPlugin`, `ZooKeeperRegisterPlugin`, ... in one generic type).
///
/// Start it with [`RegistryPlugin::start`] and add it to the server before or after registering
/// services and listening ([`Server::add_plugin`] replays both). It is cheap to clone: clones
/// share the same background task, so keep one to inspect or stop it.
///
/// ```no_run
/// # use sextant_registry::{EmbeddedStore, RegistryOptions, RegistryPlugin};
/// # async fn run(server: sextant::Server) -> Result<(), Box<dyn std::error::Error>> {
/// let store = EmbeddedStore::new("http://127.0.0.1:9980")?;
/// let plugin = RegistryPlugin::start(store, RegistryOptions::default().base_path("/rpcx_test")).await?;
/// server.add_plugin(plugin.clone());
/// # Ok(()) }
/// ```
pub struct RegistryPlugin<S: RegistryStore> {
    shared: Arc<Shared>,
    store: Arc<S>,
}

impl<S: RegistryStore> Clone for RegistryPlugin<S> {
    fn clone(&self) -> Self {
        RegistryPlugin {
            shared: self.shared.clone(),
            store: self.store.clone(),
        }
    }
}

impl<S: RegistryStore> fmt::Debug for RegistryPlugin<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryPlugin")
            .field("engine", &self.shared.engine)
            .field("endpoints", &self.shared.endpoints)
            .field("base_path", &self.shared.base_path)
            .field("published", &self.published())
            .finish()
    }
}

impl<S: RegistryStore> RegistryPlugin<S> {
    /// Connects to the registry (bounded by the request timeout) and starts the plugin's
    /// background task (rpcx's `Start`).
    ///
    /// Fails with [`RegistryError::Unreachable`] if the registry does not answer, unless
    /// [`retry_on_start`](RegistryOptions::retry_on_start) is set, and with
    /// [`RegistryError::Config`] if an option is invalid. Must be called within a tokio runtime.
    pub async fn start(store: S, options: RegistryOptions) -> Result<RegistryPlugin<S>> {
        let options = options.validated()?;
        let engine = store.engine();
        let endpoints = store.endpoints();
        let connected = with_timeout(
            engine,
            || "connect".into(),
            options.request_timeout,
            store.connect(options.effective_ttl()),
        )
        .await;
        if let Err(e) = connected {
            if !options.retry_on_start {
                return Err(match e {
                    RegistryError::Unreachable { .. } | RegistryError::Config(_) => e,
                    other => RegistryError::unreachable(engine, endpoints.clone(), other),
                });
            }
            tracing::warn!(
                engine,
                endpoints = %endpoints,
                error = %e,
                "registry unreachable at start; will keep trying in the background"
            );
        }
        let store = Arc::new(store);
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            engine,
            endpoints,
            base_path: options.base_path.clone(),
            shutdown_timeout: options.shutdown_timeout,
            tx,
            published: Mutex::new(BTreeSet::new()),
            abort: CancellationToken::new(),
        });
        let worker = Worker {
            store: store.clone(),
            shared: shared.clone(),
            ttl: options.effective_ttl(),
            backoff: Backoff::new(Duration::from_millis(100), options.update_interval),
            options,
            services: BTreeMap::new(),
            addresses: Vec::new(),
            server: None,
            meter: None,
            to_delete: BTreeSet::new(),
            healthy: true,
        };
        tokio::spawn(worker.run(rx));
        Ok(RegistryPlugin { shared, store })
    }

    /// The engine's name (`etcd`, ...).
    pub fn engine(&self) -> &'static str {
        self.shared.engine
    }

    /// The normalized base path keys are written under.
    pub fn base_path(&self) -> &str {
        &self.shared.base_path
    }

    /// The store this plugin writes to.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The keys this plugin has written and not removed (as far as it knows: an entry that expired
    /// during an outage is listed until the next refresh re-creates it).
    pub fn published(&self) -> Vec<String> {
        lock(&self.shared.published).iter().cloned().collect()
    }

    /// Removes every entry and stops refreshing (rpcx's `Stop`); waits at most the shutdown
    /// timeout. Idempotent. [`Server::shutdown`] calls it through `on_shutdown`.
    pub async fn stop(&self) {
        self.shared.stop().await
    }

    /// Stops refreshing at once without removing anything, as if the process had died: the
    /// entries expire after their TTL. For failover drills and tests; a lease, session or
    /// connection the store holds stays open until the store is dropped, so with engines whose
    /// TTL is a session (ZooKeeper) the entries live on until then.
    pub fn abort(&self) {
        self.shared.abort.cancel();
    }
}

impl Shared {
    async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Stop { done }).is_err() {
            return; // already stopped
        }
        if tokio::time::timeout(self.shutdown_timeout, wait)
            .await
            .is_err()
        {
            tracing::warn!(
                engine = self.engine,
                timeout = ?self.shutdown_timeout,
                "registry entries not removed within the shutdown timeout; they expire with their TTL"
            );
            self.abort.cancel();
        }
    }

    fn send(&self, cmd: Command) {
        // Fails only once the plugin stopped; then there is nothing left to do.
        let _ = self.tx.send(cmd);
    }
}

impl<S: RegistryStore> ServerPlugin for RegistryPlugin<S> {
    fn call_hooks(&self) -> CallHooks {
        CallHooks::NONE
    }

    fn on_listen(&self, server: &Server, address: &Address) {
        self.shared.send(Command::Listen {
            address: address.clone(),
            server: server.clone(),
        });
    }

    fn on_register(&self, _server: &Server, service_path: &str, metadata: &str) {
        if let Err(e) = check_service_path(service_path) {
            tracing::error!(engine = self.shared.engine, error = %e, "service not published");
            return;
        }
        self.shared.send(Command::Register {
            service: service_path.to_string(),
            metadata: metadata.to_string(),
        });
    }

    fn on_unregister(&self, _server: &Server, service_path: &str) {
        self.shared.send(Command::Unregister {
            service: service_path.to_string(),
        });
    }

    fn on_shutdown(&self, _server: &Server) -> BoxFuture<'static, ()> {
        let shared = self.shared.clone();
        Box::pin(async move { shared.stop().await })
    }
}

struct Worker<S> {
    store: Arc<S>,
    shared: Arc<Shared>,
    options: RegistryOptions,
    ttl: Duration,
    backoff: Backoff,
    /// Registered services and their metadata strings.
    services: BTreeMap<String, String>,
    /// The addresses published for every service.
    addresses: Vec<String>,
    server: Option<Server>,
    meter: Option<RateMeter>,
    /// Keys whose removal failed; retried at every refresh.
    to_delete: BTreeSet<String>,
    /// Whether the last registry request succeeded (to log transitions once).
    healthy: bool,
}

impl<S: RegistryStore> Worker<S> {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let interval = self.options.update_interval;
        let mut next_refresh = Instant::now() + interval;
        loop {
            tokio::select! {
                biased;
                _ = self.shared.abort.cancelled() => {
                    tracing::debug!(engine = self.shared.engine, "registry plugin aborted");
                    return;
                }
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return };
                    let ok = match cmd {
                        Command::Stop { done } => {
                            self.remove_all().await;
                            let _ = done.send(());
                            return;
                        }
                        Command::Listen { address, server } => self.listen(address, server).await,
                        Command::Register { service, metadata } => {
                            self.register(service, metadata).await
                        }
                        Command::Unregister { service } => self.unregister(&service).await,
                    };
                    if !ok {
                        next_refresh = next_refresh.min(Instant::now() + self.backoff.next_delay());
                    }
                }
                _ = tokio::time::sleep_until(next_refresh) => {
                    next_refresh = if self.refresh().await {
                        self.backoff.reset();
                        Instant::now() + interval
                    } else {
                        Instant::now() + self.backoff.next_delay()
                    };
                }
            }
        }
    }

    fn key(&self, service: &str, address: &str) -> String {
        server_key(&self.options.base_path, service, address)
    }

    fn mark(&self, key: &str, present: bool) {
        let mut p = lock(&self.shared.published);
        if present {
            p.insert(key.to_string());
        } else {
            p.remove(key);
        }
    }

    fn is_published(&self, key: &str) -> bool {
        lock(&self.shared.published).contains(key)
    }

    /// Records the outcome of a registry request, logging when the registry goes away or comes
    /// back. Returns whether it succeeded.
    fn outcome(&mut self, what: &str, r: Result<()>) -> bool {
        match r {
            Ok(()) => {
                if !self.healthy {
                    tracing::info!(
                        engine = self.shared.engine,
                        endpoints = %self.shared.endpoints,
                        "registry reachable again"
                    );
                    self.healthy = true;
                }
                true
            }
            Err(e) => {
                if self.healthy {
                    tracing::warn!(
                        engine = self.shared.engine,
                        endpoints = %self.shared.endpoints,
                        error = %e,
                        "{what} failed; retrying with backoff"
                    );
                    self.healthy = false;
                } else {
                    tracing::debug!(engine = self.shared.engine, error = %e, "{what} failed again");
                }
                false
            }
        }
    }

    async fn put(&self, key: &str, value: &str) -> Result<()> {
        with_timeout(
            self.shared.engine,
            || format!("put {key}"),
            self.options.request_timeout,
            self.store.put(key, value, self.ttl),
        )
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        with_timeout(
            self.shared.engine,
            || format!("get {key}"),
            self.options.request_timeout,
            self.store.get(key),
        )
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        with_timeout(
            self.shared.engine,
            || format!("delete {key}"),
            self.options.request_timeout,
            self.store.delete(key),
        )
        .await
    }

    async fn listen(&mut self, address: Address, server: Server) -> bool {
        if self.server.is_none() {
            self.meter = Some(RateMeter::new(server.stats(), std::time::Instant::now()));
            self.server = Some(server);
        }
        let published = match &self.options.service_address {
            Some(a) if self.addresses.is_empty() => a.clone(),
            Some(_) => return true, // the configured address is already published
            None => {
                if address.network().has_host_port() {
                    let host = address
                        .addr()
                        .rsplit_once(':')
                        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'));
                    if host
                        .and_then(|h| h.parse::<IpAddr>().ok())
                        .is_some_and(|ip| ip.is_unspecified())
                    {
                        tracing::error!(
                            engine = self.shared.engine,
                            %address,
                            "not publishing a listener bound to an unspecified address: set \
                             RegistryOptions::service_address to the address clients should dial"
                        );
                        return true;
                    }
                }
                if address.network() == Network::Reuseport {
                    // Clients dial it as TCP: Go's client has no `reuseport` network.
                    address.with_network(Network::Tcp).to_string()
                } else {
                    address.to_string()
                }
            }
        };
        if self.addresses.contains(&published) {
            return true;
        }
        self.addresses.push(published.clone());
        let mut ok = true;
        let services: Vec<(String, String)> = self
            .services
            .iter()
            .map(|(s, m)| (s.clone(), m.clone()))
            .collect();
        for (service, metadata) in services {
            let key = self.key(&service, &published);
            ok &= self.publish(&key, &metadata).await;
        }
        ok
    }

    async fn register(&mut self, service: String, metadata: String) -> bool {
        self.services.insert(service.clone(), metadata.clone());
        let mut ok = true;
        for address in self.addresses.clone() {
            let key = self.key(&service, &address);
            self.to_delete.remove(&key);
            ok &= self.publish(&key, &metadata).await;
        }
        ok
    }

    async fn publish(&mut self, key: &str, value: &str) -> bool {
        let r = self.put(key, value).await;
        let ok = self.outcome("publishing", r);
        if ok {
            tracing::info!(engine = self.shared.engine, key, "published");
            self.mark(key, true);
        }
        ok
    }

    async fn unregister(&mut self, service: &str) -> bool {
        if self.services.remove(service).is_none() {
            return true;
        }
        let mut ok = true;
        for address in self.addresses.clone() {
            let key = self.key(service, &address);
            let r = self.delete(&key).await;
            if self.outcome("removing an entry", r) {
                tracing::info!(engine = self.shared.engine, key, "removed");
            } else {
                self.to_delete.insert(key.clone());
                ok = false;
            }
            self.mark(&key, false);
        }
        ok
    }

    /// One refresh pass: keep-alive, then every entry read, re-created or updated with the rate
    /// figures, then pending removals. Returns whether everything succeeded.
    async fn refresh(&mut self) -> bool {
        if !self.to_delete.is_empty() {
            for key in std::mem::take(&mut self.to_delete) {
                let r = self.delete(&key).await;
                if !self.outcome("removing an entry", r) {
                    self.to_delete.insert(key);
                }
            }
            if !self.to_delete.is_empty() {
                return false;
            }
        }
        if self.services.is_empty() || self.addresses.is_empty() {
            return true;
        }
        let r = with_timeout(
            self.shared.engine,
            || "keep-alive".into(),
            self.options.request_timeout,
            self.store.keep_alive(self.ttl),
        )
        .await;
        if !self.outcome("refreshing the lease", r) {
            return false;
        }
        let figures: Vec<(&'static str, String)> = match (&self.server, &mut self.meter) {
            (Some(server), Some(meter)) if self.options.rates => meter
                .figures(server.stats(), std::time::Instant::now())
                .to_vec(),
            _ => Vec::new(),
        };
        let mut entries: Vec<(String, String)> = Vec::new();
        for (service, metadata) in &self.services {
            for a in &self.addresses {
                entries.push((self.key(service, a), metadata.clone()));
            }
        }
        for (key, metadata) in entries {
            let current = match self.get(&key).await {
                Ok(v) => v,
                Err(e) => {
                    self.outcome("refreshing", Err(e));
                    return false;
                }
            };
            let value = match current {
                Some(v) => merge_figures(&v, &figures).unwrap_or_else(|| {
                    tracing::warn!(
                        engine = self.shared.engine,
                        key,
                        value = v,
                        "entry holds a value that is not a query string; rewriting it"
                    );
                    merge_figures(&metadata, &figures).unwrap_or_else(|| metadata.clone())
                }),
                None => {
                    if self.is_published(&key) {
                        tracing::warn!(
                            engine = self.shared.engine,
                            key,
                            "entry vanished from the registry (expired or deleted); re-creating it"
                        );
                    }
                    merge_figures(&metadata, &figures).unwrap_or_else(|| metadata.clone())
                }
            };
            let r = self.put(&key, &value).await;
            if !self.outcome("refreshing", r) {
                return false;
            }
            self.mark(&key, true);
        }
        true
    }

    /// Removes every entry (shutdown), then releases the store's lease or session.
    async fn remove_all(&mut self) {
        let mut keys: BTreeSet<String> = std::mem::take(&mut self.to_delete);
        for service in self.services.keys() {
            for a in &self.addresses {
                keys.insert(self.key(service, a));
            }
        }
        for key in keys {
            match self.delete(&key).await {
                Ok(()) => tracing::info!(engine = self.shared.engine, key, "removed at shutdown"),
                Err(e) => tracing::warn!(
                    engine = self.shared.engine,
                    key,
                    error = %e,
                    "could not remove entry at shutdown; it expires with its TTL"
                ),
            }
            self.mark(&key, false);
        }
        let _ = tokio::time::timeout(self.options.request_timeout, self.store.close()).await;
        self.services.clear();
        self.server = None;
    }
}
