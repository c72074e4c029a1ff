//! The client side: [`ClientMetricsPlugin`], an XClient plugin counting calls per service and
//! method on the same [`MetricsPlugin`] handle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use sextant::xclient::{CallInfo, ClientPlugin};
use sextant::Error;

use super::stats::{MethodMap, MethodSnapshot, MethodStats};
use super::{MetricsPlugin, UNKNOWN};

pub(crate) struct ClientState {
    methods: ArcSwap<MethodMap>,
    /// Where calls go once `max_series` label sets exist.
    overflow: Arc<MethodStats>,
    max_series: usize,
    /// Set once a [`ClientMetricsPlugin`] was made: until then the client families are not
    /// exported.
    used: AtomicBool,
}

impl std::fmt::Debug for ClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientState")
            .field("services", &self.methods.load().services())
            .field("max_series", &self.max_series)
            .finish()
    }
}

impl ClientState {
    pub(crate) fn new(max_series: usize) -> ClientState {
        ClientState {
            methods: ArcSwap::from_pointee(MethodMap::default()),
            overflow: Arc::new(MethodStats::new(UNKNOWN, UNKNOWN)),
            max_series,
            used: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }

    fn record(&self, service: &str, method: &str, elapsed: Duration, failed: bool) {
        {
            let map = self.methods.load();
            if let Some(stats) = map.get(service, method) {
                stats.record(elapsed, failed);
                return;
            }
        }
        // A new (service, method): its label set is made once; later calls find it above.
        self.add(service, method).record(elapsed, failed);
    }

    fn add(&self, service: &str, method: &str) -> Arc<MethodStats> {
        let mut chosen = None;
        self.methods.rcu(|cur| {
            if let Some(s) = cur.get(service, method) {
                chosen = Some(s.clone());
                return Arc::clone(cur);
            }
            let series = cur.len();
            if series >= self.max_series || (service == UNKNOWN && method == UNKNOWN) {
                chosen = Some(self.overflow.clone());
                return Arc::clone(cur);
            }
            let mut map = MethodMap::clone(cur);
            let stats = Arc::new(MethodStats::new(service, method));
            map.insert(service, method, stats.clone());
            chosen = Some(stats);
            Arc::new(map)
        });
        chosen.unwrap_or_else(|| self.overflow.clone())
    }

    /// Every label set, sorted, the overflow one last.
    pub(crate) fn all_stats(&self) -> Vec<Arc<MethodStats>> {
        let map = self.methods.load();
        let mut v: Vec<Arc<MethodStats>> = map.values().cloned().collect();
        v.sort_by(|a, b| (&a.service, &a.method).cmp(&(&b.service, &b.method)));
        v.push(self.overflow.clone());
        v
    }
}

/// Client-side metrics, an XClient plugin ([`ClientPlugin`]): calls, errors and latency per
/// service and method, exported by the [`MetricsPlugin`] it was made from (see the
/// [module docs](super) for the names).
///
/// Each attempt counts: a call that fails over to a second server counts twice, as rpcx's
/// client `PostCallPlugin` sees it. Label sets are made the first time a (service, method) is
/// called (one allocation each, none afterwards) up to
/// [`MetricsBuilder::client_max_series`](super::MetricsBuilder::client_max_series); calls to
/// further names share the `unknown` label set. No in-flight gauge: the client's hooks do not
/// guarantee that `post_call` follows every `pre_call` (a later plugin's refusal, a cancelled
/// call), so such a gauge would drift.
///
/// ```
/// use sextant::discovery::Peer2PeerDiscovery;
/// use sextant::XClient;
/// use sextant_plugins::metrics::MetricsPlugin;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> sextant::Result<()> {
/// let metrics = MetricsPlugin::new();
/// let xclient = XClient::builder("Arith")
///     .discovery(Peer2PeerDiscovery::new("tcp@127.0.0.1:8972", "")?)
///     .plugin(metrics.client_plugin())
///     .build()?;
/// // Serve `metrics` (metrics.serve(..)) and make calls: each one is counted.
/// # drop(xclient);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientMetricsPlugin {
    metrics: MetricsPlugin,
}

impl ClientMetricsPlugin {
    pub(crate) fn new(metrics: MetricsPlugin) -> ClientMetricsPlugin {
        metrics.shared.client.used.store(true, Ordering::Relaxed);
        ClientMetricsPlugin { metrics }
    }

    /// The handle that exports these metrics (with the server's, if it is installed on a server
    /// too): [`encode`](MetricsPlugin::encode), [`serve`](MetricsPlugin::serve),
    /// [`http_handler`](MetricsPlugin::http_handler).
    pub fn metrics(&self) -> &MetricsPlugin {
        &self.metrics
    }

    /// The figures of every (service, method) called so far, sorted, the shared `unknown`
    /// label set last.
    pub fn snapshot(&self) -> Vec<MethodSnapshot> {
        self.metrics.client_snapshot()
    }
}

impl ClientPlugin for ClientMetricsPlugin {
    fn post_call(&self, call: &CallInfo<'_>, error: Option<&Error>, elapsed: Duration) {
        self.metrics.shared.client.record(
            call.service_path,
            call.service_method,
            elapsed,
            error.is_some(),
        );
    }
}
