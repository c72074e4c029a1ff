//! Group (rpcx-examples `group`): a server registered with `group=test` metadata; a client with
//! `group = "test"` uses only servers of that group. A client without a group uses every server.
//!
//! Run: `cargo run --example group`

use std::collections::BTreeSet;
use std::time::Duration;

use sextant::discovery::MultipleServersDiscovery;
use sextant::{
    CallOptions, Context, FailMode, KVPair, SelectMode, Server, ServiceError, XClient,
    XClientOptions,
};

async fn start_server(name: &'static str, meta: &str) -> sextant::Result<(Server, KVPair)> {
    let server = Server::new();
    // rpcx's RegisterName("Arith", ..., "group=test"): the metadata a registry would publish.
    server.register_fn_with(
        "Arith",
        "Who",
        move |_cx: Context, _: ()| async move { Ok::<_, ServiceError>(name.to_string()) },
        sextant::RegisterOptions::default().metadata(meta),
    )?;
    let address = server.start("tcp@127.0.0.1:0").await?.to_string();
    Ok((server, KVPair::new(address, meta)))
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
    let (s1, p1) = start_server("server1 (no group)", "").await?;
    let (s2, p2) = start_server("server2 (group=test)", "group=test").await?;
    let pairs = vec![p1, p2];

    let grouped = XClient::new(
        "Arith",
        FailMode::Failover,
        SelectMode::RoundRobin,
        MultipleServersDiscovery::new(pairs.clone())?,
        XClientOptions::default().group("test"),
    )?;
    let in_group = who(&grouped).await?;
    println!("client with group \"test\" reached: {in_group:?}");
    assert_eq!(in_group.len(), 1);

    let any = XClient::new(
        "Arith",
        FailMode::Failover,
        SelectMode::RoundRobin,
        MultipleServersDiscovery::new(pairs)?,
        XClientOptions::default(),
    )?;
    let all = who(&any).await?;
    println!("client without a group reached: {all:?}");
    println!(
        "group: group=test -> 1 server, no group -> {} servers",
        all.len()
    );

    grouped.close();
    any.close();
    s1.shutdown(Duration::from_secs(1)).await?;
    s2.shutdown(Duration::from_secs(1)).await
}
