//! Network-quality selector (rpcx-examples `selector/ping`): servers are weighted by their
//! round-trip time with rpcx's table (≤ 10 ms → 191, 10–200 ms → 201 − t, up to 1 s → 1,
//! beyond → 0). rpcx pings with ICMP, which needs privileges; sextant times a TCP connect to the
//! server's port instead, and re-measures periodically.
//!
//! Run: `cargo run --example selector-icmp`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sextant::discovery::MultipleServersDiscovery;
use sextant::selector::{icmp_weight, Probe, WeightedIcmpSelector};
use sextant::{CallOptions, Context, KVPair, SelectMode, Server, ServiceError, XClient};

async fn start_server() -> sextant::Result<(Server, String)> {
    let server = Server::new();
    server.register_fn(
        "Arith",
        "Mul",
        |_cx: Context, (a, b): (i64, i64)| async move { Ok::<_, ServiceError>(a * b) },
    )?;
    let address = server.start("tcp@127.0.0.1:0").await?.to_string();
    Ok((server, address))
}

async fn count(xclient: &XClient, n: usize) -> sextant::Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let r = xclient
            .call_with::<_, i64>("Mul", &(10, 20), CallOptions::new())
            .await?;
        let from = r.metadata.get("__ServerAddress").unwrap_or("?").to_string();
        *counts.entry(from).or_insert(0) += 1;
    }
    Ok(counts)
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let mut servers = Vec::new();
    for _ in 0..2 {
        servers.push(start_server().await?);
    }
    let pairs: Vec<KVPair> = servers.iter().map(|(_, a)| KVPair::new(a, "")).collect();

    // Real measurement: on loopback both servers answer in well under 10 ms (weight 191 each).
    let xclient = XClient::builder("Arith")
        .select_mode(SelectMode::WeightedIcmp)
        .discovery(MultipleServersDiscovery::new(pairs.clone())?)
        .build()?;
    tokio::time::sleep(Duration::from_millis(200)).await; // let the first measurement finish
    println!("measured over loopback: {:?}", count(&xclient, 400).await?);
    xclient.close();

    // A simulated WAN: server 0 at 5 ms, server 1 at 150 ms, via a custom probe.
    let far = servers[1].1.clone();
    let probe: Probe = Arc::new(move |address: Arc<str>| {
        let rtt = if *address == *far { 150 } else { 5 };
        Box::pin(async move { Some(Duration::from_millis(rtt)) })
    });
    let selector = Arc::new(WeightedIcmpSelector::with_probe(
        Duration::from_secs(30),
        probe,
    ));
    let xclient = XClient::builder("Arith")
        .selector(selector.clone())
        .discovery(MultipleServersDiscovery::new(pairs)?)
        .build()?;
    // Wait (at most 5 s) for the first measurement.
    for _ in 0..500 {
        if selector.rounds() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("weights: {:?}", selector.weights());
    let counts = count(&xclient, 242).await?;
    println!(
        "simulated 5 ms / 150 ms (weights {} / {}): {counts:?}",
        icmp_weight(Duration::from_millis(5)),
        icmp_weight(Duration::from_millis(150))
    );
    println!(
        "selector-icmp: the near server took {} of 242 calls",
        counts[&servers[0].1]
    );
    xclient.close();

    for (s, _) in &servers {
        s.shutdown(Duration::from_secs(1)).await?;
    }
    Ok(())
}
