//! What every `registry-*` example does, whatever the engine (rpcx-examples `registry/*`): two
//! `Arith` servers publish themselves through a registry plugin; an XClient finds them through a
//! discovery on the same registry and calls `Arith.Mul` round robin; one server shuts down
//! gracefully, leaves the registry at once, and the calls go on to the other.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::{Context, FailMode, SelectMode, Server, ServiceDiscovery, ServiceError, XClient};
use sextant_registry::{
    DiscoveryOptions, DiscoveryStore, RegistryDiscovery, RegistryError, RegistryOptions,
    RegistryPlugin, RegistryStore,
};

/// The argument (PascalCase keys, as Go's msgpack writes rpcx-examples' `Args`).
#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    pub a: i64,
    pub b: i64,
}

/// The reply.
#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Reply {
    pub c: i64,
}

/// Exits with a clear message when the registry cannot be reached. (Unused by registry-mdns:
/// mDNS has no registry to reach.)
#[allow(dead_code)]
pub fn unreachable(engine: &str, address: &str, how: &str, e: &RegistryError) -> ! {
    let reason = match e {
        RegistryError::Unreachable { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    eprintln!("{engine} is not reachable at {address}: {reason}");
    eprintln!("{how}");
    std::process::exit(1);
}

/// Starts an `Arith` server on 127.0.0.1 that publishes itself with `metadata` through `store`.
pub async fn start_server<S: RegistryStore>(
    store: S,
    metadata: &str,
) -> Result<(Server, String), RegistryError> {
    let plugin = RegistryPlugin::start(
        store,
        RegistryOptions::default()
            .base_path("/rpcx_test")
            .update_interval(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(3)),
    )
    .await?;
    let server = Server::builder().plugin(plugin).build();
    server
        .register_fn_with(
            "Arith",
            "Mul",
            |_cx: Context, a: Args| async move { Ok::<_, ServiceError>(Reply { c: a.a * a.b }) },
            sextant::RegisterOptions::default().metadata(metadata),
        )
        .expect("register Arith.Mul");
    let address = server
        .start("tcp@127.0.0.1:0")
        .await
        .expect("listen on 127.0.0.1")
        .to_string();
    println!("server {address} published with metadata {metadata:?}");
    Ok((server, address))
}

/// The whole demo: two servers, an XClient through the registry, one server leaving.
pub async fn run<S>(engine: &str, store: impl Fn() -> S) -> Result<(), Box<dyn std::error::Error>>
where
    S: RegistryStore + DiscoveryStore,
{
    let (s1, a1) = start_server(store(), "weight=1").await?;
    let (s2, a2) = start_server(store(), "weight=1").await?;

    let discovery = RegistryDiscovery::start(
        store(),
        "/rpcx_test",
        "Arith",
        DiscoveryOptions::default().request_timeout(Duration::from_secs(3)),
    )
    .await?;
    // Servers show up as soon as the registry reports them (mDNS needs a moment to answer).
    for _ in 0..100 {
        if discovery.get_services().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for s in discovery.get_services().iter() {
        println!("{engine} lists /rpcx_test/Arith/{} = {:?}", s.key, s.value);
    }

    let xclient = XClient::builder("Arith")
        .fail_mode(FailMode::Failover)
        .select_mode(SelectMode::RoundRobin)
        .discovery(discovery)
        .build()?;
    for _ in 0..100 {
        if xclient.servers().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let args = Args { a: 10, b: 20 };
    for _ in 0..4 {
        let r = xclient
            .call_with::<_, Reply>("Mul", &args, sextant::CallOptions::new())
            .await?;
        println!(
            "{} * {} = {} (answered by {})",
            args.a,
            args.b,
            r.reply.c,
            r.metadata.get("__ServerAddress").unwrap_or("?")
        );
    }

    // A graceful shutdown removes the server from the registry before it stops.
    s1.shutdown(Duration::from_secs(2)).await?;
    println!("server {a1} shut down");
    for _ in 0..200 {
        if xclient.servers().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..2 {
        let r = xclient
            .call_with::<_, Reply>("Mul", &args, sextant::CallOptions::new())
            .await?;
        println!(
            "{} * {} = {} (answered by {})",
            args.a,
            args.b,
            r.reply.c,
            r.metadata.get("__ServerAddress").unwrap_or("?")
        );
    }
    xclient.close();
    s2.shutdown(Duration::from_secs(2)).await?;
    println!("server {a2} shut down");
    Ok(())
}
