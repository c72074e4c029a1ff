//! Service discovery: where the servers of a service are.
//!
//! A [`ServiceDiscovery`] reports the current servers of one service as [`KVPair`]s, rpcx's shape:
//! the key is the server address (`tcp@127.0.0.1:8972`) and the value its metadata as a URL
//! query string (`weight=10&group=test&state=inactive`). It also lets the XClient watch the list:
//! every change publishes the whole new list.
//!
//! Implementations keep their list in a [`ServerList`], which owns the watch channel.
//!
//! Built in, as in rpcx: [`Peer2PeerDiscovery`] (one server), [`MultipleServersDiscovery`] (a
//! list set in code, updatable at run time) and [`InprocessDiscovery`] (servers in the same
//! process, over in-memory pipes).
//!
//! [`ServiceDiscovery::clone_for`] (rpcx's `Clone(servicePath)`) gives the discovery of another
//! service from the same source: the built-in lists hand out the same servers, a registry
//! discovery watches the other service's directory.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::error::{Error, Result};

mod inprocess;
mod multiple;
mod peer2peer;

pub use inprocess::InprocessDiscovery;
pub use multiple::MultipleServersDiscovery;
pub use peer2peer::Peer2PeerDiscovery;

/// One server of a service: rpcx's `KVPair`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KVPair {
    /// The server address, `network@host:port` (e.g. `tcp@127.0.0.1:8972`).
    pub key: String,
    /// The server's metadata as a URL query string (e.g. `weight=10&group=test`); may be empty.
    pub value: String,
}

impl KVPair {
    /// A server at `address` with `metadata`.
    pub fn new(address: impl Into<String>, metadata: impl Into<String>) -> KVPair {
        KVPair {
            key: address.into(),
            value: metadata.into(),
        }
    }

    /// The address (the key).
    pub fn address(&self) -> &str {
        &self.key
    }

    /// The metadata query string (the value).
    pub fn metadata(&self) -> &str {
        &self.value
    }
}

/// The servers of one service, as a shared, immutable snapshot.
pub type Servers = Arc<[KVPair]>;

/// A source of servers for one service (rpcx's `ServiceDiscovery`).
pub trait ServiceDiscovery: Send + Sync + 'static {
    /// The servers known now.
    fn get_services(&self) -> Servers;

    /// A receiver that sees every new list of servers (rpcx's `WatchService`). The current list
    /// is already in it.
    fn watch_services(&self) -> watch::Receiver<Servers>;

    /// Stops watching the source; the last list stays in effect.
    fn close(&self) {}

    /// A discovery of the servers of another service, `service_path`, from the same source
    /// (rpcx's `Clone(servicePath)`): one registry discovery per service without repeating the
    /// registry's settings. The new discovery is independent: closing either leaves the other
    /// running.
    ///
    /// The built-in fixed lists ([`Peer2PeerDiscovery`], [`MultipleServersDiscovery`],
    /// [`InprocessDiscovery`]) return a new discovery with the same servers (later updates of
    /// the original are not seen by the clone); a registry discovery starts watching
    /// `{basePath}/{service_path}` on the same registry, with the same options.
    ///
    /// The default fails with [`Error::Config`], naming the discovery and `service_path`: a
    /// discovery that can be cloned overrides it.
    fn clone_for(
        &self,
        service_path: &str,
    ) -> BoxFuture<'static, Result<Arc<dyn ServiceDiscovery>>> {
        let e = Error::Config(format!(
            "the discovery {} cannot be cloned for service path {service_path:?}: it does not \
             implement ServiceDiscovery::clone_for; build a discovery for that service instead",
            std::any::type_name::<Self>()
        ));
        Box::pin(futures::future::ready(Err(e)))
    }
}

/// A fixed-list discovery's [`clone_for`](ServiceDiscovery::clone_for): a new discovery with the
/// same servers.
fn clone_list<D: ServiceDiscovery>(
    list: &ServerList,
    make: impl FnOnce(ServerList) -> D,
) -> BoxFuture<'static, Result<Arc<dyn ServiceDiscovery>>> {
    let d: Arc<dyn ServiceDiscovery> = Arc::new(make(ServerList::new(list.get().to_vec())));
    Box::pin(futures::future::ready(Ok(d)))
}

/// A shared discovery is a discovery: keep an `Arc` to call, say,
/// [`MultipleServersDiscovery::update`] while an XClient watches it.
impl<D: ServiceDiscovery + ?Sized> ServiceDiscovery for Arc<D> {
    fn get_services(&self) -> Servers {
        (**self).get_services()
    }

    fn watch_services(&self) -> watch::Receiver<Servers> {
        (**self).watch_services()
    }

    fn close(&self) {
        (**self).close()
    }

    fn clone_for(
        &self,
        service_path: &str,
    ) -> BoxFuture<'static, Result<Arc<dyn ServiceDiscovery>>> {
        (**self).clone_for(service_path)
    }
}

impl fmt::Debug for dyn ServiceDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceDiscovery")
            .field("servers", &self.get_services())
            .finish()
    }
}

/// The state of a discovery: the current server list and its watchers.
///
/// Publishing a list equal to the current one does not wake the watchers.
#[derive(Debug)]
pub struct ServerList {
    tx: watch::Sender<Servers>,
}

impl Default for ServerList {
    fn default() -> Self {
        ServerList::new(Vec::new())
    }
}

impl ServerList {
    /// A list starting with `servers`.
    pub fn new(servers: Vec<KVPair>) -> ServerList {
        let (tx, _) = watch::channel(normalize(servers));
        ServerList { tx }
    }

    /// Replaces the list; watchers are woken if it changed. Returns whether it changed.
    pub fn set(&self, servers: Vec<KVPair>) -> bool {
        let new = normalize(servers);
        self.tx.send_if_modified(|cur| {
            if *cur == new {
                false
            } else {
                *cur = new;
                true
            }
        })
    }

    /// The current list.
    pub fn get(&self) -> Servers {
        self.tx.borrow().clone()
    }

    /// A new watcher.
    pub fn subscribe(&self) -> watch::Receiver<Servers> {
        self.tx.subscribe()
    }
}

/// Sorted and deduplicated by address (the last value for an address wins), so that lists from
/// different sources compare equal when they hold the same servers.
fn normalize(mut servers: Vec<KVPair>) -> Servers {
    servers.reverse();
    servers.sort_by(|a, b| a.key.cmp(&b.key));
    servers.dedup_by(|a, b| a.key == b.key);
    servers.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_list_publishes_only_changes() {
        let l = ServerList::new(vec![
            KVPair::new("tcp@b:1", ""),
            KVPair::new("tcp@a:1", "weight=2"),
        ]);
        let mut rx = l.subscribe();
        assert_eq!(l.get()[0].key, "tcp@a:1");
        assert!(!l.set(vec![
            KVPair::new("tcp@a:1", "weight=2"),
            KVPair::new("tcp@b:1", "")
        ]));
        assert!(!rx.has_changed().unwrap());
        assert!(l.set(vec![KVPair::new("tcp@a:1", "weight=3")]));
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().len(), 1);
    }

    #[tokio::test]
    async fn clone_for_gives_the_same_servers_or_says_why_not() {
        let d = MultipleServersDiscovery::new(vec![
            KVPair::new("tcp@127.0.0.1:1", "weight=2"),
            KVPair::new("tcp@127.0.0.1:2", ""),
        ])
        .unwrap();
        let c = d.clone_for("Other").await.unwrap();
        assert_eq!(c.get_services(), d.get_services());
        // Independent of the original.
        d.update(vec![]).unwrap();
        assert_eq!(c.get_services().len(), 2);
        // Through an Arc too.
        let shared = Arc::new(Peer2PeerDiscovery::new("tcp@127.0.0.1:3", "").unwrap());
        let c = shared.clone_for("Other").await.unwrap();
        assert_eq!(c.get_services()[0].key, "tcp@127.0.0.1:3");
        let c = InprocessDiscovery::new(["a"])
            .unwrap()
            .clone_for("X")
            .await
            .unwrap();
        assert_eq!(c.get_services()[0].key, "inprocess@a");

        struct Fixed(ServerList);
        impl ServiceDiscovery for Fixed {
            fn get_services(&self) -> Servers {
                self.0.get()
            }
            fn watch_services(&self) -> watch::Receiver<Servers> {
                self.0.subscribe()
            }
        }
        let e = Fixed(ServerList::default())
            .clone_for("Other")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("\"Other\"") && text.contains("cannot be cloned"),
            "{text}"
        );
    }

    #[test]
    fn duplicate_addresses_keep_the_last_value() {
        let l = ServerList::new(vec![
            KVPair::new("tcp@a:1", "v=1"),
            KVPair::new("tcp@a:1", "v=2"),
        ]);
        assert_eq!(l.get().len(), 1);
        assert_eq!(l.get()[0].value, "v=2");
    }
}
