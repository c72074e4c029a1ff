//! The OTLP exporter (feature `otlp`) against an in-process OTLP/gRPC receiver on 127.0.0.1:
//! what a collector gets from a traced client and server.

#![cfg(feature = "otlp")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use sextant::discovery::MultipleServersDiscovery;
use sextant::{KVPair, Server, XClient};
use sextant_interop::{register_all, Args, Reply};
use sextant_plugins::otel::{otlp_tracer_provider, ClientTracingPlugin, ServerTracingPlugin};

/// An OTLP trace receiver keeping every span it is sent, with the scope it came under.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            for ss in rs.scope_spans {
                let scope = ss.scope.map(|s| s.name).unwrap_or_default();
                spans.extend(ss.spans.into_iter().map(|s| (scope.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(span, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

// Several worker threads: the SDK's flush blocks its caller until the gRPC export, which runs on
// this runtime, is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_gets_linked_client_and_server_spans() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let collector = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );

    let provider = otlp_tracer_provider(&endpoint).unwrap();
    let server = Server::builder()
        .plugin(ServerTracingPlugin::from_provider(&provider))
        .build();
    register_all(&server).unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let xclient = XClient::builder("Arith")
        .discovery(MultipleServersDiscovery::new(vec![KVPair::new(&addr, "")]).unwrap())
        .plugin(ClientTracingPlugin::from_provider(&provider))
        .build()
        .unwrap();
    for b in 1..=3 {
        let r: Reply = xclient.call("Mul", &Args { a: 5, b }).await.unwrap();
        assert_eq!(r.c, 5 * b);
    }
    let err = xclient
        .call::<_, Reply>("Div", &Args { a: 1, b: 0 })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("divide by zero"));
    xclient.close();
    // Server spans end once their response is written; shutting down waits for the calls.
    server.shutdown(Duration::from_secs(1)).await.unwrap();

    // Flush what the batch processor holds, waiting at most its export timeout; then check, a
    // few times if the receiver is still storing the batch.
    let p = provider.clone();
    tokio::task::spawn_blocking(move || p.force_flush())
        .await
        .unwrap()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    let spans = loop {
        let spans = receiver.spans.lock().unwrap().clone();
        if spans.len() >= 8 || Instant::now() >= until {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let p = provider.clone();
    tokio::task::spawn_blocking(move || p.shutdown())
        .await
        .unwrap()
        .unwrap();
    let _ = stop.send(());
    collector.await.unwrap().unwrap();

    assert_eq!(spans.len(), 8, "4 client and 4 server spans");
    assert!(spans.iter().all(|(scope, _)| scope == "sextant-plugins"));
    let spans: Vec<Span> = spans.into_iter().map(|(_, s)| s).collect();
    let clients: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    let servers: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!((clients.len(), servers.len()), (4, 4));
    for c in &clients {
        assert!(c.parent_span_id.is_empty(), "the client spans are roots");
        assert_eq!(c.trace_id.len(), 16);
        assert_eq!(c.span_id.len(), 8);
        assert_eq!(string_attr(c, "rpc.system"), Some("rpcx"));
        assert_eq!(string_attr(c, "rpc.service"), Some("Arith"));
        // Each client span has exactly one server span under it, in its trace.
        let children: Vec<&&Span> = servers
            .iter()
            .filter(|s| s.parent_span_id == c.span_id)
            .collect();
        assert_eq!(children.len(), 1, "{}", c.name);
        let s = children[0];
        assert_eq!(s.trace_id, c.trace_id);
        assert_eq!(string_attr(s, "rpc.method"), string_attr(c, "rpc.method"));
        assert_eq!(s.name, c.name.replacen("rpcx.client.", "rpcx.service.", 1));
        let (cs, ss) = (c.status.clone().unwrap(), s.status.clone().unwrap());
        if c.name == "rpcx.client.Arith.Div" {
            assert_eq!(cs.code, StatusCode::Error as i32);
            assert_eq!(ss.code, StatusCode::Error as i32);
            assert_eq!(ss.message, "divide by zero");
        } else {
            assert_eq!(cs.code, StatusCode::Ok as i32);
            assert_eq!(ss.code, StatusCode::Ok as i32);
        }
    }
    let mut traces: Vec<&Vec<u8>> = clients.iter().map(|c| &c.trace_id).collect();
    traces.sort();
    traces.dedup();
    assert_eq!(traces.len(), 4, "one trace per call");
}
