//! The registry discovery: lists and watches `{basePath}/{service}` and feeds the servers found to
//! a [`ServerList`].
//!
//! One [`RegistryDiscovery`] works with any [`DiscoveryStore`]. It behaves the same on every
//! engine:
//!
//! - **Full lists**: every change of the directory leads to a new listing, and the whole list is
//!   published (rpcx's `WatchService` semantics); unchanged lists wake nobody.
//! - **Validation**: an entry whose key is not a server address sextant can dial (a directory
//!   marker, `utp@...`, garbage) or whose value is not a metadata query string (not UTF-8, bad
//!   `%` escapes, not in the engine's value format) is skipped, with one warning per distinct
//!   entry.
//! - **Outages never empty the list**: when the registry cannot be reached, the last known servers
//!   stay in effect while the discovery reconnects with backoff
//!   ([`backoff_min`](DiscoveryOptions::backoff_min) doubling up to
//!   [`backoff_max`](DiscoveryOptions::backoff_max), with jitter).
//! - **Catching up**: after reconnecting, the discovery lists again before watching, so what
//!   changed meanwhile is picked up. Servers that vanished across the outage are kept for
//!   [`reconnect_grace`](DiscoveryOptions::reconnect_grace), so a registry that restarted empty
//!   (Redis without persistence, the embedded registry) can be refilled by the servers' refresh
//!   loops before clients forget them.
//! - **Other services**: [`ServiceDiscovery::clone_for`] (rpcx's `Clone(servicePath)`) starts a
//!   discovery of another service on the same store, base path and options.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sextant::discovery::{ServerList, Servers};
use sextant::{KVPair, ServiceDiscovery};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::error::{with_timeout, RegistryError, Result};
use crate::path::{check_server_address, check_service_path, normalize_base_path, service_dir};
use crate::query::QueryValues;
use crate::store::{ChangeWatch, DiscoveryStore, Listing};

/// Settings of a [`RegistryDiscovery`]. Every field states its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DiscoveryOptions {
    /// The longest one list or watch request may take to be set up. Default: 5 s.
    pub request_timeout: Duration,
    /// The first delay before reconnecting after a failure. Default: 200 ms.
    pub backoff_min: Duration,
    /// The longest delay between reconnection attempts. Default: 10 s.
    pub backoff_max: Duration,
    /// How long servers that vanished across an outage are kept after reconnecting (see the
    /// module docs). Default: 30 s. Zero trusts the first listing after an outage at once.
    pub reconnect_grace: Duration,
    /// What to do when the first listing fails: `false` makes
    /// [`RegistryDiscovery::start`] fail with [`RegistryError::Unreachable`]; `true` starts with
    /// an empty list and keeps trying in the background. Default: `false`.
    pub retry_on_start: bool,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            request_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            reconnect_grace: Duration::from_secs(30),
            retry_on_start: false,
        }
    }
}

impl DiscoveryOptions {
    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`backoff_min`](Self::backoff_min) and [`backoff_max`](Self::backoff_max).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// Sets [`reconnect_grace`](Self::reconnect_grace).
    pub fn reconnect_grace(mut self, grace: Duration) -> Self {
        self.reconnect_grace = grace;
        self
    }

    /// Sets [`retry_on_start`](Self::retry_on_start).
    pub fn retry_on_start(mut self, retry: bool) -> Self {
        self.retry_on_start = retry;
        self
    }
}

/// The servers of one service as a registry lists them, kept up to date by a background task
/// (rpcx's `EtcdV3Discovery`, `ZookeeperDiscovery`, ... in one generic type).
///
/// Dropping it or calling [`ServiceDiscovery::close`] stops the task; the last list stays.
/// [`ServiceDiscovery::clone_for`] starts the discovery of another service on the same store.
pub struct RegistryDiscovery {
    list: Arc<ServerList>,
    connected: Arc<AtomicBool>,
    cancel: CancellationToken,
    engine: &'static str,
    dir: String,
    clone_for: CloneFor,
}

/// Starts a discovery of another service on the same store, base path and options.
type CloneFor = Arc<
    dyn Fn(&str) -> BoxFuture<'static, sextant::Result<Arc<dyn ServiceDiscovery>>> + Send + Sync,
>;

/// [`RegistryDiscovery::start`] for other services with `store`, `base` and `options`.
fn clone_for<S: DiscoveryStore>(store: S, base: String, options: DiscoveryOptions) -> CloneFor {
    Arc::new(move |service_path: &str| {
        let (store, base, options) = (store.clone(), base.clone(), options.clone());
        let service_path = service_path.to_string();
        Box::pin(async move {
            let endpoints = store.endpoints();
            match RegistryDiscovery::start(store, &base, &service_path, options).await {
                Ok(d) => Ok(Arc::new(d) as Arc<dyn ServiceDiscovery>),
                Err(e) => Err(to_call_error(e, endpoints)),
            }
        })
    })
}

/// A registry error as a [`sextant::Error`]: a bad setting stays one; anything else is a
/// registry that could not be reached.
fn to_call_error(e: RegistryError, endpoints: String) -> sextant::Error {
    match e {
        RegistryError::Config(text) => sextant::Error::Config(text),
        RegistryError::Unreachable {
            engine,
            endpoints,
            reason,
        } => sextant::Error::Connect {
            address: format!("{engine} at {endpoints}"),
            source: Arc::new(io::Error::other(reason)),
        },
        other => sextant::Error::Connect {
            address: endpoints,
            source: Arc::new(io::Error::other(other.to_string())),
        },
    }
}

impl fmt::Debug for RegistryDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryDiscovery")
            .field("engine", &self.engine)
            .field("dir", &self.dir)
            .field("connected", &self.is_connected())
            .field("servers", &self.list.get())
            .finish()
    }
}

impl RegistryDiscovery {
    /// Lists `{basePath}/{servicePath}` once (bounded by the request timeout) and starts watching
    /// it in the background.
    ///
    /// `base_path` is normalized (`rpcx_test` means `/rpcx_test`, see [`path`](crate::path)).
    /// Fails with [`RegistryError::Unreachable`] if the first listing fails, unless
    /// [`retry_on_start`](DiscoveryOptions::retry_on_start) is set, and with
    /// [`RegistryError::Config`] for an invalid path. Must be called within a tokio runtime.
    ///
    /// The store is kept (a clone of it) for [`ServiceDiscovery::clone_for`]; every store of the
    /// registry crates is cheap to clone.
    pub async fn start<S: DiscoveryStore>(
        store: S,
        base_path: &str,
        service_path: &str,
        options: DiscoveryOptions,
    ) -> Result<RegistryDiscovery> {
        let base = normalize_base_path(base_path)?;
        check_service_path(service_path)?;
        let dir = service_dir(&base, service_path);
        let engine = store.engine();
        let clone_for = clone_for(store.clone(), base, options.clone());
        let mut task = WatchTask {
            store,
            dir: dir.clone(),
            list: Arc::new(ServerList::default()),
            connected: Arc::new(AtomicBool::new(false)),
            warned: HashSet::new(),
            published: BTreeMap::new(),
            grace_until: None,
            outage: false,
            backoff: Backoff::new(
                options.backoff_min.max(Duration::from_millis(1)),
                options.backoff_max,
            ),
            options,
        };
        let first = task.list_once().await;
        let listing = match first {
            Ok(l) => {
                task.publish(&l);
                Some(l)
            }
            Err(e) if !task.options.retry_on_start => {
                return Err(match e {
                    RegistryError::Unreachable { .. } => e,
                    other => RegistryError::unreachable(engine, task.store.endpoints(), other),
                });
            }
            Err(e) => {
                tracing::warn!(
                    engine,
                    dir = %dir,
                    error = %e,
                    "registry unreachable at start; starting with no servers and retrying"
                );
                task.outage = true;
                None
            }
        };
        let cancel = CancellationToken::new();
        let d = RegistryDiscovery {
            list: task.list.clone(),
            connected: task.connected.clone(),
            cancel: cancel.clone(),
            engine,
            dir,
            clone_for,
        };
        tokio::spawn(task.run(listing, cancel));
        Ok(d)
    }

    /// The directory watched, `{basePath}/{servicePath}`.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The engine's name.
    pub fn engine(&self) -> &'static str {
        self.engine
    }

    /// Whether the last request to the registry succeeded. While `false`, the last known servers
    /// stay in effect.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

impl ServiceDiscovery for RegistryDiscovery {
    fn get_services(&self) -> Servers {
        self.list.get()
    }

    fn watch_services(&self) -> watch::Receiver<Servers> {
        self.list.subscribe()
    }

    fn close(&self) {
        self.cancel.cancel();
    }

    /// Starts the discovery of `service_path` on the same store, base path and options
    /// (rpcx's `Clone(servicePath)`): it lists `{basePath}/{service_path}` once and watches it
    /// in the background, independently of this one. Fails as [`RegistryDiscovery::start`]
    /// does: an invalid service path is [`sextant::Error::Config`], a registry that cannot be
    /// reached (without `retry_on_start`) [`sextant::Error::Connect`].
    fn clone_for(
        &self,
        service_path: &str,
    ) -> BoxFuture<'static, sextant::Result<Arc<dyn ServiceDiscovery>>> {
        (self.clone_for)(service_path)
    }
}

impl Drop for RegistryDiscovery {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct WatchTask<S> {
    store: S,
    dir: String,
    options: DiscoveryOptions,
    list: Arc<ServerList>,
    connected: Arc<AtomicBool>,
    /// Entries already warned about (key and value), so a bad entry is reported once.
    warned: HashSet<(String, String)>,
    /// The servers last published, by address.
    published: BTreeMap<String, KVPair>,
    /// Until when servers missing after an outage are kept.
    grace_until: Option<Instant>,
    /// Whether a request failed since the last successful listing.
    outage: bool,
    backoff: Backoff,
}

impl<S: DiscoveryStore> WatchTask<S> {
    async fn list_once(&self) -> Result<Listing> {
        let dir = self.dir.clone();
        with_timeout(
            self.store.engine(),
            || format!("list {dir}"),
            self.options.request_timeout,
            self.store.list(&self.dir),
        )
        .await
    }

    async fn run(mut self, mut listing: Option<Listing>, cancel: CancellationToken) {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = self.watch_loop(&mut listing) => {}
        }
        tracing::debug!(engine = self.store.engine(), dir = %self.dir, "discovery stopped");
    }

    /// Never returns: list, watch, list on every change; on any failure back off and start over.
    async fn watch_loop(&mut self, listing: &mut Option<Listing>) {
        loop {
            let current = match listing.take() {
                Some(l) => l,
                None => match self.list_once().await {
                    Ok(l) => {
                        self.publish(&l);
                        l
                    }
                    Err(e) => {
                        self.failed(&e).await;
                        continue;
                    }
                },
            };
            let dir = self.dir.clone();
            let watch = with_timeout(
                self.store.engine(),
                || format!("watch {dir}"),
                self.options.request_timeout,
                self.store.watch(&self.dir, &current),
            )
            .await;
            let mut watch = match watch {
                Ok(w) => w,
                Err(e) => {
                    self.failed(&e).await;
                    continue;
                }
            };
            if !S::WATCH_RESUMES_FROM_LISTING {
                // The watch may have started after a change the listing missed: list once more.
                match self.list_once().await {
                    Ok(l) => self.publish(&l),
                    Err(e) => {
                        self.failed(&e).await;
                        continue;
                    }
                }
            }
            if let Err(e) = self.follow(&mut watch).await {
                self.failed(&e).await;
            }
        }
    }

    /// Lists again on every change until the watch or a listing fails.
    async fn follow(&mut self, watch: &mut S::Watch) -> Result<()> {
        loop {
            let grace_end = self.grace_until;
            tokio::select! {
                r = watch.changed() => r?,
                // The grace period after an outage ended: list to drop what is still missing.
                _ = async {
                    match grace_end {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            let l = self.list_once().await?;
            self.publish(&l);
        }
    }

    async fn failed(&mut self, e: &RegistryError) {
        if self.connected.swap(false, Ordering::Relaxed) || !self.outage {
            tracing::warn!(
                engine = self.store.engine(),
                dir = %self.dir,
                error = %e,
                "lost the registry; keeping the last known servers and reconnecting"
            );
        } else {
            tracing::debug!(engine = self.store.engine(), error = %e, "registry still unreachable");
        }
        self.outage = true;
        tokio::time::sleep(self.backoff.next_delay()).await;
    }

    /// Validates a listing and publishes it, keeping servers that vanished across an outage for
    /// the grace period.
    fn publish(&mut self, listing: &Listing) {
        self.connected.store(true, Ordering::Relaxed);
        self.backoff.reset();
        let now = Instant::now();
        if self.outage {
            self.outage = false;
            if !self.options.reconnect_grace.is_zero() {
                self.grace_until = Some(now + self.options.reconnect_grace);
            }
            tracing::info!(engine = self.store.engine(), dir = %self.dir, "registry reachable again");
        }
        let mut found: BTreeMap<String, KVPair> = BTreeMap::new();
        for e in &listing.entries {
            if e.child.is_empty() {
                continue; // the directory's own key (rpcx writes one on etcd)
            }
            let value = match &e.value {
                Ok(v) => v,
                Err(why) => {
                    self.warn_once(&e.child, why, "unreadable value");
                    continue;
                }
            };
            if let Err(why) = check_server_address(&e.child) {
                self.warn_once(&e.child, &why, "key is not a server address");
                continue;
            }
            if let Err(why) = QueryValues::parse(value) {
                self.warn_once(
                    &e.child,
                    &why.to_string(),
                    "value is not a metadata query string",
                );
                continue;
            }
            found.insert(e.child.clone(), KVPair::new(e.child.clone(), value.clone()));
        }
        match self.grace_until {
            Some(t) if now < t => {
                for (k, v) in &self.published {
                    if !found.contains_key(k) {
                        found.insert(k.clone(), v.clone());
                    }
                }
            }
            Some(_) => self.grace_until = None,
            None => {}
        }
        let servers: Vec<KVPair> = found.values().cloned().collect();
        if self.list.set(servers) {
            tracing::debug!(
                engine = self.store.engine(),
                dir = %self.dir,
                servers = found.len(),
                "server list changed"
            );
        }
        self.published = found;
    }

    fn warn_once(&mut self, child: &str, why: &str, what: &str) {
        // Bounded memory: a registry full of ever-changing garbage warns again after a while.
        if self.warned.len() >= 10_000 {
            self.warned.clear();
        }
        if self.warned.insert((child.to_string(), why.to_string())) {
            tracing::warn!(
                engine = self.store.engine(),
                dir = %self.dir,
                entry = child,
                reason = why,
                "skipping registry entry: {what}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmbeddedRegistry, EmbeddedRegistryOptions, EmbeddedStore, RegistryStore};

    async fn wait_for(what: &str, d: &dyn ServiceDiscovery, len: usize) {
        for _ in 0..200 {
            if d.get_services().len() == len {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "{what}: expected {len} servers, have {:?}",
            d.get_services()
        );
    }

    /// `clone_for` watches the other service's directory on the same registry, on its own.
    #[tokio::test]
    async fn clone_for_watches_another_service_on_the_same_registry() {
        let registry = EmbeddedRegistry::bind("127.0.0.1:0", EmbeddedRegistryOptions::default())
            .await
            .unwrap();
        let store = EmbeddedStore::new(&registry.url())
            .unwrap()
            .with_long_poll(Duration::from_secs(2));
        let ttl = Duration::from_secs(60);
        RegistryStore::put(&store, "/base/Svc/tcp@127.0.0.1:7", "", ttl)
            .await
            .unwrap();
        for port in [8, 9] {
            let key = format!("/base/Other/tcp@127.0.0.1:{port}");
            RegistryStore::put(&store, &key, "weight=2", ttl)
                .await
                .unwrap();
        }
        let d = RegistryDiscovery::start(store.clone(), "base", "Svc", DiscoveryOptions::default())
            .await
            .unwrap();
        assert_eq!(d.get_services().len(), 1);

        let other = d.clone_for("Other").await.unwrap();
        let keys: Vec<String> = other.get_services().iter().map(|p| p.key.clone()).collect();
        assert_eq!(keys, ["tcp@127.0.0.1:8", "tcp@127.0.0.1:9"]);
        assert_eq!(other.get_services()[0].value, "weight=2");

        // The clone watches: a change of its directory shows up there, not in the original.
        RegistryStore::delete(&store, "/base/Other/tcp@127.0.0.1:9")
            .await
            .unwrap();
        wait_for("the clone sees the removal", &*other, 1).await;
        assert_eq!(d.get_services().len(), 1);

        // Independent: closing the original leaves the clone watching.
        d.close();
        drop(d);
        RegistryStore::put(&store, "/base/Other/tcp@127.0.0.1:10", "", ttl)
            .await
            .unwrap();
        wait_for("the clone still watches", &*other, 2).await;
        other.close();

        // What start refuses, clone_for refuses too, naming the path.
        let d = RegistryDiscovery::start(store.clone(), "base", "Svc", DiscoveryOptions::default())
            .await
            .unwrap();
        let e = d.clone_for("/Other").await.unwrap_err();
        assert!(matches!(e, sextant::Error::Config(_)), "{e}");
        assert!(e.to_string().contains("\"/Other\""), "{e}");
        d.close();
        registry.shutdown().await;

        // A registry that is gone: a connect error.
        let e = d.clone_for("Other").await.unwrap_err();
        assert!(matches!(e, sextant::Error::Connect { .. }), "{e}");
        assert!(e.to_string().contains("embedded"), "{e}");
    }
}
