//! What the transport tests share: rpcx-examples' `Args`/`Reply`, an `Arith.Mul` server and
//! certificates made on the spot (sextant-interop's `pki`, included by path: a dev-dependency on
//! sextant-interop would build a second copy of sextant).

#![allow(dead_code)]

use serde::{Deserialize, Serialize};
use sextant::transport::{ClientTlsConfig, ServerTlsConfig};
use sextant::{Context, Server, ServerBuilder, ServiceError};

#[path = "../../../sextant-interop/src/pki.rs"]
pub mod pki;

/// rpcx-examples' `Args{A, B}`.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    pub a: i64,
    pub b: i64,
}

/// rpcx-examples' `Reply{C}`.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Reply {
    pub c: i64,
}

/// A server from `builder` serving `Arith.Mul`.
pub fn arith(builder: ServerBuilder) -> Server {
    let s = builder.build();
    s.register_fn("Arith", "Mul", |_cx: Context, a: Args| async move {
        Ok::<_, ServiceError>(Reply { c: a.a * a.b })
    })
    .unwrap();
    s
}

/// The server certificate of `pki`, requiring client certificates signed by its CA.
pub fn mutual_tls_server(pki: &pki::TestPki) -> ServerTlsConfig {
    ServerTlsConfig::builder()
        .identity_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
        .unwrap()
        .client_ca_pem(pki.ca.as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

/// Trusts `pki`'s CA and shows `cert` as the client certificate.
pub fn client_with_cert(pki: &pki::TestPki, cert: &pki::CertPem) -> ClientTlsConfig {
    ClientTlsConfig::builder()
        .ca_pem(pki.ca.as_bytes())
        .unwrap()
        .identity_pem(cert.cert.as_bytes(), cert.key.as_bytes())
        .unwrap()
        .build()
        .unwrap()
}
