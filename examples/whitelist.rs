//! Whitelist (rpcx-examples' `whitelist`, rpcx's `serverplugin.WhitelistPlugin`): only
//! connections from the listed addresses and CIDR ranges are admitted; the others are closed
//! as soon as they are accepted.
//!
//! Run: `cargo run --example whitelist`

use std::time::Duration;

use sextant::{Client, ClientOptions, Server};
use sextant_interop::{Args, Reply};
use sextant_plugins::iplist::WhitelistPlugin;

async fn try_call(address: &sextant::Address) -> sextant::Result<i64> {
    let client = Client::connect(address, ClientOptions::default()).await?;
    let r = client
        .call::<_, Reply>("Arith", "Mul", &Args { a: 10, b: 20 })
        .await;
    client.close();
    Ok(r?.c)
}

async fn serve(whitelist: WhitelistPlugin) -> sextant::Result<(Server, sextant::Address)> {
    let server = Server::builder().plugin(whitelist).build();
    sextant_interop::register_all(&server)?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    Ok((server, address))
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let (server, address) = serve(WhitelistPlugin::new(["127.0.0.1/32", "::1"])?).await?;
    match try_call(&address).await {
        Ok(c) => println!("whitelist 127.0.0.1/32, ::1: 10 * 20 = {c}"),
        Err(e) => println!("whitelist 127.0.0.1/32, ::1: {e} (unexpected)"),
    }
    server.shutdown(Duration::from_secs(1)).await?;

    let whitelist = WhitelistPlugin::new(["10.0.0.0/8"])?;
    let (server, address) = serve(whitelist.clone()).await?;
    match try_call(&address).await {
        Ok(c) => println!("whitelist 10.0.0.0/8: 10 * 20 = {c} (unexpected)"),
        Err(e) => println!("whitelist 10.0.0.0/8: refused ({e})"),
    }
    println!("connections refused: {}", whitelist.refused());
    server.shutdown(Duration::from_secs(1)).await
}
