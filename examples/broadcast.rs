//! Broadcast (rpcx-examples `broadcast`): send the call to every server; it succeeds only if all
//! do. Then one server starts failing, and broadcast returns its error; inform shows each result.
//!
//! Run: `cargo run --example broadcast`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::discovery::MultipleServersDiscovery;
use sextant::{CallOptions, Context, KVPair, Server, ServiceError, XClient};

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

async fn start_server(broken: Arc<AtomicBool>) -> sextant::Result<(Server, String)> {
    let server = Server::new();
    server.register_fn("Arith", "Mul", move |_cx: Context, a: Args| {
        let broken = broken.load(Ordering::Relaxed);
        async move {
            if broken {
                return Err(ServiceError::new("this server is broken"));
            }
            Ok(Reply { c: a.a * a.b })
        }
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?.to_string();
    Ok((server, address))
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let broken = Arc::new(AtomicBool::new(false));
    let servers = vec![
        start_server(Arc::new(AtomicBool::new(false))).await?,
        start_server(broken.clone()).await?,
        start_server(Arc::new(AtomicBool::new(false))).await?,
    ];
    let xclient = XClient::builder("Arith")
        .discovery(MultipleServersDiscovery::new(
            servers.iter().map(|(_, a)| KVPair::new(a, "")).collect(),
        )?)
        .build()?;
    let args = Args { a: 10, b: 20 };
    // Always give a broadcast a deadline (rpcx's advice); without one it waits up to 60 s.
    let options = || CallOptions::new().timeout(Duration::from_secs(5));

    let r = xclient
        .broadcast::<_, Reply>("Mul", &args, options())
        .await?;
    println!("broadcast to 3 servers: 10 * 20 = {}", r.reply.c);

    broken.store(true, Ordering::Relaxed);
    let e = xclient
        .broadcast::<_, Reply>("Mul", &args, options())
        .await
        .expect_err("one server fails");
    println!("broadcast with one failing server: error: {e}");
    for receipt in xclient.inform::<_, Reply>("Mul", &args, options()).await? {
        match receipt.result {
            Ok(r) => println!("  inform {}: {}", receipt.address, r.reply.c),
            Err(e) => println!("  inform {}: error: {e}", receipt.address),
        }
    }
    println!("broadcast: all ok -> reply; one failing -> its error");

    xclient.close();
    for (s, _) in &servers {
        s.shutdown(Duration::from_secs(1)).await?;
    }
    Ok(())
}
