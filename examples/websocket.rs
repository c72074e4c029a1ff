//! WebSocket (rpcx-examples' `websocket`): `ws@` serves rpcx over WebSocket on `/_rpcx_`, and
//! `wss@` the same over TLS. Browsers' proxies and load balancers that pass WebSocket carry it.
//!
//! Run: `cargo run --example websocket`

use std::time::Duration;

use sextant::transport::{ClientTlsConfig, ServerTlsConfig};
use sextant::{Client, ClientOptions, Server};
use sextant_interop::{pki::TestPki, Args, Reply};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    // rpcx: `s.Serve("ws", addr)`; the client dials `ws@addr`.
    let server = sextant_interop::interop_server_from(Server::builder(), None)?;
    let address = server.start("ws@127.0.0.1:0").await?;
    let client = Client::connect(&address, ClientOptions::default()).await?;
    let reply: Reply = client.call("Arith", "Mul", &Args { a: 10, b: 20 }).await?;
    println!("{address}: 10 * 20 = {}", reply.c);
    assert_eq!(reply.c, 200);
    client.close();
    server.shutdown(Duration::from_secs(1)).await?;

    // `wss@`: the server needs a TLS configuration (rpcx: "must set tlsconfig for wss").
    let pki = TestPki::new().map_err(sextant::Error::Config)?;
    let tls = ServerTlsConfig::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())?;
    let server = sextant_interop::interop_server_from(Server::builder().tls(tls), None)?;
    let address = server.start("wss@127.0.0.1:0").await?;
    let tls = ClientTlsConfig::from_ca_pem(pki.ca.as_bytes())?;
    let client = Client::connect(&address, ClientOptions::default().tls(tls)).await?;
    let reply: Reply = client.call("Arith", "Mul", &Args { a: 3, b: 4 }).await?;
    println!("{address}: 3 * 4 = {}", reply.c);
    assert_eq!(reply.c, 12);
    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
