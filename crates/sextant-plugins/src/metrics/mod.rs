//! Prometheus metrics for servers and XClients, per service and method (the Rust side of rpcx's
//! `serverplugin.MetricsPlugin`, which reports through go-metrics; this one is exported in the
//! Prometheus and OpenMetrics text formats through [`prometheus_client`]).
//!
//! One handle, [`MetricsPlugin`], holds the figures and a [`Registry`]: it is the server plugin
//! itself ([`ServerBuilder::plugin`](sextant::ServerBuilder::plugin)), makes the client plugin
//! ([`MetricsPlugin::client_plugin`], for
//! [`XClientBuilder::plugin`](sextant::XClientBuilder::plugin)), and exports everything:
//! [`encode`](MetricsPlugin::encode), a route for the service port
//! ([`http_handler`](MetricsPlugin::http_handler)), or a listener of its own
//! ([`serve`](MetricsPlugin::serve)). The [debug page](crate::debug) shows the same figures.
//!
//! ```
//! use sextant::{Context, Server, ServiceError};
//! use sextant_plugins::metrics::MetricsPlugin;
//!
//! # fn main() -> sextant::Result<()> {
//! let metrics = MetricsPlugin::new();
//! let server = Server::builder()
//!     .plugin(metrics.clone())
//!     // Scrape http://<service address>/metrics: the service port also speaks HTTP.
//!     .http_route("/metrics", metrics.http_handler())
//!     .build();
//! server.register_fn("Arith", "Mul", |_cx: Context, (a, b): (i64, i64)| async move {
//!     Ok::<_, ServiceError>(a * b)
//! })?;
//! let text = metrics.encode();
//! assert!(text.contains(r#"rpcx_server_calls_total{service="Arith",method="Mul"} 0"#));
//! # Ok(()) }
//! ```
//!
//! ## What is measured
//!
//! Metric names start with the namespace, `rpcx` by default (the protocol's name, so that
//! dashboards serve Go and Rust rpcx services alike; [`MetricsPlugin::with_namespace`] changes
//! it). Server side, per `service` and `method` label:
//!
//! | name | type | what |
//! |---|---|---|
//! | `rpcx_server_calls_total` | counter | calls finished (answered, failed or refused) |
//! | `rpcx_server_errors_total` | counter | calls finished with an error |
//! | `rpcx_server_calls_in_flight` | gauge | calls between `pre_call` and the response's write |
//! | `rpcx_server_call_duration_seconds` | histogram | [`CallOutcome::elapsed`](sextant::CallOutcome::elapsed): from the request being read to the handler's end |
//!
//! and for the whole server, read from [`Server::stats`](sextant::Server::stats) at scrape time:
//!
//! | name | type | what |
//! |---|---|---|
//! | `rpcx_server_open_connections` | gauge | connections open (rpcx and HTTP, scrapes of the service port included) |
//! | `rpcx_server_connections_total` | counter | connections accepted (likewise) |
//! | `rpcx_server_pushes_total` | counter | server pushes queued ([`ClientConn::send_message`](sextant::ClientConn::send_message)) |
//! | `rpcx_server_received_bytes_total` | counter | bytes read from rpcx connections |
//! | `rpcx_server_sent_bytes_total` | counter | bytes written to rpcx connections |
//!
//! Client side ([`ClientMetricsPlugin`]), per `service` and `method`, per attempt:
//! `rpcx_client_calls_total`, `rpcx_client_errors_total` and
//! `rpcx_client_call_duration_seconds`. A family appears once its side is in use (the plugin
//! installed on a server, a client plugin made).
//!
//! The latency histograms have fixed buckets, [`LATENCY_BUCKETS`]: 100 µs to 10 s.
//!
//! ## Bounded labels
//!
//! Service and method names come from the requests, that is from clients. On the server only
//! the registered methods get label sets of their own (made in `on_register`, updated on
//! re-registration and removed on `on_unregister`); every call to a service or method that is
//! not registered counts on one shared label set, `service="unknown",method="unknown"`. A
//! client that sends 100,000 made-up method names adds no series. The client side makes a label
//! set the first time a (service, method) is called, up to
//! [`MetricsBuilder::client_max_series`] (1,000 by default), then counts on `unknown` too.
//!
//! ## Cost per call
//!
//! No allocation and no lock: the label set is found by `&str` in an
//! [`ArcSwap`](arc_swap::ArcSwap)ped map of the registered methods, and counting is a few
//! relaxed atomic additions (calls, errors, one histogram bucket, the sum) plus the in-flight
//! bookkeeping below, about a dozen atomic operations in all. The histograms are turned into
//! Prometheus' form only at scrape time, by a [`Collector`]. `tests/metrics_alloc.rs` checks
//! that a server with the plugin allocates no more per call than one with a no-op plugin.
//!
//! The in-flight gauge pairs each `+1` with exactly one `-1`: `pre_call` does the `+1` and
//! records the call (keyed by its context, in a fixed lock-free table), and
//! `post_write_response`, which the server runs for every request, does the `-1` only for a
//! recorded call, on the label set it was counted on. Requests refused before `pre_call` (by
//! another plugin, or a payload that does not decompress) are counted as calls and errors but
//! were never in flight. With more calls in flight at once than
//! [`MetricsBuilder::in_flight_capacity`] (4,096 by default), the excess is not counted in the
//! gauge.
//!
//! ## Scraping
//!
//! Over HTTP, `GET` answers in the Prometheus text format 0.0.4 (`Content-Type`
//! [`PROMETHEUS_TEXT`], what `curl` and most tools expect), or in OpenMetrics 1.0.0
//! ([`OPENMETRICS_TEXT`], ending with `# EOF`) when the `Accept` header names
//! `application/openmetrics-text`, as Prometheus' own scrapes do. In code,
//! [`encode`](MetricsPlugin::encode) gives the OpenMetrics text and
//! [`encode_prometheus`](MetricsPlugin::encode_prometheus) the Prometheus one. Metrics of your
//! own go in the same [`registry`](MetricsPlugin::registry) and are exported with these.
//!
//! ## The plugin and the server's lifetime
//!
//! The server holds its plugins, so a plugin that held the server would keep it alive forever.
//! This one holds a clone of the [`Server`] only while it listens: from
//! `on_listen` (a listening server is alive anyway, its accept loop holds it) until
//! `on_shutdown`, where it lets go and keeps the server's last [`ServerStats`] for the scrapes
//! that may still come. A server that is built but never started is never held.
//!
//! Install one `MetricsPlugin` on one server: on a second one the figures of both would be
//! mixed and the server-wide ones would follow whichever listened last. Use one per server
//! (with different namespaces, or separate scrape routes).

mod client;
mod http;
mod in_flight;
mod server;
mod stats;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use sextant::{Error, Server, ServerStats};

pub use client::ClientMetricsPlugin;
pub use http::{MetricsHandler, MetricsServer, METRICS_PATH, OPENMETRICS_TEXT, PROMETHEUS_TEXT};
pub use stats::{LatencySnapshot, MethodSnapshot, LATENCY_BUCKETS};

use client::ClientState;
use server::ServerState;
use stats::{MethodStats, BUCKETS};

/// The service and method label values shared by all calls to names that are not registered.
pub const UNKNOWN: &str = "unknown";

/// The namespace (metric name prefix) of [`MetricsPlugin::new`].
pub const DEFAULT_NAMESPACE: &str = "rpcx";

/// Locks a mutex whose data stays consistent even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Shared {
    namespace: String,
    registry: Mutex<Registry>,
    server: Arc<ServerState>,
    client: Arc<ClientState>,
}

/// Prometheus metrics of a server and its XClients: the server plugin (rpcx's
/// `serverplugin.MetricsPlugin`), the handle that makes the [client plugin](Self::client_plugin),
/// and the exporter. Cheap to clone: clones share the figures. See the [module docs](self) for
/// what is measured.
#[derive(Clone)]
pub struct MetricsPlugin {
    shared: Arc<Shared>,
}

impl fmt::Debug for MetricsPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsPlugin")
            .field("namespace", &self.shared.namespace)
            .field("server", &self.shared.server)
            .field("client", &self.shared.client)
            .finish()
    }
}

impl Default for MetricsPlugin {
    fn default() -> Self {
        MetricsPlugin::new()
    }
}

/// Settings of a [`MetricsPlugin`]: `MetricsPlugin::builder().namespace("shop").build()?`.
#[derive(Debug, Clone)]
pub struct MetricsBuilder {
    namespace: String,
    in_flight_capacity: usize,
    client_max_series: usize,
}

impl Default for MetricsBuilder {
    fn default() -> Self {
        MetricsBuilder {
            namespace: DEFAULT_NAMESPACE.to_string(),
            in_flight_capacity: 4096,
            client_max_series: 1000,
        }
    }
}

impl MetricsBuilder {
    /// The metric name prefix; default [`DEFAULT_NAMESPACE`] (`rpcx`). Letters, digits and
    /// `_`, not starting with a digit; empty for no prefix.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How many server calls at once the in-flight gauge can count; default 4,096 (the table
    /// costs 16 bytes a slot). Calls beyond it are counted in every other figure, just not in
    /// the gauge.
    pub fn in_flight_capacity(mut self, calls: usize) -> Self {
        self.in_flight_capacity = calls;
        self
    }

    /// How many (service, method) label sets the client side makes; default 1,000. Calls to
    /// further names count on the shared `unknown` label set.
    pub fn client_max_series(mut self, series: usize) -> Self {
        self.client_max_series = series;
        self
    }

    /// Builds the plugin. Fails with [`Error::Config`] when the namespace is not a valid
    /// Prometheus metric name prefix.
    pub fn build(self) -> sextant::Result<MetricsPlugin> {
        check_namespace(&self.namespace)?;
        let server = Arc::new(ServerState::new(self.in_flight_capacity));
        let client = Arc::new(ClientState::new(self.client_max_series));
        let mut registry = Registry::default();
        {
            let ours = if self.namespace.is_empty() {
                &mut registry
            } else {
                registry.sub_registry_with_prefix(&self.namespace)
            };
            ours.register_collector(Box::new(ServerCollector(server.clone())));
            ours.register_collector(Box::new(ClientCollector(client.clone())));
        }
        Ok(MetricsPlugin {
            shared: Arc::new(Shared {
                namespace: self.namespace,
                registry: Mutex::new(registry),
                server,
                client,
            }),
        })
    }
}

fn check_namespace(ns: &str) -> sextant::Result<()> {
    let mut chars = ns.chars();
    let valid = match chars.next() {
        None => true,
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        Some(_) => false,
    };
    if valid {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "metrics namespace {ns:?} is not a valid metric name prefix: use letters, digits and \
             '_', not starting with a digit"
        )))
    }
}

impl MetricsPlugin {
    /// Metrics with the default namespace, `rpcx`.
    pub fn new() -> MetricsPlugin {
        MetricsBuilder::default()
            .build()
            .unwrap_or_else(|e| unreachable!("the default settings are valid: {e}"))
    }

    /// Metrics whose names start with `namespace` (`shop` gives `shop_server_calls_total`).
    /// Fails with [`Error::Config`] when it is not a valid prefix (letters, digits and `_`, not
    /// starting with a digit; empty for none).
    pub fn with_namespace(namespace: impl Into<String>) -> sextant::Result<MetricsPlugin> {
        MetricsBuilder::default().namespace(namespace).build()
    }

    /// A builder for the other settings.
    pub fn builder() -> MetricsBuilder {
        MetricsBuilder::default()
    }

    /// The metric name prefix.
    pub fn namespace(&self) -> &str {
        &self.shared.namespace
    }

    /// The client plugin ([`ClientMetricsPlugin`]) for XClients, counting into this handle: its
    /// metrics are exported with the server's. Every call returns a plugin on the same figures,
    /// so several XClients may share them.
    pub fn client_plugin(&self) -> ClientMetricsPlugin {
        ClientMetricsPlugin::new(self.clone())
    }

    /// The registry the metrics are exported from, locked: register metrics of your own in it
    /// (they are not prefixed with the namespace) and they are served with these. Scrapes wait
    /// while the guard is held, so keep it briefly.
    ///
    /// ```
    /// use prometheus_client::metrics::counter::Counter;
    /// use sextant_plugins::metrics::MetricsPlugin;
    ///
    /// let metrics = MetricsPlugin::new();
    /// let orders: Counter = Counter::default();
    /// metrics.registry().register("orders", "Orders placed", orders.clone());
    /// orders.inc();
    /// assert!(metrics.encode().contains("orders_total 1"));
    /// ```
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.shared.registry)
    }

    /// Every metric in the OpenMetrics text format (through
    /// [`prometheus_client::encoding::text::encode`]), ending with `# EOF`. Empty only if a
    /// collector of one's own in the [registry](Self::registry) fails (the HTTP handlers then
    /// answer `500`).
    pub fn encode(&self) -> String {
        self.try_encode().unwrap_or_else(|_| String::new())
    }

    /// Every metric in the Prometheus text format 0.0.4 (empty only if a collector of one's
    /// own fails).
    pub fn encode_prometheus(&self) -> String {
        self.try_encode_prometheus()
            .unwrap_or_else(|_| String::new())
    }

    /// Fails only when a collector of one's own fails.
    fn try_encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry())?;
        Ok(out)
    }

    fn try_encode_prometheus(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry())?;
        Ok(out)
    }

    /// The server side's figures per registered method, sorted by service and method, with the
    /// shared `unknown` label set last. Empty until the plugin is installed on a server.
    pub fn snapshot(&self) -> Vec<MethodSnapshot> {
        if !self.shared.server.is_installed() {
            return Vec::new();
        }
        self.shared
            .server
            .all_stats()
            .iter()
            .map(|s| s.snapshot())
            .collect()
    }

    /// The client side's figures (see [`ClientMetricsPlugin::snapshot`]); empty until a client
    /// plugin was made.
    pub fn client_snapshot(&self) -> Vec<MethodSnapshot> {
        if !self.shared.client.is_used() {
            return Vec::new();
        }
        self.shared
            .client
            .all_stats()
            .iter()
            .map(|s| s.snapshot())
            .collect()
    }

    /// The server's counters ([`Server::stats`]) while it listens, its last ones once it has
    /// shut down; `None` before it listens.
    pub fn server_stats(&self) -> Option<ServerStats> {
        self.shared.server.server_stats()
    }

    /// Server calls that were not counted in the in-flight gauge because more were in flight
    /// than [`MetricsBuilder::in_flight_capacity`].
    pub fn untracked_in_flight(&self) -> u64 {
        self.shared.server.untracked()
    }

    /// The server, while it listens (for the debug page's connection list).
    pub(crate) fn server(&self) -> Option<Server> {
        self.shared.server.server()
    }
}

/// Metric family names, without the namespace.
struct Names {
    calls: &'static str,
    errors: &'static str,
    in_flight: Option<&'static str>,
    duration: &'static str,
}

const SERVER_NAMES: Names = Names {
    calls: "server_calls",
    errors: "server_errors",
    in_flight: Some("server_calls_in_flight"),
    duration: "server_call_duration",
};

const CLIENT_NAMES: Names = Names {
    calls: "client_calls",
    errors: "client_errors",
    in_flight: None,
    duration: "client_call_duration",
};

/// Writes the per-method families of one side.
fn encode_methods(
    encoder: &mut DescriptorEncoder<'_>,
    names: &Names,
    side: &str,
    stats: &[Arc<MethodStats>],
) -> fmt::Result {
    fn labels(s: &MethodStats) -> [(&'static str, &str); 2] {
        [("service", &s.service), ("method", &s.method)]
    }
    {
        let help = format!("rpcx calls finished ({side}), per service and method");
        let mut m = encoder.encode_descriptor(names.calls, &help, None, MetricType::Counter)?;
        for s in stats {
            let l = labels(s);
            m.encode_family(&l)?
                .encode_counter::<NoLabelSet, _, u64>(&s.calls(), None)?;
        }
    }
    {
        let help = format!("rpcx calls finished with an error ({side}), per service and method");
        let mut m = encoder.encode_descriptor(names.errors, &help, None, MetricType::Counter)?;
        for s in stats {
            let l = labels(s);
            m.encode_family(&l)?
                .encode_counter::<NoLabelSet, _, u64>(&s.errors(), None)?;
        }
    }
    if let Some(name) = names.in_flight {
        let help = format!("rpcx calls in progress ({side}), per service and method");
        let mut m = encoder.encode_descriptor(name, &help, None, MetricType::Gauge)?;
        for s in stats {
            let l = labels(s);
            m.encode_family(&l)?.encode_gauge(&s.in_flight())?;
        }
    }
    {
        let help = format!("rpcx call latency ({side}), per service and method");
        let mut m = encoder.encode_descriptor(
            names.duration,
            &help,
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for s in stats {
            let latency = s.latency();
            let buckets: [(f64, u64); BUCKETS] = std::array::from_fn(|i| {
                (
                    LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY),
                    latency.buckets[i],
                )
            });
            let l = labels(s);
            m.encode_family(&l)?.encode_histogram::<NoLabelSet>(
                latency.sum.as_secs_f64(),
                latency.count(),
                &buckets,
                None,
            )?;
        }
    }
    Ok(())
}

/// Exports the server side at scrape time.
#[derive(Debug)]
struct ServerCollector(Arc<ServerState>);

impl Collector for ServerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let state = &self.0;
        if !state.is_installed() {
            return Ok(());
        }
        encode_methods(&mut encoder, &SERVER_NAMES, "server", &state.all_stats())?;
        let Some(stats) = state.server_stats() else {
            return Ok(());
        };
        encoder
            .encode_descriptor(
                "server_open_connections",
                "connections open (rpcx and HTTP)",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&(stats.connections as u64))?;
        let counters: [(&str, &str, Option<&Unit>, u64); 4] = [
            (
                "server_connections",
                "connections accepted (rpcx and HTTP)",
                None,
                stats.total_connections,
            ),
            (
                "server_pushes",
                "server pushes queued (rpcx's SendMessage)",
                None,
                stats.pushes,
            ),
            (
                "server_received",
                "bytes read from rpcx connections",
                Some(&Unit::Bytes),
                stats.bytes_in,
            ),
            (
                "server_sent",
                "bytes written to rpcx connections",
                Some(&Unit::Bytes),
                stats.bytes_out,
            ),
        ];
        for (name, help, unit, value) in counters {
            encoder
                .encode_descriptor(name, help, unit, MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        Ok(())
    }
}

/// Exports the client side at scrape time.
#[derive(Debug)]
struct ClientCollector(Arc<ClientState>);

impl Collector for ClientCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        if !self.0.is_used() {
            return Ok(());
        }
        encode_methods(&mut encoder, &CLIENT_NAMES, "client", &self.0.all_stats())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_checked() {
        assert!(MetricsPlugin::with_namespace("shop_1").is_ok());
        assert!(MetricsPlugin::with_namespace("").is_ok());
        assert!(MetricsPlugin::with_namespace("_x").is_ok());
        for bad in ["1shop", "sh-op", "a b", "ü", "a:b"] {
            let e = MetricsPlugin::with_namespace(bad).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn nothing_is_exported_before_use() {
        let m = MetricsPlugin::new();
        assert_eq!(m.encode(), "# EOF\n");
        assert_eq!(m.encode_prometheus(), "");
        assert!(m.snapshot().is_empty());
        assert!(m.client_snapshot().is_empty());
        assert_eq!(m.server_stats(), None);
    }

    #[test]
    fn client_families_appear_with_the_client_plugin() {
        let m = MetricsPlugin::with_namespace("shop").unwrap();
        let c = m.client_plugin();
        m.shared
            .client
            .all_stats()
            .last()
            .unwrap()
            .record(std::time::Duration::from_millis(3), true);
        let text = m.encode();
        assert!(text.contains("# TYPE shop_client_calls counter"), "{text}");
        assert!(text.contains(r#"shop_client_errors_total{service="unknown",method="unknown"} 1"#));
        assert!(
            text.contains(
                r#"shop_client_call_duration_seconds_bucket{le="0.005",service="unknown",method="unknown"} 1"#
            ),
            "{text}"
        );
        assert_eq!(c.snapshot().len(), 1);
        assert!(!text.contains("server_"));
    }
}
