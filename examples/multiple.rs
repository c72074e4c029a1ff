//! Multiple servers without a registry (rpcx-examples `registry/multiple`):
//! `MultipleServersDiscovery` holds the list in code, and `update` changes it at run time — here
//! a third server is added and the first removed.
//!
//! Run: `cargo run --example multiple`

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sextant::discovery::MultipleServersDiscovery;
use sextant::{CallOptions, Context, FailMode, KVPair, SelectMode, Server, ServiceError, XClient};

async fn start_server(name: &'static str) -> sextant::Result<(Server, String)> {
    let server = Server::new();
    server.register_fn("Arith", "Who", move |_cx: Context, _: ()| async move {
        Ok::<_, ServiceError>(name.to_string())
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?.to_string();
    Ok((server, address))
}

async fn who(xclient: &XClient) -> sextant::Result<BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    for _ in 0..12 {
        seen.insert(
            xclient
                .call_with::<_, String>("Who", &(), CallOptions::new())
                .await?
                .reply,
        );
    }
    Ok(seen)
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let (s1, a1) = start_server("server1").await?;
    let (s2, a2) = start_server("server2").await?;
    let (s3, a3) = start_server("server3").await?;
    let d = Arc::new(MultipleServersDiscovery::new(vec![
        KVPair::new(&a1, ""),
        KVPair::new(&a2, ""),
    ])?);
    let xclient = XClient::builder("Arith")
        .fail_mode(FailMode::Failtry)
        .select_mode(SelectMode::RoundRobin)
        .discovery(d.clone())
        .build()?;
    let before = who(&xclient).await?;
    println!("before the update: {before:?}");

    d.update(vec![KVPair::new(&a2, ""), KVPair::new(&a3, "")])?;
    for _ in 0..500 {
        if xclient.servers().iter().any(|n| **n.address() == *a3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = who(&xclient).await?;
    println!("after the update: {after:?}");
    println!("multiple: {before:?} -> {after:?}");

    xclient.close();
    for s in [s1, s2, s3] {
        s.shutdown(Duration::from_secs(1)).await?;
    }
    Ok(())
}
