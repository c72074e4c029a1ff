//! Weighted round robin (rpcx-examples `selector/weighted`): nginx's smooth weighted round robin
//! over each server's `weight` metadata. Weights {5, 1, 1} for a, b, c give the order
//! a, a, b, a, c, a, a — the heavy server's calls are spread out, not sent in a burst.
//!
//! Run: `cargo run --example selector-weighted`

use std::collections::HashMap;
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
    // The selector orders servers by address; name them a, b, c in that order.
    servers.sort_by(|x, y| x.1.cmp(&y.1));
    let names: HashMap<&str, char> = servers
        .iter()
        .zip(['a', 'b', 'c'])
        .map(|((_, addr), n)| (addr.as_str(), n))
        .collect();
    let weights = [5, 1, 1];
    let pairs = servers
        .iter()
        .zip(weights)
        .map(|((_, addr), w)| KVPair::new(addr, format!("weight={w}")))
        .collect();
    let xclient = XClient::builder("Arith")
        .select_mode(SelectMode::WeightedRoundRobin)
        .discovery(MultipleServersDiscovery::new(pairs)?)
        .build()?;

    let mut order = String::new();
    for _ in 0..14 {
        let r = xclient
            .call_with::<_, i64>("Mul", &(10, 20), CallOptions::new())
            .await?;
        let from = r.metadata.get("__ServerAddress").unwrap_or("?");
        order.push(names[from]);
    }
    println!("weights a=5 b=1 c=1, 14 calls: {order}");
    assert_eq!(order, "aabacaaaabacaa");
    println!("selector-weighted: smooth order {}", &order[..7]);

    xclient.close();
    for (s, _) in &servers {
        s.shutdown(Duration::from_secs(1)).await?;
    }
    Ok(())
}
