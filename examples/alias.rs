//! Aliases (rpcx-examples' `alias`, rpcx's `serverplugin.AliasPlugin`): `Arith.Mul` is also
//! served as `a.b.c.D.Times`; the response carries the names the caller sent, and the original
//! name still works.
//!
//! Run: `cargo run --example alias`

use std::time::Duration;

use sextant::{Client, ClientOptions, Server};
use sextant_interop::{Args, Reply};
use sextant_plugins::alias::AliasPlugin;

#[tokio::main]
async fn main() -> sextant::Result<()> {
    // rpcx: a := serverplugin.NewAliasPlugin(); a.Alias("a.b.c.D", "Times", "Arith", "Mul")
    let aliases = AliasPlugin::new().alias("a.b.c.D", "Times", "Arith", "Mul")?;
    let server = Server::builder().plugin(aliases).build();
    sextant_interop::register_all(&server)?;
    let address = server.start("tcp@127.0.0.1:0").await?;

    let client = Client::connect(&address, ClientOptions::default()).await?;
    let r: Reply = client
        .call("a.b.c.D", "Times", &Args { a: 10, b: 20 })
        .await?;
    println!("a.b.c.D.Times(10, 20) = {}", r.c);
    let r: Reply = client.call("Arith", "Mul", &Args { a: 10, b: 20 }).await?;
    println!("Arith.Mul(10, 20) = {}", r.c);
    let e = client
        .call::<_, Reply>("a.b.c.D", "Plus", &Args { a: 1, b: 2 })
        .await
        .unwrap_err();
    println!("a.b.c.D.Plus, no such alias: {e}");

    // Bad aliases are refused when they are added.
    let e = AliasPlugin::new()
        .alias("Arith", "Mul", "Arith", "Mul")
        .unwrap_err();
    println!("an alias of itself: {e}");

    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
