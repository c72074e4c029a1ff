//! The client plugin: a span per attempt, its trace context in the request metadata.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use opentelemetry::global::BoxedTracer;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Span, SpanId, SpanKind, Status, TraceContextExt, TraceId, Tracer, TracerProvider,
};
use opentelemetry::{global, KeyValue};
use sextant::xclient::{CallInfo, ClientPlugin};
use sextant::Error;

use super::keys::*;
use super::{scope, Propagation, Starter, W3cTraceContext};

/// The name a span has before the starter knows it records (see [`Starter`]).
const PLACEHOLDER: &str = "rpcx.client";

/// Default of [`ClientTracingPlugin::with_max_pending_spans`].
const DEFAULT_MAX_PENDING: usize = 16 * 1024;

/// Spans for an XClient's calls (Go rpcx-plugins' `client/otel.OpenTelemetryPlugin`): one span
/// of kind `Client` per attempt, child of the current OpenTelemetry context, whose W3C trace
/// context goes to the server in the request metadata (`traceparent`, `tracestate`). See the
/// [module docs](super) for names, attributes, parents and how spans travel from `pre_call` to
/// `post_call`.
///
/// ```
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use sextant::discovery::MultipleServersDiscovery;
/// use sextant::{KVPair, XClient};
/// use sextant_plugins::otel::ClientTracingPlugin;
///
/// # #[tokio::main]
/// # async fn main() -> sextant::Result<()> {
/// let provider = SdkTracerProvider::builder().build(); // .with_batch_exporter(..)
/// let xclient = XClient::builder("Arith")
///     .discovery(MultipleServersDiscovery::new(vec![KVPair::new("tcp@127.0.0.1:8972", "")])?)
///     .plugin(ClientTracingPlugin::from_provider(&provider))
///     .build()?;
/// # drop(xclient);
/// # Ok(())
/// # }
/// ```
pub struct ClientTracingPlugin<T = BoxedTracer> {
    tracer: T,
    propagation: Propagation,
    starter: Starter,
    pending: PendingSpans,
}

impl ClientTracingPlugin<BoxedTracer> {
    /// A plugin with the global tracer provider's tracer (instrumentation scope
    /// `sextant-plugins`). The tracer is the one the global provider has now: set the provider
    /// ([`global::set_tracer_provider`](opentelemetry::global::set_tracer_provider)) first.
    pub fn global() -> ClientTracingPlugin<BoxedTracer> {
        let mut plugin = ClientTracingPlugin::new(global::tracer_with_scope(scope()));
        plugin.starter = Starter::for_global();
        plugin
    }
}

impl<T> ClientTracingPlugin<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    /// A plugin making its spans with `tracer` (Go's `NewOpenTelemetryPlugin(tracer, nil)`, but
    /// with the W3C propagator rather than the global one; see
    /// [`with_global_propagator`](ClientTracingPlugin::with_global_propagator)).
    pub fn new(tracer: T) -> ClientTracingPlugin<T> {
        ClientTracingPlugin {
            tracer,
            propagation: Propagation::W3c,
            starter: Starter::default(),
            pending: PendingSpans::new(DEFAULT_MAX_PENDING),
        }
    }

    /// A plugin with `provider`'s tracer for the instrumentation scope `sextant-plugins`.
    pub fn from_provider<P>(provider: &P) -> ClientTracingPlugin<T>
    where
        P: TracerProvider<Tracer = T>,
    {
        ClientTracingPlugin::new(provider.tracer_with_scope(scope()))
    }

    /// Writes (and reads) the trace context with `propagator` instead of
    /// [`W3cTraceContext`] (Go's `NewOpenTelemetryPlugin(tracer, propagators)`). `post_call`
    /// finds an attempt's span again by extracting what was injected; a propagator that writes
    /// nothing it can read back (a no-op one) gets spans that end in `pre_call`, marked
    /// `rpcx.span.untracked` = true.
    pub fn with_propagator(
        mut self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> ClientTracingPlugin<T> {
        self.propagation = Propagation::Custom(std::sync::Arc::new(propagator));
        self
    }

    /// Uses the global propagator
    /// ([`global::set_text_map_propagator`](opentelemetry::global::set_text_map_propagator)),
    /// looked up on each call: what Go's plugin does when given no propagator.
    pub fn with_global_propagator(mut self) -> ClientTracingPlugin<T> {
        self.propagation = Propagation::Global;
        self
    }

    /// How many spans may wait between `pre_call` and `post_call` (default 16 384, at least 1):
    /// the attempts in flight (an attempt the caller drops ends its span from the drop, as
    /// cancelled). When full, the oldest eighth are ended, marked `rpcx.span.evicted` = true
    /// (see the [module docs](super)).
    pub fn with_max_pending_spans(mut self, max: usize) -> ClientTracingPlugin<T> {
        self.pending = PendingSpans::new(max);
        self
    }
}

impl<T> ClientPlugin for ClientTracingPlugin<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    fn pre_call(&self, call: &mut CallInfo<'_>) -> sextant::Result<()> {
        let mut parent = opentelemetry::Context::current();
        if !parent.has_active_span() {
            // Go's plugin takes its parent from the metadata: a trace context put there by hand.
            let remote = self.propagation.extract(&parent, call.metadata);
            if remote.has_active_span() {
                parent = remote;
            } else if self.starter.is_fixed_noop() {
                // A no-op tracer and no trace context: nothing to make, nothing to send.
                return Ok(());
            }
        }
        let span = self.starter.start(
            &self.tracer,
            &parent,
            SpanKind::Client,
            PLACEHOLDER,
            None,
            || describe(call),
        );
        let (sc, recording) = (span.span_context().clone(), span.is_recording());
        if !sc.is_valid() {
            // A no-op span with no trace context around it: nothing to send, nothing to end.
            return Ok(());
        }
        if !recording {
            // Nothing to end: only the trace context goes on (a no-op tracer under a parent, or
            // a span the sampler dropped).
            match self.propagation {
                Propagation::W3c => {
                    if call.metadata.contains_key(super::TRACESTATE) {
                        call.metadata.remove(super::TRACESTATE);
                    }
                    W3cTraceContext::inject_span_context(&sc, call.metadata);
                }
                _ => self
                    .propagation
                    .inject(&parent.with_span(span), call.metadata),
            }
            return Ok(());
        }
        let cx = parent.with_span(span);
        self.propagation.inject(&cx, call.metadata);
        let key = (sc.trace_id(), sc.span_id());
        if !self.propagation.round_trips_by_construction()
            && self.propagation.ids(call.metadata) != Some(key)
        {
            let span = cx.span();
            span.set_attribute(KeyValue::new(SPAN_UNTRACKED, true));
            span.end();
            return Ok(());
        }
        self.pending.insert(key, cx);
        Ok(())
    }

    fn post_call(&self, call: &CallInfo<'_>, error: Option<&Error>, _elapsed: Duration) {
        if self.pending.is_empty() {
            return;
        }
        let Some(key) = self.propagation.ids(call.metadata) else {
            return;
        };
        let Some(cx) = self.pending.remove(key) else {
            return;
        };
        let span = cx.span();
        span.set_status(match error {
            Some(e) => Status::error(e.to_string()),
            None => Status::Ok,
        });
        span.end();
    }
}

impl<T> fmt::Debug for ClientTracingPlugin<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTracingPlugin")
            .field("propagator", &self.propagation)
            .field("pending_spans", &self.pending.len())
            .field("max_pending_spans", &self.pending.capacity())
            .finish_non_exhaustive()
    }
}

/// The client span's name and starting attributes.
fn describe(call: &CallInfo<'_>) -> (Cow<'static, str>, Vec<KeyValue>) {
    let mut attributes = Vec::with_capacity(6);
    attributes.push(KeyValue::new(RPC_SYSTEM, "rpcx"));
    attributes.push(KeyValue::new(RPC_SERVICE, call.service_path.to_owned()));
    attributes.push(KeyValue::new(RPC_METHOD, call.service_method.to_owned()));
    server_attributes(call.server, &mut attributes);
    attributes.push(KeyValue::new(ATTEMPT, i64::from(call.attempt)));
    let name = format!("rpcx.client.{}.{}", call.service_path, call.service_method);
    (name.into(), attributes)
}

/// `server.address` and `server.port` of a server as discovery lists it
/// (`tcp@127.0.0.1:8972`, `quic@[::1]:8972`, `unix@/tmp/rpcx.sock`).
fn server_attributes(server: &str, out: &mut Vec<KeyValue>) {
    let address = server.split_once('@').map_or(server, |(_, a)| a);
    if !address.starts_with('/') {
        let host_port = address.split('/').next().unwrap_or(address);
        if let Some((host, port)) = host_port.rsplit_once(':') {
            if let Ok(port) = port.parse::<u16>() {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                out.push(KeyValue::new(SERVER_ADDRESS, host.to_owned()));
                out.push(KeyValue::new(SERVER_PORT, i64::from(port)));
                return;
            }
        }
    }
    if !address.is_empty() {
        out.push(KeyValue::new(SERVER_ADDRESS, address.to_owned()));
    }
}

type SpanKey = (TraceId, SpanId);

/// Spans between `pre_call` and `post_call`, bounded.
struct PendingSpans {
    shards: Box<[Mutex<HashMap<SpanKey, Pending>>]>,
    shard_capacity: usize,
    len: AtomicUsize,
    /// Insertion order, to evict the oldest.
    next_seq: AtomicU64,
}

struct Pending {
    cx: opentelemetry::Context,
    seq: u64,
}

impl PendingSpans {
    fn new(max: usize) -> PendingSpans {
        let max = max.max(1);
        // Shards keep concurrent attempts off one lock; small maps stay exact in one shard.
        let n = if max >= 4096 { 16 } else { 1 };
        PendingSpans {
            shards: (0..n).map(|_| Mutex::new(HashMap::new())).collect(),
            shard_capacity: max / n,
            len: AtomicUsize::new(0),
            next_seq: AtomicU64::new(0),
        }
    }

    fn capacity(&self) -> usize {
        self.shard_capacity * self.shards.len()
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &SpanKey) -> MutexGuard<'_, HashMap<SpanKey, Pending>> {
        // Span ids are random: their low bits spread spans over the shards.
        let i = (u64::from_be_bytes(key.1.to_bytes()) % self.shards.len() as u64) as usize;
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, key: SpanKey, cx: opentelemetry::Context) {
        let mut ended = Vec::new();
        {
            let mut shard = self.shard(&key);
            if shard.len() >= self.shard_capacity && !shard.contains_key(&key) {
                let mut by_age: Vec<(u64, SpanKey)> =
                    shard.iter().map(|(k, p)| (p.seq, *k)).collect();
                by_age.sort_unstable_by_key(|(seq, _)| *seq);
                let n = (self.shard_capacity / 8).max(1);
                for (_, k) in by_age.into_iter().take(n) {
                    if let Some(p) = shard.remove(&k) {
                        ended.push(p.cx);
                    }
                }
            }
            let fresh = Pending {
                cx,
                seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            };
            if let Some(old) = shard.insert(key, fresh) {
                ended.push(old.cx);
            }
            self.len.fetch_add(1, Ordering::Release);
            self.len.fetch_sub(ended.len(), Ordering::Release);
        }
        // Ended outside the lock: an exporter may run here.
        for cx in ended {
            let span = cx.span();
            span.set_attribute(KeyValue::new(SPAN_EVICTED, true));
            span.end();
        }
    }

    fn remove(&self, key: SpanKey) -> Option<opentelemetry::Context> {
        let mut shard = self.shard(&key);
        let p = shard.remove(&key)?;
        self.len.fetch_sub(1, Ordering::Release);
        Some(p.cx)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    use super::*;

    #[test]
    fn server_addresses() {
        let attrs = |s: &str| {
            let mut out = Vec::new();
            server_attributes(s, &mut out);
            out
        };
        assert_eq!(
            attrs("tcp@127.0.0.1:8972"),
            [
                KeyValue::new(SERVER_ADDRESS, "127.0.0.1"),
                KeyValue::new(SERVER_PORT, 8972)
            ]
        );
        assert_eq!(
            attrs("quic@[::1]:9"),
            [
                KeyValue::new(SERVER_ADDRESS, "::1"),
                KeyValue::new(SERVER_PORT, 9)
            ]
        );
        assert_eq!(
            attrs("unix@/tmp/a:b.sock"),
            [KeyValue::new(SERVER_ADDRESS, "/tmp/a:b.sock")]
        );
        assert_eq!(
            attrs("ws@example.com:80/ws"),
            [
                KeyValue::new(SERVER_ADDRESS, "example.com"),
                KeyValue::new(SERVER_PORT, 80)
            ]
        );
        assert_eq!(
            attrs("inprocess@hub"),
            [KeyValue::new(SERVER_ADDRESS, "hub")]
        );
        assert!(attrs("").is_empty());
    }

    #[test]
    fn pending_spans_are_bounded_and_evicted_oldest_first() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = provider.tracer("t");
        let pending = PendingSpans::new(8);
        let mut keys = Vec::new();
        for i in 0..20 {
            let span = tracer.start(format!("s{i}"));
            let sc = span.span_context().clone();
            let key = (sc.trace_id(), sc.span_id());
            pending.insert(key, opentelemetry::Context::new().with_span(span));
            keys.push(key);
            assert!(pending.len() <= 8);
        }
        assert_eq!(pending.len(), 8);
        let evicted = exporter.get_finished_spans().unwrap();
        assert_eq!(evicted.len(), 12);
        assert!(evicted
            .iter()
            .all(|s| s.attributes.contains(&KeyValue::new(SPAN_EVICTED, true))));
        // The oldest went first: the last eight are the ones still pending.
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(pending.remove(*key).is_some(), i >= 12, "span {i}");
        }
        assert!(pending.is_empty());
        assert_eq!(pending.remove(keys[19]).map(|_| ()), None);
    }
}
