//! # sextant-zookeeper
//!
//! A ZooKeeper registry for [sextant], laid out as rpcx's `ZooKeeperRegisterPlugin` and
//! `ZookeeperDiscovery` (over libkv's ZooKeeper store) lay it out, so Go rpcx and sextant servers
//! and clients share it:
//!
//! - node `{basePath}/{servicePath}/{network}@{host}:{port}`, e.g.
//!   `/rpcx_test/Arith/tcp@127.0.0.1:8972`, an **ephemeral** node whose data is the metadata
//!   query string (with rpcx's rate figures after each refresh);
//! - parents are persistent nodes created on demand, with the data rpcx gives them: the base
//!   path's node holds `rpcx_path`, the service's node holds the service name.
//!
//! ## TTL: the session
//!
//! An ephemeral node lives as long as the ZooKeeper session that created it. The store opens its
//! session with the plugin's TTL as session timeout (twice the update interval unless set, as in
//! rpcx), so a server that dies disappears one session timeout after its last heartbeat. The
//! ZooKeeper server bounds timeouts to `[minSessionTimeout, maxSessionTimeout]` (by default 2 and
//! 20 ticks: 4 s to 40 s with the usual 2 s tick), and the negotiated timeout is logged. The
//! session's own heartbeats keep the nodes alive; refreshes update their data. If the session
//! expires (the server was cut off for longer than the timeout), the store opens a new one, and
//! the next refresh re-creates the nodes. A node left by an older session of the same address is
//! replaced, so it does not vanish when that session expires.
//!
//! ## Watching
//!
//! Discoveries list the service node's children and read each child's data, and watch the service
//! node with a persistent recursive watch (ZooKeeper 3.6 or later), which reports children created
//! and deleted and data changed (so `state=inactive` written into a node is seen, which rpcx's
//! child watch misses). A disconnection ends the watch; the discovery reconnects, lists again and
//! watches again.
//!
//! ```no_run
//! use sextant_registry::{DiscoveryOptions, RegistryOptions};
//! use sextant_zookeeper::{ZooKeeperDiscovery, ZooKeeperOptions, ZooKeeperRegisterPlugin, ZooKeeperStore};
//! # async fn run(server: sextant::Server) -> Result<(), Box<dyn std::error::Error>> {
//! let store = ZooKeeperStore::new("127.0.0.1:2181", ZooKeeperOptions::default())?;
//! server.add_plugin(ZooKeeperRegisterPlugin::start(store.clone(), RegistryOptions::default()).await?);
//! let discovery = ZooKeeperDiscovery::start(store, "/rpcx_test", "Arith", DiscoveryOptions::default()).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sextant::util::lock;
use sextant_registry::{
    ChangeWatch, DiscoveryStore, ListedEntry, Listing, RegistryDiscovery, RegistryError,
    RegistryPlugin, RegistryStore, Result,
};
use tokio::sync::Mutex;
use zookeeper_client::{
    Acls, AddWatchMode, Client, CreateMode, Error as ZkError, EventType, PersistentWatcher,
    SessionState, StateWatcher,
};

const ENGINE: &str = "zookeeper";

/// rpcx's `ZooKeeperRegisterPlugin`: the registry plugin on ZooKeeper.
pub type ZooKeeperRegisterPlugin = RegistryPlugin<ZooKeeperStore>;

/// rpcx's `ZookeeperDiscovery`: the discovery on ZooKeeper.
pub type ZooKeeperDiscovery = RegistryDiscovery;

/// Settings of a [`ZooKeeperStore`]. Every field states its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ZooKeeperOptions {
    /// The session timeout of a store used only by discoveries (a plugin's store uses the
    /// plugin's TTL). Default: 10 s.
    pub session_timeout: Duration,
    /// How long establishing a session may take. Default: 5 s.
    pub connect_timeout: Duration,
}

impl Default for ZooKeeperOptions {
    fn default() -> Self {
        ZooKeeperOptions {
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl ZooKeeperOptions {
    /// Sets [`session_timeout`](Self::session_timeout).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

struct Inner {
    servers: String,
    options: ZooKeeperOptions,
    /// The session timeout asked for by a plugin (its TTL), once known.
    ttl: std::sync::Mutex<Option<Duration>>,
    client: Mutex<Option<Client>>,
}

/// A client of a ZooKeeper ensemble, for [`RegistryPlugin`] (server side) and
/// [`RegistryDiscovery`] (client side). Cheap to clone: clones share the session.
///
/// The session is opened on first use and reopened if it expires.
#[derive(Clone)]
pub struct ZooKeeperStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for ZooKeeperStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZooKeeperStore")
            .field("servers", &self.inner.servers)
            .field("options", &self.inner.options)
            .finish()
    }
}

fn err(operation: impl Into<String>, e: ZkError) -> RegistryError {
    RegistryError::backend(ENGINE, operation, e)
}

/// Errors after which the session cannot be used any more.
fn session_lost(e: &ZkError) -> bool {
    matches!(
        e,
        ZkError::SessionExpired | ZkError::ClientClosed | ZkError::AuthFailed
    )
}

impl ZooKeeperStore {
    /// A client of the ensemble at `servers` (`127.0.0.1:2181`, or `host1:2181,host2:2181`,
    /// optionally with a chroot: `host:2181/apps`). Nothing is sent until it is used.
    pub fn new(servers: &str, options: ZooKeeperOptions) -> Result<ZooKeeperStore> {
        let servers = servers.trim();
        if servers.is_empty() {
            return Err(RegistryError::Config(
                "ZooKeeper needs at least one server, like 127.0.0.1:2181".into(),
            ));
        }
        Ok(ZooKeeperStore {
            inner: Arc::new(Inner {
                servers: servers.to_string(),
                options,
                ttl: std::sync::Mutex::new(None),
                client: Mutex::new(None),
            }),
        })
    }

    /// The session, opened on first use (and after an expiry).
    pub async fn client(&self) -> Result<Client> {
        let mut guard = self.inner.client.lock().await;
        if let Some(c) = guard.as_ref() {
            if !c.state().is_terminated() {
                return Ok(c.clone());
            }
            tracing::warn!(state = %c.state(), "ZooKeeper session ended; opening a new one");
        }
        let timeout = lock(&self.inner.ttl).unwrap_or(self.inner.options.session_timeout);
        let connect = Client::connector()
            .with_session_timeout(timeout)
            .with_connection_timeout(self.inner.options.connect_timeout)
            .with_fail_eagerly()
            .connect(&self.inner.servers);
        let client = match tokio::time::timeout(self.inner.options.connect_timeout, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(RegistryError::unreachable(
                    ENGINE,
                    self.inner.servers.clone(),
                    e,
                ))
            }
            Err(_) => {
                return Err(RegistryError::unreachable(
                    ENGINE,
                    self.inner.servers.clone(),
                    format!("no session within {:?}", self.inner.options.connect_timeout),
                ))
            }
        };
        if client.session_timeout() != timeout {
            tracing::info!(
                asked = ?timeout,
                negotiated = ?client.session_timeout(),
                "ZooKeeper bounded the session timeout (minSessionTimeout/maxSessionTimeout)"
            );
        }
        *guard = Some(client.clone());
        Ok(client)
    }

    /// Forgets a session that cannot be used any more, so the next call opens a new one.
    async fn reset_if_lost(&self, e: &ZkError) {
        if session_lost(e) {
            *self.inner.client.lock().await = None;
        }
    }

    /// Creates the persistent parents of `key` that are missing, with rpcx's data.
    async fn create_parents(&self, client: &Client, key: &str) -> Result<()> {
        let parts: Vec<&str> = key.trim_start_matches('/').split('/').collect();
        let acls = CreateMode::Persistent.with_acls(Acls::anyone_all());
        // parts = [base segments..., service, address]; the base's last node holds `rpcx_path`
        // and the service node its name, as rpcx's plugin writes them.
        for i in 1..parts.len() {
            let path = format!("/{}", parts[..i].join("/"));
            let data: &[u8] = if i == parts.len() - 1 {
                parts[i - 1].as_bytes()
            } else if i == parts.len() - 2 {
                b"rpcx_path"
            } else {
                b""
            };
            match client.create(&path, data, &acls).await {
                Ok(_) | Err(ZkError::NodeExists) => {}
                Err(e) => return Err(err(format!("create {path}"), e)),
            }
        }
        Ok(())
    }

    async fn put_inner(&self, client: &Client, key: &str, value: &str) -> Result<(), ZkError> {
        let acls = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        for _ in 0..3 {
            match client.create(key, value.as_bytes(), &acls).await {
                Ok(_) => return Ok(()),
                Err(ZkError::NoNode) => {
                    self.create_parents(client, key)
                        .await
                        .map_err(|e| ZkError::UnexpectedError(e.to_string()))?;
                }
                Err(ZkError::NodeExists) => {
                    let (_, stat) = match client.get_data(key).await {
                        Ok(v) => v,
                        Err(ZkError::NoNode) => continue,
                        Err(e) => return Err(e),
                    };
                    if stat.ephemeral_owner == client.session_id().0 {
                        return match client.set_data(key, value.as_bytes(), None).await {
                            Ok(_) => Ok(()),
                            Err(ZkError::NoNode) => continue,
                            Err(e) => Err(e),
                        };
                    }
                    // Left by another session (an earlier run of this server that has not
                    // expired yet, or written by hand): replace it with ours.
                    match client.delete(key, Some(stat.version)).await {
                        Ok(()) | Err(ZkError::NoNode) | Err(ZkError::BadVersion) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ZkError::UnexpectedError(format!(
            "{key} kept changing while being written"
        )))
    }
}

impl RegistryStore for ZooKeeperStore {
    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        self.inner.servers.clone()
    }

    async fn connect(&self, ttl: Duration) -> Result<()> {
        *lock(&self.inner.ttl) = Some(ttl);
        let client = self.client().await?;
        if client.session_timeout() != ttl {
            tracing::info!(
                ttl = ?ttl,
                session_timeout = ?client.session_timeout(),
                "entries live as long as the ZooKeeper session: its timeout is their TTL"
            );
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let client = self.client().await?;
        match client.get_data(key).await {
            // A node of another session is read too; `put` replaces it with one of ours.
            Ok((data, _)) => Ok(Some(String::from_utf8_lossy(&data).into_owned())),
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => {
                self.reset_if_lost(&e).await;
                Err(err(format!("get {key}"), e))
            }
        }
    }

    async fn put(&self, key: &str, value: &str, _ttl: Duration) -> Result<()> {
        let client = self.client().await?;
        match self.put_inner(&client, key, value).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.reset_if_lost(&e).await;
                Err(err(format!("put {key}"), e))
            }
        }
    }

    async fn update(&self, key: &str, value: &str) -> Result<bool> {
        // setData keeps the node's owner: an ephemeral node stays the server's session's.
        let client = self.client().await?;
        match client.set_data(key, value.as_bytes(), None).await {
            Ok(_) => Ok(true),
            Err(ZkError::NoNode) => Ok(false),
            Err(e) => {
                self.reset_if_lost(&e).await;
                Err(err(format!("update {key}"), e))
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let client = self.client().await?;
        match client.delete(key, None).await {
            Ok(()) | Err(ZkError::NoNode) => Ok(()),
            Err(e) => {
                self.reset_if_lost(&e).await;
                Err(err(format!("delete {key}"), e))
            }
        }
    }

    async fn close(&self) {
        // Dropping the last handle closes the session, which removes any node still left.
        self.inner.client.lock().await.take();
    }
}

/// A persistent recursive watch on a service node, ended by a disconnection.
pub struct ZooKeeperWatch {
    watcher: PersistentWatcher,
    state: StateWatcher,
}

impl fmt::Debug for ZooKeeperWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZooKeeperWatch").finish_non_exhaustive()
    }
}

fn disconnected(state: SessionState) -> RegistryError {
    RegistryError::backend(ENGINE, "watch", format!("session {state}"))
}

impl ChangeWatch for ZooKeeperWatch {
    async fn changed(&mut self) -> Result<()> {
        loop {
            tokio::select! {
                ev = self.watcher.changed() => {
                    if ev.event_type == EventType::Session {
                        if ev.session_state == SessionState::SyncConnected {
                            continue;
                        }
                        return Err(disconnected(ev.session_state));
                    }
                    return Ok(());
                }
                st = self.state.changed() => {
                    if st != SessionState::SyncConnected {
                        return Err(disconnected(st));
                    }
                }
            }
        }
    }
}

impl DiscoveryStore for ZooKeeperStore {
    type Watch = ZooKeeperWatch;

    /// ZooKeeper watches start now, not at a past version: the discovery lists once more after
    /// the watch is set.
    const WATCH_RESUMES_FROM_LISTING: bool = false;

    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        self.inner.servers.clone()
    }

    async fn list(&self, dir: &str) -> Result<Listing> {
        let client = self.client().await?;
        let children = match client.list_children(dir).await {
            Ok(c) => c,
            Err(ZkError::NoNode) => return Ok(Listing::default()),
            Err(e) => {
                self.reset_if_lost(&e).await;
                return Err(err(format!("list {dir}"), e));
            }
        };
        let mut entries = Vec::with_capacity(children.len());
        for child in children {
            let path = format!("{dir}/{child}");
            match client.get_data(&path).await {
                Ok((data, _)) => entries.push(ListedEntry::from_bytes(child, data)),
                Err(ZkError::NoNode) => {} // removed since the listing
                Err(e) => {
                    self.reset_if_lost(&e).await;
                    return Err(err(format!("get {path}"), e));
                }
            }
        }
        Ok(Listing {
            entries,
            revision: None,
        })
    }

    async fn watch(&self, dir: &str, _after: &Listing) -> Result<ZooKeeperWatch> {
        let client = self.client().await?;
        let mut state = client.state_watcher();
        if state.state() != SessionState::SyncConnected {
            return Err(disconnected(state.state()));
        }
        match client.watch(dir, AddWatchMode::PersistentRecursive).await {
            Ok(watcher) => Ok(ZooKeeperWatch { watcher, state }),
            Err(e) => {
                self.reset_if_lost(&e).await;
                Err(err(format!("watch {dir}"), e))
            }
        }
    }
}
