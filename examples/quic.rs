//! QUIC (rpcx-examples' `quic`): TLS 1.3 over UDP with ALPN `rpcx`, one stream per connection,
//! as rpcx's `smallnest/quick`. No head-of-line blocking between connections, and connection
//! set-up in one round trip.
//!
//! Run: `cargo run --example quic`

use std::time::Duration;

use sextant::transport::{ClientTlsConfig, ServerTlsConfig};
use sextant::{Client, ClientOptions, Server};
use sextant_interop::{pki::TestPki, Args, Reply};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let pki = TestPki::new().map_err(sextant::Error::Config)?;
    // QUIC requires TLS (rpcx: "TLSConfig must be configured in server.Options").
    let tls = ServerTlsConfig::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())?;
    let server = sextant_interop::interop_server_from(Server::builder().tls(tls), None)?;
    let address = server.start("quic@127.0.0.1:0").await?;

    let tls = ClientTlsConfig::from_ca_pem(pki.ca.as_bytes())?;
    let client = Client::connect(&address, ClientOptions::default().tls(tls)).await?;
    let reply: Reply = client.call("Arith", "Mul", &Args { a: 10, b: 20 }).await?;
    println!("{address}: 10 * 20 = {}", reply.c);
    assert_eq!(reply.c, 200);
    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
