//! Functions as services (rpcx's `RegisterFunction`): plain async functions and closures under a
//! service path, no type needed.
//!
//! Run: `cargo run --example function`

use std::time::Duration;

use sextant::{Client, ClientOptions, Context, Server, ServiceError};
use sextant_interop::{Args, Reply};

async fn mul(_cx: Context, args: Args) -> Result<Reply, ServiceError> {
    Ok(Reply { c: args.a * args.b })
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let server = Server::new();
    // rpcx: s.RegisterFunctionName("ArithFn", "Mul", mul, "")
    server.register_fn("ArithFn", "Mul", mul)?;
    // A closure works as well, capturing what it needs.
    let offset = 1000;
    server.register_fn(
        "ArithFn",
        "AddOffset",
        move |_cx: Context, args: Args| async move {
            Ok::<_, ServiceError>(Reply {
                c: args.a + args.b + offset,
            })
        },
    )?;
    let address = server.start("tcp@127.0.0.1:0").await?;

    let client = Client::connect(&address, ClientOptions::default()).await?;
    let r: Reply = client
        .call("ArithFn", "Mul", &Args { a: 10, b: 20 })
        .await?;
    println!("ArithFn.Mul: 10 * 20 = {}", r.c);
    let r2: Reply = client
        .call("ArithFn", "AddOffset", &Args { a: 1, b: 2 })
        .await?;
    println!("ArithFn.AddOffset: 1 + 2 + 1000 = {}", r2.c);
    assert_eq!((r.c, r2.c), (200, 1003));

    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
