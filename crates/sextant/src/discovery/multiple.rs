//! [`MultipleServersDiscovery`]: a fixed list of servers that the program may change.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{clone_list, KVPair, ServerList, Servers, ServiceDiscovery};
use crate::error::Result;
use crate::transport::Address;

/// A list of servers set in code (rpcx's `MultipleServersDiscovery`), changed at run time with
/// [`update`](MultipleServersDiscovery::update). Every XClient using it sees each change.
///
/// ```
/// use sextant::discovery::{MultipleServersDiscovery, ServiceDiscovery};
/// use sextant::KVPair;
/// let d = MultipleServersDiscovery::new(vec![
///     KVPair::new("tcp@127.0.0.1:8972", "weight=2"),
///     KVPair::new("tcp@127.0.0.1:8973", ""),
/// ])?;
/// assert_eq!(d.get_services().len(), 2);
/// d.update(vec![KVPair::new("tcp@127.0.0.1:8973", "")])?;
/// assert_eq!(d.get_services().len(), 1);
/// # Ok::<(), sextant::Error>(())
/// ```
#[derive(Debug)]
pub struct MultipleServersDiscovery {
    list: ServerList,
}

impl MultipleServersDiscovery {
    /// These servers. An empty list is allowed (calls fail with [`Error::NoServer`] until
    /// servers are added); an address that cannot be parsed, or names a network sextant cannot
    /// dial, is an error.
    ///
    /// [`Error::NoServer`]: crate::Error::NoServer
    pub fn new(servers: Vec<KVPair>) -> Result<MultipleServersDiscovery> {
        check(&servers)?;
        Ok(MultipleServersDiscovery {
            list: ServerList::new(servers),
        })
    }

    /// Replaces the list (rpcx's `Update`). On an invalid address nothing changes and the error
    /// says which address is wrong.
    pub fn update(&self, servers: Vec<KVPair>) -> Result<()> {
        check(&servers)?;
        self.list.set(servers);
        Ok(())
    }
}

fn check(servers: &[KVPair]) -> Result<()> {
    for s in servers {
        Address::parse(&s.key)?;
    }
    Ok(())
}

impl ServiceDiscovery for MultipleServersDiscovery {
    fn get_services(&self) -> Servers {
        self.list.get()
    }

    fn watch_services(&self) -> watch::Receiver<Servers> {
        self.list.subscribe()
    }

    /// A new MultipleServersDiscovery with the same servers, whatever `service_path`.
    fn clone_for(
        &self,
        _service_path: &str,
    ) -> BoxFuture<'static, Result<Arc<dyn ServiceDiscovery>>> {
        clone_list(&self.list, |list| MultipleServersDiscovery { list })
    }
}
