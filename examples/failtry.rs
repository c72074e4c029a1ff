//! Failtry (rpcx-examples `failmode/failtry`): when a call fails, try the same server again,
//! reconnecting. The server restarts between two calls; the second call reconnects and succeeds.
//!
//! Run: `cargo run --example failtry`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::discovery::Peer2PeerDiscovery;
use sextant::{Context, FailMode, SelectMode, Server, ServiceError, XClient};

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

fn arith() -> sextant::Result<Server> {
    let server = Server::new();
    server.register_fn("Arith", "Mul", |_cx: Context, a: Args| async move {
        Ok::<_, ServiceError>(Reply { c: a.a * a.b })
    })?;
    Ok(server)
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let server = arith()?;
    let address = server.start("tcp@127.0.0.1:0").await?.to_string();
    let xclient = XClient::builder("Arith")
        .fail_mode(FailMode::Failtry)
        .select_mode(SelectMode::Random)
        .discovery(Peer2PeerDiscovery::new(&address, "")?)
        .build()?;

    let args = Args { a: 10, b: 20 };
    let r: Reply = xclient.call("Mul", &args).await?;
    println!("before the restart: 10 * 20 = {}", r.c);

    // Restart on the same address: the XClient's connection is now broken.
    server.shutdown(Duration::from_secs(1)).await?;
    let server = arith()?;
    server.start(address.as_str()).await?;
    println!("server restarted on {address}");

    let r: Reply = xclient.call("Mul", &args).await?;
    println!(
        "failtry: after the restart 10 * 20 = {} (same server, reconnected)",
        r.c
    );
    assert_eq!(r.c, 200);

    xclient.close();
    server.shutdown(Duration::from_secs(1)).await
}
