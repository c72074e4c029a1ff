//! JSON-RPC 2.0 on the rpcx port, as Go rpcx serves it: a POST with the header
//! `X-JSONRPC-2.0: true` whose body is a JSON-RPC request; `method` is `Service.Method`.
//!
//! With `cargo run --example interop-server` listening on 127.0.0.1:8972:
//!
//! ```text
//! curl -s http://127.0.0.1:8972/ -H 'X-JSONRPC-2.0: true' \
//!   -d '{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":10,"B":20},"id":1}'
//! # {"jsonrpc":"2.0","result":{"C":200},"id":1}
//!
//! # Errors carry rpcx's codes and texts:
//! curl -s http://127.0.0.1:8972/ -H 'X-JSONRPC-2.0: true' \
//!   -d '{"jsonrpc":"2.0","method":"Arith.Div","params":{"A":1,"B":0},"id":2}'
//! # {"jsonrpc":"2.0","error":{"code":-32603,"message":"divide by zero","data":null},"id":2}
//!
//! # A batch (at most 100 requests by default); the entry without "id" is a notification:
//! curl -s http://127.0.0.1:8972/ -H 'X-JSONRPC-2.0: true' -d '[
//!   {"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":2,"B":3},"id":1},
//!   {"jsonrpc":"2.0","method":"Arith.Add","params":{"A":2,"B":3}},
//!   {"jsonrpc":"2.0","method":"Arith.Add","params":{"A":2,"B":3},"id":"b"}]'
//! ```
//!
//! From a web page (start the server with `--cors` so the browser may call it):
//!
//! ```text
//! const res = await fetch("http://127.0.0.1:8972/", {
//!   method: "POST",
//!   headers: { "X-JSONRPC-2.0": "true", "Content-Type": "application/json" },
//!   body: JSON.stringify({ jsonrpc: "2.0", method: "Arith.Mul", params: { A: 6, B: 7 }, id: 1 }),
//! });
//! console.log((await res.json()).result.C); // 42
//! ```
//!
//! This example starts such a server (with CORS on), sends those requests with an HTTP client,
//! prints the answers and exits. Run: `cargo run --example jsonrpc`

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpStream;

async fn jsonrpc(addr: &str, body: &str) -> Result<String, Box<dyn std::error::Error>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::post(format!("http://{addr}/"))
        .header("X-JSONRPC-2.0", "true")
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let res = sender.send_request(req).await?;
    let body = res.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let builder = sextant::Server::builder().cors(sextant::http::cors_allow_all());
    let server = sextant_interop::interop_server_from(builder, None)?;
    let addr = server.start("tcp@127.0.0.1:0").await?;
    let hp = addr.addr().to_string();
    println!("server on {addr}");
    let requests = [
        r#"{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":10,"B":20},"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"Arith.Div","params":{"A":1,"B":0},"id":2}"#,
        r#"[{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":2,"B":3},"id":1},
            {"jsonrpc":"2.0","method":"Arith.Add","params":{"A":2,"B":3}},
            {"jsonrpc":"2.0","method":"Arith.Add","params":{"A":2,"B":3},"id":"b"}]"#,
    ];
    let mut answers = Vec::new();
    for r in requests {
        let a = jsonrpc(&hp, r).await?;
        println!("--> {r}\n<-- {a}");
        answers.push(a);
    }
    assert_eq!(answers[0], r#"{"jsonrpc":"2.0","result":{"C":200},"id":1}"#);
    assert!(answers[1].contains(r#""code":-32603"#));
    let batch: Vec<serde_json::Value> = serde_json::from_str(&answers[2])?;
    assert_eq!(batch.len(), 2);
    server.shutdown(std::time::Duration::from_secs(1)).await?;
    Ok(())
}
