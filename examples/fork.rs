//! Fork (rpcx-examples `fork`): send the call to every server; the first success wins. One of
//! three servers fails every call, and fork still succeeds.
//!
//! Run: `cargo run --example fork`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::discovery::MultipleServersDiscovery;
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

async fn start_server(broken: bool) -> sextant::Result<(Server, String)> {
    let server = Server::new();
    server.register_fn("Arith", "Mul", move |_cx: Context, a: Args| async move {
        if broken {
            return Err(ServiceError::new("this server is broken"));
        }
        Ok(Reply { c: a.a * a.b })
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?.to_string();
    Ok((server, address))
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let servers = vec![
        start_server(false).await?,
        start_server(true).await?,
        start_server(false).await?,
    ];
    let xclient = XClient::builder("Arith")
        .fail_mode(FailMode::Failover)
        .select_mode(SelectMode::RoundRobin)
        .discovery(MultipleServersDiscovery::new(
            servers.iter().map(|(_, a)| KVPair::new(a, "")).collect(),
        )?)
        .build()?;

    for i in 1..=3 {
        let r = xclient
            .fork::<_, Reply>("Mul", &Args { a: 10, b: 20 }, CallOptions::new())
            .await?;
        println!(
            "fork {i}: 10 * 20 = {} (first success, from {})",
            r.reply.c,
            r.metadata.get("__ServerAddress").unwrap_or("?")
        );
        assert_eq!(r.reply.c, 200);
    }
    println!("fork: 3 of 3 succeeded with one of three servers failing");

    xclient.close();
    for (s, _) in &servers {
        s.shutdown(Duration::from_secs(1)).await?;
    }
    Ok(())
}
