//! Per-method counters and the latency histogram: plain atomics, updated with relaxed
//! operations on the call path and read at scrape time.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The upper bounds, in seconds, of the latency histogram's buckets (Prometheus `le`), from
/// 100 µs to 10 s; a last bucket, `+Inf`, holds the slower calls.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// [`LATENCY_BUCKETS`] in nanoseconds, for the comparison on the call path.
const BUCKET_NANOS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The number of buckets, `+Inf` included.
pub(crate) const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

/// The figures of one (service, method) label set. Aligned to a cache line so that two methods'
/// counters never share one.
#[repr(align(64))]
#[derive(Debug)]
pub(crate) struct MethodStats {
    pub(crate) service: Box<str>,
    pub(crate) method: Box<str>,
    calls: AtomicU64,
    errors: AtomicU64,
    in_flight: AtomicI64,
    /// Calls per bucket (not cumulative).
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

impl MethodStats {
    pub(crate) fn new(service: &str, method: &str) -> MethodStats {
        MethodStats {
            service: service.into(),
            method: method.into(),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Counts a finished call: four relaxed atomic additions (five for an error).
    pub(crate) fn record(&self, elapsed: Duration, error: bool) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // The first bucket whose bound is >= the value: Prometheus' `le` is "less or equal".
        let i = BUCKET_NANOS.partition_point(|&bound| bound < nanos);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub(crate) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub(crate) fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn latency(&self) -> LatencySnapshot {
        LatencySnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)),
        }
    }

    pub(crate) fn snapshot(&self) -> MethodSnapshot {
        MethodSnapshot {
            service: self.service.to_string(),
            method: self.method.to_string(),
            calls: self.calls(),
            errors: self.errors(),
            in_flight: self.in_flight(),
            latency: self.latency(),
        }
    }
}

/// The latency histogram of one method at one moment: calls per bucket of
/// [`LATENCY_BUCKETS`] and the total time, with quantiles estimated from the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencySnapshot {
    /// Calls per bucket, not cumulative: `buckets[i]` counts the calls slower than
    /// `LATENCY_BUCKETS[i - 1]` and at most `LATENCY_BUCKETS[i]`; the last one counts those
    /// slower than 10 s.
    pub buckets: [u64; BUCKETS],
    /// The time all these calls took together.
    pub sum: Duration,
}

impl LatencySnapshot {
    /// The number of calls measured.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The mean latency, `None` before the first call.
    pub fn mean(&self) -> Option<Duration> {
        let n = u32::try_from(self.count()).ok().filter(|&n| n > 0)?;
        Some(self.sum / n)
    }

    /// The `q` quantile (0.0 to 1.0; 0.99 is p99), estimated as Prometheus'
    /// `histogram_quantile` does: linearly within the bucket that holds it. `None` before the
    /// first call or when `q` is not within 0 to 1. A quantile that falls in the `+Inf` bucket
    /// is reported as 10 s, the highest finite bound.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = q * count as f64;
        let mut below = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            let cumulative = below + n;
            if n > 0 && cumulative as f64 >= rank {
                let Some(&upper) = LATENCY_BUCKETS.get(i) else {
                    return Some(Duration::from_secs_f64(
                        LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1],
                    ));
                };
                let lower = if i == 0 { 0.0 } else { LATENCY_BUCKETS[i - 1] };
                let fraction = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                return Some(Duration::from_secs_f64(lower + (upper - lower) * fraction));
            }
            below = cumulative;
        }
        None
    }

    /// The median, estimated from the buckets (see [`quantile`](Self::quantile)).
    pub fn p50(&self) -> Option<Duration> {
        self.quantile(0.5)
    }

    /// The 90th percentile, estimated from the buckets.
    pub fn p90(&self) -> Option<Duration> {
        self.quantile(0.9)
    }

    /// The 99th percentile, estimated from the buckets.
    pub fn p99(&self) -> Option<Duration> {
        self.quantile(0.99)
    }
}

/// One (service, method) label set's figures at one moment, as the debug page shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MethodSnapshot {
    /// The service path (rpcx's `servicePath`); `unknown` for the shared label set of calls to
    /// services or methods that are not registered.
    pub service: String,
    /// The method (rpcx's `serviceMethod`); `unknown` as above.
    pub method: String,
    /// Calls finished.
    pub calls: u64,
    /// Calls finished with an error.
    pub errors: u64,
    /// Calls in progress (always 0 on the client side, which does not count them).
    pub in_flight: i64,
    /// The latency histogram.
    pub latency: LatencySnapshot,
}

impl MethodSnapshot {
    /// Whether this is the shared label set of unknown services and methods.
    pub fn is_unknown(&self) -> bool {
        self.service == super::UNKNOWN && self.method == super::UNKNOWN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_le() {
        let s = MethodStats::new("A", "B");
        s.record(Duration::from_micros(100), false);
        s.record(Duration::from_micros(101), true);
        s.record(Duration::from_secs(11), false);
        s.record(Duration::ZERO, false);
        let l = s.latency();
        assert_eq!(l.buckets[0], 2);
        assert_eq!(l.buckets[1], 1);
        assert_eq!(l.buckets[BUCKETS - 1], 1);
        assert_eq!(l.count(), 4);
        assert_eq!(s.calls(), 4);
        assert_eq!(s.errors(), 1);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let mut l = LatencySnapshot::default();
        assert_eq!(l.quantile(0.5), None);
        // 100 calls, all in (1 ms, 2.5 ms].
        l.buckets[4] = 100;
        let p50 = l.p50().unwrap().as_secs_f64();
        assert!((p50 - 0.00175).abs() < 1e-9, "{p50}");
        let p99 = l.p99().unwrap().as_secs_f64();
        assert!((p99 - 0.002485).abs() < 1e-9, "{p99}");
        assert_eq!(l.quantile(1.5), None);
        assert_eq!(l.quantile(f64::NAN), None);
        // One very slow call dominates p99 of two.
        let mut l = LatencySnapshot::default();
        l.buckets[0] = 1;
        l.buckets[BUCKETS - 1] = 1;
        assert_eq!(l.p99(), Some(Duration::from_secs(10)));
        assert_eq!(l.quantile(0.0), Some(Duration::ZERO));
    }
}

/// The label sets of (service, method) pairs: one flat map with hashbrown's default hasher
/// (foldhash), looked up with the call's `&str`s without allocating, so that finding a call's
/// label set is one short hash rather than two SipHashes.
#[derive(Clone, Default)]
pub(crate) struct MethodMap {
    map: hashbrown::HashMap<(Box<str>, Box<str>), Arc<MethodStats>>,
}

/// A (service, method) as a call has them: hashes as the owned key does.
struct MethodRef<'a>(&'a str, &'a str);

impl Hash for MethodRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.0, self.1).hash(state);
    }
}

impl hashbrown::Equivalent<(Box<str>, Box<str>)> for MethodRef<'_> {
    fn equivalent(&self, key: &(Box<str>, Box<str>)) -> bool {
        *key.0 == *self.0 && *key.1 == *self.1
    }
}

impl MethodMap {
    pub(crate) fn get(&self, service: &str, method: &str) -> Option<&Arc<MethodStats>> {
        self.map.get(&MethodRef(service, method))
    }

    pub(crate) fn insert(&mut self, service: &str, method: &str, stats: Arc<MethodStats>) {
        self.map.insert((service.into(), method.into()), stats);
    }

    /// Takes out every label set of `service`, by method name.
    pub(crate) fn remove_service(&mut self, service: &str) -> HashMap<Box<str>, Arc<MethodStats>> {
        let mut out = HashMap::new();
        self.map.retain(|(s, m), stats| {
            if **s == *service {
                out.insert(m.clone(), stats.clone());
                false
            } else {
                true
            }
        });
        out
    }

    /// The number of label sets.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The number of distinct services.
    pub(crate) fn services(&self) -> usize {
        let mut seen: Vec<&str> = self.map.keys().map(|(s, _)| &**s).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<MethodStats>> {
        self.map.values()
    }
}
