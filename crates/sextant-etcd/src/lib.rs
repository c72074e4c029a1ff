//! # sextant-etcd
//!
//! An etcd v3 registry for [sextant], laid out as rpcx's `EtcdV3RegisterPlugin` and
//! `EtcdV3Discovery` (github.com/rpcxio/rpcx-etcd) lay it out, so Go rpcx and sextant servers and
//! clients share it:
//!
//! - key `{basePath}/{servicePath}/{network}@{host}:{port}`, exactly as written (etcd has no
//!   directories), e.g. `/rpcx_test/Arith/tcp@127.0.0.1:8972`;
//! - value: the metadata query string (`weight=10&group=test`), with rpcx's rate figures added on
//!   every refresh;
//! - TTL: every entry of a server is attached to one etcd lease, granted with the TTL (twice the
//!   update interval unless set) and kept alive once per update interval; a lease found expired
//!   (etcd lost it, or the server could not reach etcd for longer than the TTL) is replaced by a
//!   new one and the entries written again.
//!
//! Discoveries list the prefix `{basePath}/{servicePath}/` and watch it starting at the revision
//! after the listing, so no change between list and watch is missed; after any failure they list
//! again and resume watching from the new revision (a compacted revision is handled the same way).
//!
//! ```no_run
//! use sextant::Server;
//! use sextant_etcd::{EtcdDiscovery, EtcdOptions, EtcdRegisterPlugin, EtcdStore};
//! use sextant_registry::{DiscoveryOptions, RegistryOptions};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = EtcdStore::new(["http://127.0.0.1:2379"], EtcdOptions::default())?;
//! // Server side (rpcx's EtcdV3RegisterPlugin).
//! let plugin = EtcdRegisterPlugin::start(
//!     store.clone(),
//!     RegistryOptions::default()
//!         .base_path("/rpcx_test")
//!         .service_address("tcp@127.0.0.1:8972"),
//! )
//! .await?;
//! let server = Server::builder().plugin(plugin).build();
//! // Client side (rpcx's NewEtcdV3Discovery).
//! let discovery = EtcdDiscovery::start(store, "/rpcx_test", "Arith", DiscoveryOptions::default()).await?;
//! # Ok(()) }
//! ```
//!
//! Building this crate needs `protoc` (the `etcd-client` crate compiles etcd's `.proto` files):
//! Debian's `protobuf-compiler`, installed by `scripts/services.sh install`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
    WatchStream,
};
use sextant_registry::{
    ChangeWatch, DiscoveryStore, ListedEntry, Listing, RegistryDiscovery, RegistryError,
    RegistryPlugin, RegistryStore, Result,
};
use tokio::sync::Mutex;

const ENGINE: &str = "etcd";

/// rpcx's `EtcdV3RegisterPlugin`: the registry plugin on etcd.
pub type EtcdRegisterPlugin = RegistryPlugin<EtcdStore>;

/// rpcx's `EtcdV3Discovery`: the discovery on etcd.
pub type EtcdDiscovery = RegistryDiscovery;

/// Settings of an [`EtcdStore`]. Every field states its default.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct EtcdOptions {
    /// How long connecting to an endpoint may take. Default: `None` (etcd-client's default).
    pub connect_timeout: Option<Duration>,
    /// User name and password, when etcd has authentication on. Default: `None`.
    pub user: Option<(String, String)>,
}

impl fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl EtcdOptions {
    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Sets [`user`](Self::user).
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((name.into(), password.into()));
        self
    }
}

struct Lease {
    id: i64,
    ttl: i64,
}

struct Inner {
    endpoints: Vec<String>,
    options: EtcdOptions,
    client: Mutex<Option<Client>>,
    lease: Mutex<Option<Lease>>,
}

/// A client of an etcd cluster, for [`RegistryPlugin`] (server side) and [`RegistryDiscovery`]
/// (client side). Cheap to clone: clones share the connection and the lease.
///
/// It connects on first use, and gives every entry a server publishes one lease.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.inner.endpoints)
            .field("options", &self.inner.options)
            .finish()
    }
}

fn err(operation: impl Into<String>, e: etcd_client::Error) -> RegistryError {
    RegistryError::backend(ENGINE, operation, e)
}

impl EtcdStore {
    /// A client of the etcd cluster at `endpoints` (`http://127.0.0.1:2379`, or
    /// `127.0.0.1:2379`). Nothing is sent until it is used.
    pub fn new<E: AsRef<str>>(
        endpoints: impl IntoIterator<Item = E>,
        options: EtcdOptions,
    ) -> Result<EtcdStore> {
        let endpoints: Vec<String> = endpoints
            .into_iter()
            .map(|e| e.as_ref().trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(RegistryError::Config(
                "etcd needs at least one endpoint, like http://127.0.0.1:2379".into(),
            ));
        }
        Ok(EtcdStore {
            inner: Arc::new(Inner {
                endpoints,
                options,
                client: Mutex::new(None),
                lease: Mutex::new(None),
            }),
        })
    }

    /// The etcd client, connecting on first use.
    pub async fn client(&self) -> Result<Client> {
        let mut c = self.inner.client.lock().await;
        if let Some(c) = c.as_ref() {
            return Ok(c.clone());
        }
        let mut opts = ConnectOptions::new();
        if let Some(t) = self.inner.options.connect_timeout {
            opts = opts.with_connect_timeout(t);
        }
        if let Some((u, p)) = &self.inner.options.user {
            opts = opts.with_user(u.clone(), p.clone());
        }
        let client = Client::connect(&self.inner.endpoints, Some(opts))
            .await
            .map_err(|e| RegistryError::unreachable(ENGINE, self.inner.endpoints.join(","), e))?;
        *c = Some(client.clone());
        Ok(client)
    }

    /// The lease for a TTL of `ttl`, granting one if there is none (or the TTL changed).
    async fn lease(&self, client: &mut Client, ttl: Duration) -> Result<i64> {
        let secs = ttl.as_secs_f64().ceil().max(1.0) as i64;
        let mut lease = self.inner.lease.lock().await;
        if let Some(l) = lease.as_ref().filter(|l| l.ttl == secs) {
            return Ok(l.id);
        }
        let granted = client
            .lease_grant(secs, None)
            .await
            .map_err(|e| err(format!("grant a lease of {secs} s"), e))?;
        tracing::debug!(lease = granted.id(), ttl = secs, "etcd lease granted");
        *lease = Some(Lease {
            id: granted.id(),
            ttl: secs,
        });
        Ok(granted.id())
    }

    /// The lease expired or was revoked: its keys are gone; the refresh that follows finds them
    /// missing and re-creates them on a new lease.
    async fn lease_gone(&self, id: i64) -> Result<()> {
        tracing::warn!(
            lease = id,
            "etcd lease expired or revoked; granting a new one"
        );
        self.forget_lease(id).await;
        Ok(())
    }

    async fn forget_lease(&self, id: i64) {
        let mut lease = self.inner.lease.lock().await;
        if lease.as_ref().is_some_and(|l| l.id == id) {
            *lease = None;
        }
    }
}

/// Whether etcd says the lease does not exist (expired or revoked): `requested lease not found`
/// from a put, `lease not found` from a keep-alive.
fn is_lease_gone(e: &etcd_client::Error) -> bool {
    e.to_string().contains("lease not found")
}

impl RegistryStore for EtcdStore {
    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        self.inner.endpoints.join(",")
    }

    async fn connect(&self, _ttl: Duration) -> Result<()> {
        let mut c = self.client().await?;
        c.get("/", Some(GetOptions::new().with_count_only()))
            .await
            .map(|_| ())
            .map_err(|e| RegistryError::unreachable(ENGINE, self.inner.endpoints.join(","), e))
    }

    async fn keep_alive(&self, _ttl: Duration) -> Result<()> {
        let Some(id) = self.inner.lease.lock().await.as_ref().map(|l| l.id) else {
            return Ok(()); // the next put grants one
        };
        let mut c = self.client().await?;
        let result = async {
            let (mut keeper, mut stream) = c.lease_keep_alive(id).await?;
            keeper.keep_alive().await?;
            stream.message().await
        }
        .await;
        match result {
            Ok(Some(r)) if r.ttl() > 0 => Ok(()),
            Ok(_) => self.lease_gone(id).await,
            Err(e) if is_lease_gone(&e) => self.lease_gone(id).await,
            Err(e) => Err(err("keep the lease alive", e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let mut c = self.client().await?;
        let r = c
            .get(key, None)
            .await
            .map_err(|e| err(format!("get {key}"), e))?;
        Ok(r.kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        let mut c = self.client().await?;
        let id = self.lease(&mut c, ttl).await?;
        match c
            .put(key, value, Some(PutOptions::new().with_lease(id)))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_lease_gone(&e) => {
                self.forget_lease(id).await;
                let id = self.lease(&mut c, ttl).await?;
                c.put(key, value, Some(PutOptions::new().with_lease(id)))
                    .await
                    .map(|_| ())
                    .map_err(|e| err(format!("put {key}"), e))
            }
            Err(e) => Err(err(format!("put {key}"), e)),
        }
    }

    async fn update(&self, key: &str, value: &str) -> Result<bool> {
        // One transaction: if the key exists, put the value and keep whatever lease it has.
        let mut c = self.client().await?;
        let txn = Txn::new()
            .when([Compare::version(key, CompareOp::Greater, 0)])
            .and_then([TxnOp::put(
                key,
                value,
                Some(PutOptions::new().with_ignore_lease()),
            )]);
        c.txn(txn)
            .await
            .map(|r| r.succeeded())
            .map_err(|e| err(format!("update {key}"), e))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut c = self.client().await?;
        c.delete(key, None)
            .await
            .map(|_| ())
            .map_err(|e| err(format!("delete {key}"), e))
    }

    async fn close(&self) {
        let lease = self.inner.lease.lock().await.take();
        if let (Some(l), Ok(mut c)) = (lease, self.client().await) {
            // Revoking also deletes any key still attached to the lease.
            let _ = c.lease_revoke(l.id).await;
        }
    }
}

/// A watch on a directory, from a revision on.
pub struct EtcdWatch {
    stream: WatchStream,
}

impl fmt::Debug for EtcdWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdWatch").finish_non_exhaustive()
    }
}

impl ChangeWatch for EtcdWatch {
    async fn changed(&mut self) -> Result<()> {
        loop {
            match self.stream.message().await {
                Ok(Some(r)) => {
                    if r.canceled() {
                        return Err(RegistryError::backend(
                            ENGINE,
                            "watch",
                            format!(
                                "watch canceled by etcd (compacted at revision {}): {}",
                                r.compact_revision(),
                                r.cancel_reason()
                            ),
                        ));
                    }
                    if !r.events().is_empty() {
                        return Ok(());
                    }
                    // A creation confirmation or progress notice: keep waiting.
                }
                Ok(None) => {
                    return Err(RegistryError::backend(
                        ENGINE,
                        "watch",
                        "the watch stream ended",
                    ))
                }
                Err(e) => return Err(err("watch", e)),
            }
        }
    }
}

impl DiscoveryStore for EtcdStore {
    type Watch = EtcdWatch;

    const WATCH_RESUMES_FROM_LISTING: bool = true;

    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        self.inner.endpoints.join(",")
    }

    async fn list(&self, dir: &str) -> Result<Listing> {
        let prefix = format!("{dir}/");
        let mut c = self.client().await?;
        let r = c
            .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|e| err(format!("list {prefix}"), e))?;
        let revision = r.header().map(|h| h.revision()).unwrap_or_default();
        let entries = r
            .kvs()
            .iter()
            .filter_map(|kv| {
                let key = kv.key().strip_prefix(prefix.as_bytes())?;
                let child = String::from_utf8_lossy(key).into_owned();
                Some(ListedEntry::from_bytes(child, kv.value().to_vec()))
            })
            .collect();
        Ok(Listing {
            entries,
            revision: Some(revision.max(0) as u64),
        })
    }

    async fn watch(&self, dir: &str, after: &Listing) -> Result<EtcdWatch> {
        let prefix = format!("{dir}/");
        let mut c = self.client().await?;
        let mut opts = WatchOptions::new().with_prefix();
        if let Some(rev) = after.revision {
            opts = opts.with_start_revision(rev as i64 + 1);
        }
        let stream = c
            .watch(prefix.as_str(), Some(opts))
            .await
            .map_err(|e| err(format!("watch {prefix}"), e))?;
        Ok(EtcdWatch { stream })
    }
}
