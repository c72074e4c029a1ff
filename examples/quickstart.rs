//! Quickstart: serve `Arith.Mul` and call it, as in rpcx's quick start. 10 * 20 = 200.
//!
//! Run: `cargo run --example quickstart`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::{Client, ClientOptions, Context, Server, ServiceError};

/// The argument. Go's msgpack keys are the Go field names, hence PascalCase.
#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    pub a: i64,
    pub b: i64,
}

/// The reply.
#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Reply {
    pub c: i64,
}

pub struct Arith;

#[sextant::service]
impl Arith {
    async fn mul(&self, _cx: Context, args: Args) -> Result<Reply, ServiceError> {
        Ok(Reply { c: args.a * args.b })
    }
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    // Server: rpcx's `s.RegisterName("Arith", new(Arith), "")` then `s.Serve("tcp", addr)`.
    let server = Server::new();
    server.register(Arith)?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    println!("server listening on {address}");

    // Client: one multiplexed connection; msgpack by default, like rpcx.
    let client = Client::connect(&address, ClientOptions::default()).await?;
    let args = Args { a: 10, b: 20 };
    let reply: Reply = client.call("Arith", "Mul", &args).await?;
    println!("{} * {} = {}", args.a, args.b, reply.c);
    assert_eq!(reply.c, 200);

    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
