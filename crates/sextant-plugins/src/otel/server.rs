//! The server plugin: a span per call.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use bytes::Bytes;
use hashbrown::{Equivalent, HashMap};
use opentelemetry::global::BoxedTracer;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Span, SpanKind, SpanRef, Status, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::{global, KeyValue, StringValue};
use sextant::{CallHooks, CallOutcome, Context, Metadata, PeerAddr, ServerPlugin, Verdict};
use tracing::field::{display, Empty};
use tracing::level_filters::LevelFilter;
use tracing::Level;

use super::keys::*;
use super::{scope, Propagation, Starter};

/// The name a span has before the starter knows it records (see [`Starter`]).
const PLACEHOLDER: &str = "rpcx.service";

/// Spans for the calls a server serves (Go rpcx-plugins' `server/otel.OpenTelemetryPlugin`):
/// one span of kind `Server` per call, child of the W3C trace context in the request metadata,
/// and a [`tracing`] span around the handler. See the [module docs](super) for names,
/// attributes and parents.
///
/// ```
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use sextant::Server;
/// use sextant_plugins::otel::ServerTracingPlugin;
///
/// let provider = SdkTracerProvider::builder().build(); // .with_batch_exporter(..)
/// let server = Server::builder()
///     .plugin(ServerTracingPlugin::from_provider(&provider).with_metadata_events(true))
///     .build();
/// # drop(server);
/// ```
pub struct ServerTracingPlugin<T = BoxedTracer> {
    tracer: T,
    propagation: Propagation,
    starter: Starter,
    tracing_span: bool,
    metadata_events: bool,
    texts: Texts,
}

/// What the plugin keeps in the call's context between `pre_call` and `post_write_response`
/// (private, so that a handler replacing the public extensions cannot make it end their span).
struct ServerSpan {
    otel: Option<opentelemetry::Context>,
    tracing: tracing::Span,
}

impl ServerTracingPlugin<BoxedTracer> {
    /// A plugin with the global tracer provider's tracer (instrumentation scope
    /// `sextant-plugins`), as Go's plugin is given `otel.Tracer(..)`. The tracer is the one the
    /// global provider has now: set the provider
    /// ([`global::set_tracer_provider`](opentelemetry::global::set_tracer_provider)) first.
    pub fn global() -> ServerTracingPlugin<BoxedTracer> {
        let mut plugin = ServerTracingPlugin::new(global::tracer_with_scope(scope()));
        plugin.starter = Starter::for_global();
        plugin
    }
}

impl<T> ServerTracingPlugin<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    /// A plugin making its spans with `tracer` (Go's `NewOpenTelemetryPlugin(tracer, nil)`, but
    /// with the W3C propagator rather than the global one; see
    /// [`with_global_propagator`](ServerTracingPlugin::with_global_propagator)).
    pub fn new(tracer: T) -> ServerTracingPlugin<T> {
        ServerTracingPlugin {
            tracer,
            propagation: Propagation::W3c,
            starter: Starter::default(),
            tracing_span: true,
            metadata_events: false,
            texts: Texts::default(),
        }
    }

    /// A plugin with `provider`'s tracer for the instrumentation scope `sextant-plugins`.
    pub fn from_provider<P>(provider: &P) -> ServerTracingPlugin<T>
    where
        P: TracerProvider<Tracer = T>,
    {
        ServerTracingPlugin::new(provider.tracer_with_scope(scope()))
    }

    /// Reads the trace context with `propagator` instead of [`W3cTraceContext`](super::W3cTraceContext)
    /// (Go's `NewOpenTelemetryPlugin(tracer, propagators)`).
    pub fn with_propagator(
        mut self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> ServerTracingPlugin<T> {
        self.propagation = Propagation::Custom(std::sync::Arc::new(propagator));
        self
    }

    /// Reads the trace context with the global propagator
    /// ([`global::set_text_map_propagator`](opentelemetry::global::set_text_map_propagator)),
    /// looked up on each call: what Go's plugin does when given no propagator.
    pub fn with_global_propagator(mut self) -> ServerTracingPlugin<T> {
        self.propagation = Propagation::Global;
        self
    }

    /// Whether to make the `rpcx.server` [`tracing`] span around the handler (default: yes).
    pub fn with_tracing_span(mut self, on: bool) -> ServerTracingPlugin<T> {
        self.tracing_span = on;
        self
    }

    /// Whether to record the request metadata as a span event, as Go's plugin does (default:
    /// no, it costs a string per call): event `rpcx.pre.handle.request` with attributes
    /// `rpcx.pre.handle.request.path` (the span name) and `rpcx.pre.handle.request.metadata`
    /// (`map[key:value …]`, sorted, as Go prints it), the `__AUTH` token replaced by
    /// `<redacted>`.
    pub fn with_metadata_events(mut self, on: bool) -> ServerTracingPlugin<T> {
        self.metadata_events = on;
        self
    }

    /// Starts the server span of `ctx`'s call under `parent`.
    fn start(
        &self,
        ctx: &Context,
        parent: &opentelemetry::Context,
        start_time: Option<SystemTime>,
    ) -> T::Span {
        let mut span = self.starter.start(
            &self.tracer,
            parent,
            SpanKind::Server,
            PLACEHOLDER,
            start_time,
            || self.texts.describe(ctx),
        );
        if self.metadata_events && span.is_recording() {
            span.add_event(
                "rpcx.pre.handle.request",
                vec![
                    KeyValue::new("rpcx.pre.handle.request.path", span_name(ctx)),
                    KeyValue::new("rpcx.pre.handle.request.metadata", go_map(ctx.metadata())),
                ],
            );
        }
        span
    }

    /// Whether an `rpcx.server` tracing span may be wanted. `info_span!` checks its callsite
    /// too, but this global check is cheaper when no subscriber takes INFO spans (the usual
    /// case in production and benchmarks).
    #[inline]
    fn wants_tracing_span(&self) -> bool {
        self.tracing_span && LevelFilter::current() >= Level::INFO
    }

    /// The `rpcx.server` tracing span of `ctx`'s call.
    fn tracing_span(&self, ctx: &Context, span: &impl Span) -> tracing::Span {
        if !self.wants_tracing_span() {
            return tracing::Span::none();
        }
        let t = tracing::info_span!(
            "rpcx.server",
            service = ctx.service_path(),
            method = ctx.service_method(),
            peer = Empty,
            trace_id = Empty,
            span_id = Empty,
            outcome = Empty,
            status = Empty,
            response_size = Empty,
        );
        if t.is_disabled() {
            return t;
        }
        if let Some(peer) = ctx.peer_addr() {
            t.record("peer", display(peer));
        }
        let sc = span.span_context();
        if sc.is_valid() {
            t.record("trace_id", display(sc.trace_id()));
            t.record("span_id", display(sc.span_id()));
        }
        t
    }

    /// Ends a span with the call's outcome.
    fn end(&self, span: SpanRef<'_>, ctx: &Context, outcome: &CallOutcome, written: bool) {
        if span.is_recording() {
            span.set_attribute(KeyValue::new(
                RESPONSE_SIZE,
                i64::try_from(outcome.response_len()).unwrap_or(i64::MAX),
            ));
            if !written && !ctx.is_oneway() {
                span.set_attribute(KeyValue::new(RESPONSE_WRITTEN, false));
            }
            span.set_status(match outcome.error() {
                Some(e) => Status::error(e.to_owned()),
                None => Status::Ok,
            });
        }
        span.end();
    }
}

impl<T> ServerPlugin for ServerTracingPlugin<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    fn call_hooks(&self) -> CallHooks {
        CallHooks::PRE_CALL | CallHooks::POST_WRITE_RESPONSE
    }

    fn pre_call(&self, ctx: &Context, _payload: &Bytes) -> Verdict {
        let parent = self
            .propagation
            .extract(&opentelemetry::Context::new(), ctx.metadata());
        if self.starter.is_fixed_noop() && !parent.has_active_span() && !self.wants_tracing_span() {
            // A no-op tracer, no trace context, no tracing span: nothing to make.
            return Verdict::Continue;
        }
        let span = self.start(ctx, &parent, None);
        let tracing = self.tracing_span(ctx, &span);
        let valid = span.span_context().is_valid();
        if !valid && tracing.is_disabled() {
            // A no-op span and no trace context: nothing for the handler, nothing to end.
            return Verdict::Continue;
        }
        let recording = span.is_recording();
        let otel = valid.then(|| parent.with_span(span));
        if let Some(cx) = &otel {
            if !recording && tracing.is_disabled() {
                // A span the sampler dropped (or a no-op one under a remote parent): only its
                // trace context is for the handler, there is nothing to end. (Its presence tells
                // `post_write_response` that this hook ran.)
                ctx.insert_extension(cx.clone());
                return Verdict::Continue;
            }
            ctx.insert_extension(cx.clone());
        }
        if !tracing.is_disabled() {
            ctx.insert_extension(tracing.clone());
        }
        ctx.insert_extension(ServerSpan { otel, tracing });
        Verdict::Continue
    }

    fn post_write_response(&self, ctx: &Context, outcome: &CallOutcome, written: bool) {
        match ctx.remove_extension::<ServerSpan>() {
            Some(s) => {
                if let Some(cx) = &s.otel {
                    self.end(cx.span(), ctx, outcome, written);
                }
                if !s.tracing.is_disabled() {
                    s.tracing
                        .record("outcome", if outcome.is_ok() { "ok" } else { "error" });
                    if let Some(e) = outcome.error() {
                        s.tracing.record("status", e);
                    }
                    s.tracing.record("response_size", outcome.response_len());
                }
            }
            // Refused before `pre_call` ran (which leaves at least the trace context when it
            // makes a span): the span is made now, from the call's start.
            None if !outcome.is_ok()
                && !self.starter.is_fixed_noop()
                && !ctx.with_extension(|c: Option<&opentelemetry::Context>| c.is_some()) =>
            {
                let parent = self
                    .propagation
                    .extract(&opentelemetry::Context::new(), ctx.metadata());
                let started = SystemTime::now()
                    .checked_sub(outcome.elapsed())
                    .unwrap_or_else(SystemTime::now);
                let span = self.start(ctx, &parent, Some(started));
                let cx = parent.with_span(span);
                self.end(cx.span(), ctx, outcome, written);
            }
            None => {}
        }
    }
}

impl<T> fmt::Debug for ServerTracingPlugin<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTracingPlugin")
            .field("propagator", &self.propagation)
            .field("tracing_span", &self.tracing_span)
            .field("metadata_events", &self.metadata_events)
            .finish_non_exhaustive()
    }
}

fn span_name(ctx: &Context) -> String {
    format!(
        "rpcx.service.{}.{}",
        ctx.service_path(),
        ctx.service_method()
    )
}

/// How many methods a plugin keeps the span name and attribute values of; calls to further
/// ones (a server with more methods, or calls to names no service has) make theirs each time.
const MAX_METHODS: usize = 1024;

/// The longest service path plus method name a plugin keeps the texts of (so that callers
/// naming methods no service has cannot make it hold much memory).
const MAX_METHOD_KEY_LEN: usize = 256;

/// How many peer IP addresses a plugin keeps the text of; further ones are formatted each time.
const MAX_PEERS: usize = 1024;

/// The span name and the `rpc.service` / `rpc.method` values of one method.
struct MethodTexts {
    name: Cow<'static, str>,
    service: StringValue,
    method: StringValue,
}

impl MethodTexts {
    /// The texts of a method; `kept` when the plugin keeps them (so its name is interned).
    fn new(service: &str, method: &str, kept: bool) -> MethodTexts {
        let name = format!("rpcx.service.{service}.{method}");
        MethodTexts {
            name: if kept { intern(name) } else { Cow::Owned(name) },
            service: StringValue::from(Arc::<str>::from(service)),
            method: StringValue::from(Arc::<str>::from(method)),
        }
    }
}

/// How many span names the process keeps for good (see [`intern`]).
const MAX_INTERNED: usize = 4096;

/// `name` as a `&'static str` shared by every plugin of the process, so that a span's name
/// (OpenTelemetry takes a `Cow<'static, str>`) costs no allocation per call. At most
/// [`MAX_INTERNED`] names, each at most [`MAX_METHOD_KEY_LEN`] plus the prefix long, are kept
/// (leaked) this way; further ones stay owned, and are copied per call.
fn intern(name: String) -> Cow<'static, str> {
    static NAMES: std::sync::Mutex<Option<hashbrown::HashSet<&'static str>>> =
        std::sync::Mutex::new(None);
    if name.len() > MAX_METHOD_KEY_LEN + PLACEHOLDER.len() + 2 {
        return Cow::Owned(name);
    }
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let names = names.get_or_insert_with(Default::default);
    if let Some(&kept) = names.get(name.as_str()) {
        return Cow::Borrowed(kept);
    }
    if names.len() >= MAX_INTERNED {
        return Cow::Owned(name);
    }
    let kept: &'static str = Box::leak(name.into_boxed_str());
    names.insert(kept);
    Cow::Borrowed(kept)
}

/// A method's key in the map: its service path and name.
type MethodKey = (Box<str>, Box<str>);

/// A method's service path and name as a call has them: looks a [`MethodKey`] up without
/// allocating (it hashes as the tuple does).
struct MethodRef<'a>(&'a str, &'a str);

impl Hash for MethodRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.0, self.1).hash(state);
    }
}

impl Equivalent<MethodKey> for MethodRef<'_> {
    fn equivalent(&self, key: &MethodKey) -> bool {
        *key.0 == *self.0 && *key.1 == *self.1
    }
}

/// The texts a recording span needs on every call (its name, the service and method, the peer's
/// address), made on first use and kept in bounded maps that calls read without a lock, so that
/// a call's span costs no formatting and few allocations.
#[derive(Default)]
struct Texts {
    methods: ArcSwap<HashMap<MethodKey, Arc<MethodTexts>>>,
    peers: ArcSwap<HashMap<IpAddr, StringValue>>,
}

impl Texts {
    /// The server span's name and starting attributes.
    fn describe(&self, ctx: &Context) -> (Cow<'static, str>, Vec<KeyValue>) {
        // Room for the attributes `end` adds, so that they do not grow the vector.
        let mut attributes = Vec::with_capacity(8);
        let (service, method) = (ctx.service_path(), ctx.service_method());
        let map = self.methods.load();
        let added;
        let texts = match map.get(&MethodRef(service, method)) {
            Some(t) => &**t,
            None => {
                added = self.add_method(service, method);
                &*added
            }
        };
        attributes.push(KeyValue::new(RPC_SYSTEM, "rpcx"));
        attributes.push(KeyValue::new(RPC_SERVICE, texts.service.clone()));
        attributes.push(KeyValue::new(RPC_METHOD, texts.method.clone()));
        if let Some(peer) = ctx.peer_addr() {
            peer_attributes(peer, |ip| self.peer(ip), &mut attributes);
        }
        (texts.name.clone(), attributes)
    }

    /// The texts of a method not in the map yet, added while there is room.
    fn add_method(&self, service: &str, method: &str) -> Arc<MethodTexts> {
        if service.len() + method.len() > MAX_METHOD_KEY_LEN
            || self.methods.load().len() >= MAX_METHODS
        {
            return Arc::new(MethodTexts::new(service, method, false));
        }
        let texts = Arc::new(MethodTexts::new(service, method, true));
        let mut kept = None;
        self.methods.rcu(|cur| {
            let mut map = HashMap::clone(cur);
            kept = match map.get(&MethodRef(service, method)) {
                Some(t) => Some(Arc::clone(t)),
                None => {
                    if map.len() < MAX_METHODS {
                        map.insert((service.into(), method.into()), Arc::clone(&texts));
                    }
                    None
                }
            };
            map
        });
        kept.unwrap_or(texts)
    }

    /// The text of a peer's IP address.
    fn peer(&self, ip: IpAddr) -> StringValue {
        if let Some(v) = self.peers.load().get(&ip) {
            return v.clone();
        }
        let text = StringValue::from(Arc::<str>::from(ip.to_string()));
        if self.peers.load().len() < MAX_PEERS {
            self.peers.rcu(|cur| {
                let mut map = HashMap::clone(cur);
                if map.len() < MAX_PEERS {
                    map.entry(ip).or_insert_with(|| text.clone());
                }
                map
            });
        }
        text
    }
}

/// `network.transport`, `network.peer.address` and `network.peer.port` of a peer, the text of
/// an IP address from `ip_text`.
fn peer_attributes(
    peer: &PeerAddr,
    ip_text: impl FnOnce(IpAddr) -> StringValue,
    out: &mut Vec<KeyValue>,
) {
    let transport = match peer {
        PeerAddr::Tcp(_) => Some("tcp"),
        PeerAddr::Quic(_) => Some("quic"),
        PeerAddr::Kcp(_) => Some("udp"),
        PeerAddr::Unix(_) => Some("unix"),
        _ => None,
    };
    if let Some(t) = transport {
        out.push(KeyValue::new(NETWORK_TRANSPORT, t));
    }
    match (peer.socket_addr(), peer) {
        (Some(a), _) => {
            out.push(KeyValue::new(NETWORK_PEER_ADDRESS, ip_text(a.ip())));
            out.push(KeyValue::new(NETWORK_PEER_PORT, i64::from(a.port())));
        }
        (None, PeerAddr::Unix(Some(path))) => {
            out.push(KeyValue::new(NETWORK_PEER_ADDRESS, path.clone()));
        }
        (None, PeerAddr::Unix(None)) => {}
        (None, other) => out.push(KeyValue::new(NETWORK_PEER_ADDRESS, other.to_string())),
    }
}

/// Metadata as Go's `fmt.Sprintf("%+v", map)` prints it (`map[k:v k2:v2]`, keys sorted), the
/// auth token redacted.
fn go_map(metadata: &Metadata) -> String {
    let mut pairs: Vec<(&str, &str)> = metadata.iter().collect();
    pairs.sort_unstable();
    pairs.dedup_by(|later, earlier| later.0 == earlier.0);
    let mut s = String::from("map[");
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(k);
        s.push(':');
        s.push_str(if k == sextant::keys::AUTH {
            "<redacted>"
        } else {
            v
        });
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_map_format() {
        let mut md = Metadata::new();
        md.insert("b", "2");
        md.insert("a", "1");
        md.insert(sextant::keys::AUTH, "secret");
        assert_eq!(go_map(&md), "map[__AUTH:<redacted> a:1 b:2]");
        assert_eq!(go_map(&Metadata::new()), "map[]");
    }

    #[test]
    fn texts_are_made_once_and_bounded() {
        let texts = Texts::default();
        let a = texts.add_method("Arith", "Mul");
        assert_eq!(&*a.name, "rpcx.service.Arith.Mul");
        assert_eq!(a.service.as_str(), "Arith");
        assert_eq!(a.method.as_str(), "Mul");
        let again = texts.add_method("Arith", "Mul");
        assert!(Arc::ptr_eq(&a, &again), "a known method keeps its texts");
        assert_eq!(texts.methods.load().len(), 1);

        let long = "x".repeat(MAX_METHOD_KEY_LEN);
        assert_eq!(
            &*texts.add_method(&long, "M").name,
            format!("rpcx.service.{long}.M")
        );
        assert_eq!(texts.methods.load().len(), 1, "long names are not kept");
        for i in 0..MAX_METHODS + 10 {
            texts.add_method("S", &i.to_string());
        }
        assert_eq!(texts.methods.load().len(), MAX_METHODS);
        assert_eq!(
            &*texts.add_method("S", "extra").name,
            "rpcx.service.S.extra"
        );

        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(texts.peer(ip).as_str(), "10.0.0.7");
        assert_eq!(texts.peer(ip).as_str(), "10.0.0.7");
        assert_eq!(texts.peers.load().len(), 1);
    }

    #[test]
    fn peer_attributes_per_network() {
        let mut out = Vec::new();
        peer_attributes(
            &PeerAddr::Tcp("127.0.0.1:9".parse().unwrap()),
            |ip| ip.to_string().into(),
            &mut out,
        );
        assert_eq!(
            out,
            [
                KeyValue::new(NETWORK_TRANSPORT, "tcp"),
                KeyValue::new(NETWORK_PEER_ADDRESS, "127.0.0.1"),
                KeyValue::new(NETWORK_PEER_PORT, 9),
            ]
        );
        let mut out = Vec::new();
        peer_attributes(&PeerAddr::Unix(None), |ip| ip.to_string().into(), &mut out);
        assert_eq!(out, [KeyValue::new(NETWORK_TRANSPORT, "unix")]);
        let mut out = Vec::new();
        peer_attributes(
            &PeerAddr::InProcess("hub#1".into()),
            |ip| ip.to_string().into(),
            &mut out,
        );
        assert_eq!(out.len(), 1);
    }
}
