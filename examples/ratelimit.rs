//! Connection rate limit (rpcx-examples' `ratelimit`, rpcx's `serverplugin.RateLimitingPlugin`):
//! the server takes at most one new connection a second, with a burst of 2; a connection over
//! the limit is closed as soon as it is accepted, and the server goes on serving the others.
//!
//! Run: `cargo run --example ratelimit`

use std::time::Duration;

use sextant::{Client, ClientOptions, Server};
use sextant_interop::{Args, Reply};
use sextant_plugins::ratelimit::{Rate, RateLimitingPlugin};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    // rpcx: serverplugin.NewRateLimitingPlugin(time.Second, 2)
    let limit = RateLimitingPlugin::new(Rate::every(Duration::from_secs(1)).with_burst(2))?;
    let server = Server::builder().plugin(limit.clone()).build();
    sextant_interop::register_all(&server)?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    println!(
        "server on {address}, connections limited to {}",
        limit.rate()
    );

    let mut clients = Vec::new();
    for i in 1..=3 {
        let client = Client::connect(&address, ClientOptions::default()).await?;
        let r = client
            .call::<_, Reply>("Arith", "Mul", &Args { a: 10, b: i })
            .await;
        match r {
            Ok(r) => println!("connection {i}: 10 * {i} = {}", r.c),
            Err(e) => println!("connection {i}: refused ({e})"),
        }
        clients.push(client);
    }
    println!("connections refused by the limit: {}", limit.refused());

    // The connections that were admitted go on working.
    let r: Reply = clients[0]
        .call("Arith", "Mul", &Args { a: 7, b: 6 })
        .await?;
    println!("connection 1 again: 7 * 6 = {}", r.c);

    for c in &clients {
        c.close();
    }
    server.shutdown(Duration::from_secs(1)).await
}
