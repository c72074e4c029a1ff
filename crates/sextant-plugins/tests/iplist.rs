//! The IP lists end to end: a blacklist refusing 127.0.0.0/8, whitelists admitting 127.0.0.1
//! and refusing everything but 10.0.0.0/8, the same on [::1], and a list changed while the
//! server runs.

use std::time::Duration;

use sextant::{Client, ClientOptions, Error, Server};
use sextant_interop::{Args, Reply};
use sextant_plugins::iplist::{BlacklistPlugin, WhitelistPlugin};

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test step took too long")
}

/// A server with `plugin` and Arith, on `address`; `None` if it cannot be bound.
async fn start(plugin: impl sextant::ServerPlugin, address: &str) -> Option<(Server, String)> {
    let server = Server::builder().plugin(plugin).build();
    sextant_interop::register_all(&server).unwrap();
    match server.start(address).await {
        Ok(a) => Some((server, a.to_string())),
        Err(e) => {
            println!("note: cannot listen on {address} ({e}); skipping this part");
            None
        }
    }
}

/// Connects and calls Arith.Mul once: `Ok(product)`, or the error, which for a refused
/// connection is the connection's, never the server's.
async fn try_call(address: &str) -> Result<i64, Error> {
    let client = bounded(Client::connect(address, ClientOptions::default())).await?;
    let r = bounded(client.call::<_, Reply>("Arith", "Mul", &Args { a: 6, b: 7 })).await;
    client.close();
    r.map(|r| r.c)
}

async fn assert_refused(address: &str) {
    let e = try_call(address)
        .await
        .expect_err("the connection should be refused");
    assert!(
        e.as_service_error().is_none(),
        "expected a closed connection, got an answer from the server: {e:?}"
    );
}

#[tokio::test]
async fn a_blacklist_of_the_loopback_range_refuses_the_client() {
    let black = BlacklistPlugin::new(["127.0.0.0/8"]).unwrap();
    let (server, address) = start(black.clone(), "tcp@127.0.0.1:0").await.unwrap();
    assert_refused(&address).await;
    assert_eq!(black.refused(), 1);

    // Taken off the list at run time, the client gets in.
    black.set(["10.0.0.0/8", "192.168.1.7"]).unwrap();
    assert_eq!(try_call(&address).await.unwrap(), 42);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn a_whitelist_of_the_client_admits_it() {
    let white = WhitelistPlugin::new(["127.0.0.1/32"]).unwrap();
    let (server, address) = start(white.clone(), "tcp@127.0.0.1:0").await.unwrap();
    assert_eq!(try_call(&address).await.unwrap(), 42);
    assert_eq!(white.refused(), 0);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn a_whitelist_without_the_client_refuses_it() {
    let white = WhitelistPlugin::new(["10.0.0.0/8"]).unwrap();
    let (server, address) = start(white.clone(), "tcp@127.0.0.1:0").await.unwrap();
    assert_refused(&address).await;
    assert_eq!(white.refused(), 1);

    // Added at run time, the client gets in; the server kept serving throughout.
    white.add(["127.0.0.1"]).unwrap();
    assert_eq!(try_call(&address).await.unwrap(), 42);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn ipv6_loopback_is_matched_by_ipv6_rules() {
    let black = BlacklistPlugin::new(["::1"]).unwrap();
    let Some((server, address)) = start(black.clone(), "tcp@[::1]:0").await else {
        return;
    };
    assert_refused(&address).await;
    assert_eq!(black.refused(), 1);
    server.shutdown(Duration::from_secs(2)).await.unwrap();

    // An IPv4 rule does not cover ::1; an IPv6 range does.
    let white = WhitelistPlugin::new(["127.0.0.0/8"]).unwrap();
    let (server, address) = start(white.clone(), "tcp@[::1]:0").await.unwrap();
    assert_refused(&address).await;
    white.add(["::/127"]).unwrap();
    assert_eq!(try_call(&address).await.unwrap(), 42);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}
