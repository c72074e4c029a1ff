//! Consistent hash (rpcx-examples `selector/hash`): calls with the same service path, method and
//! arguments go to the same server (jump consistent hash). A per-call hash key pins calls
//! whatever their arguments, e.g. all of one user's calls.
//!
//! Run: `cargo run --example selector-hash`

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
    for _ in 0..4 {
        servers.push(start_server().await?);
    }
    let xclient = XClient::builder("Arith")
        .select_mode(SelectMode::ConsistentHash)
        .discovery(MultipleServersDiscovery::new(
            servers.iter().map(|(_, a)| KVPair::new(a, "")).collect(),
        )?)
        .build()?;

    let server_of = |args: (i64, i64), options: CallOptions| {
        let xclient = xclient.clone();
        async move {
            let r = xclient.call_with::<_, i64>("Mul", &args, options).await?;
            Ok::<_, sextant::Error>(r.metadata.get("__ServerAddress").unwrap_or("?").to_string())
        }
    };
    for args in [(10, 20), (3, 4), (7, 7)] {
        let first = server_of(args, CallOptions::new()).await?;
        for _ in 0..5 {
            assert_eq!(server_of(args, CallOptions::new()).await?, first);
        }
        println!("Mul{args:?}: always {first}");
    }
    let pinned = server_of((1, 1), CallOptions::new().hash_key("user-42")).await?;
    for a in 2..10 {
        assert_eq!(
            server_of((a, a), CallOptions::new().hash_key("user-42")).await?,
            pinned
        );
    }
    println!("selector-hash: same args -> same server; hash key user-42 -> {pinned}");

    xclient.close();
    for (s, _) in &servers {
        s.shutdown(Duration::from_secs(1)).await?;
    }
    Ok(())
}
