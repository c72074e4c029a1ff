//! OpenTelemetry (rpcx-plugins' `server/otel` and `client/otel`): the XClient's span for each
//! call, the server's span under it (the W3C `traceparent` goes along in the request metadata),
//! and a span the handler makes under the server's, all in one trace.
//!
//! Spans go to an in-memory exporter and are printed at the end; with `OTLP_ENDPOINT` set (say
//! `http://127.0.0.1:4317`) they are sent to that OpenTelemetry collector over OTLP/gRPC.
//!
//! Run: `cargo run --example opentelemetry`

use std::time::Duration;

use opentelemetry::trace::{FutureExt, Span, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use sextant::discovery::MultipleServersDiscovery;
use sextant::{Context, KVPair, Server, ServiceError, XClient};
use sextant_interop::{Args, Reply};
use sextant_plugins::otel::{self, ClientTracingPlugin, ServerTracingPlugin};

// Several worker threads: the SDK's flush and shutdown block their caller until the export is
// done, and the OTLP export runs on this runtime.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let exporter = InMemorySpanExporter::default();
    let endpoint = std::env::var("OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    let provider = match &endpoint {
        Some(e) => {
            println!("exporting spans to the OTLP collector at {e}");
            otel::otlp_tracer_provider(e)?
        }
        None => SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build(),
    };

    // The server: its plugin starts a span per call; the handler adds a child span.
    let server = Server::builder()
        .plugin(ServerTracingPlugin::from_provider(&provider))
        .build();
    let tracer = provider.tracer("arith-handlers");
    server.register_fn("Arith", "Mul", move |cx: Context, a: Args| {
        let otel = cx.extension::<opentelemetry::Context>().unwrap_or_default();
        let mut span = tracer.start_with_context("multiply", &otel);
        span.set_attribute(KeyValue::new("operands", format!("{} * {}", a.a, a.b)));
        let reply = Reply { c: a.a * a.b };
        span.end();
        async move { Ok::<_, ServiceError>(reply) }
    })?;
    server.register_fn("Arith", "Div", |_cx: Context, a: Args| async move {
        if a.b == 0 {
            return Err(ServiceError::new("divide by zero"));
        }
        Ok(Reply { c: a.a / a.b })
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?.to_string();

    // The XClient: its plugin starts a span per attempt and injects `traceparent`.
    let xclient = XClient::builder("Arith")
        .discovery(MultipleServersDiscovery::new(vec![KVPair::new(
            &address, "",
        )])?)
        .plugin(ClientTracingPlugin::from_provider(&provider))
        .build()?;

    // Both calls under one span of this program, so they share its trace.
    let app = provider.tracer("example");
    let root = app.start("opentelemetry-example");
    let trace_id = root.span_context().trace_id();
    let cx = opentelemetry::Context::new().with_span(root);
    let r: Reply = xclient
        .call("Mul", &Args { a: 10, b: 20 })
        .with_context(cx.clone())
        .await?;
    println!("10 * 20 = {}", r.c);
    let e = xclient
        .call::<_, Reply>("Div", &Args { a: 1, b: 0 })
        .with_context(cx.clone())
        .await
        .unwrap_err();
    println!("1 / 0: {e}");
    cx.span().end();

    xclient.close();
    // Shutdown waits for the calls, whose server spans end once their response is written.
    server.shutdown(Duration::from_secs(1)).await?;
    // Flush and stop the provider before exiting, or queued spans are lost (the in-memory
    // exporter's are taken first: its shutdown forgets them).
    let mut spans = exporter.get_finished_spans()?;
    let p = provider.clone();
    tokio::task::spawn_blocking(move || p.shutdown()).await??;

    println!("trace id: {trace_id}");
    if endpoint.is_some() {
        println!("(look it up in the collector's backend)");
        return Ok(());
    }
    spans.sort_by_key(|s| s.start_time);
    for s in &spans {
        let status = match &s.status {
            opentelemetry::trace::Status::Error { description } => format!("error: {description}"),
            other => format!("{other:?}"),
        };
        println!(
            "  {:<26} {:<8} trace {} span {} parent {} {status}",
            s.name,
            format!("{:?}", s.span_kind),
            s.span_context.trace_id(),
            s.span_context.span_id(),
            s.parent_span_id,
        );
    }
    let rpc_spans = spans.iter().filter(|s| s.name.starts_with("rpcx.")).count();
    if rpc_spans != 4 || spans.iter().any(|s| s.span_context.trace_id() != trace_id) {
        eprintln!("expected 2 client and 2 server spans, all in trace {trace_id}");
        std::process::exit(1);
    }
    println!("client and server spans share trace id {trace_id}");
    Ok(())
}
