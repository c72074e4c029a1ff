//! Registry URLs: what `--registry` names, turned into a *template* discovery, a discovery of
//! no service in particular whose [`clone_for(service)`](ServiceDiscovery::clone_for) gives the
//! discovery of `service` (rpcx's `New*DiscoveryTemplate`).
//!
//! | URL | discovery |
//! |---|---|
//! | `peer2peer://host:port` | one server, for every service |
//! | `multiple://h1:p1,h2:p2` | these servers, for every service |
//! | `etcd://h:p[,h:p...][/base]` (also `etcdv3://`) | etcd v3 (feature `etcd`: building etcd-client needs `protoc`) |
//! | `zookeeper://h:p[,h:p...][/base]` | ZooKeeper (feature `zookeeper`, default) |
//! | `redis://[user:password@]h:p[/base]` | Redis (feature `redis`, default) |
//! | `consul://h:p[/base]` | Consul, KV mode (feature `consul`, default) |
//! | `mdns://[/base]` | mDNS on the local network (feature `mdns`, default) |
//! | `http://h:p[/base]` | sextant's embedded registry (`sextant registry`) |
//!
//! The base path is the URL's path when it has one, else the `default_base` given (`--base-path`,
//! `/rpcx` as in rpcx-gateway). A registry is asked once, when the template is made, whether it
//! answers, so that an unreachable one is reported at start rather than on the first request.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sextant::discovery::{MultipleServersDiscovery, Peer2PeerDiscovery, ServerList, Servers};
use sextant::{KVPair, ServiceDiscovery};
use sextant_registry::path::normalize_base_path;
use sextant_registry::{
    ChangeWatch, DiscoveryOptions, DiscoveryStore, Listing, RegistryDiscovery, RegistryError,
    RegistryStore,
};
use tokio::sync::watch;

use crate::CliError;

/// The registries a URL may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `peer2peer://host:port`.
    Peer2Peer,
    /// `multiple://h1:p1,h2:p2`.
    Multiple,
    /// `etcd://` or `etcdv3://`.
    Etcd,
    /// `zookeeper://`.
    ZooKeeper,
    /// `redis://`.
    Redis,
    /// `consul://`.
    Consul,
    /// `mdns://`.
    Mdns,
    /// `http://`: the embedded registry.
    Embedded,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Peer2Peer => "peer2peer",
            Scheme::Multiple => "multiple",
            Scheme::Etcd => "etcd",
            Scheme::ZooKeeper => "zookeeper",
            Scheme::Redis => "redis",
            Scheme::Consul => "consul",
            Scheme::Mdns => "mdns",
            Scheme::Embedded => "http",
        }
    }
}

/// The schemes, as the error for an unknown one lists them.
const KNOWN: &str = "peer2peer://host:port, multiple://h1:p1,h2:p2, etcd://h:p[,h:p]/base, \
                     zookeeper://h:p[,h:p]/base, redis://h:p/base, consul://h:p/base, mdns://, \
                     http://h:p (the embedded registry)";

/// A parsed registry URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryUrl {
    /// Which registry.
    pub scheme: Scheme,
    /// The `host:port` list (`user:password@` kept for Redis); empty for mDNS.
    pub hosts: Vec<String>,
    /// The base path from the URL's path, normalized (`None` when the URL has no path).
    pub base_path: Option<String>,
}

impl fmt::Display for RegistryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.name(),
            self.hosts.join(","),
            self.base_path.as_deref().unwrap_or("")
        )
    }
}

/// Parses a registry URL (see the module docs); the error says what is wrong and what is
/// expected.
pub fn parse(url: &str) -> Result<RegistryUrl, String> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "registry {url:?} is not a registry URL: write scheme://address, one of {KNOWN}"
        ));
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "peer2peer" => Scheme::Peer2Peer,
        "multiple" => Scheme::Multiple,
        "etcd" | "etcdv3" => Scheme::Etcd,
        "zookeeper" | "zk" => Scheme::ZooKeeper,
        "redis" => Scheme::Redis,
        "consul" => Scheme::Consul,
        "mdns" => Scheme::Mdns,
        "http" => Scheme::Embedded,
        other => {
            return Err(format!(
                "unknown registry type {other:?} in {url:?}: use one of {KNOWN}"
            ))
        }
    };
    let (hosts, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let hosts: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    let base_path = match path {
        Some(p) if !p.trim_matches('/').is_empty() => {
            Some(normalize_base_path(p).map_err(|e| format!("registry {url:?}: {e}"))?)
        }
        _ => None,
    };
    match scheme {
        Scheme::Mdns if !hosts.is_empty() => {
            return Err(format!(
                "registry {url:?}: mdns:// takes no address (servers answer for themselves \
                 on the local network); write mdns:// or mdns:///base"
            ));
        }
        Scheme::Mdns => {}
        _ if hosts.is_empty() => {
            return Err(format!(
                "registry {url:?} has no address: write {}://host:port",
                scheme.name()
            ))
        }
        Scheme::Peer2Peer | Scheme::Consul | Scheme::Redis | Scheme::Embedded
            if hosts.len() > 1 =>
        {
            return Err(format!(
                "registry {url:?}: {}:// takes one address, not {}",
                scheme.name(),
                hosts.len()
            ));
        }
        _ => {}
    }
    if matches!(scheme, Scheme::Peer2Peer | Scheme::Multiple) && base_path.is_some() {
        return Err(format!(
            "registry {url:?}: {}:// lists servers and takes no base path",
            scheme.name()
        ));
    }
    for h in &hosts {
        let addr = h.rsplit_once('@').map_or(h.as_str(), |(_, a)| a);
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(format!(
                "registry {url:?}: {h:?} is not host:port (e.g. 127.0.0.1:2379)"
            ));
        }
    }
    Ok(RegistryUrl {
        scheme,
        hosts,
        base_path,
    })
}

/// The longest the first contact with a registry may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The template discovery of a registry URL (see the module docs), with `default_base` as the
/// base path when the URL has none. A registry that does not answer within 5 s, an engine this
/// build left out (a cargo feature) and a malformed URL are errors saying so.
pub async fn template(url: &str, default_base: &str) -> Result<Arc<dyn ServiceDiscovery>, String> {
    let parsed = parse(url)?;
    let base = base_of(&parsed, default_base)?;
    let options = DiscoveryOptions::default();
    let hosts = &parsed.hosts;
    match parsed.scheme {
        Scheme::Peer2Peer => {
            let d = Peer2PeerDiscovery::new(format!("tcp@{}", hosts[0]), "")
                .map_err(|e| format!("registry {url:?}: {e}"))?;
            Ok(Arc::new(d))
        }
        Scheme::Multiple => {
            let pairs = hosts
                .iter()
                .map(|h| KVPair::new(format!("tcp@{h}"), ""))
                .collect();
            let d = MultipleServersDiscovery::new(pairs)
                .map_err(|e| format!("registry {url:?}: {e}"))?;
            Ok(Arc::new(d))
        }
        Scheme::Embedded => {
            RegistryTemplate::probed(embedded_store(url, hosts)?, base, options).await
        }
        Scheme::Etcd => etcd(url, hosts, base, options).await,
        Scheme::ZooKeeper => zookeeper(url, hosts, base, options).await,
        Scheme::Redis => redis(url, hosts, base, options).await,
        Scheme::Consul => consul(url, hosts, base, options).await,
        Scheme::Mdns => mdns(base, options),
    }
}

#[cfg(not(all(
    feature = "etcd",
    feature = "zookeeper",
    feature = "redis",
    feature = "consul",
    feature = "mdns"
)))]
fn not_built(engine: &str, feature: &str, extra: &str) -> String {
    format!(
        "this sextant was built without {engine} support: rebuild it with \
         `cargo build -p sextant-cli --features {feature}`{extra}"
    )
}

#[cfg(feature = "etcd")]
async fn etcd(
    url: &str,
    hosts: &[String],
    base: String,
    options: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    RegistryTemplate::probed(etcd_store(url, hosts)?, base, options).await
}

#[cfg(feature = "etcd")]
fn etcd_store(url: &str, hosts: &[String]) -> Result<sextant_etcd::EtcdStore, String> {
    let endpoints: Vec<String> = hosts.iter().map(|h| format!("http://{h}")).collect();
    sextant_etcd::EtcdStore::new(endpoints, sextant_etcd::EtcdOptions::default())
        .map_err(|e| format!("registry {url:?}: {e}"))
}

#[cfg(not(feature = "etcd"))]
async fn etcd(
    _: &str,
    _: &[String],
    _: String,
    _: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    Err(not_built(
        "etcd",
        "etcd",
        " (etcd-client compiles etcd's .proto files: it needs protoc, e.g. Debian's \
         protobuf-compiler)",
    ))
}

#[cfg(feature = "zookeeper")]
async fn zookeeper(
    url: &str,
    hosts: &[String],
    base: String,
    options: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    RegistryTemplate::probed(zookeeper_store(url, hosts)?, base, options).await
}

#[cfg(feature = "zookeeper")]
fn zookeeper_store(
    url: &str,
    hosts: &[String],
) -> Result<sextant_zookeeper::ZooKeeperStore, String> {
    sextant_zookeeper::ZooKeeperStore::new(
        &hosts.join(","),
        sextant_zookeeper::ZooKeeperOptions::default(),
    )
    .map_err(|e| format!("registry {url:?}: {e}"))
}

#[cfg(not(feature = "zookeeper"))]
async fn zookeeper(
    _: &str,
    _: &[String],
    _: String,
    _: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    Err(not_built("ZooKeeper", "zookeeper", ""))
}

#[cfg(feature = "redis")]
async fn redis(
    url: &str,
    hosts: &[String],
    base: String,
    options: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    RegistryTemplate::probed(redis_store(url, hosts)?, base, options).await
}

#[cfg(feature = "redis")]
fn redis_store(url: &str, hosts: &[String]) -> Result<sextant_redis::RedisStore, String> {
    sextant_redis::RedisStore::new(
        &format!("redis://{}", hosts[0]),
        sextant_redis::RedisOptions::default(),
    )
    .map_err(|e| format!("registry {url:?}: {e}"))
}

#[cfg(not(feature = "redis"))]
async fn redis(
    _: &str,
    _: &[String],
    _: String,
    _: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    Err(not_built("Redis", "redis", ""))
}

#[cfg(feature = "consul")]
async fn consul(
    url: &str,
    hosts: &[String],
    base: String,
    options: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    RegistryTemplate::probed(consul_store(url, hosts)?, base, options).await
}

#[cfg(feature = "consul")]
fn consul_store(url: &str, hosts: &[String]) -> Result<sextant_consul::ConsulStore, String> {
    sextant_consul::ConsulStore::new(
        &format!("http://{}", hosts[0]),
        sextant_consul::ConsulOptions::default(),
    )
    .map_err(|e| format!("registry {url:?}: {e}"))
}

#[cfg(not(feature = "consul"))]
async fn consul(
    _: &str,
    _: &[String],
    _: String,
    _: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    Err(not_built("Consul", "consul", ""))
}

#[cfg(feature = "mdns")]
fn mdns(base: String, options: DiscoveryOptions) -> Result<Arc<dyn ServiceDiscovery>, String> {
    // No registry to ask: servers answer for themselves when a service is browsed.
    let store = sextant_mdns::MdnsStore::new(sextant_mdns::MdnsOptions::default());
    Ok(Arc::new(RegistryTemplate::new(store, base, options)))
}

#[cfg(not(feature = "mdns"))]
fn mdns(_: String, _: DiscoveryOptions) -> Result<Arc<dyn ServiceDiscovery>, String> {
    Err(not_built("mDNS", "mdns", ""))
}

/// A discovery of no service whose `clone_for(service)` starts the [`RegistryDiscovery`] of
/// `service` on the store, base path and options (rpcx's discovery templates).
pub struct RegistryTemplate<S> {
    store: S,
    base: String,
    options: DiscoveryOptions,
    empty: ServerList,
}

impl<S: DiscoveryStore> RegistryTemplate<S> {
    /// A template on `store` under `base`.
    pub fn new(store: S, base: String, options: DiscoveryOptions) -> RegistryTemplate<S> {
        RegistryTemplate {
            store,
            base,
            options,
            empty: ServerList::default(),
        }
    }

    /// [`new`](Self::new), after checking that the registry answers a listing.
    async fn probed(
        store: S,
        base: String,
        options: DiscoveryOptions,
    ) -> Result<Arc<dyn ServiceDiscovery>, String> {
        probe(&store, &base).await?;
        Ok(Arc::new(RegistryTemplate::new(store, base, options)))
    }
}

/// Checks that the registry answers a listing within [`PROBE_TIMEOUT`]; the error says which
/// registry could not be reached and why.
async fn probe<S: DiscoveryStore>(store: &S, base: &str) -> Result<(), String> {
    // A directory no server is under: an empty answer proves the registry is there.
    let probe = format!("{base}/.sextant-probe");
    let unreachable = |why: String| {
        format!(
            "the {} registry at {} cannot be reached: {why} (is it running? check the \
             --registry address)",
            store.engine(),
            store.endpoints()
        )
    };
    match tokio::time::timeout(PROBE_TIMEOUT, store.list(&probe)).await {
        Err(_) => Err(unreachable(format!(
            "no answer within {}s",
            PROBE_TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Ok(Ok(_)) => Ok(()),
    }
}

fn embedded_store(url: &str, hosts: &[String]) -> Result<sextant_registry::EmbeddedStore, String> {
    sextant_registry::EmbeddedStore::new(&format!("http://{}", hosts[0]))
        .map_err(|e| format!("registry {url:?}: {e}"))
}

/// The base path of a parsed URL: its own, else `default_base` normalized.
fn base_of(parsed: &RegistryUrl, default_base: &str) -> Result<String, String> {
    match &parsed.base_path {
        Some(b) => Ok(b.clone()),
        None => normalize_base_path(default_base).map_err(|e| format!("--base-path: {e}")),
    }
}

/// A registry opened for an operator (`sextant list`, `describe`, `set`, `watch`): its store,
/// probed, and the base path.
pub struct Opened {
    /// The registry's store.
    pub store: Arc<dyn AdminStore>,
    /// The base path services are under (`/rpcx`).
    pub base: String,
}

/// Opens the registry a URL names for reading and editing it as an operator, with
/// `default_base` as the base path when the URL has none. Fixed server lists
/// (`peer2peer://`, `multiple://`) and mDNS hold no registry to browse or edit: errors say so.
pub async fn open(url: &str, default_base: &str) -> Result<Opened, CliError> {
    let parsed = parse(url).map_err(CliError::usage)?;
    let base = base_of(&parsed, default_base).map_err(CliError::usage)?;
    let hosts = &parsed.hosts;
    let store: Arc<dyn AdminStore> = match parsed.scheme {
        Scheme::Peer2Peer | Scheme::Multiple => {
            return Err(CliError::usage(format!(
                "registry {url:?} is a fixed list of servers, not a registry: there is nothing \
                 to list or edit (name etcd://, zookeeper://, redis://, consul:// or http://)"
            )))
        }
        Scheme::Mdns => {
            return Err(CliError::usage(format!(
                "registry {url:?}: mDNS has no directory to list or edit (servers announce \
                 themselves; change a server's metadata on the server)"
            )))
        }
        Scheme::Embedded => Arc::new(embedded_store(url, hosts).map_err(CliError::usage)?),
        #[cfg(feature = "etcd")]
        Scheme::Etcd => Arc::new(etcd_store(url, hosts).map_err(CliError::usage)?),
        #[cfg(feature = "zookeeper")]
        Scheme::ZooKeeper => Arc::new(zookeeper_store(url, hosts).map_err(CliError::usage)?),
        #[cfg(feature = "redis")]
        Scheme::Redis => Arc::new(redis_store(url, hosts).map_err(CliError::usage)?),
        #[cfg(feature = "consul")]
        Scheme::Consul => Arc::new(consul_store(url, hosts).map_err(CliError::usage)?),
        #[allow(unreachable_patterns)]
        other => {
            // Only reached for an engine this build left out: `template` says which feature.
            return Err(CliError::usage(match template(url, default_base).await {
                Err(e) => e,
                Ok(_) => format!("registry {url:?}: {} is not supported here", other.name()),
            }));
        }
    };
    store.probe(&base).await.map_err(CliError::transport)?;
    Ok(Opened { store, base })
}

/// A registry store behind a pointer: what `sextant list`, `describe`, `set` and `watch` need of
/// any engine ([`DiscoveryStore`] and [`RegistryStore`], made object safe).
pub trait AdminStore: Send + Sync {
    /// The engine's name (`etcd`).
    fn engine(&self) -> &'static str;
    /// The endpoints, for messages.
    fn endpoints(&self) -> String;
    /// [`probe`]: does the registry answer?
    fn probe<'a>(&'a self, base: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// [`DiscoveryStore::list`].
    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, sextant_registry::Result<Listing>>;
    /// [`RegistryStore::get`].
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, sextant_registry::Result<Option<String>>>;
    /// [`RegistryStore::update`].
    fn update<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, sextant_registry::Result<bool>>;
    /// [`DiscoveryStore::watch`].
    fn watch<'a>(
        &'a self,
        dir: &'a str,
        after: &'a Listing,
    ) -> BoxFuture<'a, sextant_registry::Result<Box<dyn AdminWatch>>>;
}

/// [`ChangeWatch`] behind a pointer.
pub trait AdminWatch: Send {
    /// [`ChangeWatch::changed`].
    fn changed(&mut self) -> BoxFuture<'_, sextant_registry::Result<()>>;
}

impl<W: ChangeWatch> AdminWatch for W {
    fn changed(&mut self) -> BoxFuture<'_, sextant_registry::Result<()>> {
        Box::pin(ChangeWatch::changed(self))
    }
}

impl<S: DiscoveryStore + RegistryStore> AdminStore for S {
    fn engine(&self) -> &'static str {
        DiscoveryStore::engine(self)
    }
    fn endpoints(&self) -> String {
        DiscoveryStore::endpoints(self)
    }
    fn probe<'a>(&'a self, base: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(probe(self, base))
    }
    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, sextant_registry::Result<Listing>> {
        Box::pin(DiscoveryStore::list(self, dir))
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, sextant_registry::Result<Option<String>>> {
        Box::pin(RegistryStore::get(self, key))
    }
    fn update<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, sextant_registry::Result<bool>> {
        Box::pin(RegistryStore::update(self, key, value))
    }
    fn watch<'a>(
        &'a self,
        dir: &'a str,
        after: &'a Listing,
    ) -> BoxFuture<'a, sextant_registry::Result<Box<dyn AdminWatch>>> {
        Box::pin(async move {
            let w = DiscoveryStore::watch(self, dir, after).await?;
            Ok(Box::new(w) as Box<dyn AdminWatch>)
        })
    }
}

impl<S: DiscoveryStore> ServiceDiscovery for RegistryTemplate<S> {
    fn get_services(&self) -> Servers {
        self.empty.get()
    }

    fn watch_services(&self) -> watch::Receiver<Servers> {
        self.empty.subscribe()
    }

    fn clone_for(
        &self,
        service_path: &str,
    ) -> BoxFuture<'static, sextant::Result<Arc<dyn ServiceDiscovery>>> {
        let (store, base, options) = (self.store.clone(), self.base.clone(), self.options.clone());
        let service_path = service_path.to_string();
        Box::pin(async move {
            let endpoints = format!("{} at {}", store.engine(), store.endpoints());
            match RegistryDiscovery::start(store, &base, &service_path, options).await {
                Ok(d) => Ok(Arc::new(d) as Arc<dyn ServiceDiscovery>),
                Err(RegistryError::Config(text)) => Err(sextant::Error::Config(text)),
                Err(e) => Err(sextant::Error::Connect {
                    address: endpoints,
                    source: Arc::new(io::Error::other(e.to_string())),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse("etcd://127.0.0.1:2379,10.0.0.2:2379/rpcx_test").unwrap();
        assert_eq!(u.scheme, Scheme::Etcd);
        assert_eq!(u.hosts, ["127.0.0.1:2379", "10.0.0.2:2379"]);
        assert_eq!(u.base_path.as_deref(), Some("/rpcx_test"));
        assert_eq!(
            u.to_string(),
            "etcd://127.0.0.1:2379,10.0.0.2:2379/rpcx_test"
        );

        let u = parse("peer2peer://127.0.0.1:8972").unwrap();
        assert_eq!((u.scheme, u.base_path), (Scheme::Peer2Peer, None));
        let u = parse("multiple://a:1,b:2").unwrap();
        assert_eq!(u.hosts.len(), 2);
        assert_eq!(parse("etcdv3://h:1").unwrap().scheme, Scheme::Etcd);
        assert_eq!(parse("zookeeper://h:1/").unwrap().base_path, None);
        let u = parse("redis://user:pw@h:6379/base/x/").unwrap();
        assert_eq!(u.hosts, ["user:pw@h:6379"]);
        assert_eq!(u.base_path.as_deref(), Some("/base/x"));
        assert_eq!(parse("consul://h:8500").unwrap().scheme, Scheme::Consul);
        let u = parse("mdns://").unwrap();
        assert!(u.hosts.is_empty());
        assert_eq!(
            parse("mdns:///svc").unwrap().base_path.as_deref(),
            Some("/svc")
        );
        assert_eq!(
            parse("http://127.0.0.1:9980").unwrap().scheme,
            Scheme::Embedded
        );
    }

    #[test]
    fn bad_urls_say_why() {
        let cases = [
            ("127.0.0.1:2379", "not a registry URL"),
            ("nacos://h:1", "unknown registry type \"nacos\""),
            ("etcd://", "has no address"),
            ("etcd://h", "not host:port"),
            ("etcd://h:99999", "not host:port"),
            ("peer2peer://a:1,b:2", "takes one address"),
            ("peer2peer://a:1/base", "takes no base path"),
            ("mdns://h:1", "takes no address"),
            ("etcd://h:1/a//b", "empty segment"),
        ];
        for (url, text) in cases {
            let e = parse(url).unwrap_err();
            assert!(e.contains(text), "{url}: {e}");
        }
    }

    #[tokio::test]
    async fn fixed_lists_and_unreachable_registries() {
        let t = template("multiple://127.0.0.1:1,127.0.0.1:2", "/rpcx")
            .await
            .unwrap();
        let d = t.clone_for("Arith").await.unwrap();
        assert_eq!(d.get_services().len(), 2);

        // A closed port: the embedded registry cannot be reached, and the error says so.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = template(&format!("http://127.0.0.1:{port}"), "/rpcx")
            .await
            .err()
            .unwrap();
        assert!(e.contains("cannot be reached"), "{e}");
        assert!(e.contains(&port.to_string()), "{e}");
    }

    #[tokio::test]
    async fn the_embedded_registry_template_clones_per_service() {
        use sextant_registry::{EmbeddedRegistry, EmbeddedRegistryOptions, RegistryStore};
        let registry = EmbeddedRegistry::bind("127.0.0.1:0", EmbeddedRegistryOptions::default())
            .await
            .unwrap();
        let store = sextant_registry::EmbeddedStore::new(&registry.url()).unwrap();
        RegistryStore::put(
            &store,
            "/gw/Arith/tcp@127.0.0.1:7",
            "",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        let t = template(&format!("{}/gw", registry.url()), "/rpcx")
            .await
            .unwrap();
        assert!(t.get_services().is_empty());
        let d = t.clone_for("Arith").await.unwrap();
        assert_eq!(d.get_services()[0].key, "tcp@127.0.0.1:7");
        assert!(t
            .clone_for("Other")
            .await
            .unwrap()
            .get_services()
            .is_empty());
        d.close();
        registry.shutdown().await;
    }
}
