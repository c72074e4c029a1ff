//! Fork, broadcast and inform, with a failing server among healthy ones.

#[path = "xclient_common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use sextant::discovery::MultipleServersDiscovery;
use sextant::xclient::{FailMode, XClient};
use sextant::{CallOptions, Error, KVPair};

/// Servers 0 and 2 answer `Fail` normally; server 1 refuses it (a service error).
async fn three_with_one_failing() -> (Vec<TestServer>, XClient) {
    let s = vec![
        start_with(0, false, "tcp@127.0.0.1:0").await,
        start_with(1, true, "tcp@127.0.0.1:0").await,
        start_with(2, false, "tcp@127.0.0.1:0").await,
    ];
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .discovery(
            MultipleServersDiscovery::new(s.iter().map(|s| KVPair::new(&s.address, "")).collect())
                .unwrap(),
        )
        .build()
        .unwrap();
    (s, x)
}

async fn stop(s: Vec<TestServer>, x: XClient) {
    x.close();
    for s in &s {
        s.stop().await;
    }
}

#[tokio::test]
async fn fork_succeeds_when_any_server_does() {
    let (s, x) = three_with_one_failing().await;
    for _ in 0..10 {
        let r = x
            .fork::<_, u32>("Fail", &(), CallOptions::new())
            .await
            .unwrap();
        assert_ne!(r.reply, 1);
    }
    // Every server reached by Who.
    let r = x
        .fork::<_, u32>("Who", &(), CallOptions::new())
        .await
        .unwrap();
    assert!(r.reply <= 2);
    stop(s, x).await;

    // All fail: one of the errors.
    let s = vec![
        start_with(0, true, "tcp@127.0.0.1:0").await,
        start_with(1, true, "tcp@127.0.0.1:0").await,
    ];
    let x = XClient::builder("Arith")
        .discovery(
            MultipleServersDiscovery::new(s.iter().map(|s| KVPair::new(&s.address, "")).collect())
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = x
        .fork::<_, u32>("Fail", &(), CallOptions::new())
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().message().ends_with("refuses"));
    stop(s, x).await;
}

#[tokio::test]
async fn fork_survives_an_unreachable_server() {
    let live = start(0).await;
    let x = XClient::builder("Arith")
        .discovery(
            MultipleServersDiscovery::new(vec![
                KVPair::new(dead_address(), ""),
                KVPair::new(&live.address, ""),
            ])
            .unwrap(),
        )
        .build()
        .unwrap();
    let r = x
        .fork::<_, u32>("Who", &(), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(r.reply, 0);
    let e = x
        .broadcast::<_, u32>("Who", &(), CallOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
    x.close();
    live.stop().await;
}

#[tokio::test]
async fn broadcast_succeeds_only_when_all_do() {
    let (s, x) = three_with_one_failing().await;
    let e = x
        .broadcast::<_, u32>("Fail", &(), CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.as_service_error().unwrap().message(), "server 1 refuses");
    let before: Vec<u64> = s.iter().map(|s| s.calls()).collect();
    let r = x
        .broadcast::<_, Reply>("Mul", &Args { a: 3, b: 4 }, CallOptions::new())
        .await
        .unwrap();
    assert_eq!(r.reply.c, 12);
    // Every server got the call.
    for (s, b) in s.iter().zip(before) {
        assert_eq!(s.calls(), b + 1, "server {}", s.id);
    }
    stop(s, x).await;
}

#[tokio::test]
async fn inform_reports_every_server() {
    let (s, x) = three_with_one_failing().await;
    let receipts = x
        .inform::<_, u32>("Fail", &(), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(receipts.len(), 3);
    let mut addresses: Vec<&str> = s.iter().map(|s| s.address.as_str()).collect();
    addresses.sort();
    assert_eq!(
        receipts
            .iter()
            .map(|r| r.address.as_str())
            .collect::<Vec<_>>(),
        addresses
    );
    for r in &receipts {
        let id = s.iter().find(|s| s.address == r.address).unwrap().id;
        match &r.result {
            Ok(resp) => {
                assert_ne!(id, 1);
                assert_eq!(resp.reply, id);
                assert_eq!(
                    resp.metadata.get("__ServerAddress"),
                    Some(r.address.as_str())
                );
            }
            Err(e) => {
                assert_eq!(id, 1);
                assert!(e.as_service_error().is_some());
            }
        }
    }
    stop(s, x).await;
}

#[tokio::test]
async fn all_three_are_bounded_by_the_deadline() {
    let fast = start(0).await;
    let slow = start_lagging(1, Duration::from_secs(10)).await;
    let x = XClient::builder("Arith")
        .discovery(
            MultipleServersDiscovery::new(vec![
                KVPair::new(&fast.address, ""),
                KVPair::new(&slow.address, ""),
            ])
            .unwrap(),
        )
        .build()
        .unwrap();
    let o = || CallOptions::new().timeout(Duration::from_millis(200));
    let started = Instant::now();
    let e = x.broadcast::<_, u32>("Who", &(), o()).await.unwrap_err();
    let server_gave_up = e
        .as_service_error()
        .is_some_and(|s| s.message().contains("deadline"));
    assert!(
        matches!(e, Error::DeadlineExceeded) || server_gave_up,
        "{e}"
    );
    let r = x.fork::<_, u32>("Who", &(), o()).await.unwrap();
    assert_eq!(r.reply, 0);
    let receipts = x.inform::<_, u32>("Who", &(), o()).await.unwrap();
    assert_eq!(receipts.iter().filter(|r| r.result.is_ok()).count(), 1);
    // Generous bound: three calls of 200 ms, far from the slow server's 10 s.
    assert!(started.elapsed() < Duration::from_secs(5));
    x.close();
    fast.stop().await;
    slow.stop().await;
}
