//! In-process (rpcx-examples `memconn`, formerly `registry/inprocess`): client and server in one
//! process, talking through an in-memory pipe instead of a socket — handy for tests and development. An
//! `InProcess` hub connects them; `inprocess@name` is the server's address.
//!
//! Run: `cargo run --example inprocess`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::discovery::InprocessDiscovery;
use sextant::transport::InProcess;
use sextant::{
    CallOptions, ClientOptions, Context, FailMode, SelectMode, Server, ServiceError, XClient,
    XClientOptions,
};

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    pub a: i64,
    pub b: i64,
}

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Reply {
    pub c: i64,
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let hub = InProcess::new();
    let server = Server::new();
    server.register_fn("Arith", "Mul", |_cx: Context, a: Args| async move {
        Ok::<_, ServiceError>(Reply { c: a.a * a.b })
    })?;
    let address = hub.serve(&server, "arith").await?;
    println!("server listening on {address} (no socket)");

    let xclient = XClient::new(
        "Arith",
        FailMode::Failtry,
        SelectMode::Random,
        InprocessDiscovery::new(["arith"])?,
        XClientOptions::default().client(ClientOptions::default().in_process(hub.clone())),
    )?;
    let mut total = 0;
    for i in 1..=100 {
        let r = xclient
            .call_with::<_, Reply>("Mul", &Args { a: 10, b: i }, CallOptions::new())
            .await?;
        assert_eq!(r.reply.c, 10 * i);
        total += r.reply.c;
        if i == 1 {
            println!(
                "10 * 1 = {} from {}",
                r.reply.c,
                r.metadata.get("__ServerAddress").unwrap_or("?")
            );
        }
    }
    println!("inprocess: 100 calls through {address}, sum {total}");

    xclient.close();
    server.shutdown(Duration::from_secs(1)).await
}
