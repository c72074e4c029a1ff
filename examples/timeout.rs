//! Timeouts: a per-call deadline travels to the server as `__ServerTimeout`; the server drops the
//! handler when it passes, and the client gets `Error::DeadlineExceeded`.
//!
//! Run: `cargo run --example timeout`

use std::time::Duration;

use sextant::{CallOptions, Client, ClientOptions, Context, Error, Server, ServiceError};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let server = Server::new();
    server.register_fn("Slow", "Sleep", |cx: Context, ms: u64| async move {
        println!(
            "server: asked to sleep {ms} ms, caller waits at most {:?}",
            cx.remaining()
        );
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, ServiceError>(ms)
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    let client = Client::connect(&address, ClientOptions::default()).await?;

    let fast = client
        .call_with::<_, u64>(
            "Slow",
            "Sleep",
            &10u64,
            CallOptions::new().timeout(Duration::from_secs(1)),
        )
        .await?;
    println!("10 ms call within 1 s: ok ({} ms)", fast.reply);

    let slow = client
        .call_with::<_, u64>(
            "Slow",
            "Sleep",
            &5_000u64,
            CallOptions::new().timeout(Duration::from_millis(200)),
        )
        .await;
    match slow {
        Err(Error::DeadlineExceeded) => {
            println!("5 s call within 200 ms: deadline exceeded, as expected")
        }
        other => panic!("unexpected: {other:?}"),
    }

    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
