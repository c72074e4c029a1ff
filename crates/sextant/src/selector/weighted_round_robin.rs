//! [`WeightedRoundRobinSelector`]: nginx's smooth weighted round robin.

use std::sync::{Arc, Mutex};

use super::{SelectContext, Selector, ServerNode, SmoothWeighted};
use crate::util::lock;

/// nginx's smooth weighted round robin over each server's `weight` metadata (rpcx's
/// `WeightedRoundRobin`). Weights {5, 1, 1} for a, b, c give a, a, b, a, c, a, a: the heavy
/// server's calls are spread out rather than sent in a burst.
///
/// A missing or invalid weight counts as 1. A server with weight 0 is chosen only when every
/// available server weighs 0 (they then take turns). Unavailable servers sit a round out.
#[derive(Debug, Default)]
pub struct WeightedRoundRobinSelector {
    state: Mutex<SmoothWeighted>,
}

impl WeightedRoundRobinSelector {
    /// A selector with no servers yet.
    pub fn new() -> WeightedRoundRobinSelector {
        WeightedRoundRobinSelector::default()
    }
}

impl Selector for WeightedRoundRobinSelector {
    fn select(&self, call: &SelectContext<'_>) -> Option<Arc<str>> {
        lock(&self.state).next(call)
    }

    fn update_servers(&self, servers: &[ServerNode]) {
        lock(&self.state).set(servers.iter().map(|s| (s.address().clone(), s.weight())));
    }

    fn name(&self) -> &str {
        "WeightedRoundRobin"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(s: &WeightedRoundRobinSelector, n: usize) -> String {
        (0..n)
            .map(|_| {
                let a = s.select(&SelectContext::new("A", "M")).unwrap();
                a.chars().nth(4).unwrap()
            })
            .collect()
    }

    #[test]
    fn nginx_smooth_sequence() {
        let s = WeightedRoundRobinSelector::new();
        s.update_servers(&[
            ServerNode::new("tcp@a:1", "weight=5"),
            ServerNode::new("tcp@b:1", "weight=1"),
            ServerNode::new("tcp@c:1", "weight=1"),
        ]);
        assert_eq!(sequence(&s, 14), "aabacaaaabacaa");
    }

    #[test]
    fn zero_weights_and_bad_weights() {
        let s = WeightedRoundRobinSelector::new();
        s.update_servers(&[
            ServerNode::new("tcp@a:1", "weight=0"),
            ServerNode::new("tcp@b:1", "weight=x"),
        ]);
        assert_eq!(sequence(&s, 4), "bbbb");
        s.update_servers(&[
            ServerNode::new("tcp@a:1", "weight=0"),
            ServerNode::new("tcp@b:1", "weight=0"),
        ]);
        let got = sequence(&s, 4);
        assert!(got.contains('a') && got.contains('b'), "{got}");
        let only_a = |a: &str| a == "tcp@a:1";
        assert_eq!(
            &*s.select(&SelectContext::new("A", "M").with_filter(&only_a))
                .unwrap(),
            "tcp@a:1"
        );
        s.update_servers(&[]);
        assert!(s.select(&SelectContext::new("A", "M")).is_none());
    }
}
