//! Request rate limit (rpcx-examples' `reqratelimit`, rpcx's
//! `serverplugin.ReqRateLimitingPlugin`): the server takes at most 10 calls a second, 3 at
//! once; over the limit a call is refused with rpcx's `request reached rate limit`, or, in
//! blocking mode, waits for its turn (never past its deadline). Limits can also be set per
//! service and per method.
//!
//! Run: `cargo run --example reqratelimit`

use std::time::{Duration, Instant};

use sextant::{CallOptions, Client, ClientOptions, Server};
use sextant_interop::{Args, Reply};
use sextant_plugins::ratelimit::{Rate, ReqRateLimitingPlugin};

async fn serve(limit: ReqRateLimitingPlugin) -> sextant::Result<(Server, Client)> {
    let server = Server::builder().plugin(limit).build();
    sextant_interop::register_all(&server)?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    let client = Client::connect(&address, ClientOptions::default()).await?;
    Ok((server, client))
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let rate = Rate::per_second(10).with_burst(3);

    // rpcx: serverplugin.NewReqRateLimitingPlugin(time.Second/10, 3, false)
    println!("refusing mode, {rate}:");
    let (server, client) = serve(ReqRateLimitingPlugin::new(rate, false)?).await?;
    for i in 1..=5 {
        match client
            .call::<_, Reply>("Arith", "Mul", &Args { a: i, b: 10 })
            .await
        {
            Ok(r) => println!("  call {i}: {i} * 10 = {}", r.c),
            Err(e) => println!("  call {i}: {e}"),
        }
    }
    client.close();
    server.shutdown(Duration::from_secs(1)).await?;

    // rpcx: serverplugin.NewReqRateLimitingPlugin(time.Second/10, 3, true)
    println!("blocking mode, {rate}:");
    let (server, client) = serve(ReqRateLimitingPlugin::new(rate, true)?).await?;
    let started = Instant::now();
    for i in 1..=5 {
        let r: Reply = client.call("Arith", "Mul", &Args { a: i, b: 10 }).await?;
        println!(
            "  call {i}: {i} * 10 = {} after {} ms",
            r.c,
            started.elapsed().as_millis()
        );
    }
    // A call whose deadline comes before its turn fails with the deadline.
    let slow = ReqRateLimitingPlugin::new(Rate::per_minute(1), true)?;
    client.close();
    server.shutdown(Duration::from_secs(1)).await?;
    let (server, client) = serve(slow).await?;
    let _: Reply = client.call("Arith", "Mul", &Args { a: 1, b: 1 }).await?;
    let e = client
        .call_with::<_, Reply>(
            "Arith",
            "Mul",
            &Args { a: 2, b: 2 },
            CallOptions::new().timeout(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    println!("  with 1 call a minute, a call with a 100 ms timeout: {e}");
    client.close();
    server.shutdown(Duration::from_secs(1)).await?;

    // Per method: Arith.Mul is limited to 2 calls, the rest of the server is not.
    println!("per method, Arith.Mul at 1 per minute, burst 2:");
    let limit = ReqRateLimitingPlugin::builder()
        .per_method("Arith", "Mul", Rate::per_minute(1).with_burst(2))
        .build()?;
    let (server, client) = serve(limit.clone()).await?;
    for method in ["Mul", "Mul", "Mul", "Add", "Add", "Add"] {
        match client
            .call::<_, Reply>("Arith", method, &Args { a: 3, b: 4 })
            .await
        {
            Ok(r) => println!("  Arith.{method}(3, 4) = {}", r.c),
            Err(e) => println!("  Arith.{method}(3, 4): {e}"),
        }
    }
    println!("  refused: {}", limit.rejected());
    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
