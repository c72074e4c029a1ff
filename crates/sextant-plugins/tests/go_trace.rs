//! Trace context across Go and Rust, both ways, against Go's OpenTelemetry propagator
//! (`go.opentelemetry.io/otel/propagation.TraceContext`, which rpcxio/rpcx-plugins uses to carry
//! the context in rpcx request metadata).
//!
//! The Go end is `tests/go/trace_peer`, built once per run from Debian's golang-go and
//! golang-opentelemetry-otel-dev (`scripts/services.sh install`), offline, in GOPATH mode. It
//! writes and reads rpcx frames itself (no Go rpcx build is available here) and injects or
//! extracts the trace context exactly as rpcx-plugins' `share.Inject` / `share.Extract` do.
//! Without Go or the package every test prints why and passes, unless
//! `SEXTANT_REQUIRE_SERVICES=1`. `SEXTANT_GO` names the `go` binary, `SEXTANT_GOPATH` the
//! GOPATH (default `/usr/share/gocode`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use sextant::discovery::Peer2PeerDiscovery;
use sextant::{Context, Server, ServiceError, XClient};
use sextant_interop::go_peer::{self, Build};
use sextant_plugins::otel::{ClientTracingPlugin, ServerTracingPlugin};

/// The built peer, or `None` (with a note) when Go or its OpenTelemetry package is not there.
fn peer() -> Option<&'static Path> {
    static PEER: OnceLock<Build> = OnceLock::new();
    let build = PEER.get_or_init(|| {
        go_peer::build_program(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/trace_peer"),
            &Path::new(env!("CARGO_TARGET_TMPDIR")).join("go_trace"),
            "trace_peer",
            "golang-opentelemetry-otel-dev",
        )
    });
    match build {
        Build::Built(p) => Some(p),
        Build::Failed(why) => panic!("{why}"),
        Build::Missing(why) if go_peer::required() => panic!("SEXTANT_REQUIRE_SERVICES=1: {why}"),
        Build::Missing(why) => {
            eprintln!("note: skipping the Go trace-context test: {why}");
            None
        }
    }
}

/// Kills the Go process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `f` on a thread and gives up after 30 s (reading a child's output blocks).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the Go peer did not answer within 30 s")
}

fn tracing_provider() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn a_go_callers_trace_context_is_the_parent_of_the_server_span() {
    let Some(peer) = peer() else { return };
    let (provider, exporter) = tracing_provider();
    let server = Server::builder()
        .plugin(ServerTracingPlugin::from_provider(&provider))
        .build();
    server
        .register_fn(
            "Trace",
            "Parent",
            |cx: Context, _: serde_json::Value| async move {
                let otel = cx.extension::<opentelemetry::Context>().unwrap_or_default();
                let span = otel.span();
                let sc = span.span_context();
                Ok::<_, ServiceError>(format!(
                    "{}-{} state={}",
                    sc.trace_id(),
                    sc.span_id(),
                    cx.metadata().get("tracestate").unwrap_or("")
                ))
            },
        )
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let hostport = addr.to_string().trim_start_matches("tcp@").to_string();
    let child = Command::new(peer)
        .args(["client", &hostport, TRACE_ID, SPAN_ID])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let stdout = child.0.stdout.take().unwrap();
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        bounded(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect()
        })
    })
    .await
    .unwrap();
    assert!(
        child.0.wait().unwrap().success(),
        "the Go client failed: {lines:?}"
    );

    // What Go's propagator wrote is what sextant's writes for the same span.
    let mut go_meta: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("metadata "))
        .collect();
    go_meta.sort();
    assert_eq!(
        go_meta,
        [
            format!("traceparent=00-{TRACE_ID}-{SPAN_ID}-01").as_str(),
            "tracestate=go=1"
        ]
    );
    let sc = opentelemetry::trace::SpanContext::new(
        opentelemetry::trace::TraceId::from_hex(TRACE_ID).unwrap(),
        opentelemetry::trace::SpanId::from_hex(SPAN_ID).unwrap(),
        opentelemetry::trace::TraceFlags::SAMPLED,
        true,
        "go=1".parse().unwrap(),
    );
    let mut ours = sextant::Metadata::new();
    sextant_plugins::otel::inject(
        &opentelemetry::Context::new().with_remote_span_context(sc),
        &mut ours,
    );
    assert_eq!(
        ours.get("traceparent"),
        Some(format!("00-{TRACE_ID}-{SPAN_ID}-01").as_str())
    );
    assert_eq!(ours.get("tracestate"), Some("go=1"));

    // The server span continues Go's trace, as a child of Go's span.
    let reply = lines
        .iter()
        .find_map(|l| l.strip_prefix("reply "))
        .expect("a reply line");
    let spans = exporter.get_finished_spans().unwrap();
    let server_span = spans
        .iter()
        .find(|s| s.name == "rpcx.service.Trace.Parent")
        .expect("the server span");
    assert_eq!(server_span.span_kind, SpanKind::Server);
    assert_eq!(server_span.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(server_span.parent_span_id.to_string(), SPAN_ID);
    assert_eq!(
        reply,
        format!(
            "\"{TRACE_ID}-{} state=go=1\"",
            server_span.span_context.span_id()
        )
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn a_go_server_reads_the_trace_context_of_a_sextant_client() {
    let Some(peer) = peer() else { return };
    let child = Command::new(peer)
        .arg("server")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let listening = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let addr = listening
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {listening:?}"));

    let (provider, exporter) = tracing_provider();
    let client = XClient::builder("Trace")
        .discovery(Peer2PeerDiscovery::new(format!("tcp@{addr}"), "").unwrap())
        .plugin(ClientTracingPlugin::from_provider(&provider))
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), client.call::<_, ()>("Parent", &()))
        .await
        .expect("the Go server answered in time")
        .unwrap();
    let extracted = tokio::task::spawn_blocking(move || {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the Go server's extracted line")
    })
    .await
    .unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let client_span = spans
        .iter()
        .find(|s| s.name == "rpcx.client.Trace.Parent")
        .expect("the client span");
    assert_eq!(client_span.span_kind, SpanKind::Client);
    let sc = &client_span.span_context;
    assert_eq!(
        extracted,
        format!(
            "extracted trace={} span={} sampled=true remote=true state= valid=true",
            sc.trace_id(),
            sc.span_id()
        )
    );
    client.close();
}
