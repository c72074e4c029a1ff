//! Failbackup (rpcx-examples `failmode/failbackup`): if the first server has not answered after
//! `backup_latency`, send the same call to a second one; the first answer wins. One server takes
//! 2 s per call, the other answers at once: every call is answered by the fast one.
//!
//! Run: `cargo run --example failbackup`

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sextant::discovery::MultipleServersDiscovery;
use sextant::xclient::XClientOptions;
use sextant::{CallOptions, Context, FailMode, KVPair, SelectMode, Server, ServiceError, XClient};

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    pub a: i64,
    pub b: i64,
}

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Reply {
    pub c: i64,
}

async fn start_server(delay: Duration) -> sextant::Result<(Server, String)> {
    let server = Server::new();
    server.register_fn("Arith", "Mul", move |_cx: Context, a: Args| async move {
        tokio::time::sleep(delay).await;
        Ok::<_, ServiceError>(Reply { c: a.a * a.b })
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?.to_string();
    Ok((server, address))
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let (slow, slow_addr) = start_server(Duration::from_secs(2)).await?;
    let (fast, fast_addr) = start_server(Duration::ZERO).await?;
    println!("slow server {slow_addr}, fast server {fast_addr}");

    let xclient = XClient::builder("Arith")
        .fail_mode(FailMode::Failbackup)
        .select_mode(SelectMode::RoundRobin)
        .options(XClientOptions::default().backup_latency(Duration::from_millis(10)))
        .discovery(MultipleServersDiscovery::new(vec![
            KVPair::new(&slow_addr, ""),
            KVPair::new(&fast_addr, ""),
        ])?)
        .build()?;

    for i in 1..=4 {
        let started = Instant::now();
        let r = xclient
            .call_with::<_, Reply>("Mul", &Args { a: 10, b: 20 }, CallOptions::new())
            .await?;
        let from = r.metadata.get("__ServerAddress").unwrap_or("?");
        println!(
            "call {i}: 10 * 20 = {} from {from} in {} ms",
            r.reply.c,
            started.elapsed().as_millis()
        );
        assert_eq!(from, fast_addr);
    }
    println!("failbackup: 4 calls, every answer from the fast server");

    xclient.close();
    // The slow server may still be running abandoned calls: give it a short grace.
    let _ = slow.shutdown(Duration::from_millis(100)).await;
    fast.shutdown(Duration::from_secs(1)).await
}
