//! [`WeightedIcmpSelector`]: weighted by measured network quality.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::Notify;

use super::{SelectContext, Selector, ServerNode, SmoothWeighted};
use crate::transport::Address;
use crate::util::lock;

/// Measures the round-trip time to a server; `None` when it cannot be reached.
pub type Probe = Arc<dyn Fn(Arc<str>) -> BoxFuture<'static, Option<Duration>> + Send + Sync>;

/// How often the round-trip times are measured again by default.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Connects per server and round, averaged (rpcx pings 3 times).
const PROBES: u32 = 3;
/// A probe slower than this counts as unreachable (rpcx's ping timeout is 1 s of rtt).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// rpcx's table from round-trip time to weight: t ≤ 10 ms → 191; 10 < t ≤ 200 ms → 201 − t;
/// 200 < t < 1000 ms → 1; t ≥ 1000 ms (or unreachable) → 0.
pub fn icmp_weight(rtt: Duration) -> u32 {
    let t = rtt.as_millis();
    if t <= 10 {
        191
    } else if t <= 200 {
        201 - t as u32
    } else if t < 1000 {
        1
    } else {
        0
    }
}

/// Prefers servers with a better network path (rpcx's `WeightedICMP`): smooth weighted round
/// robin over weights from [`icmp_weight`], so fast servers take most calls and slow ones still
/// some; a server at 1 s or more, or unreachable, takes calls only when all do.
///
/// rpcx measures with ICMP echo, which needs raw-socket privileges; this selector instead times a
/// TCP connect to the server's port (3 connects averaged, 1 s timeout each) — the same network
/// path, plus the server's accept queue; the server sees connections that close at once without
/// a request. Unix and in-process servers count as 0 ms. Another
/// measurement can be plugged in with [`with_probe`](WeightedIcmpSelector::with_probe).
///
/// Times are measured in a background task when the server list changes and every `interval`
/// (30 s by default); until a server's first measurement it weighs 1. The task stops when the
/// selector is dropped. It needs a tokio runtime: without one, every server keeps weight 1.
pub struct WeightedIcmpSelector {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<SmoothWeighted>,
    measured: Mutex<HashMap<Arc<str>, u32>>,
    wake: Arc<Notify>,
    interval: Duration,
    probe: Probe,
    rounds: AtomicU64,
    started: AtomicBool,
}

impl fmt::Debug for WeightedIcmpSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeightedIcmpSelector")
            .field("interval", &self.shared.interval)
            .field("weights", &self.weights())
            .finish()
    }
}

impl Default for WeightedIcmpSelector {
    fn default() -> Self {
        WeightedIcmpSelector::new()
    }
}

impl Drop for WeightedIcmpSelector {
    fn drop(&mut self) {
        // Wake the measuring task so it notices the selector is gone.
        self.shared.wake.notify_one();
    }
}

impl WeightedIcmpSelector {
    /// Measures by TCP connect time every 30 s.
    pub fn new() -> WeightedIcmpSelector {
        WeightedIcmpSelector::with_interval(DEFAULT_INTERVAL)
    }

    /// Measures by TCP connect time every `interval`.
    pub fn with_interval(interval: Duration) -> WeightedIcmpSelector {
        WeightedIcmpSelector::with_probe(interval, Arc::new(|a| Box::pin(tcp_connect_rtt(a))))
    }

    /// Measures with `probe` every `interval`.
    pub fn with_probe(interval: Duration, probe: Probe) -> WeightedIcmpSelector {
        WeightedIcmpSelector {
            shared: Arc::new(Shared {
                state: Mutex::new(SmoothWeighted::default()),
                measured: Mutex::new(HashMap::new()),
                wake: Arc::new(Notify::new()),
                interval: interval.max(Duration::from_millis(10)),
                probe,
                rounds: AtomicU64::new(0),
                started: AtomicBool::new(false),
            }),
        }
    }

    /// The current weight of each server.
    pub fn weights(&self) -> Vec<(Arc<str>, u32)> {
        self.shared.state().weights()
    }

    /// How many rounds of measurement have completed.
    pub fn rounds(&self) -> u64 {
        self.shared.rounds.load(Ordering::Acquire)
    }

    fn start(&self) {
        if self.shared.started.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(measure_loop(
                    Arc::downgrade(&self.shared),
                    self.shared.wake.clone(),
                ));
            }
            Err(_) => {
                self.shared.started.store(false, Ordering::Release);
                tracing::warn!(
                    "WeightedICMP selector outside a tokio runtime: round-trip times are not \
                     measured and every server weighs 1"
                );
            }
        }
    }
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, SmoothWeighted> {
        lock(&self.state)
    }
}

async fn measure_loop(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        let (servers, probe, interval) = {
            let Some(s) = shared.upgrade() else { return };
            let servers: Vec<Arc<str>> = s.state().weights().into_iter().map(|(a, _)| a).collect();
            (servers, s.probe.clone(), s.interval)
        };
        // Measure without holding the selector, so dropping it is not delayed by a slow probe.
        let results = futures::future::join_all(servers.iter().map(|a| {
            let a = a.clone();
            let probe = probe.clone();
            async move {
                let w = probe(a.clone()).await.map(icmp_weight).unwrap_or(0);
                (a, w)
            }
        }))
        .await;
        {
            let Some(s) = shared.upgrade() else { return };
            let mut measured = lock(&s.measured);
            let mut state = s.state();
            for (a, w) in results {
                state.set_weight(&a, w);
                measured.insert(a, w);
            }
            drop(state);
            drop(measured);
            s.rounds.fetch_add(1, Ordering::AcqRel);
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// The average time of [`PROBES`] TCP connects to a server on a TCP-based network (`tcp@`,
/// `http@`, `ws@`, `wss@`, `reuseport@`); zero for local transports and for the UDP ones
/// (`quic@`, `kcp@`: no connect to time without a full handshake), which so weigh as a nearby
/// server.
async fn tcp_connect_rtt(address: Arc<str>) -> Option<Duration> {
    let addr = Address::parse(&address).ok()?;
    if !addr.network().is_tcp_based() {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    for _ in 0..PROBES {
        let start = Instant::now();
        match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr.addr())).await
        {
            Ok(Ok(s)) => {
                total += start.elapsed();
                drop(s);
            }
            _ => return None,
        }
    }
    Some(total / PROBES)
}

impl Selector for WeightedIcmpSelector {
    fn select(&self, call: &SelectContext<'_>) -> Option<Arc<str>> {
        self.shared.state().next(call)
    }

    fn update_servers(&self, servers: &[ServerNode]) {
        {
            let mut measured = lock(&self.shared.measured);
            measured.retain(|a, _| servers.iter().any(|s| s.address() == a));
            self.shared.state().set(servers.iter().map(|s| {
                (
                    s.address().clone(),
                    *measured.get(s.address()).unwrap_or(&1),
                )
            }));
        }
        self.start();
        self.shared.wake.notify_one();
    }

    fn name(&self) -> &str {
        "WeightedICMP"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpcx_weight_table() {
        let ms = Duration::from_millis;
        assert_eq!(icmp_weight(ms(0)), 191);
        assert_eq!(icmp_weight(ms(10)), 191);
        assert_eq!(icmp_weight(ms(11)), 190);
        assert_eq!(icmp_weight(ms(100)), 101);
        assert_eq!(icmp_weight(ms(200)), 1);
        assert_eq!(icmp_weight(ms(201)), 1);
        assert_eq!(icmp_weight(ms(999)), 1);
        assert_eq!(icmp_weight(ms(1000)), 0);
        assert_eq!(icmp_weight(ms(5000)), 0);
    }

    #[tokio::test]
    async fn measured_weights_drive_selection() {
        let probe: Probe = Arc::new(|a: Arc<str>| {
            Box::pin(async move {
                match &*a {
                    "tcp@fast:1" => Some(Duration::from_millis(5)),
                    "tcp@mid:1" => Some(Duration::from_millis(150)),
                    _ => None,
                }
            })
        });
        let s = WeightedIcmpSelector::with_probe(Duration::from_secs(60), probe);
        s.update_servers(&[
            ServerNode::new("tcp@fast:1", ""),
            ServerNode::new("tcp@mid:1", ""),
            ServerNode::new("tcp@down:1", ""),
        ]);
        for _ in 0..200 {
            if s.rounds() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(s.rounds() > 0);
        let mut w = s.weights();
        w.sort();
        assert_eq!(
            w,
            vec![
                ("tcp@down:1".into(), 0),
                ("tcp@fast:1".into(), 191),
                ("tcp@mid:1".into(), 51)
            ]
        );
        let mut counts = HashMap::new();
        for _ in 0..2420 {
            let a = s.select(&SelectContext::new("A", "M")).unwrap();
            *counts.entry(a.to_string()).or_insert(0u32) += 1;
        }
        // Smooth weighted round robin is exact over whole cycles of 191 + 51 = 242 calls.
        assert_eq!(counts["tcp@fast:1"], 1910);
        assert_eq!(counts["tcp@mid:1"], 510);
        assert_eq!(counts.get("tcp@down:1"), None);
    }
}
