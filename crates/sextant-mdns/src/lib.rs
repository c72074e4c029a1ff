//! # sextant-mdns
//!
//! An mDNS/DNS-SD registry for [sextant] on a LAN, with no registry server: every server
//! answers for itself (over the `mdns-sd` crate), in the spirit of rpcx's `MDNSRegisterPlugin` and
//! `MDNSDiscovery`.
//!
//! ## Layout
//!
//! - Service type `_rpcxservices._tcp.local.`; one instance per server address, named after it
//!   (`tcp@10.0.0.5:8972`), with the address's host and port in its SRV and A records.
//! - TXT record: `addr=<network@host:port>` and one property per service, keyed by the service's
//!   directory: `/rpcx_test/Arith=<metadata query string>` (with the rate figures after each
//!   refresh). A discovery of `/rpcx_test/Arith` lists every instance carrying that key.
//!
//! rpcx's Go plugin cannot be shared with: it registers the type `_rpcxservices.local.`, without
//! the `_tcp` label that DNS-SD requires (RFC 6763 §7) and `mdns-sd` enforces, and packs all
//! services into one TXT string (URL-escaped JSON), which DNS limits to 255 bytes.
//!
//! ## Liveness instead of a TTL
//!
//! There is no registry to hold a TTL. A server's refreshes re-announce its instance (new rates);
//! a graceful shutdown (or unregistering the last service) sends goodbye packets, so discoveries
//! drop it within half a second (a reported removal waits that long, so that re-announcing an
//! instance with one service fewer never makes its other services vanish); a server that dies silently stops answering, and discoveries, which re-verify
//! every known instance every [`MdnsOptions::verify_interval`] (RFC 6762 §10.4: a query that gets
//! no answer within [`MdnsOptions::verify_timeout`] flushes the instance), drop it then. A store
//! dropped without [`close`](sextant_registry::RegistryStore::close) (the process is going away)
//! leaves the network silently, as a crashed process would.
//!
//! ## Scope
//!
//! mDNS works within one multicast domain (a LAN segment), needs multicast to be allowed (many
//! cloud networks and container setups block it), and trusts every host on the segment. Use it
//! for labs, small offices, devices; use etcd or ZooKeeper beyond that.
//!
//! ```no_run
//! use sextant_mdns::{MdnsDiscovery, MdnsOptions, MdnsRegisterPlugin, MdnsStore};
//! use sextant_registry::{DiscoveryOptions, RegistryOptions};
//! # async fn run(server: sextant::Server) -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = MdnsRegisterPlugin::start(MdnsStore::new(MdnsOptions::default()), RegistryOptions::default()).await?;
//! server.add_plugin(plugin);
//! let discovery = MdnsDiscovery::start(MdnsStore::new(MdnsOptions::default()), "/rpcx_test", "Arith", DiscoveryOptions::default()).await?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo, TxtProperty};
use sextant::util::lock;
use sextant_registry::{
    ChangeWatch, DiscoveryStore, ListedEntry, Listing, RegistryDiscovery, RegistryError,
    RegistryPlugin, RegistryStore, Result,
};
use tokio::sync::{watch, OnceCell};
use tokio::task::JoinHandle;

const ENGINE: &str = "mdns";

/// The DNS-SD service type every sextant server is announced under.
pub const SERVICE_TYPE: &str = "_rpcxservices._tcp.local.";

/// The TXT key holding the server address.
const ADDR_KEY: &str = "addr";

/// rpcx's `MDNSRegisterPlugin`: the registry plugin on mDNS.
pub type MdnsRegisterPlugin = RegistryPlugin<MdnsStore>;

/// rpcx's `MDNSDiscovery`: the discovery on mDNS.
pub type MdnsDiscovery = RegistryDiscovery;

/// Settings of an [`MdnsStore`]. Every field states its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MdnsOptions {
    /// The UDP port (5353 is mDNS's; servers and clients must agree). Default: 5353.
    pub port: u16,
    /// Use the loopback interface only (one machine; tests). Default: `false` (every interface,
    /// as `mdns-sd` does).
    pub loopback_only: bool,
    /// Discoveries: how often every known server is verified to still answer. Default: 10 s.
    pub verify_interval: Duration,
    /// Discoveries: how long a verified server has to answer before it is dropped. Default: 2 s.
    pub verify_timeout: Duration,
    /// Discoveries: how long the first listing waits for servers to answer. Default: 1 s.
    pub browse_wait: Duration,
}

impl Default for MdnsOptions {
    fn default() -> Self {
        MdnsOptions {
            port: 5353,
            loopback_only: false,
            verify_interval: Duration::from_secs(10),
            verify_timeout: Duration::from_secs(2),
            browse_wait: Duration::from_secs(1),
        }
    }
}

impl MdnsOptions {
    /// Sets [`port`](Self::port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets [`loopback_only`](Self::loopback_only).
    pub fn loopback_only(mut self, only: bool) -> Self {
        self.loopback_only = only;
        self
    }

    /// Sets [`verify_interval`](Self::verify_interval) and
    /// [`verify_timeout`](Self::verify_timeout).
    pub fn verify(mut self, interval: Duration, timeout: Duration) -> Self {
        self.verify_interval = interval.max(Duration::from_millis(100));
        self.verify_timeout = timeout.max(Duration::from_millis(100));
        self
    }

    /// Sets [`browse_wait`](Self::browse_wait).
    pub fn browse_wait(mut self, wait: Duration) -> Self {
        self.browse_wait = wait;
        self
    }
}

/// A server found on the network.
#[derive(Debug, Clone)]
struct Instance {
    addr: Option<String>,
    props: Vec<(String, Option<String>)>,
}

struct Browse {
    instances: Arc<Mutex<HashMap<String, Instance>>>,
    version: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for Browse {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Inner {
    options: MdnsOptions,
    daemon: Mutex<Option<ServiceDaemon>>,
    /// This server's entries: address → (service directory → metadata).
    entries: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    browse: OnceCell<Browse>,
    closed: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.get_mut().ok().and_then(Option::take) {
            if !self.closed.load(Ordering::Relaxed) {
                // Leave without goodbye packets, as a process that exits does: drop the
                // interfaces first, so shutting down has nothing to announce on.
                let _ = d.disable_interface(IfKind::All);
            }
            let _ = d.shutdown();
        }
    }
}

/// An mDNS responder and browser, for [`RegistryPlugin`] (server side: announces the server's
/// services) and [`RegistryDiscovery`] (client side: browses and verifies). Cheap to clone:
/// clones share the daemon.
#[derive(Clone)]
pub struct MdnsStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for MdnsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MdnsStore")
            .field("options", &self.inner.options)
            .finish()
    }
}

fn err(operation: impl Into<String>, e: mdns_sd::Error) -> RegistryError {
    RegistryError::backend(ENGINE, operation, e)
}

/// Splits `/{base}/{service}/{network}@{addr}` into the service directory and the address (the
/// address starts at the last `/` before the first `@`: a unix address holds slashes after it).
fn split_key(key: &str) -> Option<(&str, &str)> {
    let at = key.find('@')?;
    let start = key[..at].rfind('/')?;
    Some((&key[..start], &key[start + 1..]))
}

impl MdnsStore {
    /// A responder and browser with `options`. The daemon starts on first use.
    pub fn new(options: MdnsOptions) -> MdnsStore {
        MdnsStore {
            inner: Arc::new(Inner {
                options,
                daemon: Mutex::new(None),
                entries: Mutex::new(BTreeMap::new()),
                browse: OnceCell::new(),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// The mDNS daemon, started on first use.
    pub fn daemon(&self) -> Result<ServiceDaemon> {
        let mut d = lock(&self.inner.daemon);
        if let Some(d) = d.as_ref() {
            return Ok(d.clone());
        }
        let port = self.inner.options.port;
        let daemon = ServiceDaemon::new_with_port(port)
            .map_err(|e| RegistryError::unreachable(ENGINE, format!("udp port {port}"), e))?;
        if self.inner.options.loopback_only {
            daemon
                .disable_interface(IfKind::All)
                .and_then(|_| daemon.enable_interface(IfKind::LoopbackV4))
                .map_err(|e| err("select the loopback interface", e))?;
        }
        *d = Some(daemon.clone());
        Ok(daemon)
    }

    /// Announces (or re-announces) the instance of `address` with its current services.
    fn announce(&self, address: &str, services: &BTreeMap<String, String>) -> Result<()> {
        let daemon = self.daemon()?;
        let parsed = sextant::Address::parse(address).ok();
        let (host, port) = parsed
            .as_ref()
            .and_then(|a| a.host_port())
            .unwrap_or(("", 0));
        let ip = host.parse::<IpAddr>().ok();
        let host_label: String = address
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let mut props = vec![TxtProperty::from((ADDR_KEY, address))];
        for (dir, value) in services {
            props.push(TxtProperty::from((dir.as_str(), value.as_str())));
        }
        let info = ServiceInfo::new(
            SERVICE_TYPE,
            address,
            &format!("sextant-{host_label}.local."),
            ip.map(|i| i.to_string()).unwrap_or_default(),
            port,
            props,
        )
        .map_err(|e| {
            RegistryError::Config(format!(
                "cannot announce {address} over mDNS: {e} (a TXT entry, directory plus metadata, \
                 holds at most 255 bytes)"
            ))
        })?;
        let mut info = if ip.is_none() {
            info.enable_addr_auto()
        } else {
            info
        };
        info.set_requires_probe(false);
        daemon
            .register(info)
            .map_err(|e| err(format!("announce {address}"), e))
    }

    fn fullname(address: &str) -> String {
        // As mdns-sd escapes instance names: `\` and `.` get a backslash.
        let escaped = address.replace('\\', "\\\\").replace('.', "\\.");
        format!("{escaped}.{SERVICE_TYPE}")
    }

    async fn browse(&self) -> Result<&Browse> {
        self.inner
            .browse
            .get_or_try_init(|| async {
                let daemon = self.daemon()?;
                let events = daemon
                    .browse(SERVICE_TYPE)
                    .map_err(|e| err(format!("browse {SERVICE_TYPE}"), e))?;
                let instances: Arc<Mutex<HashMap<String, Instance>>> = Arc::default();
                let (tx, rx) = watch::channel(0u64);
                let task = tokio::spawn(browse_loop(
                    daemon,
                    events,
                    instances.clone(),
                    tx,
                    self.inner.options.verify_interval,
                    self.inner.options.verify_timeout,
                ));
                // Give servers a moment to answer before the first listing.
                tokio::time::sleep(self.inner.options.browse_wait).await;
                Ok(Browse {
                    instances,
                    version: rx,
                    task,
                })
            })
            .await
    }
}

async fn browse_loop(
    daemon: ServiceDaemon,
    events: mdns_sd::Receiver<ServiceEvent>,
    instances: Arc<Mutex<HashMap<String, Instance>>>,
    version: watch::Sender<u64>,
    verify_interval: Duration,
    verify_timeout: Duration,
) {
    let mut verify = tokio::time::interval(verify_interval);
    verify.tick().await;
    // Removals wait REMOVAL_DELAY: re-announcing an instance with new TXT data (one of its
    // services unregistered) can show up as a removal followed by a resolution, and the other
    // services must not vanish in between. A resolution within the delay cancels the removal.
    let mut pending_removals: HashMap<String, tokio::time::Instant> = HashMap::new();
    let bump = || {
        version.send_modify(|v| *v += 1);
    };
    loop {
        tokio::select! {
            ev = events.recv_async() => {
                let Ok(ev) = ev else {
                    tracing::warn!("mDNS browse ended; the daemon stopped");
                    return;
                };
                match ev {
                    ServiceEvent::ServiceResolved(s) => {
                        let mut addr = None;
                        let props = s
                            .get_properties()
                            .iter()
                            .map(|p| {
                                let v = p.val().map(|v| String::from_utf8_lossy(v).into_owned());
                                if p.key() == ADDR_KEY {
                                    addr = v.clone();
                                }
                                (p.key().to_string(), v)
                            })
                            .collect();
                        pending_removals.remove(s.get_fullname());
                        lock(&instances)
                            .insert(s.get_fullname().to_string(), Instance { addr, props });
                        bump();
                    }
                    ServiceEvent::ServiceRemoved(_, fullname) => {
                        pending_removals.insert(fullname, tokio::time::Instant::now() + REMOVAL_DELAY);
                    }
                    _ => {}
                }
            }
            _ = sleep_until_first(&pending_removals), if !pending_removals.is_empty() => {
                let now = tokio::time::Instant::now();
                let due: Vec<String> = pending_removals
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(name, _)| name.clone())
                    .collect();
                let mut removed = false;
                {
                    let mut map = lock(&instances);
                    for name in &due {
                        pending_removals.remove(name);
                        removed |= map.remove(name).is_some();
                    }
                }
                if removed {
                    bump();
                }
            }
            _ = verify.tick() => {
                let names: Vec<String> = lock(&instances)
                    .keys()
                    .cloned()
                    .collect();
                for name in names {
                    // No answer within the timeout: mdns-sd flushes the instance and reports it
                    // removed.
                    let _ = daemon.verify(name, verify_timeout);
                }
            }
        }
    }
}

/// How long a reported removal waits for the instance to be resolved again before it counts.
const REMOVAL_DELAY: Duration = Duration::from_millis(500);

async fn sleep_until_first(pending: &HashMap<String, tokio::time::Instant>) {
    match pending.values().min() {
        Some(at) => tokio::time::sleep_until(*at).await,
        None => std::future::pending().await,
    }
}

impl RegistryStore for MdnsStore {
    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        format!("udp port {}", self.inner.options.port)
    }

    async fn connect(&self, _ttl: Duration) -> Result<()> {
        self.daemon().map(|_| ())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let Some((dir, address)) = split_key(key) else {
            return Ok(None);
        };
        Ok(lock(&self.inner.entries)
            .get(address)
            .and_then(|s| s.get(dir).cloned()))
    }

    async fn put(&self, key: &str, value: &str, _ttl: Duration) -> Result<()> {
        let (dir, address) = split_key(key).ok_or_else(|| {
            RegistryError::Config(format!("{key} is not {{dir}}/{{network}}@{{address}}"))
        })?;
        let services = {
            let mut e = lock(&self.inner.entries);
            let s = e.entry(address.to_string()).or_default();
            s.insert(dir.to_string(), value.to_string());
            s.clone()
        };
        self.announce(address, &services)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let Some((dir, address)) = split_key(key) else {
            return Ok(());
        };
        let left = {
            let mut e = lock(&self.inner.entries);
            let Some(s) = e.get_mut(address) else {
                return Ok(());
            };
            s.remove(dir);
            let left = s.clone();
            if left.is_empty() {
                e.remove(address);
            }
            left
        };
        if left.is_empty() {
            // Goodbye packets: discoveries drop the instance at once.
            let daemon = self.daemon()?;
            let done = daemon
                .unregister(&Self::fullname(address))
                .map_err(|e| err(format!("unregister {address}"), e))?;
            let _ = tokio::time::timeout(Duration::from_secs(2), done.recv_async()).await;
            Ok(())
        } else {
            self.announce(address, &left)
        }
    }

    async fn close(&self) {
        let addresses: Vec<String> = lock(&self.inner.entries).keys().cloned().collect();
        for a in addresses {
            if let Ok(d) = self.daemon() {
                if let Ok(done) = d.unregister(&Self::fullname(&a)) {
                    let _ = tokio::time::timeout(Duration::from_secs(2), done.recv_async()).await;
                }
            }
        }
        lock(&self.inner.entries).clear();
        self.inner.closed.store(true, Ordering::Relaxed);
    }
}

/// A watch on the browse results: resolves when any instance changes.
#[derive(Debug)]
pub struct MdnsWatch {
    version: watch::Receiver<u64>,
    seen: u64,
}

impl ChangeWatch for MdnsWatch {
    async fn changed(&mut self) -> Result<()> {
        let seen = self.seen;
        match self.version.wait_for(|v| *v != seen).await {
            Ok(v) => {
                self.seen = *v;
                Ok(())
            }
            Err(_) => Err(RegistryError::backend(
                ENGINE,
                "watch",
                "the mDNS browse ended",
            )),
        }
    }
}

impl DiscoveryStore for MdnsStore {
    type Watch = MdnsWatch;

    /// The listing carries the browse's change counter; the watch starts from it.
    const WATCH_RESUMES_FROM_LISTING: bool = true;

    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        format!("udp port {}", self.inner.options.port)
    }

    async fn list(&self, dir: &str) -> Result<Listing> {
        let b = self.browse().await?;
        let version = *b.version.borrow();
        let entries = lock(&b.instances)
            .iter()
            .filter_map(|(fullname, i)| {
                let (_, value) = i.props.iter().find(|(k, _)| k == dir)?;
                // An instance without `addr` is listed under its name, which is no address: the
                // discovery skips it with a warning.
                let child = i.addr.clone().unwrap_or_else(|| fullname.clone());
                Some(ListedEntry::new(child, value.clone().unwrap_or_default()))
            })
            .collect();
        Ok(Listing {
            entries,
            revision: Some(version),
        })
    }

    async fn watch(&self, _dir: &str, after: &Listing) -> Result<MdnsWatch> {
        let b = self.browse().await?;
        Ok(MdnsWatch {
            version: b.version.clone(),
            seen: after.revision.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split() {
        assert_eq!(
            split_key("/rpcx_test/Arith/tcp@127.0.0.1:8972"),
            Some(("/rpcx_test/Arith", "tcp@127.0.0.1:8972"))
        );
        assert_eq!(
            split_key("/a/Svc/unix@/tmp/x.sock"),
            Some(("/a/Svc", "unix@/tmp/x.sock"))
        );
        assert_eq!(split_key("/a/b"), None);
    }
}
