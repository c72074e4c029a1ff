//! What a registry engine must provide: the small backend traits behind every registry crate.
//!
//! A backend crate (`sextant-etcd`, `sextant-zookeeper`, ...) implements [`RegistryStore`] for
//! the server side and [`DiscoveryStore`] for the client side, in the engine's own terms (an etcd
//! lease, a ZooKeeper ephemeral node, a Redis key with a TTL). Everything else — when to publish,
//! the TTL refresh loop, re-creating entries that vanished, rate figures, keeping the last known
//! servers through an outage, reconnecting with backoff, validating what is listed — is written
//! once, in [`RegistryPlugin`](crate::RegistryPlugin) and
//! [`RegistryDiscovery`](crate::RegistryDiscovery).
//!
//! Keys given to a store are normalized registry keys, `/{base}/{service}/{network}@{host}:{port}`
//! (see [`path`](crate::path)); a store maps them to the engine's own form if it differs (Consul's
//! KV keys have no leading slash). Every call is bounded by the caller with a timeout, so a store
//! need not add its own.

use std::future::Future;
use std::time::Duration;

use crate::error::Result;

/// The server side of a registry engine: publish, refresh and remove entries under a TTL.
pub trait RegistryStore: Send + Sync + 'static {
    /// The engine's name for logs and errors: `etcd`, `zookeeper`, `redis`, `consul`, `mdns`,
    /// `embedded`.
    fn engine(&self) -> &'static str;

    /// The endpoints, for error messages (`http://127.0.0.1:2379`).
    fn endpoints(&self) -> String;

    /// Connects, or checks that the engine answers. Called once when a plugin starts, with the
    /// TTL its entries will have (an engine whose TTL is a session, ZooKeeper, opens its session
    /// with it); an error here is reported as
    /// [`RegistryError::Unreachable`](crate::RegistryError::Unreachable).
    fn connect(&self, ttl: Duration) -> impl Future<Output = Result<()>> + Send;

    /// Renews what keeps this server's entries alive, once per update interval before the
    /// entries are refreshed (an etcd lease keep-alive, a Consul session renewal). Engines whose
    /// TTL belongs to each entry do nothing. If the lease or session is gone, the store gets a new
    /// one; entries that went with the old one are found missing and re-created by the caller.
    fn keep_alive(&self, ttl: Duration) -> impl Future<Output = Result<()>> + Send {
        let _ = ttl;
        async { Ok(()) }
    }

    /// The value at `key`, or `None` if there is no such entry.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Creates or replaces the entry at `key` with `value`; it disappears after `ttl` unless
    /// written again or kept alive.
    fn put(&self, key: &str, value: &str, ttl: Duration)
        -> impl Future<Output = Result<()>> + Send;

    /// Removes the entry at `key`; removing a missing entry is not an error.
    fn delete(&self, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Replaces the value of the existing entry at `key` without taking it over: the lease,
    /// session or TTL that keeps it alive stays the publishing server's, as rpcx-ui's edits do
    /// (an etcd put that ignores the lease, a ZooKeeper `setData`, a Redis `SET XX KEEPTTL`).
    /// `Ok(false)` if there is no such entry, which is then not created. Operators' tools
    /// (`sextant set`) use it; a server publishing its own entries uses [`put`](Self::put).
    ///
    /// The default answers [`RegistryError::Config`](crate::RegistryError::Config): the engine
    /// cannot edit entries it does not own.
    fn update(&self, key: &str, value: &str) -> impl Future<Output = Result<bool>> + Send {
        let _ = value;
        let text = format!(
            "the {} registry cannot edit {key} in place: its entries belong to the servers \
             that publish them",
            self.engine()
        );
        async move { Err(crate::RegistryError::Config(text)) }
    }

    /// Releases what the store holds for this server (revokes a lease, closes a session) after
    /// its entries were deleted at shutdown.
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// One entry found under a service's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEntry {
    /// The part of the key after `{basePath}/{servicePath}/`: the server address, if the entry
    /// is well formed.
    pub child: String,
    /// The entry's value as text, or why it could not be read as text (not UTF-8, not in the
    /// engine's value format). Unreadable entries are skipped with a warning.
    pub value: std::result::Result<String, String>,
}

impl ListedEntry {
    /// A readable entry.
    pub fn new(child: impl Into<String>, value: impl Into<String>) -> ListedEntry {
        ListedEntry {
            child: child.into(),
            value: Ok(value.into()),
        }
    }

    /// An entry whose value is raw bytes: readable if they are UTF-8.
    pub fn from_bytes(child: impl Into<String>, value: Vec<u8>) -> ListedEntry {
        ListedEntry {
            child: child.into(),
            value: String::from_utf8(value).map_err(|e| {
                format!(
                    "value is not UTF-8 (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                )
            }),
        }
    }
}

/// The entries under a service's directory at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The entries, in any order.
    pub entries: Vec<ListedEntry>,
    /// The engine's position in its history when the listing was taken (etcd's revision, Consul's
    /// index), if it has one; [`DiscoveryStore::watch`] starts after it.
    pub revision: Option<u64>,
}

/// The client side of a registry engine: list and watch a service's directory.
///
/// A store is a cheap handle (`Clone`), so that a discovery can start another one on the same
/// engine for another service ([`clone_for`](sextant::ServiceDiscovery::clone_for)).
pub trait DiscoveryStore: Clone + Send + Sync + 'static {
    /// A live watch on a directory.
    type Watch: ChangeWatch;

    /// The engine's name for logs and errors.
    fn engine(&self) -> &'static str;

    /// The endpoints, for error messages.
    fn endpoints(&self) -> String;

    /// Whether a watch started from a listing sees every change made after that listing (etcd's
    /// revisions, Consul's indexes). If not (ZooKeeper, Redis pub/sub), the discovery lists once
    /// more after each new watch is in place, so that nothing changed in between goes unseen.
    const WATCH_RESUMES_FROM_LISTING: bool;

    /// Lists the entries directly under `dir` (`/rpcx_test/Arith`). A directory that does not
    /// exist is an empty listing, not an error.
    fn list(&self, dir: &str) -> impl Future<Output = Result<Listing>> + Send;

    /// Starts watching `dir` for changes made after `after` was listed.
    fn watch(&self, dir: &str, after: &Listing)
        -> impl Future<Output = Result<Self::Watch>> + Send;
}

/// A watch on a directory, from [`DiscoveryStore::watch`].
pub trait ChangeWatch: Send + 'static {
    /// Waits until something under the directory may have changed (`Ok`: the discovery lists
    /// again), or the watch broke (`Err`: the discovery reconnects with backoff and lists again).
    /// Spurious wake-ups are harmless.
    fn changed(&mut self) -> impl Future<Output = Result<()>> + Send;
}
