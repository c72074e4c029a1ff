//! [`Peer2PeerDiscovery`]: one fixed server, no registry.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{clone_list, KVPair, ServerList, Servers, ServiceDiscovery};
use crate::error::Result;
use crate::transport::ToAddress;

/// One server, given up front (rpcx's `Peer2PeerDiscovery`): the client dials it directly.
///
/// ```
/// use sextant::discovery::{Peer2PeerDiscovery, ServiceDiscovery};
/// let d = Peer2PeerDiscovery::new("tcp@127.0.0.1:8972", "")?;
/// assert_eq!(d.get_services()[0].key, "tcp@127.0.0.1:8972");
/// assert!(Peer2PeerDiscovery::new("carrier-pigeon@1.2.3.4:5", "").is_err());
/// # Ok::<(), sextant::Error>(())
/// ```
#[derive(Debug)]
pub struct Peer2PeerDiscovery {
    list: ServerList,
}

impl Peer2PeerDiscovery {
    /// The server at `address` (`tcp@host:port`, `unix@/path`, `inprocess@name`, `host:port`,
    /// an [`Address`](crate::Address) or a `SocketAddr`) with its metadata query string (may be
    /// empty). The server is listed as the address in rpcx's form (`network@address`). Fails
    /// when the address cannot be parsed, cannot be dialled (port 0, no host) or names a network
    /// sextant cannot dial.
    pub fn new(address: impl ToAddress, metadata: &str) -> Result<Peer2PeerDiscovery> {
        let address = address.to_address()?;
        address.check_dialable()?;
        Ok(Peer2PeerDiscovery {
            list: ServerList::new(vec![KVPair::new(address.to_string(), metadata)]),
        })
    }
}

impl ServiceDiscovery for Peer2PeerDiscovery {
    fn get_services(&self) -> Servers {
        self.list.get()
    }

    fn watch_services(&self) -> watch::Receiver<Servers> {
        self.list.subscribe()
    }

    /// A new Peer2PeerDiscovery with the same servers, whatever `service_path`.
    fn clone_for(
        &self,
        _service_path: &str,
    ) -> BoxFuture<'static, Result<Arc<dyn ServiceDiscovery>>> {
        clone_list(&self.list, |list| Peer2PeerDiscovery { list })
    }
}
