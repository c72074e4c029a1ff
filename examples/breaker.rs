//! Circuit breaker (rpcx-examples `breaker`): each server gets a breaker (rpcx's `GenBreaker`).
//! After 2 failures in a row a dead server's breaker opens and calls stop going there; after the
//! window one trial call checks it again, and once the server is back it takes calls again.
//!
//! Run: `cargo run --example breaker`

use std::time::Duration;

use sextant::breaker::{BreakerState, ConsecutiveBreaker};
use sextant::discovery::MultipleServersDiscovery;
use sextant::{
    CallOptions, Context, FailMode, KVPair, SelectMode, Server, ServiceError, XClient,
    XClientOptions,
};

fn arith(name: &'static str) -> sextant::Result<Server> {
    let server = Server::new();
    server.register_fn("Arith", "Who", move |_cx: Context, _: ()| async move {
        Ok::<_, ServiceError>(name.to_string())
    })?;
    Ok(server)
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let healthy = arith("healthy")?;
    let healthy_addr = healthy.start("tcp@127.0.0.1:0").await?.to_string();
    // The second server is down for now: its port is reserved and released.
    let down_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("reserve a port on 127.0.0.1");
        format!("tcp@{}", l.local_addr().expect("a bound address"))
    };

    let window = Duration::from_millis(500);
    let xclient = XClient::builder("Arith")
        .fail_mode(FailMode::Failover)
        .select_mode(SelectMode::RoundRobin)
        .options(XClientOptions::default().breaker(move || ConsecutiveBreaker::new(2, window)))
        .discovery(MultipleServersDiscovery::new(vec![
            KVPair::new(&healthy_addr, ""),
            KVPair::new(&down_addr, ""),
        ])?)
        .build()?;

    let call = || async {
        xclient
            .call_with::<_, String>("Who", &(), CallOptions::new())
            .await
            .map(|r| r.reply)
    };
    for _ in 0..6 {
        call().await?; // failover hides the dead server's failures
    }
    let state = xclient.breaker_state(&down_addr);
    println!("after 6 calls the dead server's breaker is {state:?}");
    assert_eq!(state, Some(BreakerState::Open));

    // The server comes back; after the window a trial call closes the breaker.
    let back = arith("recovered")?;
    back.start(down_addr.as_str()).await?;
    tokio::time::sleep(window + Duration::from_millis(50)).await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(call().await?);
    }
    let state = xclient.breaker_state(&down_addr);
    println!("after its return: {state:?}, answers {answers:?}");
    println!("breaker: Open while down, {state:?} after recovery");

    xclient.close();
    healthy.shutdown(Duration::from_secs(1)).await?;
    back.shutdown(Duration::from_secs(1)).await
}
