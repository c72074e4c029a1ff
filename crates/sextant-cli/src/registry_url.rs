//! Registry URLs: what `--registry` names, turned into a *template* discovery, a discovery of
//! no service in particular whose [`clone_for(service)`](ServiceDiscovery::clone_for) gives the
//! discovery of `service` (rpcx's `New*DiscoveryTemplate`).
//!
//! | URL | discovery |
//! |---|---|
//! | `peer2peer://host:port` | one server, for every service |
//! | `multiple://h1:p1,h2:p2` | these servers, for every service |
//! | `etcd://[user:password@]h:p[,h:p...][/base]` (also `etcdv3://`) | etcd v3 (feature `etcd`: building etcd-client needs `protoc`) |
//! | `zookeeper://h:p[,h:p...][/base]` | ZooKeeper (feature `zookeeper`, default) |
//! | `redis://[user:password@]h:p[/base]` | Redis (feature `redis`, default) |
//! | `consul://h:p[/base][?token=T&dc=D]` | Consul, KV mode (feature `consul`, default): an ACL token, a datacenter |
//! | `mdns://[/base]` | mDNS on the local network (feature `mdns`, default) |
//! | `http://h:p[/base]` | sextant's embedded registry (`sextant registry`) |
//!
//! Credentials are what each engine has: etcd's user and password and Redis's in the URL's
//! `user:password@` (also `?user=&password=` for etcd), Consul's ACL token and datacenter as
//! `?token=&dc=`; an option an engine does not take is an error naming those it does. None of
//! these engines is reached over TLS by sextant's stores, so a URL has no TLS options.
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
    /// The options of the query string (`?token=T`), decoded, sorted by name.
    pub options: Vec<(String, String)>,
}

impl RegistryUrl {
    /// The option `name` of the query string.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `user:password@` of the first address, and that address without it.
    fn credentials(&self) -> (Option<(String, String)>, String) {
        let first = self.hosts.first().map(String::as_str).unwrap_or("");
        match first.rsplit_once('@') {
            Some((user, addr)) => {
                let (name, password) = user.split_once(':').unwrap_or((user, ""));
                (
                    Some((percent_decode(name), percent_decode(password))),
                    addr.to_string(),
                )
            }
            None => (None, first.to_string()),
        }
    }
}

/// `%XX` decoded (a password may hold `@`, `:` or `/` written so).
fn percent_decode(s: &str) -> String {
    sextant_registry::QueryValues::parse(&format!("v={}", s.replace('+', "%2B")))
        .ok()
        .and_then(|q| q.get("v").map(str::to_string))
        .unwrap_or_else(|| s.to_string())
}

/// A registry URL as messages show it: the password of `user:password@` and the values of
/// `password=` and `token=` replaced by `***`.
pub fn redacted(url: &str) -> String {
    let url = url.trim();
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (hosts, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            let hosts = match hosts.rsplit_once('@') {
                Some((user, addr)) => {
                    let name = user.split_once(':').map_or(user, |(n, _)| n);
                    format!("{name}:***@{addr}")
                }
                None => hosts.to_string(),
            };
            format!("{scheme}://{hosts}{path}")
        }
        None => head.to_string(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k == "password" || k == "token" => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// The query options each scheme takes.
fn allowed_options(scheme: Scheme) -> &'static [&'static str] {
    match scheme {
        Scheme::Etcd => &["user", "password"],
        Scheme::Consul => &["token", "dc"],
        _ => &[],
    }
}

impl fmt::Display for RegistryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut url = format!(
            "{}://{}{}",
            self.scheme.name(),
            self.hosts.join(","),
            self.base_path.as_deref().unwrap_or("")
        );
        for (i, (k, v)) in self.options.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("{k}={v}"));
        }
        f.write_str(&redacted(&url))
    }
}

/// Parses a registry URL (see the module docs); the error says what is wrong and what is
/// expected.
pub fn parse(url: &str) -> Result<RegistryUrl, String> {
    let full = url.trim();
    // Messages show the URL without its secrets.
    let url = &redacted(full);
    let Some((scheme, rest)) = full.split_once("://") else {
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
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let mut options = Vec::new();
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        let values = sextant_registry::QueryValues::parse(query)
            .map_err(|e| format!("registry {url:?}: the options after '?': {e}"))?;
        let allowed = allowed_options(scheme);
        for (k, v) in values.iter() {
            if !allowed.contains(&k) {
                return Err(if allowed.is_empty() {
                    format!(
                        "registry {url:?}: {}:// takes no option ({k:?})",
                        scheme.name()
                    )
                } else {
                    format!(
                        "registry {url:?}: unknown option {k:?}: {}:// takes {}",
                        scheme.name(),
                        allowed.join(", ")
                    )
                });
            }
            options.push((k.to_string(), v.join(",")));
        }
    }
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
    for (i, h) in hosts.iter().enumerate() {
        let addr = match h.rsplit_once('@') {
            Some((_, a)) if i == 0 && matches!(scheme, Scheme::Etcd | Scheme::Redis) => a,
            Some(_) => {
                return Err(format!(
                    "registry {url:?}: address {}: only the first address of etcd:// and \
                     redis:// may carry user:password@",
                    i + 1
                ))
            }
            None => h.as_str(),
        };
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(format!(
                "registry {url:?}: {addr:?} is not host:port (e.g. 127.0.0.1:2379)"
            ));
        }
    }
    Ok(RegistryUrl {
        scheme,
        hosts,
        base_path,
        options,
    })
}

/// The longest the first contact with a registry may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The template discovery of a registry URL (see the module docs), with `default_base` as the
/// base path when the URL has none. A registry that does not answer within 5 s, an engine this
/// build left out (a cargo feature) and a malformed URL are errors saying so.
pub async fn template(url: &str, default_base: &str) -> Result<Arc<dyn ServiceDiscovery>, String> {
    let parsed = parse(url)?;
    let url = &redacted(url);
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
            RegistryTemplate::probed(embedded_store(url, &parsed)?, base, options).await
        }
        Scheme::Etcd => etcd(url, &parsed, base, options).await,
        Scheme::ZooKeeper => zookeeper(url, &parsed, base, options).await,
        Scheme::Redis => redis(url, &parsed, base, options).await,
        Scheme::Consul => consul(url, &parsed, base, options).await,
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
    parsed: &RegistryUrl,
    base: String,
    options: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    RegistryTemplate::probed(etcd_store(url, parsed)?, base, options).await
}

#[cfg(feature = "etcd")]
fn etcd_store(url: &str, parsed: &RegistryUrl) -> Result<sextant_etcd::EtcdStore, String> {
    let (user, first) = parsed.credentials();
    let endpoints: Vec<String> = std::iter::once(first)
        .chain(parsed.hosts.iter().skip(1).cloned())
        .map(|h| format!("http://{h}"))
        .collect();
    let mut options = sextant_etcd::EtcdOptions::default();
    let user = user.or_else(|| {
        parsed.option("user").map(|u| {
            let password = parsed.option("password").unwrap_or("");
            (u.to_string(), password.to_string())
        })
    });
    if let Some((name, password)) = user {
        options = options.user(name, password);
    }
    sextant_etcd::EtcdStore::new(endpoints, options).map_err(|e| format!("registry {url:?}: {e}"))
}

#[cfg(not(feature = "etcd"))]
async fn etcd(
    _: &str,
    _: &RegistryUrl,
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
    parsed: &RegistryUrl,
    base: String,
    options: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    RegistryTemplate::probed(zookeeper_store(url, parsed)?, base, options).await
}

#[cfg(feature = "zookeeper")]
fn zookeeper_store(
    url: &str,
    parsed: &RegistryUrl,
) -> Result<sextant_zookeeper::ZooKeeperStore, String> {
    sextant_zookeeper::ZooKeeperStore::new(
        &parsed.hosts.join(","),
        sextant_zookeeper::ZooKeeperOptions::default(),
    )
    .map_err(|e| format!("registry {url:?}: {e}"))
}

#[cfg(not(feature = "zookeeper"))]
async fn zookeeper(
    _: &str,
    _: &RegistryUrl,
    _: String,
    _: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    Err(not_built("ZooKeeper", "zookeeper", ""))
}

#[cfg(feature = "redis")]
async fn redis(
    url: &str,
    parsed: &RegistryUrl,
    base: String,
    options: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    RegistryTemplate::probed(redis_store(url, parsed)?, base, options).await
}

#[cfg(feature = "redis")]
fn redis_store(url: &str, parsed: &RegistryUrl) -> Result<sextant_redis::RedisStore, String> {
    sextant_redis::RedisStore::new(
        &format!("redis://{}", parsed.hosts[0]),
        sextant_redis::RedisOptions::default(),
    )
    .map_err(|e| format!("registry {url:?}: {e}"))
}

#[cfg(not(feature = "redis"))]
async fn redis(
    _: &str,
    _: &RegistryUrl,
    _: String,
    _: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    Err(not_built("Redis", "redis", ""))
}

#[cfg(feature = "consul")]
async fn consul(
    url: &str,
    parsed: &RegistryUrl,
    base: String,
    options: DiscoveryOptions,
) -> Result<Arc<dyn ServiceDiscovery>, String> {
    RegistryTemplate::probed(consul_store(url, parsed)?, base, options).await
}

#[cfg(feature = "consul")]
fn consul_store(url: &str, parsed: &RegistryUrl) -> Result<sextant_consul::ConsulStore, String> {
    let mut options = sextant_consul::ConsulOptions::default();
    if let Some(token) = parsed.option("token") {
        options = options.token(token);
    }
    if let Some(dc) = parsed.option("dc") {
        options = options.datacenter(dc);
    }
    sextant_consul::ConsulStore::new(&format!("http://{}", parsed.hosts[0]), options)
        .map_err(|e| format!("registry {url:?}: {e}"))
}

#[cfg(not(feature = "consul"))]
async fn consul(
    _: &str,
    _: &RegistryUrl,
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

fn embedded_store(
    url: &str,
    parsed: &RegistryUrl,
) -> Result<sextant_registry::EmbeddedStore, String> {
    sextant_registry::EmbeddedStore::new(&format!("http://{}", parsed.hosts[0]))
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
    let url = &redacted(url);
    let base = base_of(&parsed, default_base).map_err(CliError::usage)?;
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
        Scheme::Embedded => Arc::new(embedded_store(url, &parsed).map_err(CliError::usage)?),
        #[cfg(feature = "etcd")]
        Scheme::Etcd => Arc::new(etcd_store(url, &parsed).map_err(CliError::usage)?),
        #[cfg(feature = "zookeeper")]
        Scheme::ZooKeeper => Arc::new(zookeeper_store(url, &parsed).map_err(CliError::usage)?),
        #[cfg(feature = "redis")]
        Scheme::Redis => Arc::new(redis_store(url, &parsed).map_err(CliError::usage)?),
        #[cfg(feature = "consul")]
        Scheme::Consul => Arc::new(consul_store(url, &parsed).map_err(CliError::usage)?),
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
    fn credentials_and_options() {
        let u = parse("etcd://root:s%40cret@127.0.0.1:2379,h2:2379/rpcx").unwrap();
        let (user, first) = u.credentials();
        assert_eq!(user, Some(("root".into(), "s@cret".into())));
        assert_eq!(first, "127.0.0.1:2379");
        assert_eq!(u.to_string(), "etcd://root:***@127.0.0.1:2379,h2:2379/rpcx");
        let u = parse("etcd://h:2379/rpcx?user=root&password=pw").unwrap();
        assert_eq!(
            (u.option("user"), u.option("password")),
            (Some("root"), Some("pw"))
        );
        assert_eq!(u.to_string(), "etcd://h:2379/rpcx?password=***&user=root");
        let u = parse("consul://127.0.0.1:8500/rpcx?token=t0k&dc=dc1").unwrap();
        assert_eq!(
            (u.option("token"), u.option("dc")),
            (Some("t0k"), Some("dc1"))
        );
        assert_eq!(u.base_path.as_deref(), Some("/rpcx"));
        assert_eq!(
            redacted("redis://u:pw@h:1/b?token=x"),
            "redis://u:***@h:1/b?token=***"
        );

        let e = parse("consul://h:8500?tokn=x").unwrap_err();
        assert!(
            e.contains("unknown option \"tokn\"") && e.contains("token, dc"),
            "{e}"
        );
        let e = parse("zookeeper://h:2181?user=x").unwrap_err();
        assert!(e.contains("takes no option"), "{e}");
        let e = parse("etcd://h:1,u:p@h2:2").unwrap_err();
        assert!(e.contains("only the first address"), "{e}");
        let e = parse("zookeeper://u:p@h:2181").unwrap_err();
        assert!(e.contains("only the first address"), "{e}");
        // Secrets never reach a message.
        let e = parse("etcd://root:hunter2@h:notaport").unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("root:***@"), "{e}");
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
