//! [`RoundRobinSelector`]: each server in turn.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{next_available, SelectContext, Selector, ServerNode};

/// Gives each server a call in turn (rpcx's `RoundRobin`): even load when servers are alike.
/// An unavailable server's turn goes to the next available one.
#[derive(Debug, Default)]
pub struct RoundRobinSelector {
    servers: ArcSwap<Vec<Arc<str>>>,
    next: AtomicUsize,
}

impl RoundRobinSelector {
    /// A selector with no servers yet.
    pub fn new() -> RoundRobinSelector {
        RoundRobinSelector::default()
    }
}

impl Selector for RoundRobinSelector {
    fn select(&self, call: &SelectContext<'_>) -> Option<Arc<str>> {
        let servers = self.servers.load();
        if servers.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % servers.len();
        next_available(&servers, i, call).cloned()
    }

    fn update_servers(&self, servers: &[ServerNode]) {
        self.servers.store(Arc::new(
            servers.iter().map(|s| s.address().clone()).collect(),
        ));
    }

    fn name(&self) -> &str {
        "RoundRobin"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_turn() {
        let s = RoundRobinSelector::new();
        s.update_servers(&[
            ServerNode::new("tcp@a:1", ""),
            ServerNode::new("tcp@b:1", ""),
            ServerNode::new("tcp@c:1", ""),
        ]);
        let got: Vec<String> = (0..6)
            .map(|_| s.select(&SelectContext::new("A", "M")).unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            ["tcp@a:1", "tcp@b:1", "tcp@c:1", "tcp@a:1", "tcp@b:1", "tcp@c:1"]
        );
        let not_a = |a: &str| a != "tcp@a:1";
        for _ in 0..6 {
            let a = s
                .select(&SelectContext::new("A", "M").with_filter(&not_a))
                .unwrap();
            assert_ne!(&*a, "tcp@a:1");
        }
    }
}
