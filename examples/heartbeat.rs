//! Heartbeats: with `ClientOptions::heartbeat`, the client pings the server periodically and
//! closes the connection when a ping goes unanswered (rpcx's `Heartbeat`/`HeartbeatInterval`).
//!
//! Run: `cargo run --example heartbeat`

use std::time::Duration;

use sextant::{Client, ClientOptions, Server};
use sextant_interop::{Args, Reply};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let server = Server::new();
    sextant_interop::register_all(&server)?;
    let address = server.start("tcp@127.0.0.1:0").await?;

    let options = ClientOptions::default()
        .heartbeat(Duration::from_millis(100))
        .max_wait_for_heartbeat(Duration::from_secs(1));
    let client = Client::connect(&address, options).await?;
    for i in 1..=3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let r: Reply = client.call("Arith", "Mul", &Args { a: i, b: 10 }).await?;
        println!("call {i} after heartbeats: {i} * 10 = {}", r.c);
    }
    client.heartbeat().await?;
    println!(
        "an explicit heartbeat was echoed; connection healthy: {}",
        !client.is_closed()
    );

    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
