//! [`InprocessDiscovery`]: a server in the same process, reached without a socket.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{clone_list, KVPair, ServerList, Servers, ServiceDiscovery};
use crate::error::Result;
use crate::transport::Address;

/// Servers in this process (rpcx's `InprocessDiscovery`), listening on in-process names; see
/// [`InProcess`](crate::transport::InProcess). Calls go through an in-memory pipe instead of
/// TCP, so tests and development builds need no network.
///
/// The XClient dials these names in the hub given by its `in_process` option, or in the
/// process-wide hub when it has none.
///
/// ```
/// use sextant::discovery::{InprocessDiscovery, ServiceDiscovery};
/// let d = InprocessDiscovery::new(["arith"])?;
/// assert_eq!(d.get_services()[0].key, "inprocess@arith");
/// # Ok::<(), sextant::Error>(())
/// ```
#[derive(Debug)]
pub struct InprocessDiscovery {
    list: ServerList,
}

impl InprocessDiscovery {
    /// Servers listening on these in-process names (`arith`, or `inprocess@arith`).
    pub fn new<I, S>(names: I) -> Result<InprocessDiscovery>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut v = Vec::new();
        for n in names {
            let n = n.as_ref();
            let key = if n.starts_with("inprocess@") {
                n.to_string()
            } else {
                format!("inprocess@{n}")
            };
            Address::parse(&key)?;
            v.push(KVPair::new(key, ""));
        }
        Ok(InprocessDiscovery {
            list: ServerList::new(v),
        })
    }
}

impl ServiceDiscovery for InprocessDiscovery {
    fn get_services(&self) -> Servers {
        self.list.get()
    }

    fn watch_services(&self) -> watch::Receiver<Servers> {
        self.list.subscribe()
    }

    /// A new InprocessDiscovery with the same servers, whatever `service_path`.
    fn clone_for(
        &self,
        _service_path: &str,
    ) -> BoxFuture<'static, Result<Arc<dyn ServiceDiscovery>>> {
        clone_list(&self.list, |list| InprocessDiscovery { list })
    }
}
