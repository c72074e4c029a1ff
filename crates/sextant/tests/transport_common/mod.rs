//! What the transport tests share: rpcx-examples' `Args`/`Reply`, an `Arith.Mul` server and
//! certificates made on the spot (sextant-interop's `pki`, included by path: a dev-dependency on
//! sextant-interop would build a second copy of sextant).

#![allow(dead_code)]

use serde::{Deserialize, Serialize};
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
