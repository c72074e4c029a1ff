//! The rate figures a server adds to its registry entries on every refresh.
//!
//! rpcx's etcd, ZooKeeper, Consul and Redis plugins mark a go-metrics meter on every accepted
//! connection (`HandleConnAccept`) and every call (`PreCall`), and on each refresh set
//! `calls` and `connections` in the entry's value to the meters' `RateMean()` formatted with
//! `%.2f`: events per second averaged since the meter started. rpcx's mDNS plugin sets `tps`
//! instead. sextant computes the same figures from [`Server::stats`](sextant::Server::stats):
//!
//! | key | value |
//! |---|---|
//! | `calls` | calls per second since the plugin started serving, `%.2f` (rpcx's `calls`) |
//! | `connections` | accepted connections per second since then, `%.2f` (rpcx's `connections`) |
//! | `tps` | calls per second over the last update interval, `%.2f` (the load now) |

use std::time::Instant;

use sextant::ServerStats;

use crate::query::QueryValues;

/// Computes the rate figures from a server's counters.
#[derive(Debug, Clone)]
pub(crate) struct RateMeter {
    start: Instant,
    start_calls: u64,
    start_connections: u64,
    last: Instant,
    last_calls: u64,
}

impl RateMeter {
    /// A meter starting now from `stats`.
    pub(crate) fn new(stats: ServerStats, now: Instant) -> RateMeter {
        RateMeter {
            start: now,
            start_calls: stats.calls,
            start_connections: stats.total_connections,
            last: now,
            last_calls: stats.calls,
        }
    }

    /// The figures at `now`, as `(key, value)` pairs; moves the window of `tps` to `now`.
    pub(crate) fn figures(
        &mut self,
        stats: ServerStats,
        now: Instant,
    ) -> [(&'static str, String); 3] {
        let since_start = now.duration_since(self.start).as_secs_f64();
        let window = now.duration_since(self.last).as_secs_f64();
        let per_sec = |n: u64, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let calls = per_sec(stats.calls.saturating_sub(self.start_calls), since_start);
        let connections = per_sec(
            stats
                .total_connections
                .saturating_sub(self.start_connections),
            since_start,
        );
        let tps = per_sec(stats.calls.saturating_sub(self.last_calls), window);
        self.last = now;
        self.last_calls = stats.calls;
        [
            ("calls", format!("{calls:.2}")),
            ("connections", format!("{connections:.2}")),
            ("tps", format!("{tps:.2}")),
        ]
    }
}

/// Sets the rate figures in a metadata query string, keeping every other key (an operator's
/// `state=inactive` survives refreshes, as in rpcx). `None` if `value` is not a query string.
pub(crate) fn merge_figures(value: &str, figures: &[(&'static str, String)]) -> Option<String> {
    let mut v = QueryValues::parse(value).ok()?;
    for (k, x) in figures {
        v.set(*k, x.clone());
    }
    Some(v.encode())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn stats(calls: u64, conns: u64) -> ServerStats {
        let mut s = ServerStats::default();
        s.calls = calls;
        s.total_connections = conns;
        s
    }

    #[test]
    fn mean_rates_and_recent_tps() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(stats(100, 5), t0);
        let f = m.figures(stats(300, 9), t0 + Duration::from_secs(2));
        assert_eq!(f[0], ("calls", "100.00".to_string()));
        assert_eq!(f[1], ("connections", "2.00".to_string()));
        assert_eq!(f[2], ("tps", "100.00".to_string()));
        let f = m.figures(stats(310, 9), t0 + Duration::from_secs(4));
        assert_eq!(f[0].1, "52.50");
        assert_eq!(f[2].1, "5.00");
    }

    #[test]
    fn merging_keeps_other_keys() {
        let figures = [("calls", "1.50".to_string()), ("tps", "3.00".to_string())];
        assert_eq!(
            merge_figures("weight=10&state=inactive&calls=0.00", &figures).unwrap(),
            "calls=1.50&state=inactive&tps=3.00&weight=10"
        );
        assert_eq!(merge_figures("", &figures).unwrap(), "calls=1.50&tps=3.00");
        assert!(merge_figures("a=%zz", &figures).is_none());
    }
}
