//! OpenTelemetry spans for rpcx calls, with W3C trace context carried in the request metadata,
//! as Go's [rpcx-plugins] `server/otel` and `client/otel` do (feature `opentelemetry`, on by
//! default; feature `otlp` adds [`otlp_tracer_provider`]).
//!
//! - [`ServerTracingPlugin`] (a [`ServerPlugin`](sextant::ServerPlugin), Go's
//!   `server/otel.OpenTelemetryPlugin`): a span of kind `Server` per call, child of the trace
//!   context the request carries;
//! - [`ClientTracingPlugin`] (an XClient [`ClientPlugin`](sextant::xclient::ClientPlugin), Go's
//!   `client/otel.OpenTelemetryPlugin`): a span of kind `Client` per attempt, child of the
//!   current OpenTelemetry context, whose trace context it writes into the request metadata;
//! - [`W3cTraceContext`]: the W3C Trace Context propagator they use by default (Go's
//!   `propagation.TraceContext{}`), and [`inject`] / [`extract`] (Go's `share.Inject` /
//!   `share.Extract`) for code that sends or reads metadata itself.
//!
//! ## Setting it up
//!
//! The plugins take any [`Tracer`]: the OpenTelemetry SDK's, built from its tracer provider
//! with [`from_provider`](ServerTracingPlugin::from_provider) (instrumentation scope
//! `sextant-plugins`), or the global one with [`global`](ServerTracingPlugin::global). With no
//! SDK installed (the global provider's default), spans are no-ops and cost little: after the
//! first call nothing is named, formatted or stored, and only a trace context that came in
//! goes out again.
//!
//! ```
//! use opentelemetry::trace::TraceContextExt;
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//! use sextant::{Context, Server, ServiceError, XClient};
//! use sextant_plugins::otel::{ClientTracingPlugin, ServerTracingPlugin};
//!
//! # #[tokio::main]
//! # async fn main() -> sextant::Result<()> {
//! let exporter = InMemorySpanExporter::default(); // or OTLP: otel::otlp_tracer_provider
//! let provider = SdkTracerProvider::builder()
//!     .with_simple_exporter(exporter.clone())
//!     .build();
//!
//! let server = Server::builder()
//!     .plugin(ServerTracingPlugin::from_provider(&provider))
//!     .build();
//! server.register_fn("Arith", "Mul", |cx: Context, (a, b): (i64, i64)| async move {
//!     // The server span, to make child spans or to call on with (see below).
//!     let otel = cx.extension::<opentelemetry::Context>();
//!     let trace_id = otel.map(|o| o.span().span_context().trace_id());
//!     tracing::info!(?trace_id, "in the server span");
//!     Ok::<_, ServiceError>(a * b)
//! })?;
//!
//! let _xclient = XClient::builder("Arith")
//!     .plugin(ClientTracingPlugin::from_provider(&provider))
//! #   .discovery(sextant::discovery::MultipleServersDiscovery::new(vec![
//! #       sextant::KVPair::new("tcp@127.0.0.1:1", ""),
//! #   ])?)
//!     // .discovery(..)
//!     .build()?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Parents: what is a child of what
//!
//! The server span is a child of the remote span in the request's `traceparent`, or the root of
//! a new trace when there is none or it is malformed. It is stored in the call's
//! [`Context`](sextant::Context) as an [`opentelemetry::Context`]
//! (`cx.extension::<opentelemetry::Context>()`), which handlers use as the parent of their own
//! spans (`tracer.start_with_context(name, &otel)`). It is there whenever the span is valid or
//! a trace context came in; with a no-op tracer and no incoming trace context, there is none.
//!
//! The client span is a child of [`opentelemetry::Context::current()`] when that has a span;
//! else of the trace context already in the call's metadata, if any (as Go's plugin, which
//! reads it from the metadata); else a new root. A handler that calls another service makes its
//! call a child of its server span by running the call in that context:
//!
//! ```no_run
//! use opentelemetry::trace::FutureExt;
//! # async fn f(cx: sextant::Context, next: sextant::XClient) -> sextant::Result<()> {
//! let otel = cx.extension::<opentelemetry::Context>().unwrap_or_default();
//! let reply: i64 = next.call("Mul", &(6, 7)).with_context(otel).await?;
//! # Ok(())
//! # }
//! ```
//!
//! (`FutureExt::with_context` makes the context current on every poll; a
//! [`ContextGuard`](opentelemetry::ContextGuard) held across an `.await` would not.)
//!
//! ## What goes on the wire
//!
//! The client writes `traceparent` (`00-{32 hex trace id}-{16 hex span id}-{2 hex flags}`) and,
//! when not empty, `tracestate` into the request metadata, replacing any already there; the
//! server reads the same keys ([`TRACEPARENT`], [`TRACESTATE`]). These are the keys and the
//! format Go's rpcx-plugins use with the W3C propagator (`otel.SetTextMapPropagator(
//! propagation.TraceContext{})`), so traces cross Go and Rust services both ways. Another
//! propagator (B3, Jaeger, a composite with baggage) can be set with
//! [`with_propagator`](ServerTracingPlugin::with_propagator), or the global one with
//! [`with_global_propagator`](ServerTracingPlugin::with_global_propagator), as Go's plugins
//! use by default; sextant defaults to W3C because the global propagator of a Rust program is a
//! no-op until it is set.
//!
//! A `traceparent` that is malformed or too long (see [`W3cTraceContext`]) is ignored: the
//! server starts a new trace, the call goes on.
//!
//! ## Spans
//!
//! | | server | client |
//! |---|---|---|
//! | name | `rpcx.service.{service_path}.{service_method}` | `rpcx.client.{service_path}.{service_method}` |
//! | kind | `Server` | `Client` |
//! | starts | [`pre_call`](sextant::ServerPlugin::pre_call) | [`pre_call`](sextant::xclient::ClientPlugin::pre_call) of each attempt |
//! | ends | [`post_write_response`](sextant::ServerPlugin::post_write_response) | [`post_call`](sextant::xclient::ClientPlugin::post_call) of that attempt |
//! | attributes | `rpc.system` = `rpcx`, `rpc.service`, `rpc.method`, `network.transport`, `network.peer.address`, `network.peer.port`; at the end `rpcx.response.size` (bytes), and `rpcx.response.written` = false when the connection had closed | `rpc.system` = `rpcx`, `rpc.service`, `rpc.method`, `server.address`, `server.port`, `rpcx.attempt` (0, then 1, 2, … for retries) |
//! | status | `Ok`, or `Error` with the error text the caller gets | `Ok`, or `Error` with the call's error |
//!
//! A call the server refuses before `pre_call` (a `post_read_request` plugin, a payload that
//! does not decompress, an earlier plugin's `pre_call`) still gets its server span, made in
//! `post_write_response` with the call's start time and its error.
//!
//! An XClient call that fails over makes one client span per attempt, each with its own span
//! id (and `rpcx.attempt`), and so one server span per server tried. The attempts are siblings
//! under the current context's span; with no current span, each attempt is the root of its own
//! trace (the hooks see attempts, not calls), so run calls whose retries should be grouped
//! under a span of your own.
//!
//! The server plugin also makes a [`tracing`] span `rpcx.server` (level INFO, fields `service`,
//! `method`, `peer`, `trace_id`, `span_id`, and at the end `outcome` = `ok`/`error`, `status`
//! = the error text, `response_size`) and stores it as a [`tracing::Span`] extension, so the
//! server runs the handler inside it and the handler's logs carry the trace id;
//! [`with_tracing_span(false)`](ServerTracingPlugin::with_tracing_span) turns it off.
//!
//! ## Differences from Go's rpcx-plugins
//!
//! - The client span's kind is `Client` (Go leaves it `Internal`), per the OpenTelemetry RPC
//!   conventions.
//! - The request metadata is not recorded as a span event unless asked with
//!   [`with_metadata_events(true)`](ServerTracingPlugin::with_metadata_events) (event
//!   `rpcx.pre.handle.request`, Go's names), and then with the `__AUTH` token redacted; the
//!   client records neither arguments nor replies (Go's `PreCall`/`PostCall` events).
//! - No spans for registration or accepted connections (Go's `rpcx.Register`,
//!   `rpcx.AcceptConn`): they belong to no call's trace.
//! - The `Ok` status has no description (OpenTelemetry drops Go's `"success"` anyway).
//!
//! ## The client's pending spans
//!
//! A client plugin's hooks see the attempt ([`CallInfo`](sextant::xclient::CallInfo)), not a
//! per-attempt slot, so the span travels from `pre_call` to `post_call` in a map keyed by the
//! trace id and span id it injected, which `post_call` reads back from the metadata. An
//! attempt whose future is dropped before it ends (a caller's timeout around the call, the
//! losing request of `Failbackup`) reaches `post_call` from the drop, with
//! `Error::Canceled`: its span ends with the error status `call cancelled`. As a bound for
//! plugins driven by hand (a `pre_call` with no `post_call`), the map holds at most [`with_max_pending_spans`](ClientTracingPlugin::with_max_pending_spans)
//! spans (default 16 384); when full, the oldest eighth are ended with the attribute
//! `rpcx.span.evicted` = true. Spans still pending when the plugin is dropped are ended by
//! the SDK then.
//!
//! [rpcx-plugins]: https://github.com/rpcxio/rpcx-plugins

mod client;
#[cfg(feature = "otlp")]
mod otlp;
mod server;
mod w3c;

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span, SpanBuilder, SpanId, SpanKind, TraceContextExt, TraceId, Tracer};
use opentelemetry::{global, InstrumentationScope, KeyValue};
use sextant::Metadata;

pub use self::client::ClientTracingPlugin;
#[cfg(feature = "otlp")]
pub use self::otlp::{otlp_tracer_provider, otlp_tracer_provider_builder, ExporterBuildError};
pub use self::server::ServerTracingPlugin;
pub use self::w3c::{
    MetadataExtractor, MetadataInjector, W3cTraceContext, TRACEPARENT, TRACESTATE,
};

/// Writes the span of `cx` into `metadata` as W3C trace context (Go rpcx-plugins'
/// `share.Inject` with the W3C propagator): for calls sent without the [`ClientTracingPlugin`],
/// through a [`Client`](sextant::Client) or [`send_raw`](sextant::XClient::send_raw).
///
/// ```
/// use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
/// use sextant::Metadata;
/// use sextant_plugins::otel;
///
/// let sc = SpanContext::new(TraceId::from(7), SpanId::from(9), TraceFlags::SAMPLED, false, TraceState::NONE);
/// let cx = opentelemetry::Context::new().with_remote_span_context(sc);
/// let mut metadata = Metadata::new();
/// otel::inject(&cx, &mut metadata);
/// assert_eq!(
///     metadata.get(otel::TRACEPARENT),
///     Some("00-00000000000000000000000000000007-0000000000000009-01")
/// );
/// assert_eq!(otel::extract(&metadata).span().span_context().span_id(), SpanId::from(9));
/// ```
pub fn inject(cx: &opentelemetry::Context, metadata: &mut Metadata) {
    W3cTraceContext::inject_span_context(cx.span().span_context(), metadata);
}

/// The context of the W3C trace context in `metadata`, with its span as remote parent (Go
/// rpcx-plugins' `share.Extract`); an empty context when there is none or it is malformed.
pub fn extract(metadata: &Metadata) -> opentelemetry::Context {
    match W3cTraceContext::extract_span_context(metadata) {
        Some(sc) => opentelemetry::Context::new().with_remote_span_context(sc),
        None => opentelemetry::Context::new(),
    }
}

/// The instrumentation scope of the plugins' tracers.
fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// Attribute keys (OpenTelemetry semantic conventions, and rpcx's own).
mod keys {
    pub(super) const RPC_SYSTEM: &str = "rpc.system";
    pub(super) const RPC_SERVICE: &str = "rpc.service";
    pub(super) const RPC_METHOD: &str = "rpc.method";
    pub(super) const NETWORK_TRANSPORT: &str = "network.transport";
    pub(super) const NETWORK_PEER_ADDRESS: &str = "network.peer.address";
    pub(super) const NETWORK_PEER_PORT: &str = "network.peer.port";
    pub(super) const SERVER_ADDRESS: &str = "server.address";
    pub(super) const SERVER_PORT: &str = "server.port";
    pub(super) const ATTEMPT: &str = "rpcx.attempt";
    pub(super) const RESPONSE_SIZE: &str = "rpcx.response.size";
    pub(super) const RESPONSE_WRITTEN: &str = "rpcx.response.written";
    pub(super) const SPAN_EVICTED: &str = "rpcx.span.evicted";
    pub(super) const SPAN_UNTRACKED: &str = "rpcx.span.untracked";
}

/// The propagator a plugin uses.
#[derive(Clone)]
enum Propagation {
    /// [`W3cTraceContext`], called directly.
    W3c,
    /// The global propagator, looked up on each call.
    Global,
    /// A propagator the user gave.
    Custom(Arc<dyn TextMapPropagator + Send + Sync>),
}

impl Propagation {
    /// `base` with the trace context of `metadata` (its span the remote parent), or `base` as
    /// it is when there is none.
    fn extract(
        &self,
        base: &opentelemetry::Context,
        metadata: &Metadata,
    ) -> opentelemetry::Context {
        match self {
            Propagation::W3c => match W3cTraceContext::extract_span_context(metadata) {
                Some(sc) => base.with_remote_span_context(sc),
                None => base.clone(),
            },
            Propagation::Global => global::get_text_map_propagator(|p| {
                p.extract_with_context(base, &MetadataExtractor(metadata))
            }),
            Propagation::Custom(p) => p.extract_with_context(base, &MetadataExtractor(metadata)),
        }
    }

    /// Writes the span of `cx` into `metadata`, removing the propagator's keys first so that
    /// no stale value (a `tracestate` of an earlier trace) goes along.
    fn inject(&self, cx: &opentelemetry::Context, metadata: &mut Metadata) {
        fn clear(p: &dyn TextMapPropagator, metadata: &mut Metadata) {
            for key in p.fields() {
                if metadata.contains_key(key) {
                    metadata.remove(key);
                }
            }
        }
        match self {
            Propagation::W3c => {
                if metadata.contains_key(TRACESTATE) {
                    metadata.remove(TRACESTATE);
                }
                W3cTraceContext::inject_span_context(cx.span().span_context(), metadata);
            }
            Propagation::Global => global::get_text_map_propagator(|p| {
                clear(p, metadata);
                p.inject_context(cx, &mut MetadataInjector(metadata));
            }),
            Propagation::Custom(p) => {
                clear(&**p, metadata);
                p.inject_context(cx, &mut MetadataInjector(metadata));
            }
        }
    }

    /// The trace id and span id `metadata` carries, as this propagator reads them.
    fn ids(&self, metadata: &Metadata) -> Option<(TraceId, SpanId)> {
        if let Propagation::W3c = self {
            return W3cTraceContext::ids(metadata);
        }
        let cx = self.extract(&opentelemetry::Context::new(), metadata);
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| (sc.trace_id(), sc.span_id()))
    }

    /// Whether [`ids`](Propagation::ids) always finds what [`inject`](Propagation::inject)
    /// wrote.
    fn round_trips_by_construction(&self) -> bool {
        matches!(self, Propagation::W3c)
    }
}

impl std::fmt::Debug for Propagation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Propagation::W3c => "W3cTraceContext",
            Propagation::Global => "global",
            Propagation::Custom(_) => "custom",
        })
    }
}

/// Starts spans, skipping their names and attributes while the tracer makes only no-op spans.
///
/// A span's name and attributes are given when it starts, and building them (a `format!`, a few
/// `String`s) is most of a no-op span's cost. The starter remembers whether the last span it
/// made was a no-op one (not recording, and either invalid or the parent's own span context:
/// what OpenTelemetry's no-op tracer returns; the SDK always gives a new span id, even to spans
/// its sampler drops) and then starts the next one with a fixed name and no attributes; should
/// that one record after all, it is renamed and given its attributes at once, and from then on
/// spans are described up front again, so samplers of a real SDK see every attribute.
///
/// The tracer of a plugin made with `global()` is the global provider's at that moment, kept
/// for good (later `set_tracer_provider` calls give new tracers, not this one). Once such a
/// tracer has made a no-op span, it is OpenTelemetry's no-op tracer (or a shut-down SDK's,
/// which stays so), and will make nothing else: the starter is then
/// [`fixed_noop`](Starter::is_fixed_noop), and the plugin makes no span at all for a call that
/// carries no trace context (a no-op span would be dropped unused).
#[derive(Debug, Default)]
struct Starter {
    noop: AtomicBool,
    /// The tracer came from the global provider (see above).
    global: bool,
}

impl Starter {
    /// The starter of a plugin whose tracer the global provider gave.
    fn for_global() -> Starter {
        Starter {
            noop: AtomicBool::new(false),
            global: true,
        }
    }

    /// Whether the tracer makes only no-op spans, for good.
    #[inline]
    fn is_fixed_noop(&self) -> bool {
        self.global && self.noop.load(Ordering::Relaxed)
    }

    #[inline]
    fn start<T: Tracer>(
        &self,
        tracer: &T,
        parent: &opentelemetry::Context,
        kind: SpanKind,
        placeholder: &'static str,
        start_time: Option<SystemTime>,
        describe: impl FnOnce() -> (Cow<'static, str>, Vec<KeyValue>),
    ) -> T::Span {
        let builder = |name: Cow<'static, str>| {
            let b = SpanBuilder::from_name(name).with_kind(kind.clone());
            match start_time {
                Some(t) => b.with_start_time(t),
                None => b,
            }
        };
        if self.noop.load(Ordering::Relaxed) {
            let mut span = tracer.build_with_context(builder(placeholder.into()), parent);
            if span.is_recording() {
                let (name, attributes) = describe();
                span.update_name(name);
                span.set_attributes(attributes);
                self.noop.store(false, Ordering::Relaxed);
            }
            return span;
        }
        let (name, attributes) = describe();
        let span = tracer.build_with_context(builder(name).with_attributes(attributes), parent);
        if is_noop(&span, parent) {
            self.noop.store(true, Ordering::Relaxed);
        }
        span
    }
}

/// Whether `span` looks like what the no-op tracer makes.
fn is_noop(span: &impl Span, parent: &opentelemetry::Context) -> bool {
    if span.is_recording() {
        return false;
    }
    let sc = span.span_context();
    !sc.is_valid()
        || (parent.has_active_span() && parent.span().span_context().span_id() == sc.span_id())
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::noop::NoopTracer;
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};

    use super::*;

    fn describe() -> (Cow<'static, str>, Vec<KeyValue>) {
        ("full.name".into(), vec![KeyValue::new("k", "v")])
    }

    #[test]
    fn only_a_global_starter_becomes_fixed_noop() {
        let root = opentelemetry::Context::new();
        let global = Starter::for_global();
        let other = Starter::default();
        assert!(!global.is_fixed_noop(), "not before a span was seen");
        for s in [&global, &other] {
            s.start(
                &NoopTracer::new(),
                &root,
                SpanKind::Server,
                "p",
                None,
                describe,
            );
        }
        assert!(global.is_fixed_noop());
        assert!(
            !other.is_fixed_noop(),
            "a tracer given by the user may change"
        );

        // An SDK tracer's spans are never no-op ones, even those its sampler drops.
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .build();
        let sdk = Starter::for_global();
        sdk.start(
            &provider.tracer("t"),
            &root,
            SpanKind::Server,
            "p",
            None,
            describe,
        );
        assert!(!sdk.is_fixed_noop());
    }

    #[test]
    fn starter_skips_descriptions_for_noop_spans_only() {
        let starter = Starter::default();
        let noop = NoopTracer::new();
        let root = opentelemetry::Context::new();
        let described = std::cell::Cell::new(0);
        let count = || {
            described.set(described.get() + 1);
            describe()
        };
        for _ in 0..3 {
            let s = starter.start(&noop, &root, SpanKind::Server, "p", None, count);
            assert!(!s.span_context().is_valid());
        }
        assert_eq!(described.get(), 1, "only the first no-op span is described");

        // A no-op span under a remote parent carries the parent's context: still a no-op.
        let sc = W3cTraceContext::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            None,
        )
        .unwrap();
        let parent = root.with_remote_span_context(sc.clone());
        let s = starter.start(&noop, &parent, SpanKind::Server, "p", None, describe);
        assert_eq!(s.span_context(), &sc);
        assert!(starter.noop.load(Ordering::Relaxed));

        // The same starter with a recording tracer: the span gets its real name and attributes.
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = provider.tracer("t");
        let mut s = starter.start(&tracer, &root, SpanKind::Server, "p", None, describe);
        s.end();
        assert!(!starter.noop.load(Ordering::Relaxed));
        let mut s = starter.start(&tracer, &root, SpanKind::Server, "p", None, describe);
        s.end();
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 2);
        for s in spans {
            assert_eq!(s.name, "full.name");
            assert_eq!(s.attributes, vec![KeyValue::new("k", "v")]);
        }

        // Spans an SDK sampler drops are not taken for no-op ones.
        let dropping = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .build();
        let s = starter.start(
            &dropping.tracer("t"),
            &root,
            SpanKind::Server,
            "p",
            None,
            describe,
        );
        assert!(s.span_context().is_valid() && !s.is_recording());
        assert!(!starter.noop.load(Ordering::Relaxed));
    }
}
