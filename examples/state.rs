//! State (rpcx-examples `state`): a server whose metadata says `state=inactive` is never called,
//! even though it is up — a way to take a server out of service without stopping it. Updating
//! the metadata brings it back.
//!
//! Run: `cargo run --example state`

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sextant::discovery::MultipleServersDiscovery;
use sextant::{CallOptions, Context, KVPair, SelectMode, Server, ServiceError, XClient};

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
    for _ in 0..10 {
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
    let d = Arc::new(MultipleServersDiscovery::new(vec![
        KVPair::new(&a1, ""),
        KVPair::new(&a2, "state=inactive"),
    ])?);
    let xclient = XClient::builder("Arith")
        .select_mode(SelectMode::RoundRobin)
        .discovery(d.clone())
        .build()?;

    let before = who(&xclient).await?;
    println!("server2 inactive: calls reached {before:?}");
    assert_eq!(before.len(), 1);

    // An operator flips the state back (in a registry this is an edit of the server's value).
    d.update(vec![KVPair::new(&a1, ""), KVPair::new(&a2, "")])?;
    for _ in 0..500 {
        if xclient.servers().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = who(&xclient).await?;
    println!("server2 active again: calls reached {after:?}");
    println!(
        "state: inactive -> {} server, active -> {} servers",
        before.len(),
        after.len()
    );

    xclient.close();
    s1.shutdown(Duration::from_secs(1)).await?;
    s2.shutdown(Duration::from_secs(1)).await
}
