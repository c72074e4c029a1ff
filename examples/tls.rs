//! TLS (rpcx-examples' `tls`): the server serves `Arith.Mul` over TLS on `tcp@`, the client
//! trusts the CA that signed the server's certificate. Certificates are made on the spot; in
//! production load yours with `identity_pem_files` and `ca_pem_file`.
//!
//! Run: `cargo run --example tls`

use std::time::Duration;

use sextant::transport::{ClientTlsConfig, ServerTlsConfig};
use sextant::{Client, ClientOptions, Server};
use sextant_interop::{pki::TestPki, Args, Reply};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let pki = TestPki::new().map_err(sextant::Error::Config)?;

    // rpcx: `server.NewServer(server.WithTLSConfig(config))`.
    let tls = ServerTlsConfig::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())?;
    let server = sextant_interop::interop_server_from(Server::builder().tls(tls), None)?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    println!("TLS server on {address}");

    // rpcx: `option.TLSConfig = &tls.Config{RootCAs: pool}`.
    let tls = ClientTlsConfig::from_ca_pem(pki.ca.as_bytes())?;
    let client = Client::connect(&address, ClientOptions::default().tls(tls)).await?;
    let reply: Reply = client.call("Arith", "Mul", &Args { a: 10, b: 20 }).await?;
    println!("over TLS: 10 * 20 = {}", reply.c);
    assert_eq!(reply.c, 200);

    // A client that does not trust the CA is refused, and says why.
    let stranger = TestPki::new().map_err(sextant::Error::Config)?;
    let untrusting = ClientTlsConfig::from_ca_pem(stranger.ca.as_bytes())?;
    let err = Client::connect(&address, ClientOptions::default().tls(untrusting))
        .await
        .unwrap_err();
    println!("with another CA: {err}");

    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
