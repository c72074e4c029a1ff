//! Blacklist (rpcx-examples' `blacklist`, rpcx's `serverplugin.BlacklistPlugin`): connections
//! from the listed addresses and CIDR ranges are closed as soon as they are accepted. The list
//! can change while the server runs.
//!
//! Run: `cargo run --example blacklist`

use std::time::Duration;

use sextant::{Client, ClientOptions, Server};
use sextant_interop::{Args, Reply};
use sextant_plugins::iplist::BlacklistPlugin;

async fn try_call(address: &sextant::Address) -> sextant::Result<i64> {
    let client = Client::connect(address, ClientOptions::default()).await?;
    let r = client
        .call::<_, Reply>("Arith", "Mul", &Args { a: 10, b: 20 })
        .await;
    client.close();
    Ok(r?.c)
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let blacklist = BlacklistPlugin::new(["127.0.0.0/8", "::1"])?;
    let server = Server::builder().plugin(blacklist.clone()).build();
    sextant_interop::register_all(&server)?;
    let address = server.start("tcp@127.0.0.1:0").await?;

    match try_call(&address).await {
        Ok(c) => println!("blacklisted 127.0.0.0/8: 10 * 20 = {c} (unexpected)"),
        Err(e) => println!("blacklisted 127.0.0.0/8: refused ({e})"),
    }
    blacklist.set(["10.0.0.0/8", "192.168.1.7"])?;
    match try_call(&address).await {
        Ok(c) => println!("blacklist now 10.0.0.0/8 and 192.168.1.7: 10 * 20 = {c}"),
        Err(e) => println!("blacklist now 10.0.0.0/8 and 192.168.1.7: {e} (unexpected)"),
    }
    println!("connections refused: {}", blacklist.refused());

    let e = BlacklistPlugin::new(["10.0.0.0/33"]).unwrap_err();
    println!("a bad entry: {e}");
    server.shutdown(Duration::from_secs(1)).await
}
