//! Failover (rpcx-examples `failmode/failover`): when a call fails, try another server, up to
//! `retries` times. Three servers; one is stopped halfway; no call fails.
//!
//! Run: `cargo run --example failover`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::discovery::MultipleServersDiscovery;
use sextant::{Context, FailMode, KVPair, SelectMode, Server, ServiceError, XClient};

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

async fn start_server() -> sextant::Result<(Server, String)> {
    let server = Server::new();
    server.register_fn("Arith", "Mul", |_cx: Context, a: Args| async move {
        Ok::<_, ServiceError>(Reply { c: a.a * a.b })
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?.to_string();
    Ok((server, address))
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(start_server().await?);
    }
    let d =
        MultipleServersDiscovery::new(servers.iter().map(|(_, a)| KVPair::new(a, "")).collect())?;
    let xclient = XClient::builder("Arith")
        .fail_mode(FailMode::Failover)
        .select_mode(SelectMode::RoundRobin)
        .discovery(d)
        .build()?;

    let args = Args { a: 10, b: 20 };
    let mut failed = 0;
    for i in 1..=12 {
        if i == 7 {
            let (s, a) = &servers[1];
            s.shutdown(Duration::from_secs(1)).await?;
            println!("stopped {a}");
        }
        match xclient
            .call_with::<_, Reply>("Mul", &args, sextant::CallOptions::new())
            .await
        {
            Ok(r) => println!(
                "call {i}: {} * {} = {} (from {})",
                args.a,
                args.b,
                r.reply.c,
                r.metadata.get("__ServerAddress").unwrap_or("?")
            ),
            Err(e) => {
                failed += 1;
                println!("call {i} failed: {e}");
            }
        }
    }
    println!("failover: 12 calls, {failed} failed, one of three servers stopped halfway");
    assert_eq!(failed, 0);

    xclient.close();
    for (s, _) in [&servers[0], &servers[2]] {
        s.shutdown(Duration::from_secs(1)).await?;
    }
    Ok(())
}
