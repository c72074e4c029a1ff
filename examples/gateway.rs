//! The HTTP gateway (rpcx-gateway) in one process, with no external service: sextant's embedded
//! registry, two servers publishing `Arith` in it, and a gateway that finds them there and turns
//! HTTP requests into rpcx calls. A few calls are made over plain HTTP/1.1 and printed.
//!
//! Run: `cargo run --example gateway`
//!
//! The same with separate processes, and curl as the client:
//!
//! ```text
//! sextant registry --addr 127.0.0.1:9980 &
//! # servers publishing Arith under /rpcx_test in that registry (EmbeddedStore + RegistryPlugin)
//! sextant gateway --listen 127.0.0.1:9981 --registry http://127.0.0.1:9980/rpcx_test &
//!
//! # HTTP invoke: the X-RPCX-* headers name service, method and codec (1 = JSON).
//! curl -i http://127.0.0.1:9981/ -H 'X-RPCX-SerializeType: 1' \
//!   -H 'X-RPCX-ServicePath: Arith' -H 'X-RPCX-ServiceMethod: Mul' -d '{"A":10,"B":20}'
//! # 200, body {"C":200}
//!
//! # A service error: 500 with X-Rpcx-Messagestatustype: Error and X-Rpcx-Errormessage.
//! curl -i http://127.0.0.1:9981/Arith -H 'X-RPCX-SerializeType: 1' \
//!   -H 'X-RPCX-ServiceMethod: Div' -d '{"A":1,"B":0}'
//!
//! # JSON-RPC 2.0.
//! curl -s http://127.0.0.1:9981/ -H 'X-JSONRPC-2.0: true' \
//!   -d '{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":6,"B":7},"id":1}'
//! # {"jsonrpc":"2.0","result":{"C":42},"id":1}
//!
//! # A service no server offers: 503.
//! curl -i http://127.0.0.1:9981/Nope -H 'X-RPCX-SerializeType: 1' \
//!   -H 'X-RPCX-ServiceMethod: Mul' -d '{}'
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::{Context, Server, ServiceError};
use sextant_gateway::Gateway;
use sextant_registry::{
    DiscoveryOptions, EmbeddedRegistry, EmbeddedRegistryOptions, EmbeddedStore, RegistryDiscovery,
    RegistryOptions, RegistryPlugin,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Args {
    a: i64,
    b: i64,
}

#[derive(Debug, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    c: i64,
}

const BASE: &str = "/rpcx_test";

/// A server of `Arith` (`Mul`, `Div`) that publishes itself in the registry at `url`.
async fn start_server(url: &str, name: &'static str) -> Result<Server, Box<dyn std::error::Error>> {
    let plugin = RegistryPlugin::start(
        EmbeddedStore::new(url)?,
        RegistryOptions::default().base_path(BASE),
    )
    .await?;
    let server = Server::builder().plugin(plugin).build();
    server.register_fn("Arith", "Mul", move |cx: Context, args: Args| {
        // Says which server answered, in the response metadata (X-RPCX-Meta over HTTP).
        cx.set_response_metadata("server", name);
        async move { Ok::<_, ServiceError>(Reply { c: args.a * args.b }) }
    })?;
    server.register_fn("Arith", "Div", |_cx: Context, args: Args| async move {
        if args.b == 0 {
            return Err(ServiceError::new("divide by zero"));
        }
        Ok(Reply { c: args.a / args.b })
    })?;
    let addr = server.start("tcp@127.0.0.1:0").await?;
    println!("server {name} on {addr}, published in the registry under {BASE}/Arith");
    Ok(server)
}

/// One HTTP/1.1 POST over a new connection, as curl would send it: status, the `X-Rpcx-*`
/// headers, body.
async fn post(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, Vec<String>, String), Box<dyn std::error::Error>> {
    let mut s = TcpStream::connect(addr).await?;
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw)).await??;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let rpcx = lines
        .filter(|l| l.to_ascii_lowercase().starts_with("x-rpcx-"))
        .map(str::to_string)
        .collect();
    Ok((status, rpcx, body.to_string()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry =
        EmbeddedRegistry::bind("127.0.0.1:0", EmbeddedRegistryOptions::default()).await?;
    let url = registry.url();
    println!("embedded registry at {url}");
    let servers = [
        start_server(&url, "one").await?,
        start_server(&url, "two").await?,
    ];

    // The gateway's template: a discovery on the registry (of any service: the gateway clones it
    // for each service path it is asked for, as rpcx's discovery templates).
    let template = RegistryDiscovery::start(
        EmbeddedStore::new(&url)?,
        BASE,
        "Arith",
        DiscoveryOptions::default(),
    )
    .await?;
    for _ in 0..100 {
        if sextant::ServiceDiscovery::get_services(&template).len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gateway = Gateway::builder(template)
        .listen("127.0.0.1:0")
        .call_timeout(Duration::from_secs(5))
        .start()
        .await?;
    let gw = gateway.local_addr().to_string();
    println!("gateway at {} (Failover, RoundRobin)\n", gateway.url());

    let invoke = |method: &'static str| {
        vec![
            ("X-RPCX-SerializeType", "1"),
            ("X-RPCX-ServicePath", "Arith"),
            ("X-RPCX-ServiceMethod", method),
        ]
    };
    // (path, headers, body, the status expected)
    type Call = (&'static str, Vec<(&'static str, &'static str)>, String, u16);
    let calls: Vec<Call> = vec![
        ("/", invoke("Mul"), r#"{"A":10,"B":20}"#.into(), 200),
        ("/", invoke("Mul"), r#"{"A":3,"B":4}"#.into(), 200),
        ("/", invoke("Mul"), r#"{"A":5,"B":5}"#.into(), 200),
        ("/", invoke("Div"), r#"{"A":1,"B":0}"#.into(), 500),
        (
            "/",
            vec![("X-JSONRPC-2.0", "true")],
            r#"{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":6,"B":7},"id":1}"#.into(),
            200,
        ),
        (
            "/Nope",
            vec![
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-ServiceMethod", "Mul"),
            ],
            "{}".into(),
            503,
        ),
    ];
    for (path, headers, body, expected) in &calls {
        let (status, rpcx, text) = post(&gw, path, headers, body).await?;
        let what = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!("POST {path} [{what}] {body}\n  -> {status} {}", text.trim());
        for h in rpcx {
            println!("     {h}");
        }
        assert_eq!(status, *expected, "unexpected status for {body}");
    }

    gateway.shutdown(Duration::from_secs(5)).await?;
    for s in &servers {
        s.shutdown(Duration::from_secs(2)).await?;
    }
    registry.shutdown().await;
    println!("\ndone");
    Ok(())
}
