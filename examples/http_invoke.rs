//! rpcx's HTTP invoke: any HTTP client calls `Arith.Mul` on the server's rpcx port, with the
//! `X-RPCX-*` headers saying which service, method and codec (as the seeds' chapter
//! "HTTP 方式调用" and Go rpcx's gateway). The same port keeps serving rpcx clients.
//!
//! With the server of `cargo run --example interop-server` on 127.0.0.1:8972, from a shell:
//!
//! ```text
//! curl -i http://127.0.0.1:8972/ \
//!   -H 'X-RPCX-MessageID: 12345678' \
//!   -H 'X-RPCX-SerializeType: 1' \
//!   -H 'X-RPCX-ServicePath: Arith' \
//!   -H 'X-RPCX-ServiceMethod: Mul' \
//!   -d '{"A":10,"B":20}'
//! # HTTP/1.1 200 OK
//! # X-Rpcx-Messageid: 12345678
//! # X-Rpcx-Servicepath: Arith  ... X-Rpcx-Meta: ...
//! # {"C":200}
//!
//! # The service may also come from the URL path, metadata from X-RPCX-Meta:
//! curl -i http://127.0.0.1:8972/Arith -H 'X-RPCX-SerializeType: 1' \
//!   -H 'X-RPCX-ServiceMethod: Mul' -H 'X-RPCX-Meta: trace=abc' -d '{"A":3,"B":4}'
//!
//! # A service error: 500 with X-Rpcx-Messagestatustype: Error and X-Rpcx-Errormessage.
//! curl -i http://127.0.0.1:8972/Arith -H 'X-RPCX-SerializeType: 1' \
//!   -H 'X-RPCX-ServiceMethod: Div' -d '{"A":1,"B":0}'
//! ```
//!
//! This example starts such a server on a free port, makes those three calls with an HTTP
//! client (hyper), prints what came back, and checks that an rpcx client is served on the same
//! port. Run: `cargo run --example http-invoke`

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use sextant::{Client, ClientOptions, Server};
use sextant_interop::{Args, Reply};
use tokio::net::TcpStream;

/// One example call: URL path, headers, body.
type Call<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

async fn post(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, Vec<(String, String)>, String), Box<dyn std::error::Error>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = http::Request::post(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = sender
        .send_request(req.body(Full::new(Bytes::from(body.to_string())))?)
        .await?;
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-rpcx-"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server: Server = sextant_interop::interop_server(None)?;
    let addr = server.start("tcp@127.0.0.1:0").await?;
    let hp = addr.addr().to_string();
    println!("server on {addr}: rpcx, HTTP invoke and JSON-RPC on one port");

    let calls: [Call; 3] = [
        (
            "/",
            vec![
                ("X-RPCX-MessageID", "12345678"),
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-ServicePath", "Arith"),
                ("X-RPCX-ServiceMethod", "Mul"),
            ],
            r#"{"A":10,"B":20}"#,
        ),
        (
            "/Arith",
            vec![
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-ServiceMethod", "Mul"),
                ("X-RPCX-Meta", "trace=abc"),
            ],
            r#"{"A":3,"B":4}"#,
        ),
        (
            "/Arith",
            vec![
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-ServiceMethod", "Div"),
            ],
            r#"{"A":1,"B":0}"#,
        ),
    ];
    let mut statuses = Vec::new();
    for (path, headers, body) in &calls {
        let (status, h, text) = post(&hp, path, headers, body).await?;
        println!("POST {path} {body} -> {status} {text}");
        for (k, v) in h {
            println!("    {k}: {v}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 500]);

    // The same port, an rpcx client.
    let client = Client::connect(addr.clone(), ClientOptions::default()).await?;
    let reply: Reply = client.call("Arith", "Mul", &Args { a: 6, b: 7 }).await?;
    println!(
        "rpcx client on the same port: Arith.Mul(6, 7) = {}",
        reply.c
    );
    client.close();
    server.shutdown(std::time::Duration::from_secs(1)).await?;
    Ok(())
}
