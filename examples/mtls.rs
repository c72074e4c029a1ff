//! Mutual TLS: the server requires a client certificate signed by its CA, and the auth function
//! authorises callers by the certificate's common name (its identity is in `AuthPeer` and in
//! the handler's `Context`).
//!
//! Run: `cargo run --example mtls`

use std::time::Duration;

use sextant::transport::{ClientTlsConfig, ServerTlsConfig};
use sextant::{Client, ClientOptions, Context, Server, ServiceError};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let pki = sextant_interop::pki::TestPki::new().map_err(sextant::Error::Config)?;

    let tls = ServerTlsConfig::builder()
        .identity_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())?
        .client_ca_pem(pki.ca.as_bytes())? // Go: ClientAuth: tls.RequireAndVerifyClientCert
        .build()?;
    let server = Server::builder()
        .tls(tls)
        .auth_fn_with_peer(|_request, _token, peer| {
            let cn = peer
                .identity()
                .and_then(|id| id.common_name())
                .map(str::to_string);
            async move {
                match cn.as_deref() {
                    Some("client") => Ok(()),
                    other => Err(format!("certificate {other:?} is not allowed")),
                }
            }
        })
        .build();
    server.register_fn("Whoami", "Get", |cx: Context, _: ()| async move {
        let id = cx.peer_identity().ok_or("no TLS identity")?;
        Ok::<_, ServiceError>(format!(
            "{} (via {})",
            id.subject().unwrap_or("?"),
            cx.peer_addr().map(|p| p.to_string()).unwrap_or_default()
        ))
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?;

    let tls = ClientTlsConfig::builder()
        .ca_pem(pki.ca.as_bytes())?
        .identity_pem(pki.client.cert.as_bytes(), pki.client.key.as_bytes())?
        .build()?;
    let client = Client::connect(&address, ClientOptions::default().tls(tls)).await?;
    let who: String = client.call("Whoami", "Get", &()).await?;
    println!("the server sees: {who}");
    assert!(who.contains("CN=client"));

    // Without a certificate the handshake is refused.
    let anonymous = ClientTlsConfig::from_ca_pem(pki.ca.as_bytes())?;
    let refused = match Client::connect(&address, ClientOptions::default().tls(anonymous)).await {
        Err(e) => e.to_string(),
        Ok(c) => c
            .call::<_, String>("Whoami", "Get", &())
            .await
            .unwrap_err()
            .to_string(),
    };
    println!("without a client certificate: {refused}");

    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
