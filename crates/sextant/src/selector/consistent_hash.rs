//! [`ConsistentHashSelector`]: jump consistent hash.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{jump_hash, next_available, SelectContext, Selector, ServerNode};

/// Sends calls with the same service path, method and arguments to the same server (rpcx's
/// `ConsistentHash`), using Lamping and Veach's jump consistent hash over the servers sorted by
/// address. A call may instead carry an explicit key,
/// [`CallOptions::hash_key`](crate::CallOptions::hash_key): calls with the same key go to the same
/// server whatever their arguments.
///
/// The arguments are hashed as encoded on the wire (rpcx hashes Go's `%v` text of them), so the
/// same value encoded with another codec may land elsewhere. When the chosen server is not
/// available the call goes to the next available one in address order; when the list changes,
/// the hash is recomputed over the new list (jump hash moves few keys when servers are added at
/// the end of the order, more when one is removed).
#[derive(Debug, Default)]
pub struct ConsistentHashSelector {
    servers: ArcSwap<Vec<Arc<str>>>,
}

impl ConsistentHashSelector {
    /// A selector with no servers yet.
    pub fn new() -> ConsistentHashSelector {
        ConsistentHashSelector::default()
    }
}

impl Selector for ConsistentHashSelector {
    fn select(&self, call: &SelectContext<'_>) -> Option<Arc<str>> {
        let servers = self.servers.load();
        if servers.is_empty() {
            return None;
        }
        let i = jump_hash(call.key_hash(), servers.len());
        next_available(&servers, i, call).cloned()
    }

    fn update_servers(&self, servers: &[ServerNode]) {
        let mut v: Vec<Arc<str>> = servers.iter().map(|s| s.address().clone()).collect();
        v.sort();
        self.servers.store(Arc::new(v));
    }

    fn uses_call_key(&self) -> bool {
        true
    }

    fn name(&self) -> &str {
        "ConsistentHash"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_server() {
        let s = ConsistentHashSelector::new();
        let nodes: Vec<ServerNode> = (0..5)
            .map(|i| ServerNode::new(&format!("tcp@h{i}:1"), ""))
            .collect();
        s.update_servers(&nodes);
        let mut hit = std::collections::HashSet::new();
        for i in 0..200u32 {
            let args = i.to_be_bytes();
            let a = s
                .select(&SelectContext::new("Arith", "Mul").with_args(&args))
                .unwrap();
            let b = s
                .select(&SelectContext::new("Arith", "Mul").with_args(&args))
                .unwrap();
            assert_eq!(a, b);
            hit.insert(a);
        }
        assert_eq!(hit.len(), 5);
        // An explicit key wins over the arguments.
        let k = s
            .select(
                &SelectContext::new("Arith", "Mul")
                    .with_args(b"x")
                    .with_hash_key(Some("user-42")),
            )
            .unwrap();
        for args in [&b"y"[..], b"z", b""] {
            let got = s
                .select(
                    &SelectContext::new("Arith", "Mul")
                        .with_args(args)
                        .with_hash_key(Some("user-42")),
                )
                .unwrap();
            assert_eq!(got, k);
        }
        // The chosen server unavailable: the next one takes the call, consistently.
        let not_k = |a: &str| a != &*k;
        let alt = s
            .select(
                &SelectContext::new("Arith", "Mul")
                    .with_hash_key(Some("user-42"))
                    .with_filter(&not_k),
            )
            .unwrap();
        assert_ne!(alt, k);
    }
}
