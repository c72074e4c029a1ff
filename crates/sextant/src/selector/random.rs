//! [`RandomSelector`]: uniformly at random.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{random_available, SelectContext, Selector, ServerNode};

/// Picks a server uniformly at random (rpcx's `RandomSelect`). Over many calls the load evens
/// out; over a few it need not.
#[derive(Debug, Default)]
pub struct RandomSelector {
    servers: ArcSwap<Vec<Arc<str>>>,
}

impl RandomSelector {
    /// A selector with no servers yet.
    pub fn new() -> RandomSelector {
        RandomSelector::default()
    }
}

impl Selector for RandomSelector {
    fn select(&self, call: &SelectContext<'_>) -> Option<Arc<str>> {
        random_available(&self.servers.load(), call).cloned()
    }

    fn update_servers(&self, servers: &[ServerNode]) {
        self.servers.store(Arc::new(
            servers.iter().map(|s| s.address().clone()).collect(),
        ));
    }

    fn name(&self) -> &str {
        "RandomSelect"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_and_skips_unavailable() {
        let s = RandomSelector::new();
        assert!(s.select(&SelectContext::new("A", "M")).is_none());
        s.update_servers(&[
            ServerNode::new("tcp@a:1", ""),
            ServerNode::new("tcp@b:1", ""),
            ServerNode::new("tcp@c:1", ""),
        ]);
        let mut counts = std::collections::HashMap::new();
        let not_b = |a: &str| a != "tcp@b:1";
        for _ in 0..3000 {
            let a = s
                .select(&SelectContext::new("A", "M").with_filter(&not_b))
                .unwrap();
            *counts.entry(a.to_string()).or_insert(0) += 1;
        }
        assert_eq!(counts.get("tcp@b:1"), None);
        assert!(
            counts["tcp@a:1"] > 1200 && counts["tcp@c:1"] > 1200,
            "{counts:?}"
        );
        let none = |_: &str| false;
        assert!(s
            .select(&SelectContext::new("A", "M").with_filter(&none))
            .is_none());
    }
}
