//! The debug page on a real server's HTTP side: services, methods, figures and connections, with
//! every user-supplied value HTML-escaped.

use std::time::Duration;

use sextant::{Client, ClientOptions, Context, Server, ServiceError};
use sextant_interop::{Args, Reply};
use sextant_plugins::debug::DebugPage;
use sextant_plugins::metrics::MetricsPlugin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GRACE: Duration = Duration::from_secs(2);

/// `method path` over a fresh connection: (status, head, body). Bodies of these responses have
/// a Content-Length, so reading to the end is the whole of it.
async fn http(addr: &str, method: &str, path: &str) -> (u16, String, String) {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("the HTTP request timed out");
    let text = String::from_utf8(raw).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn the_page_lists_services_figures_and_connections_escaped() {
    let metrics = MetricsPlugin::new();
    let server = Server::builder()
        .plugin(metrics.clone())
        .http_route(DebugPage::PATH, DebugPage::new(&metrics))
        .build();
    server.register(sextant_interop::Arith).unwrap();
    server
        .register_fn("<script>", "a&b", |_cx: Context, n: i64| async move {
            Ok::<_, ServiceError>(n)
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let args = Args { a: 3, b: 4 };
    for _ in 0..4 {
        let r: Reply = client.call("Arith", "Mul", &args).await.unwrap();
        assert_eq!(r.c, 12);
    }
    let zero = Args { a: 1, b: 0 };
    assert!(client
        .call::<_, Reply>("Arith", "Div", &zero)
        .await
        .is_err());
    let n: i64 = client.call("<script>", "a&b", &5i64).await.unwrap();
    assert_eq!(n, 5);
    assert!(client
        .call::<_, Reply>("<img src=x>", "Mul", &args)
        .await
        .is_err());

    let (status, head, page) = http(addr.addr(), "GET", DebugPage::PATH).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    // The user-named service and method, escaped; no raw markup from them.
    assert!(
        page.contains("<td>&lt;script&gt;</td><td>a&amp;b</td>"),
        "{page}"
    );
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("a&b"), "{page}");
    // Figures per method: calls, errors, in flight, then p50/p90/p99.
    assert!(
        page.contains(
            "<td>Mul</td><td class=\"n\">4</td><td class=\"n\">0</td><td class=\"n\">0</td>"
        ),
        "{page}"
    );
    assert!(
        page.contains("<td>Div</td><td class=\"n\">1</td><td class=\"n\">1</td>"),
        "{page}"
    );
    assert!(
        page.contains(
            "<td>unknown</td><td>unknown</td><td class=\"n\">1</td><td class=\"n\">1</td>"
        ),
        "{page}"
    );
    // Methods never called show no latency.
    assert!(
        page.contains("<td>Add</td><td class=\"n\">0</td><td class=\"n\">0</td><td class=\"n\">0</td><td class=\"n\">-</td>"),
        "{page}"
    );
    // The one rpcx connection, with its traffic; the page's own HTTP connection is not listed.
    assert!(page.contains("<h2>Connections (1)</h2>"), "{page}");
    let conn = server.active_connections().pop().unwrap();
    assert!(
        page.contains(&format!(
            "<tr><td class=\"n\">{}</td><td>{}</td>",
            conn.id(),
            conn.peer_addr()
        )),
        "{page}"
    );
    assert!(conn.bytes_in() > 0 && conn.bytes_out() > 0);

    // Only GET and HEAD.
    let (status, head, _) = http(addr.addr(), "POST", DebugPage::PATH).await;
    assert_eq!(status, 405);
    assert!(head.contains("allow: get, head"), "{head}");

    client.close();
    server.shutdown(GRACE).await.unwrap();
    // Once shut down, the page keeps the figures and lists no connection.
    let page = DebugPage::new(&metrics).render();
    assert!(page.contains("the server has shut down"), "{page}");
    assert!(
        page.contains("<td>Mul</td><td class=\"n\">4</td>"),
        "{page}"
    );
    assert!(!page.contains("Connections ("), "{page}");
}

#[tokio::test]
async fn a_page_added_to_a_running_server_shows_client_calls_too() {
    let metrics = MetricsPlugin::new();
    let server = Server::builder().plugin(metrics.clone()).build();
    sextant_interop::register_all(&server).unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    server.http_route("/debug/custom", DebugPage::new(&metrics));

    let xclient = sextant::XClient::builder("ArithFn")
        .discovery(sextant::discovery::Peer2PeerDiscovery::new(addr.to_string(), "").unwrap())
        .plugin(metrics.client_plugin())
        .build()
        .unwrap();
    let r: Reply = xclient.call("Add", &Args { a: 1, b: 2 }).await.unwrap();
    assert_eq!(r.c, 3);

    let (status, _, page) = http(addr.addr(), "GET", "/debug/custom").await;
    assert_eq!(status, 200);
    assert!(page.contains("<h2>Client calls</h2>"), "{page}");
    assert!(
        page.contains("<td>ArithFn</td><td>Add</td><td class=\"n\">1</td>"),
        "{page}"
    );
    // The default path is not served here.
    let (status, _, _) = http(addr.addr(), "GET", DebugPage::PATH).await;
    assert_ne!(status, 200);

    xclient.close();
    server.shutdown(GRACE).await.unwrap();
}
