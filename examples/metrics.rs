//! Prometheus metrics and the debug page: a server with `MetricsPlugin` (rpcx's
//! `serverplugin.MetricsPlugin`) serves `/metrics` and `/debug/rpcx` on its own rpcx port; an
//! XClient with the client side of the same metrics makes a few calls (a success, a handler
//! error, an unknown method); then the example scrapes `/metrics` over HTTP and prints some of
//! it.
//!
//! Run: `cargo run --example metrics`. With a server of your own, scrape it as Prometheus
//! would: `curl http://127.0.0.1:8972/metrics`, and open `http://127.0.0.1:8972/debug/rpcx` in a
//! browser.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use sextant::discovery::Peer2PeerDiscovery;
use sextant::{Server, XClient};
use sextant_interop::{Args, Reply};
use sextant_plugins::debug::DebugPage;
use sextant_plugins::metrics::MetricsPlugin;
use tokio::net::TcpStream;

/// `GET path` with hyper: the body as text.
async fn get(addr: &str, path: &str) -> Result<String, Box<dyn std::error::Error>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{addr}{path}"))
        .header(http::header::HOST, addr)
        .body(Empty::<bytes::Bytes>::new())?;
    let res = sender.send_request(req).await?;
    if !res.status().is_success() {
        return Err(format!("GET {path}: {}", res.status()).into());
    }
    let body = res.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let metrics = MetricsPlugin::new();
    let server = Server::builder()
        .plugin(metrics.clone())
        .http_route("/metrics", metrics.http_handler())
        .http_route(DebugPage::PATH, DebugPage::new(&metrics))
        .build();
    sextant_interop::register_all(&server)?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    let hp = address.addr().to_string();
    println!("server on {address}");

    let xclient = XClient::builder("Arith")
        .discovery(Peer2PeerDiscovery::new(address.to_string(), "")?)
        .plugin(metrics.client_plugin())
        .build()?;
    for (a, b) in [(10, 20), (3, 4), (6, 7)] {
        let r: Reply = xclient.call("Mul", &Args { a, b }).await?;
        println!("Arith.Mul: {a} * {b} = {}", r.c);
    }
    let err = xclient
        .call::<_, Reply>("Div", &Args { a: 1, b: 0 })
        .await
        .unwrap_err();
    println!("Arith.Div by 0: {err}");
    let err = xclient
        .call::<_, Reply>("Pow", &Args { a: 2, b: 8 })
        .await
        .unwrap_err();
    println!("Arith.Pow (not registered): {err}");

    let text = get(&hp, "/metrics").await?;
    println!("\nsome lines of http://{hp}/metrics:");
    let wanted = [
        "rpcx_server_calls_total{service=\"Arith\"",
        "rpcx_server_errors_total{service=\"Arith\",method=\"Div\"",
        "rpcx_server_calls_total{service=\"unknown\"",
        "rpcx_server_call_duration_seconds_count{service=\"Arith\",method=\"Mul\"",
        "rpcx_server_open_connections",
        "rpcx_server_received_bytes_total",
        "rpcx_client_calls_total{service=\"Arith\",method=\"Mul\"",
    ];
    for line in text
        .lines()
        .filter(|l| wanted.iter().any(|w| l.starts_with(w)))
    {
        println!("  {line}");
    }
    let mul = metrics
        .snapshot()
        .into_iter()
        .find(|m| m.service == "Arith" && m.method == "Mul")
        .ok_or("no figures for Arith.Mul")?;
    assert_eq!(mul.calls, 3);
    println!(
        "\nArith.Mul: {} calls, p50 {:?}, p99 {:?}",
        mul.calls,
        mul.latency.p50().unwrap_or_default(),
        mul.latency.p99().unwrap_or_default()
    );

    let page = get(&hp, DebugPage::PATH).await?;
    println!(
        "debug page: http://{hp}{} ({} bytes of HTML)",
        DebugPage::PATH,
        page.len()
    );

    xclient.close();
    server.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}
