//! The server set of an XClient: what discovery lists, filtered by `state` and `group`, with one
//! [`Endpoint`] (connection, breaker) per usable server; kept up to date by a watch task.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::pool::{DialConfig, Endpoint};
use super::Inner;
use crate::discovery::{KVPair, Servers};
use crate::error::Error;
use crate::selector::ServerNode;
use crate::transport::Address;
use crate::util::lock;

/// The usable servers at one moment, with how many discovery listed and why others were left out.
#[derive(Default)]
pub(super) struct Snapshot {
    pub(super) nodes: Vec<ServerNode>,
    pub(super) endpoints: HashMap<Arc<str>, Arc<Endpoint>>,
    pub(super) listed: usize,
    pub(super) inactive: usize,
    pub(super) other_group: usize,
    pub(super) invalid: usize,
}

impl Snapshot {
    /// Builds the set for `list`: leaves out inactive servers, servers of another group (when
    /// `group` is set) and invalid addresses; reuses the endpoints of `old` for servers still
    /// listed, so their connections and breakers survive the change.
    pub(super) fn build(
        list: &[KVPair],
        old: &Snapshot,
        group: &str,
        config: &Arc<DialConfig>,
        service_path: &str,
    ) -> Snapshot {
        let mut snap = Snapshot {
            listed: list.len(),
            ..Snapshot::default()
        };
        for kv in list {
            let node = ServerNode::from(kv);
            if node.is_inactive() {
                snap.inactive += 1;
                continue;
            }
            if !group.is_empty() && node.get("group") != Some(group) {
                snap.other_group += 1;
                continue;
            }
            let endpoint = match old.endpoints.get(node.address()) {
                Some(ep) => ep.clone(),
                None => match Address::parse(&kv.key).and_then(|a| a.check_dialable().map(|_| a)) {
                    Ok(a) => Arc::new(Endpoint::new(node.address().clone(), a, config.clone())),
                    Err(e) => {
                        tracing::warn!(service = %service_path, error = %e, "leaving out a server with an invalid address");
                        snap.invalid += 1;
                        continue;
                    }
                },
            };
            snap.endpoints.insert(node.address().clone(), endpoint);
            snap.nodes.push(node);
        }
        snap
    }

    /// The error of a call that found no server: says why (nothing listed, all filtered out,
    /// all breakers open, or the selector found none).
    pub(super) fn no_server(
        &self,
        service_path: &str,
        group: &str,
        tried: &[Arc<Endpoint>],
    ) -> Error {
        let p = service_path;
        if self.nodes.is_empty() {
            if self.listed == 0 {
                return Error::NoServer(format!(
                    "{p}: discovery lists no servers; check the discovery's addresses or \
                     registry"
                ));
            }
            return Error::NoServer(format!(
                "{p}: none of the {} listed servers can be used ({} inactive, {} not in group \
                 {:?}, {} with an invalid address)",
                self.listed, self.inactive, self.other_group, group, self.invalid
            ));
        }
        let untried: Vec<&Arc<Endpoint>> = self
            .endpoints
            .values()
            .filter(|ep| !tried.iter().any(|t| Arc::ptr_eq(t, ep)))
            .collect();
        if !untried.is_empty() && untried.iter().all(|ep| !ep.breaker_ready()) {
            return Error::NoServer(format!(
                "{p}: every server's circuit breaker is open ({} of {} servers); calls go \
                 through again when a breaker's window has passed",
                untried.len(),
                self.endpoints.len()
            ));
        }
        Error::NoServer(format!(
            "{p}: the selector found no available server among {}",
            self.endpoints.len()
        ))
    }
}

impl Inner {
    /// Installs a new server list: filter, reuse the endpoints of servers still there, tell the
    /// selector, retire the endpoints of servers that left.
    pub(super) fn apply(&self, list: &[KVPair]) {
        let _guard = lock(&self.update_lock);
        let old = self.servers.load_full();
        let snap = Arc::new(Snapshot::build(
            list,
            &old,
            &self.options.group,
            &self.config,
            &self.service_path,
        ));
        self.servers.store(snap.clone());
        if let Some(s) = &self.selector.load().selector {
            s.update_servers(&snap.nodes);
        }
        for (k, ep) in old.endpoints.iter() {
            if !snap.endpoints.contains_key(k) {
                ep.retire(false);
            }
        }
    }

    /// The no-server error for the current set.
    pub(super) fn no_server(&self, tried: &[Arc<Endpoint>]) -> Error {
        self.servers
            .load()
            .no_server(&self.service_path, &self.options.group, tried)
    }
}

/// Follows discovery until the XClient is closed or dropped, or discovery goes away (the last
/// list then stays in effect).
pub(super) async fn watch(
    inner: Weak<Inner>,
    mut rx: watch::Receiver<Servers>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
        let list = rx.borrow_and_update().clone();
        match inner.upgrade() {
            Some(i) => i.apply(&list),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientOptions;
    use std::time::Duration;

    fn config() -> Arc<DialConfig> {
        Arc::new(DialConfig {
            client_options: ClientOptions::default(),
            reconnect_backoff: Duration::from_millis(100),
            max_reconnect_backoff: Duration::from_secs(1),
            gen_breaker: None,
            plugins: Default::default(),
            push: None,
        })
    }

    #[test]
    fn filters_by_state_group_and_address() {
        let list = vec![
            KVPair::new("tcp@127.0.0.1:1", "group=a"),
            KVPair::new("tcp@127.0.0.1:2", "group=a&state=inactive"),
            KVPair::new("tcp@127.0.0.1:3", "group=b"),
            KVPair::new("tcp@127.0.0.1:0", "group=a"),
            KVPair::new("utp@127.0.0.1:4", "group=a"),
            KVPair::new("unix@/tmp/x.sock", "group=a"),
        ];
        let c = config();
        let snap = Snapshot::build(&list, &Snapshot::default(), "a", &c, "Arith");
        let kept: Vec<&str> = snap.nodes.iter().map(|n| &**n.address()).collect();
        assert_eq!(kept, ["tcp@127.0.0.1:1", "unix@/tmp/x.sock"]);
        assert_eq!(
            (snap.listed, snap.inactive, snap.other_group, snap.invalid),
            (6, 1, 1, 2)
        );
        let e = Snapshot::build(&list[1..4], &Snapshot::default(), "a", &c, "Arith")
            .no_server("Arith", "a", &[])
            .to_string();
        assert!(
            e.contains("1 inactive, 1 not in group \"a\", 1 with an invalid address"),
            "{e}"
        );
        let e = Snapshot::default().no_server("Arith", "", &[]).to_string();
        assert!(e.contains("discovery lists no servers"), "{e}");
    }

    #[test]
    fn endpoints_survive_a_change_of_list() {
        let c = config();
        let a = vec![
            KVPair::new("tcp@127.0.0.1:1", ""),
            KVPair::new("tcp@127.0.0.1:2", ""),
        ];
        let s1 = Snapshot::build(&a, &Snapshot::default(), "", &c, "Arith");
        let b = vec![KVPair::new("tcp@127.0.0.1:2", "weight=3")];
        let s2 = Snapshot::build(&b, &s1, "", &c, "Arith");
        let key: &str = "tcp@127.0.0.1:2";
        assert!(Arc::ptr_eq(&s1.endpoints[key], &s2.endpoints[key]));
        assert_eq!(s2.nodes[0].weight(), 3);
        assert_eq!(s2.endpoints.len(), 1);
    }
}
