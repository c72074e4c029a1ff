//! Round-robin selector (rpcx-examples `selector/roundrobin`): the servers take calls in
//! turn. 3,000 calls over three servers: exactly 1,000 each.
//!
//! Run: `cargo run --example selector-roundrobin`

use std::collections::BTreeMap;
use std::time::Duration;

use sextant::discovery::MultipleServersDiscovery;
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

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(start_server().await?);
    }
    let xclient = XClient::builder("Arith")
        .select_mode(SelectMode::RoundRobin)
        .discovery(MultipleServersDiscovery::new(
            servers.iter().map(|(_, a)| KVPair::new(a, "")).collect(),
        )?)
        .build()?;

    let mut counts = BTreeMap::new();
    for _ in 0..3_000 {
        let r = xclient
            .call_with::<_, i64>("Mul", &(10, 20), CallOptions::new())
            .await?;
        assert_eq!(r.reply, 200);
        let from = r.metadata.get("__ServerAddress").unwrap_or("?").to_string();
        *counts.entry(from).or_insert(0) += 1;
    }
    for (server, n) in &counts {
        println!("{server}: {n} calls");
        assert_eq!(*n, 1_000);
    }
    println!(
        "selector-roundrobin: 3000 calls, {:?} per server",
        counts.values().collect::<Vec<_>>()
    );

    xclient.close();
    for (s, _) in &servers {
        s.shutdown(Duration::from_secs(1)).await?;
    }
    Ok(())
}
