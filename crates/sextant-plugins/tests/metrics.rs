//! MetricsPlugin against a real server on 127.0.0.1: calls through sextant's Client and XClient,
//! scrapes over HTTP (the service port's `/metrics` route and `MetricsPlugin::serve`), the text
//! parsed and checked to the exact count.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use sextant::discovery::Peer2PeerDiscovery;
use sextant::protocol::Message;
use sextant::{
    Address, Client, ClientOptions, Context, Server, ServerPlugin, ServiceError, Verdict, XClient,
};
use sextant_interop::{Args, Reply};
use sextant_plugins::metrics::{MetricsPlugin, OPENMETRICS_TEXT, PROMETHEUS_TEXT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GRACE: Duration = Duration::from_secs(2);

/// A response to a minimal HTTP/1.1 request.
struct HttpReply {
    status: u16,
    headers: String,
    body: String,
}

impl HttpReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `method path` over a fresh TCP connection with `Connection: close`, read to the end.
async fn http(addr: &str, method: &str, path: &str, accept: Option<&str>) -> HttpReply {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let accept = accept
            .map(|a| format!("Accept: {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("the HTTP request timed out");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let mut reply = HttpReply {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
    };
    if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        reply.body = dechunk(&reply.body);
    }
    reply
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// The samples of a text exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').expect("a sample line");
            (key.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

/// The value of `name` with `labels` (`service="Arith",method="Mul"`), panicking with the text
/// when absent.
fn value(s: &BTreeMap<String, f64>, name: &str, labels: &str) -> f64 {
    let key = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    *s.get(&key)
        .unwrap_or_else(|| panic!("no sample {key} in {:#?}", s.keys().collect::<Vec<_>>()))
}

fn method(service: &str, method: &str) -> String {
    format!("service=\"{service}\",method=\"{method}\"")
}

async fn scrape(addr: &Address) -> BTreeMap<String, f64> {
    let r = http(addr.addr(), "GET", "/metrics", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    samples(&r.body)
}

fn metrics_server(metrics: &MetricsPlugin) -> Server {
    let server = Server::builder()
        .plugin(metrics.clone())
        .http_route("/metrics", metrics.http_handler())
        .build();
    sextant_interop::register_all(&server).unwrap();
    server
}

const ARGS: Args = Args { a: 6, b: 7 };
const DIV0: Args = Args { a: 1, b: 0 };

#[tokio::test]
async fn calls_errors_and_unknown_names_are_counted_exactly() {
    let metrics = MetricsPlugin::new();
    let server = metrics_server(&metrics);
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();

    for _ in 0..3 {
        let r: Reply = client.call("Arith", "Mul", &ARGS).await.unwrap();
        assert_eq!(r.c, 42);
    }
    for _ in 0..2 {
        let e = client
            .call::<_, Reply>("Arith", "Div", &DIV0)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("divide by zero"), "{e}");
    }
    assert!(client
        .call::<_, Reply>("Arith", "Nope", &ARGS)
        .await
        .is_err());
    assert!(client.call::<_, Reply>("Nope", "Mul", &ARGS).await.is_err());

    let s = scrape(&addr).await;
    let calls = "rpcx_server_calls_total";
    let errors = "rpcx_server_errors_total";
    assert_eq!(value(&s, calls, &method("Arith", "Mul")), 3.0);
    assert_eq!(value(&s, errors, &method("Arith", "Mul")), 0.0);
    assert_eq!(value(&s, calls, &method("Arith", "Div")), 2.0);
    assert_eq!(value(&s, errors, &method("Arith", "Div")), 2.0);
    assert_eq!(value(&s, calls, &method("Arith", "Add")), 0.0);
    assert_eq!(value(&s, calls, &method("ArithFn", "Mul")), 0.0);
    assert_eq!(value(&s, calls, &method("unknown", "unknown")), 2.0);
    assert_eq!(value(&s, errors, &method("unknown", "unknown")), 2.0);
    for (service, m) in [("Arith", "Mul"), ("Arith", "Div"), ("unknown", "unknown")] {
        assert_eq!(
            value(&s, "rpcx_server_calls_in_flight", &method(service, m)),
            0.0
        );
    }
    // The histogram: count and +Inf bucket are the calls; the sum is positive.
    let mul = method("Arith", "Mul");
    assert_eq!(
        value(&s, "rpcx_server_call_duration_seconds_count", &mul),
        3.0
    );
    assert_eq!(
        value(
            &s,
            "rpcx_server_call_duration_seconds_bucket",
            &format!("{mul},le=\"+Inf\"")
        ),
        3.0
    );
    assert!(value(&s, "rpcx_server_call_duration_seconds_sum", &mul) > 0.0);
    // No series for the names the client made up.
    assert!(s.keys().all(|k| !k.contains("Nope")), "{s:#?}");
    // Server-wide figures: bytes both ways; one rpcx connection accepted so far plus the scrape.
    assert!(value(&s, "rpcx_server_received_bytes_total", "") > 0.0);
    assert!(value(&s, "rpcx_server_sent_bytes_total", "") > 0.0);
    assert!(value(&s, "rpcx_server_connections_total", "") >= 2.0);
    assert!(value(&s, "rpcx_server_open_connections", "") >= 1.0);
    assert_eq!(value(&s, "rpcx_server_pushes_total", ""), 0.0);

    // The snapshot agrees.
    let snap = metrics.snapshot();
    let div = snap
        .iter()
        .find(|m| m.service == "Arith" && m.method == "Div")
        .unwrap();
    assert_eq!((div.calls, div.errors, div.in_flight), (2, 2, 0));
    assert!(div.latency.p99().is_some());
    assert!(snap.last().unwrap().is_unknown());

    client.close();
    server.shutdown(GRACE).await.unwrap();
}

/// A handler that waits until told to go on, to hold calls in flight.
#[derive(Clone)]
struct Gate(Arc<tokio::sync::Semaphore>);

#[tokio::test]
async fn the_in_flight_gauge_rises_and_returns_to_zero() {
    let metrics = MetricsPlugin::new();
    let server = metrics_server(&metrics);
    let gate = Gate(Arc::new(tokio::sync::Semaphore::new(0)));
    let g = gate.clone();
    server
        .register_fn("Slow", "Wait", move |_cx: Context, n: i64| {
            let g = g.clone();
            async move {
                g.0.acquire().await.unwrap().forget();
                Ok::<_, ServiceError>(n)
            }
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();

    let calls: Vec<_> = (0..3i64)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.call::<_, i64>("Slow", "Wait", &i).await })
        })
        .collect();
    let slow = method("Slow", "Wait");
    let mut seen = 0.0;
    for _ in 0..200 {
        seen = value(&scrape(&addr).await, "rpcx_server_calls_in_flight", &slow);
        if seen == 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, 3.0, "three calls held in the handler");
    gate.0.add_permits(3);
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let s = scrape(&addr).await;
    assert_eq!(value(&s, "rpcx_server_calls_in_flight", &slow), 0.0);
    assert_eq!(value(&s, "rpcx_server_calls_total", &slow), 3.0);

    client.close();
    server.shutdown(GRACE).await.unwrap();
}

/// Refuses `Arith.Add` in post_read_request and `Arith.Div` in pre_call: metrics' own pre_call
/// is skipped for both.
struct Refuse;

impl ServerPlugin for Refuse {
    fn post_read_request(
        &self,
        request: &mut Message,
        _peer: &sextant::PeerAddr,
    ) -> Result<(), String> {
        if &*request.service_method == "Add" {
            return Err("no adding".into());
        }
        Ok(())
    }

    fn pre_call(&self, ctx: &Context, _payload: &bytes::Bytes) -> Verdict {
        if ctx.service_method() == "Div" {
            return Verdict::Reject("no dividing".into());
        }
        Verdict::Continue
    }
}

/// Renames `Arith.Times` to `Arith.Mul` (an alias) in post_read_request, after metrics' hook.
struct Rename;

impl ServerPlugin for Rename {
    fn post_read_request(
        &self,
        request: &mut Message,
        _peer: &sextant::PeerAddr,
    ) -> Result<(), String> {
        if &*request.service_method == "Times" {
            request.service_method = "Mul".into();
        }
        Ok(())
    }
}

#[tokio::test]
async fn refused_and_renamed_calls_leave_the_gauge_balanced() {
    let metrics = MetricsPlugin::new();
    let server = Server::builder()
        .plugin(Refuse)
        .plugin(metrics.clone())
        .plugin(Rename)
        .http_route("/metrics", metrics.http_handler())
        .build();
    sextant_interop::register_all(&server).unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();

    let e = client
        .call::<_, Reply>("Arith", "Add", &ARGS)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no adding"), "{e}");
    let e = client
        .call::<_, Reply>("Arith", "Div", &ARGS)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no dividing"), "{e}");
    let r: Reply = client.call("Arith", "Times", &ARGS).await.unwrap();
    assert_eq!(r.c, 42);

    let s = scrape(&addr).await;
    for m in ["Add", "Div", "Mul"] {
        let labels = method("Arith", m);
        assert_eq!(value(&s, "rpcx_server_calls_total", &labels), 1.0, "{m}");
        assert_eq!(
            value(&s, "rpcx_server_calls_in_flight", &labels),
            0.0,
            "{m}"
        );
    }
    assert_eq!(
        value(&s, "rpcx_server_errors_total", &method("Arith", "Add")),
        1.0
    );
    assert_eq!(
        value(&s, "rpcx_server_errors_total", &method("Arith", "Div")),
        1.0
    );
    assert_eq!(
        value(&s, "rpcx_server_errors_total", &method("Arith", "Mul")),
        0.0
    );
    let unknown = method("unknown", "unknown");
    assert_eq!(value(&s, "rpcx_server_calls_total", &unknown), 0.0);
    assert_eq!(value(&s, "rpcx_server_calls_in_flight", &unknown), 0.0);

    client.close();
    server.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_thousand_unknown_method_names_share_one_series() {
    const N: usize = 100_000;
    let metrics = MetricsPlugin::new();
    let server = metrics_server(&metrics);
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let before = scrape(&addr).await.len();

    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(
            Client::connect(&addr, ClientOptions::default())
                .await
                .unwrap(),
        );
    }
    let failed = futures::stream::iter(0..N)
        .map(|i| {
            let c = clients[i % clients.len()].clone();
            async move {
                let name = format!("Made{i}");
                match c.call::<_, Reply>("Arith", &name, &ARGS).await {
                    Err(sextant::Error::Service(e)) => Ok(e.to_string()),
                    other => Err(format!("call {i}: {:?}", other.map(|r| r.c))),
                }
            }
        })
        .buffer_unordered(512)
        .try_fold(0usize, |n, text| async move {
            assert!(text.contains("can't find method"), "{text}");
            Ok(n + 1)
        })
        .await
        .unwrap();
    assert_eq!(failed, N);

    let s = scrape(&addr).await;
    let unknown = method("unknown", "unknown");
    assert_eq!(value(&s, "rpcx_server_calls_total", &unknown), N as f64);
    assert_eq!(value(&s, "rpcx_server_errors_total", &unknown), N as f64);
    assert_eq!(value(&s, "rpcx_server_calls_in_flight", &unknown), 0.0);
    // Exactly the series there were before the flood: one per registered method and the
    // unknown one.
    assert_eq!(s.len(), before, "the series count must not grow");
    let per_method = s
        .keys()
        .filter(|k| k.starts_with("rpcx_server_calls_total{"))
        .count();
    let registered: usize = server
        .service_names()
        .iter()
        .map(|n| server.method_names(n).len())
        .sum();
    assert_eq!(per_method, registered + 1);
    assert!(s.keys().all(|k| !k.contains("Made")));

    for c in &clients {
        c.close();
    }
    server.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn pushes_and_connections_are_counted() {
    let metrics = MetricsPlugin::new();
    let server = Server::builder().plugin(metrics.clone()).build();
    server
        .register_fn("Push", "Me", |cx: Context, n: u32| async move {
            let conn = cx.conn().expect("an rpcx connection");
            for i in 0..n {
                conn.send_message(
                    "Push",
                    "Tick",
                    &sextant::Metadata::new(),
                    format!("tick-{i}").as_bytes(),
                )
                .map_err(|e| ServiceError::new(e.to_string()))?;
            }
            Ok::<_, ServiceError>(n)
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    // Scraped on a listener of its own, so that the scrapes are no server connections.
    let listener = metrics.serve("127.0.0.1:0").await.unwrap();
    let scrape_addr = listener.local_addr().to_string();
    let scrape = || async {
        let r = http(&scrape_addr, "GET", "/metrics", None).await;
        assert_eq!(r.status, 200);
        samples(&r.body)
    };

    let a = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let b = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let n: u32 = a.call("Push", "Me", &3u32).await.unwrap();
    assert_eq!(n, 3);
    let n: u32 = b.call("Push", "Me", &2u32).await.unwrap();
    assert_eq!(n, 2);

    let s = scrape().await;
    assert_eq!(value(&s, "rpcx_server_pushes_total", ""), 5.0);
    assert_eq!(value(&s, "rpcx_server_open_connections", ""), 2.0);
    assert_eq!(value(&s, "rpcx_server_connections_total", ""), 2.0);
    assert!(value(&s, "rpcx_server_received_bytes_total", "") > 0.0);
    assert!(value(&s, "rpcx_server_sent_bytes_total", "") > 0.0);
    assert_eq!(
        value(&s, "rpcx_server_calls_total", &method("Push", "Me")),
        2.0
    );

    b.close();
    let mut open = 2.0;
    for _ in 0..200 {
        open = value(&scrape().await, "rpcx_server_open_connections", "");
        if open == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(open, 1.0, "the closed connection is no longer open");
    assert_eq!(metrics.server_stats().unwrap().connections, 1);

    // Other paths and methods.
    assert_eq!(http(&scrape_addr, "GET", "/", None).await.status, 404);
    assert_eq!(
        http(&scrape_addr, "POST", "/metrics", None).await.status,
        405
    );

    a.close();
    server.shutdown(GRACE).await.unwrap();
    // After shutdown the last figures stay.
    let s = scrape().await;
    assert_eq!(value(&s, "rpcx_server_pushes_total", ""), 5.0);
    listener.shutdown().await;
    assert!(
        TcpStream::connect(&scrape_addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn xclient_calls_are_counted_on_the_client_side() {
    let metrics = MetricsPlugin::new();
    let server = metrics_server(&metrics);
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let xclient = XClient::builder("Arith")
        .discovery(Peer2PeerDiscovery::new(addr.to_string(), "").unwrap())
        .plugin(metrics.client_plugin())
        .build()
        .unwrap();

    for _ in 0..2 {
        let r: Reply = xclient.call("Mul", &ARGS).await.unwrap();
        assert_eq!(r.c, 42);
    }
    assert!(xclient.call::<_, Reply>("Div", &DIV0).await.is_err());
    assert!(xclient.call::<_, Reply>("Nope", &ARGS).await.is_err());

    let s = scrape(&addr).await;
    let (cc, ce) = ("rpcx_client_calls_total", "rpcx_client_errors_total");
    assert_eq!(value(&s, cc, &method("Arith", "Mul")), 2.0);
    assert_eq!(value(&s, ce, &method("Arith", "Mul")), 0.0);
    assert_eq!(value(&s, cc, &method("Arith", "Div")), 1.0);
    assert_eq!(value(&s, ce, &method("Arith", "Div")), 1.0);
    // The client names what it calls, so an unknown method gets its own client series.
    assert_eq!(value(&s, cc, &method("Arith", "Nope")), 1.0);
    assert_eq!(
        value(
            &s,
            "rpcx_client_call_duration_seconds_count",
            &method("Arith", "Mul")
        ),
        2.0
    );
    // The same calls seen by the server, in the same scrape.
    assert_eq!(
        value(&s, "rpcx_server_calls_total", &method("Arith", "Mul")),
        2.0
    );
    assert_eq!(
        value(&s, "rpcx_server_calls_total", &method("unknown", "unknown")),
        1.0
    );
    let snap = metrics.client_snapshot();
    assert!(snap.iter().any(|m| m.method == "Mul" && m.calls == 2));

    xclient.close();
    server.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn the_client_side_caps_its_series() {
    let metrics = MetricsPlugin::builder()
        .client_max_series(2)
        .build()
        .unwrap();
    let server = metrics_server(&metrics);
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let xclient = XClient::builder("Arith")
        .discovery(Peer2PeerDiscovery::new(addr.to_string(), "").unwrap())
        .plugin(metrics.client_plugin())
        .build()
        .unwrap();
    for m in ["Mul", "Add", "Other1", "Other2", "Mul"] {
        let _ = xclient.call::<_, Reply>(m, &ARGS).await;
    }
    let snap = metrics.client_snapshot();
    let names: Vec<(&str, u64)> = snap.iter().map(|m| (m.method.as_str(), m.calls)).collect();
    assert_eq!(names, [("Add", 1), ("Mul", 2), ("unknown", 2)]);
    xclient.close();
    server.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn formats_namespaces_and_registration_changes() {
    let metrics = MetricsPlugin::with_namespace("shop").unwrap();
    let server = metrics_server(&metrics);
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();

    // Prometheus text by default, OpenMetrics when asked for.
    let plain = http(addr.addr(), "GET", "/metrics", None).await;
    assert_eq!(plain.header("content-type"), Some(PROMETHEUS_TEXT));
    assert!(
        plain
            .body
            .contains("# TYPE shop_server_calls_total counter"),
        "{}",
        plain.body
    );
    assert!(!plain.body.contains("# EOF"));
    let om = http(
        addr.addr(),
        "GET",
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
    )
    .await;
    assert_eq!(om.header("content-type"), Some(OPENMETRICS_TEXT));
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    assert!(om.body.contains("# TYPE shop_server_calls counter"));
    assert!(om
        .body
        .contains("# UNIT shop_server_call_duration_seconds seconds"));
    assert!(!om.body.contains("rpcx_"));
    assert_eq!(
        http(addr.addr(), "DELETE", "/metrics", None).await.status,
        405
    );

    // Unregistering removes the service's series; registering again brings them back at 0.
    let echo = method("Echo", "Echo");
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let _: sextant::Raw = client
        .call("Echo", "Echo", &sextant::Raw::from(&b"hi"[..]))
        .await
        .unwrap();
    let s = samples(&http(addr.addr(), "GET", "/metrics", None).await.body);
    assert_eq!(value(&s, "shop_server_calls_total", &echo), 1.0);
    server.unregister("Echo").unwrap();
    let s = samples(&http(addr.addr(), "GET", "/metrics", None).await.body);
    assert!(!s.contains_key(&format!("shop_server_calls_total{{{echo}}}")));
    // A call to it now is an unknown one.
    assert!(client
        .call::<_, sextant::Raw>("Echo", "Echo", &sextant::Raw::from(&b"hi"[..]))
        .await
        .is_err());
    server.register(sextant_interop::Echo).unwrap();
    let s = samples(&http(addr.addr(), "GET", "/metrics", None).await.body);
    assert_eq!(value(&s, "shop_server_calls_total", &echo), 0.0);
    assert_eq!(
        value(&s, "shop_server_calls_total", &method("unknown", "unknown")),
        1.0
    );

    client.close();
    server.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_plugin_added_to_a_running_server_learns_its_services() {
    let server = Server::new();
    sextant_interop::register_all(&server).unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let metrics = MetricsPlugin::new();
    server.add_plugin(metrics.clone());
    server.http_route("/metrics", metrics.http_handler());
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let _: Reply = client.call("ArithFn", "Add", &ARGS).await.unwrap();
    let s = scrape(&addr).await;
    assert_eq!(
        value(&s, "rpcx_server_calls_total", &method("ArithFn", "Add")),
        1.0
    );
    assert_eq!(
        value(&s, "rpcx_server_calls_total", &method("Hello", "Say")),
        0.0
    );
    assert!(metrics.server_stats().is_some());
    client.close();
    server.shutdown(GRACE).await.unwrap();
}
