//! OpenTelemetry plugins end to end, on 127.0.0.1, spans collected by the SDK's in-memory
//! exporter: nested calls in one trace, a Go peer's trace context, malformed trace context,
//! errors, failover, refused calls, the no-op tracer, dropped calls, the `tracing` span.

#![cfg(feature = "opentelemetry")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::trace::noop::NoopTracer;
use opentelemetry::trace::{
    FutureExt as _, Span as _, SpanId, SpanKind, Status, TraceContextExt, TraceId, Tracer,
    TracerProvider,
};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sextant::discovery::MultipleServersDiscovery;
use sextant::protocol::Message;
use sextant::{
    CallOptions, Client, ClientOptions, Context, FailMode, KVPair, PeerAddr, SelectMode, Server,
    ServerPlugin, ServiceError, XClient,
};
use sextant_interop::{register_all, Args, Reply};
use sextant_plugins::otel::{ClientTracingPlugin, ServerTracingPlugin, TRACEPARENT, TRACESTATE};

const GO_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const GO_TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
const GO_TRACE_ID: u128 = 0x4bf92f3577b34da6a3ce929d0e0e4736;
const GO_SPAN_ID: u64 = 0x00f067aa0ba902b7;

fn sdk() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

/// The finished spans once there are at least `n` (server spans end after the response is
/// written, so a little after the client has its reply), or what there is after 5 s.
async fn spans(exporter: &InMemorySpanExporter, n: usize) -> Vec<SpanData> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let s = exporter.get_finished_spans().unwrap();
        if s.len() >= n || Instant::now() >= until {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one span {name} in {:#?}", names(spans));
    found[0]
}

fn names(spans: &[SpanData]) -> Vec<&str> {
    spans.iter().map(|s| &*s.name).collect()
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn string(v: &str) -> Option<Value> {
    Some(Value::from(v.to_owned()))
}

fn xclient(
    service: &str,
    addresses: &[&str],
    plugin: impl sextant::xclient::ClientPlugin,
) -> XClient {
    let d = MultipleServersDiscovery::new(addresses.iter().map(|a| KVPair::new(*a, "")).collect())
        .unwrap();
    XClient::builder(service)
        .discovery(d)
        .plugin(plugin)
        .build()
        .unwrap()
}

/// Checks a `traceparent` is `00-{32 lowercase hex}-{16 lowercase hex}-{2 lowercase hex}`,
/// and returns its parts.
fn w3c_parts(tp: &str) -> (TraceId, SpanId, u8) {
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    let lower_hex = |s: &str, n: usize| {
        assert_eq!(s.len(), n, "{tp}");
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{tp}"
        );
    };
    assert_eq!(parts[0], "00");
    lower_hex(parts[1], 32);
    lower_hex(parts[2], 16);
    lower_hex(parts[3], 2);
    (
        TraceId::from_hex(parts[1]).unwrap(),
        SpanId::from_hex(parts[2]).unwrap(),
        u8::from_str_radix(parts[3], 16).unwrap(),
    )
}

/// Server B serves Arith; server A serves `Front.Mul` / `Front.Div` by calling B with a traced
/// XClient in its server span's context. An outer traced XClient calls A.
struct Nested {
    a: Server,
    b: Server,
    outer: XClient,
    inner: XClient,
    /// The `traceparent` each call to A carried.
    seen: Arc<Mutex<Vec<Option<String>>>>,
    b_port: u16,
}

async fn nested(provider: &SdkTracerProvider) -> Nested {
    let b = Server::builder()
        .plugin(ServerTracingPlugin::from_provider(provider))
        .build();
    register_all(&b).unwrap();
    let b_addr = b.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let b_port = b_addr.rsplit(':').next().unwrap().parse().unwrap();
    let inner = xclient(
        "Arith",
        &[&b_addr],
        ClientTracingPlugin::from_provider(provider),
    );

    let a = Server::builder()
        .plugin(ServerTracingPlugin::from_provider(provider))
        .build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    for method in ["Mul", "Div"] {
        let (inner, seen) = (inner.clone(), seen.clone());
        a.register_fn("Front", method, move |cx: Context, args: Args| {
            let (inner, seen) = (inner.clone(), seen.clone());
            async move {
                seen.lock()
                    .unwrap()
                    .push(cx.metadata().get(TRACEPARENT).map(str::to_owned));
                let otel = cx
                    .extension::<opentelemetry::Context>()
                    .ok_or_else(|| ServiceError::new("no OpenTelemetry context"))?;
                let r: Reply = inner
                    .call(method, &args)
                    .with_context(otel)
                    .await
                    .map_err(|e| ServiceError::new(e.to_string()))?;
                Ok::<_, ServiceError>(r)
            }
        })
        .unwrap();
    }
    let a_addr = a.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let outer = xclient(
        "Front",
        &[&a_addr],
        ClientTracingPlugin::from_provider(provider),
    );
    Nested {
        a,
        b,
        outer,
        inner,
        seen,
        b_port,
    }
}

impl Nested {
    async fn stop(self) {
        self.outer.close();
        self.inner.close();
        self.a.shutdown(Duration::from_secs(1)).await.unwrap();
        self.b.shutdown(Duration::from_secs(1)).await.unwrap();
    }
}

#[tokio::test]
async fn nested_calls_make_one_trace() {
    let (provider, exporter) = sdk();
    let n = nested(&provider).await;

    let r: Reply = n.outer.call("Mul", &Args { a: 6, b: 7 }).await.unwrap();
    assert_eq!(r.c, 42);
    let all = spans(&exporter, 4).await;
    assert_eq!(all.len(), 4, "{:?}", names(&all));

    let c1 = one(&all, "rpcx.client.Front.Mul");
    let s1 = one(&all, "rpcx.service.Front.Mul");
    let c2 = one(&all, "rpcx.client.Arith.Mul");
    let s2 = one(&all, "rpcx.service.Arith.Mul");
    for (s, kind) in [
        (c1, SpanKind::Client),
        (s1, SpanKind::Server),
        (c2, SpanKind::Client),
        (s2, SpanKind::Server),
    ] {
        assert_eq!(s.span_kind, kind, "{}", s.name);
        assert_eq!(s.status, Status::Ok, "{}", s.name);
        assert_eq!(attr(s, "rpc.system"), string("rpcx"));
        assert_eq!(
            s.instrumentation_scope.name(),
            "sextant-plugins",
            "{}",
            s.name
        );
    }

    // One trace: client → server → client → server.
    let trace = c1.span_context.trace_id();
    assert!(all.iter().all(|s| s.span_context.trace_id() == trace));
    assert_eq!(c1.parent_span_id, SpanId::INVALID);
    assert_eq!(s1.parent_span_id, c1.span_context.span_id());
    assert!(s1.parent_span_is_remote);
    assert_eq!(c2.parent_span_id, s1.span_context.span_id());
    assert!(!c2.parent_span_is_remote);
    assert_eq!(s2.parent_span_id, c2.span_context.span_id());
    assert!(s2.parent_span_is_remote);

    // Attributes.
    assert_eq!(attr(c1, "rpc.service"), string("Front"));
    assert_eq!(attr(c1, "rpc.method"), string("Mul"));
    assert_eq!(attr(c1, "server.address"), string("127.0.0.1"));
    assert_eq!(attr(c1, "rpcx.attempt"), Some(Value::I64(0)));
    assert_eq!(attr(c2, "rpc.service"), string("Arith"));
    assert_eq!(
        attr(c2, "server.port"),
        Some(Value::I64(i64::from(n.b_port)))
    );
    assert_eq!(attr(s2, "rpc.service"), string("Arith"));
    assert_eq!(attr(s2, "rpc.method"), string("Mul"));
    assert_eq!(attr(s2, "network.transport"), string("tcp"));
    assert_eq!(attr(s2, "network.peer.address"), string("127.0.0.1"));
    assert!(matches!(attr(s2, "network.peer.port"), Some(Value::I64(p)) if p > 0));
    assert!(matches!(attr(s1, "rpcx.response.size"), Some(Value::I64(n)) if n > 0));
    assert_eq!(attr(s1, "rpcx.response.written"), None);

    // What the Rust client wrote, as A's handler saw it: W3C, naming the outer client span.
    let seen = n.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let tp = seen[0]
        .clone()
        .expect("a traceparent in the request metadata");
    let (trace_id, span_id, flags) = w3c_parts(&tp);
    assert_eq!(trace_id, trace);
    assert_eq!(span_id, c1.span_context.span_id());
    assert_eq!(flags, 1, "sampled");

    // A second call is another trace.
    exporter.reset();
    let _: Reply = n.outer.call("Mul", &Args { a: 1, b: 1 }).await.unwrap();
    let again = spans(&exporter, 4).await;
    assert_eq!(again.len(), 4);
    assert!(again.iter().all(|s| s.span_context.trace_id() != trace));
    n.stop().await;
}

#[tokio::test]
async fn errors_set_the_error_status_all_the_way() {
    let (provider, exporter) = sdk();
    let n = nested(&provider).await;

    let err = n
        .outer
        .call::<_, Reply>("Div", &Args { a: 1, b: 0 })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("divide by zero"), "{err}");
    let all = spans(&exporter, 4).await;
    assert_eq!(all.len(), 4, "{:?}", names(&all));
    for name in [
        "rpcx.client.Front.Div",
        "rpcx.service.Front.Div",
        "rpcx.client.Arith.Div",
        "rpcx.service.Arith.Div",
    ] {
        let s = one(&all, name);
        match &s.status {
            Status::Error { description } => {
                assert!(
                    description.contains("divide by zero"),
                    "{name}: {description}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let b = one(&all, "rpcx.service.Arith.Div");
    assert_eq!(b.status, Status::error("divide by zero"));
    let trace = b.span_context.trace_id();
    assert!(all.iter().all(|s| s.span_context.trace_id() == trace));
    n.stop().await;
}

/// A request as a Go rpcx client with rpcx-plugins' client plugin sends it.
fn go_call(traceparent: &str, tracestate: Option<&str>) -> CallOptions {
    let o = CallOptions::new().metadata(TRACEPARENT, traceparent);
    match tracestate {
        Some(ts) => o.metadata(TRACESTATE, ts),
        None => o,
    }
}

/// A server with the plugin whose `Probe.Mul` records the trace context the handler is given.
async fn probe_server(
    plugin: impl ServerPlugin,
) -> (
    Server,
    Client,
    Arc<Mutex<Vec<Option<opentelemetry::Context>>>>,
) {
    let server = Server::builder().plugin(plugin).build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    server
        .register_fn("Probe", "Mul", move |cx: Context, a: Args| {
            s2.lock()
                .unwrap()
                .push(cx.extension::<opentelemetry::Context>());
            async move { Ok::<_, ServiceError>(Reply { c: a.a * a.b }) }
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    (server, client, seen)
}

#[tokio::test]
async fn a_go_peers_trace_context_is_the_parent() {
    let (provider, exporter) = sdk();
    let (server, client, seen) = probe_server(ServerTracingPlugin::from_provider(&provider)).await;

    let r = client
        .call_with::<_, Reply>(
            "Probe",
            "Mul",
            &Args { a: 2, b: 3 },
            go_call(GO_TRACEPARENT, Some(GO_TRACESTATE)),
        )
        .await
        .unwrap();
    assert_eq!(r.reply.c, 6);
    let all = spans(&exporter, 1).await;
    let s = one(&all, "rpcx.service.Probe.Mul");
    assert_eq!(s.span_kind, SpanKind::Server);
    assert_eq!(s.span_context.trace_id(), TraceId::from(GO_TRACE_ID));
    assert_eq!(s.parent_span_id, SpanId::from(GO_SPAN_ID));
    assert!(s.parent_span_is_remote);
    assert_ne!(s.span_context.span_id(), SpanId::from(GO_SPAN_ID));
    assert!(s.span_context.is_sampled());
    assert_eq!(s.span_context.trace_state().header(), GO_TRACESTATE);

    // The handler's context holds the server span, child of the Go span.
    let cx = seen.lock().unwrap()[0]
        .clone()
        .expect("an OpenTelemetry context");
    assert_eq!(cx.span().span_context().span_id(), s.span_context.span_id());
    assert_eq!(
        cx.span().span_context().trace_id(),
        TraceId::from(GO_TRACE_ID)
    );

    // An unsampled Go parent: the SDK's default sampler follows it, nothing is exported.
    exporter.reset();
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    client
        .call_with::<_, Reply>(
            "Probe",
            "Mul",
            &Args { a: 2, b: 3 },
            go_call(unsampled, None),
        )
        .await
        .unwrap();
    let cx = seen.lock().unwrap()[1]
        .clone()
        .expect("an OpenTelemetry context");
    assert_eq!(
        cx.span().span_context().trace_id(),
        TraceId::from(GO_TRACE_ID)
    );
    assert!(!cx.span().span_context().is_sampled());
    assert!(exporter.get_finished_spans().unwrap().is_empty());

    client.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn malformed_or_huge_trace_context_starts_a_new_trace() {
    let (provider, exporter) = sdk();
    let (server, client, _) = probe_server(ServerTracingPlugin::from_provider(&provider)).await;

    let huge = format!("00-{}", "a".repeat(100 * 1024));
    let huge_hex = format!("{GO_TRACEPARENT}{}", "0".repeat(100 * 1024));
    let bad = [
        huge.as_str(),
        huge_hex.as_str(),
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4bf92f3577b34da6a3ce929d0e0e4736é00f067aa0ba902b7-01",
        "",
    ];
    for tp in bad {
        let r = client
            .call_with::<_, Reply>(
                "Probe",
                "Mul",
                &Args { a: 2, b: 3 },
                go_call(tp, Some(GO_TRACESTATE)),
            )
            .await
            .unwrap();
        assert_eq!(r.reply.c, 6);
    }
    let all = spans(&exporter, bad.len()).await;
    assert_eq!(all.len(), bad.len());
    for s in &all {
        assert_eq!(s.parent_span_id, SpanId::INVALID, "a new root");
        assert_ne!(s.span_context.trace_id(), TraceId::from(GO_TRACE_ID));
        assert!(s.span_context.is_valid());
        assert_eq!(
            s.span_context.trace_state().header(),
            "",
            "tracestate ignored without a valid traceparent"
        );
    }

    // A valid traceparent with a huge or malformed tracestate: the parent holds, the state goes.
    exporter.reset();
    let huge_state = format!("congo={}", "x".repeat(100 * 1024));
    for ts in [huge_state.as_str(), "Bad=key", "a=1,a=2"] {
        client
            .call_with::<_, Reply>(
                "Probe",
                "Mul",
                &Args { a: 2, b: 3 },
                go_call(GO_TRACEPARENT, Some(ts)),
            )
            .await
            .unwrap();
    }
    let all = spans(&exporter, 3).await;
    assert_eq!(all.len(), 3);
    for s in &all {
        assert_eq!(s.parent_span_id, SpanId::from(GO_SPAN_ID));
        assert_eq!(s.span_context.trace_state().header(), "");
    }
    client.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn failover_makes_a_span_per_attempt() {
    let (provider, exporter) = sdk();
    let tracer = provider.tracer("test");
    let server = Server::builder()
        .plugin(ServerTracingPlugin::from_provider(&provider))
        .build();
    register_all(&server).unwrap();
    let alive = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    // A port nothing listens on any more.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp@{}", l.local_addr().unwrap())
    };
    let d = MultipleServersDiscovery::new(vec![KVPair::new(&dead, ""), KVPair::new(&alive, "")])
        .unwrap();
    let xc = XClient::builder("Arith")
        .discovery(d)
        .fail_mode(FailMode::Failover)
        .select_mode(SelectMode::RoundRobin)
        .retries(3)
        .plugin(ClientTracingPlugin::from_provider(&provider))
        .build()
        .unwrap();

    // Each call under its own parent span, so its attempts share a trace.
    let mut retried = None;
    for _ in 0..10 {
        let parent = tracer.start("call");
        let trace = parent.span_context().trace_id();
        let cx = opentelemetry::Context::new().with_span(parent);
        let r: Reply = xc
            .call("Mul", &Args { a: 3, b: 4 })
            .with_context(cx.clone())
            .await
            .unwrap();
        assert_eq!(r.c, 12);
        cx.span().end();
        let attempts = named(&spans(&exporter, 1).await, "rpcx.client.Arith.Mul")
            .into_iter()
            .filter(|s| s.span_context.trace_id() == trace)
            .cloned()
            .collect::<Vec<_>>();
        if attempts.len() == 2 {
            retried = Some(attempts);
            break;
        }
    }
    let mut attempts = retried.expect("a call that failed over within 10 calls");
    attempts.sort_by_key(|s| format!("{:?}", attr(s, "rpcx.attempt")));
    assert_eq!(attr(&attempts[0], "rpcx.attempt"), Some(Value::I64(0)));
    assert!(matches!(attempts[0].status, Status::Error { .. }));
    assert_eq!(attr(&attempts[1], "rpcx.attempt"), Some(Value::I64(1)));
    assert_eq!(attempts[1].status, Status::Ok);
    assert_ne!(
        attempts[0].span_context.span_id(),
        attempts[1].span_context.span_id()
    );
    assert_eq!(attempts[0].parent_span_id, attempts[1].parent_span_id);
    xc.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// Refuses service `Blocked` before routing, as an IP list or an alias check would.
struct RefuseBlocked;

impl ServerPlugin for RefuseBlocked {
    fn post_read_request(&self, request: &mut Message, _peer: &PeerAddr) -> Result<(), String> {
        if request.service_path == "Blocked" {
            return Err("blocked here".to_owned());
        }
        Ok(())
    }
}

#[tokio::test]
async fn calls_refused_before_pre_call_still_get_a_server_span() {
    let (provider, exporter) = sdk();
    let server = Server::builder()
        .plugin(RefuseBlocked)
        .plugin(ServerTracingPlugin::from_provider(&provider))
        .build();
    register_all(&server).unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let xc = xclient(
        "Blocked",
        &[&addr],
        ClientTracingPlugin::from_provider(&provider),
    );
    let err = xc
        .call::<_, Reply>("Mul", &Args { a: 1, b: 2 })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("blocked here"), "{err}");
    let all = spans(&exporter, 2).await;
    let c = one(&all, "rpcx.client.Blocked.Mul");
    let s = one(&all, "rpcx.service.Blocked.Mul");
    assert_eq!(s.span_kind, SpanKind::Server);
    assert_eq!(s.status, Status::error("blocked here"));
    assert_eq!(s.parent_span_id, c.span_context.span_id());
    assert_eq!(s.span_context.trace_id(), c.span_context.trace_id());
    assert!(s.start_time <= s.end_time);
    assert!(matches!(c.status, Status::Error { .. }));

    // An unknown method goes through pre_call: one span, with the routing error.
    exporter.reset();
    let xc2 = xclient(
        "Arith",
        &[&addr],
        ClientTracingPlugin::from_provider(&provider),
    );
    let err = xc2
        .call::<_, Reply>("Nope", &Args { a: 1, b: 2 })
        .await
        .unwrap_err();
    let all = spans(&exporter, 2).await;
    let s = one(&all, "rpcx.service.Arith.Nope");
    match &s.status {
        Status::Error { description } => assert!(err.to_string().contains(&**description)),
        other => panic!("{other:?}"),
    }
    xc.close();
    xc2.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// Spans the sampler drops are not exported, errors and refusals included (the server plugin
/// keeps only their trace context for the handler, and must not then take a failed call for
/// one refused before `pre_call`).
#[tokio::test]
async fn dropped_spans_are_not_exported_even_for_errors() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
        .build();
    let server = Server::builder()
        .plugin(RefuseBlocked)
        .plugin(ServerTracingPlugin::from_provider(&provider))
        .build();
    register_all(&server).unwrap();
    let seen = Arc::new(Mutex::new(None));
    let s2 = seen.clone();
    server
        .register_fn("Probe", "Fail", move |cx: Context, _: Args| {
            let otel = cx.extension::<opentelemetry::Context>();
            *s2.lock().unwrap() = otel.map(|c| c.span().span_context().trace_id());
            async move { Err::<Reply, _>(ServiceError::new("failed on purpose")) }
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let args = Args { a: 1, b: 0 };
    for (service, method) in [
        ("Arith", "Div"),
        ("Arith", "Nope"),
        ("Blocked", "Mul"),
        ("Probe", "Fail"),
    ] {
        let err = client
            .call::<_, Reply>(service, method, &args)
            .await
            .unwrap_err();
        assert!(matches!(err, sextant::Error::Service(_)), "{err}");
    }
    // A Go trace context in: the dropped span is still its child, for the handler.
    client
        .call_with::<_, Reply>(
            "Probe",
            "Fail",
            &args,
            go_call(GO_TRACEPARENT, Some(GO_TRACESTATE)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        *seen.lock().unwrap(),
        Some(opentelemetry::trace::TraceId::from(GO_TRACE_ID))
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    provider.force_flush().unwrap();
    assert!(exporter.get_finished_spans().unwrap().is_empty());
    client.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn metadata_events_on_request_redact_the_token() {
    let (provider, exporter) = sdk();
    let server = Server::builder()
        .plugin(ServerTracingPlugin::from_provider(&provider).with_metadata_events(true))
        .build();
    register_all(&server).unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let d = MultipleServersDiscovery::new(vec![KVPair::new(&addr, "")]).unwrap();
    let xc = XClient::builder("Arith")
        .discovery(d)
        .auth("secret-token")
        .plugin(ClientTracingPlugin::from_provider(&provider))
        .build()
        .unwrap();
    let _: Reply = xc.call("Mul", &Args { a: 1, b: 2 }).await.unwrap();
    let all = spans(&exporter, 2).await;
    let s = one(&all, "rpcx.service.Arith.Mul");
    let event = s
        .events
        .iter()
        .find(|e| e.name == "rpcx.pre.handle.request")
        .expect("the request event");
    let get = |k: &str| {
        event
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(
        get("rpcx.pre.handle.request.path").as_deref(),
        Some("rpcx.service.Arith.Mul")
    );
    let md = get("rpcx.pre.handle.request.metadata").unwrap();
    assert!(md.starts_with("map[") && md.ends_with(']'), "{md}");
    assert!(md.contains("__AUTH:<redacted>"), "{md}");
    assert!(!md.contains("secret-token"), "{md}");
    assert!(md.contains("traceparent:00-"), "{md}");

    // Off by default.
    let c = one(&all, "rpcx.client.Arith.Mul");
    assert!(c.events.is_empty());
    xc.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_noop_tracer_only_passes_incoming_trace_context_on() {
    noop_tracers_pass_trace_context_on(
        ServerTracingPlugin::new(NoopTracer::new()),
        ServerTracingPlugin::new(NoopTracer::new()),
        ClientTracingPlugin::new(NoopTracer::new()),
    )
    .await;
}

/// The plugins of the global provider, which is OpenTelemetry's no-op one here (no test in
/// this binary sets one): after their first no-op span they make none for calls without trace
/// context, and still pass a trace context on.
#[tokio::test]
async fn the_global_noop_tracer_only_passes_incoming_trace_context_on() {
    noop_tracers_pass_trace_context_on(
        ServerTracingPlugin::global(),
        ServerTracingPlugin::global(),
        ClientTracingPlugin::global(),
    )
    .await;
}

async fn noop_tracers_pass_trace_context_on(
    b_plugin: impl sextant::ServerPlugin,
    a_plugin: impl sextant::ServerPlugin,
    client_plugin: impl sextant::xclient::ClientPlugin,
) {
    // B records what its handler sees; A calls B in its (no-op) server span's context.
    let b = Server::builder().plugin(b_plugin).build();
    let seen_b = Arc::new(Mutex::new(Vec::new()));
    let s = seen_b.clone();
    b.register_fn("Arith", "Mul", move |cx: Context, a: Args| {
        s.lock().unwrap().push((
            cx.metadata().get(TRACEPARENT).map(str::to_owned),
            cx.metadata().get(TRACESTATE).map(str::to_owned),
        ));
        async move { Ok::<_, ServiceError>(Reply { c: a.a * a.b }) }
    })
    .unwrap();
    let b_addr = b.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let inner = xclient("Arith", &[&b_addr], client_plugin);
    let a = Server::builder().plugin(a_plugin).build();
    let inner2 = inner.clone();
    a.register_fn("Front", "Mul", move |cx: Context, args: Args| {
        let inner = inner2.clone();
        async move {
            let otel = cx.extension::<opentelemetry::Context>().unwrap_or_default();
            inner
                .call::<_, Reply>("Mul", &args)
                .with_context(otel)
                .await
                .map_err(|e| ServiceError::new(e.to_string()))
        }
    })
    .unwrap();
    let a_addr = a.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&a_addr, ClientOptions::default())
        .await
        .unwrap();

    // No trace context in: none goes out (twice: the second call finds the tracers known
    // to be no-op ones). A Go trace context in: it goes on to B unchanged. Then none again.
    let plain = || client.call::<_, Reply>("Front", "Mul", &Args { a: 2, b: 5 });
    plain().await.unwrap();
    plain().await.unwrap();
    client
        .call_with::<_, Reply>(
            "Front",
            "Mul",
            &Args { a: 2, b: 5 },
            go_call(GO_TRACEPARENT, Some(GO_TRACESTATE)),
        )
        .await
        .unwrap();
    plain().await.unwrap();
    let seen = seen_b.lock().unwrap().clone();
    let go = (
        Some(GO_TRACEPARENT.to_owned()),
        Some(GO_TRACESTATE.to_owned()),
    );
    assert_eq!(seen, [(None, None), (None, None), go, (None, None)]);
    client.close();
    inner.close();
    a.shutdown(Duration::from_secs(1)).await.unwrap();
    b.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn spans_of_dropped_calls_end_as_cancelled() {
    let (provider, exporter) = sdk();
    let server = Server::new();
    server
        .register_fn("Slow", "Sleep", |_cx: Context, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, ServiceError>(ms)
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let xc = xclient(
        "Slow",
        &[&addr],
        ClientTracingPlugin::from_provider(&provider).with_max_pending_spans(2),
    );
    // Five calls dropped by the caller's timeout: post_call runs from the drop, each span
    // ends as cancelled and none waits in the pending map to be evicted.
    for _ in 0..5 {
        let r = tokio::time::timeout(
            Duration::from_millis(20),
            xc.call::<_, u64>("Sleep", &300u64),
        )
        .await;
        assert!(r.is_err(), "the call is dropped before it ends");
    }
    let all = exporter.get_finished_spans().unwrap();
    assert_eq!(all.len(), 5, "every dropped call's span ended at once");
    for s in &all {
        assert_eq!(attr(s, "rpcx.span.evicted"), None);
        assert_eq!(s.status, Status::error("call cancelled"));
    }
    // A call that completes ends its own span, with its status.
    let _: u64 = xc.call("Sleep", &1u64).await.unwrap();
    let all = exporter.get_finished_spans().unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[5].status, Status::Ok);
    assert_eq!(
        named(&all, "rpcx.client.Slow.Sleep").len(),
        6,
        "every span ended once"
    );
    xc.close();
    drop(xc);
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

mod tracing_span {
    //! A minimal `tracing` subscriber that records spans, their fields and which span each
    //! event happened in.

    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Default)]
    pub struct Recorded {
        /// Span id → (name, fields).
        pub spans: HashMap<u64, (String, HashMap<String, String>)>,
        /// (event message, the span it was in).
        pub events: Vec<(String, Option<u64>)>,
        stack: Vec<u64>,
    }

    #[derive(Clone, Default)]
    pub struct Recorder {
        pub recorded: Arc<Mutex<Recorded>>,
        next: Arc<AtomicU64>,
    }

    struct Fields<'a>(&'a mut HashMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl Subscriber for Recorder {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, attrs: &Attributes<'_>) -> Id {
            let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
            let mut fields = HashMap::new();
            attrs.record(&mut Fields(&mut fields));
            self.recorded
                .lock()
                .unwrap()
                .spans
                .insert(id, (attrs.metadata().name().to_owned(), fields));
            Id::from_u64(id)
        }
        fn record(&self, span: &Id, values: &Record<'_>) {
            let mut r = self.recorded.lock().unwrap();
            if let Some((_, fields)) = r.spans.get_mut(&span.into_u64()) {
                values.record(&mut Fields(fields));
            }
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = HashMap::new();
            event.record(&mut Fields(&mut fields));
            let mut r = self.recorded.lock().unwrap();
            let current = r.stack.last().copied();
            r.events
                .push((fields.remove("message").unwrap_or_default(), current));
        }
        fn enter(&self, span: &Id) {
            self.recorded.lock().unwrap().stack.push(span.into_u64());
        }
        fn exit(&self, span: &Id) {
            let mut r = self.recorded.lock().unwrap();
            if let Some(i) = r.stack.iter().rposition(|s| *s == span.into_u64()) {
                r.stack.remove(i);
            }
        }
    }
}

#[tokio::test]
async fn the_handler_runs_in_the_tracing_span() {
    let recorder = tracing_span::Recorder::default();
    // This test's runtime is single-threaded: the server's tasks see this subscriber too.
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let (provider, exporter) = sdk();
    let server = Server::builder()
        .plugin(ServerTracingPlugin::from_provider(&provider))
        .build();
    server
        .register_fn("Arith", "Mul", |_cx: Context, a: Args| async move {
            tracing::info!("in the handler");
            Ok::<_, ServiceError>(Reply { c: a.a * a.b })
        })
        .unwrap();
    server
        .register_fn("Arith", "Div", |_cx: Context, _a: Args| async move {
            Err::<Reply, _>(ServiceError::new("nope"))
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    client
        .call_with::<_, Reply>(
            "Arith",
            "Mul",
            &Args { a: 2, b: 3 },
            go_call(GO_TRACEPARENT, None),
        )
        .await
        .unwrap();
    client
        .call::<_, Reply>("Arith", "Div", &Args { a: 2, b: 3 })
        .await
        .unwrap_err();
    let otel = spans(&exporter, 2).await;
    let mul = one(&otel, "rpcx.service.Arith.Mul");

    {
        let r = recorder.recorded.lock().unwrap();
        let (event_span, ok_id) = {
            let (_, in_span) = r
                .events
                .iter()
                .find(|(m, _)| m == "in the handler")
                .expect("the handler's event");
            (*in_span, in_span.expect("the event was inside a span"))
        };
        let (name, fields) = &r.spans[&ok_id];
        assert_eq!(name, "rpcx.server");
        assert_eq!(fields["service"], "Arith");
        assert_eq!(fields["method"], "Mul");
        assert!(fields["peer"].starts_with("tcp@127.0.0.1:"), "{fields:?}");
        assert_eq!(fields["trace_id"], format!("{GO_TRACE_ID:032x}"));
        assert_eq!(fields["span_id"], mul.span_context.span_id().to_string());
        assert_eq!(fields["outcome"], "ok");
        assert!(!fields.contains_key("status"));
        assert!(fields["response_size"].parse::<u64>().unwrap() > 0);
        let failed: Vec<_> = r
            .spans
            .iter()
            .filter(|(id, (n, f))| {
                n == "rpcx.server" && Some(**id) != event_span && f["method"] == "Div"
            })
            .collect();
        assert_eq!(failed.len(), 1);
        let f = &failed[0].1 .1;
        assert_eq!(f["outcome"], "error");
        assert_eq!(f["status"], "nope");
    }

    client.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn custom_and_noop_propagators() {
    use opentelemetry::propagation::TextMapCompositePropagator;
    use opentelemetry::trace::noop::NoopTextMapPropagator;
    use sextant_plugins::otel::W3cTraceContext;

    let (provider, exporter) = sdk();
    // A composite propagator (what a program with baggage would use) goes through the
    // generic propagator path on both sides: spans link as with the built-in W3C one.
    let composite = || TextMapCompositePropagator::new(vec![Box::new(W3cTraceContext::new())]);
    let server = Server::builder()
        .plugin(ServerTracingPlugin::from_provider(&provider).with_propagator(composite()))
        .build();
    register_all(&server).unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let xc = xclient(
        "Arith",
        &[&addr],
        ClientTracingPlugin::from_provider(&provider).with_propagator(composite()),
    );
    let _: Reply = xc.call("Mul", &Args { a: 2, b: 2 }).await.unwrap();
    let all = spans(&exporter, 2).await;
    let c = one(&all, "rpcx.client.Arith.Mul");
    let s = one(&all, "rpcx.service.Arith.Mul");
    assert_eq!(s.parent_span_id, c.span_context.span_id());
    assert_eq!(c.status, Status::Ok);
    assert_eq!(attr(c, "rpcx.span.untracked"), None);
    xc.close();

    // A propagator that writes nothing (the global one, never set here): nothing links, and
    // the client span, which post_call could not find again, ends at once, marked.
    exporter.reset();
    let xc = xclient(
        "Arith",
        &[&addr],
        ClientTracingPlugin::from_provider(&provider).with_propagator(NoopTextMapPropagator::new()),
    );
    let xg = xclient(
        "Arith",
        &[&addr],
        ClientTracingPlugin::from_provider(&provider).with_global_propagator(),
    );
    let _: Reply = xc.call("Mul", &Args { a: 2, b: 2 }).await.unwrap();
    let _: Reply = xg.call("Mul", &Args { a: 2, b: 2 }).await.unwrap();
    let all = spans(&exporter, 4).await;
    let clients = named(&all, "rpcx.client.Arith.Mul");
    assert_eq!(clients.len(), 2);
    for c in clients {
        assert_eq!(attr(c, "rpcx.span.untracked"), Some(Value::Bool(true)));
        assert_eq!(c.status, Status::Unset);
    }
    for s in named(&all, "rpcx.service.Arith.Mul") {
        assert_eq!(s.parent_span_id, SpanId::INVALID);
    }
    xc.close();
    xg.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}
