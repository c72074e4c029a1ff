//! HTTP CONNECT: an `http@` client sends `CONNECT /_rpcx_ HTTP/1.0`, gets
//! `200 Connected to rpcx`, and talks rpcx on that connection, as rpcx's `newDirectHTTPConn`.
//! Every sextant port answers it (next to plain rpcx, HTTP invoke and JSON-RPC), so `http@`
//! and `tcp@` name the same listener; an HTTP proxy that allows CONNECT passes it.
//!
//! Run: `cargo run --example http-connect`

use std::time::Duration;

use sextant::{Client, ClientOptions, Server};
use sextant_interop::{Args, Reply};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let server = sextant_interop::interop_server_from(Server::builder(), None)?;
    let address = server.start("http@127.0.0.1:0").await?;
    let client = Client::connect(&address, ClientOptions::default()).await?;
    let reply: Reply = client.call("Arith", "Mul", &Args { a: 10, b: 20 }).await?;
    println!("{address}: 10 * 20 = {}", reply.c);
    assert_eq!(reply.c, 200);

    // rpcx's RPCPath: a CONNECT to another path is refused with the server's answer.
    let elsewhere = ClientOptions::default().rpc_path("/elsewhere");
    let err = Client::connect(&address, elsewhere).await.unwrap_err();
    println!("CONNECT /elsewhere: {err}");

    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
