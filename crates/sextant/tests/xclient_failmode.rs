//! Fail modes against real servers: Failover, Failfast, Failtry, Failbackup.

#[path = "xclient_common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use sextant::discovery::{MultipleServersDiscovery, Peer2PeerDiscovery};
use sextant::selector::SelectMode;
use sextant::xclient::{CallInfo, ClientPlugin, FailMode, XClient, XClientOptions};
use sextant::{CallOptions, Error, KVPair};

/// Records the server of every attempt.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<(String, u32)>>>);

impl ClientPlugin for Attempts {
    fn pre_call(&self, call: &mut CallInfo<'_>) -> sextant::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push((call.server.to_string(), call.attempt));
        Ok(())
    }
}

impl Attempts {
    fn take(&self) -> Vec<(String, u32)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_survives_a_server_killed_mid_load() {
    let s = [start(0).await, start(1).await, start(2).await];
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failover)
        .select_mode(SelectMode::RoundRobin)
        .discovery(
            MultipleServersDiscovery::new(s.iter().map(|s| KVPair::new(&s.address, "")).collect())
                .unwrap(),
        )
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let x = x.clone();
            let (done, failed) = (done.clone(), failed.clone());
            tokio::spawn(async move {
                for i in 0..500 {
                    match x.call::<_, Reply>("Mul", &Args { a: t, b: i }).await {
                        Ok(r) => assert_eq!(r.c, t * i),
                        Err(e) => {
                            eprintln!("call failed: {e}");
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Kill server 1 a third of the way through.
    eventually(Duration::from_secs(20), "1/3 of the calls", || {
        done.load(Ordering::Relaxed) >= 1_300
    })
    .await;
    s[1].stop().await;
    let calls_at_kill = s[1].calls();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed), 4_000);
    assert_eq!(failed.load(Ordering::Relaxed), 0, "calls failed");
    assert_eq!(s[1].calls(), calls_at_kill, "the killed server was called");
    assert!(s[0].calls() + s[2].calls() + s[1].calls() >= 4_000);
    x.close();
    s[0].stop().await;
    s[2].stop().await;
}

#[tokio::test]
async fn failfast_returns_the_first_error() {
    let live = start(0).await;
    let dead = dead_address();
    let attempts = Attempts::default();
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .select_mode(SelectMode::RoundRobin)
        .plugin(attempts.clone())
        .discovery(
            MultipleServersDiscovery::new(vec![
                KVPair::new(&live.address, ""),
                KVPair::new(&dead, ""),
            ])
            .unwrap(),
        )
        .build()
        .unwrap();
    let (mut ok, mut err) = (0, 0);
    for _ in 0..10 {
        match x.call::<_, u32>("Who", &()).await {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                assert!(e.to_string().contains(&dead[4..]), "{e}");
                err += 1;
            }
        }
    }
    assert_eq!((ok, err), (5, 5));
    // One attempt per call.
    assert_eq!(attempts.take().len(), 10);
    x.close();
    live.stop().await;
}

#[tokio::test]
async fn failtry_retries_the_same_server_and_reconnects() {
    // A dead server: every attempt goes to it, retries + 1 of them.
    let dead = dead_address();
    let attempts = Attempts::default();
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failtry)
        .plugin(attempts.clone())
        .options(
            XClientOptions::default()
                .retries(2)
                .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(20)),
        )
        .discovery(Peer2PeerDiscovery::new(&dead, "").unwrap())
        .build()
        .unwrap();
    let e = x.call::<_, u32>("Who", &()).await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
    let a = attempts.take();
    assert_eq!(a.len(), 3, "{a:?}");
    assert!(a.iter().all(|(s, _)| *s == dead));
    assert_eq!(a.iter().map(|(_, n)| *n).collect::<Vec<_>>(), vec![0, 1, 2]);
    x.close();

    // A server restarted on the same port: the broken connection is dropped and redialled.
    let s = start(7).await;
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failtry)
        .plugin(attempts.clone())
        .discovery(Peer2PeerDiscovery::new(&s.address, "").unwrap())
        .build()
        .unwrap();
    assert_eq!(x.call::<_, u32>("Who", &()).await.unwrap(), 7);
    s.stop().await;
    let again = start_with(8, false, &s.address).await;
    assert_eq!(x.call::<_, u32>("Who", &()).await.unwrap(), 8);
    x.close();
    again.stop().await;
}

#[tokio::test]
async fn failbackup_answers_from_the_fast_server() {
    // Server 0 answers only after 3 s; server 1 at once.
    let slow = start_lagging(0, Duration::from_secs(3)).await;
    let fast = start(1).await;
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failbackup)
        .select_mode(SelectMode::RoundRobin)
        .options(XClientOptions::default().backup_latency(Duration::from_millis(20)))
        .discovery(
            MultipleServersDiscovery::new(vec![
                KVPair::new(&slow.address, ""),
                KVPair::new(&fast.address, ""),
            ])
            .unwrap(),
        )
        .build()
        .unwrap();
    // Round robin sends every other call to the slow server first: the backup answers it.
    let slow_addr = slow.address.clone();
    for _ in 0..6 {
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            x.call_with::<_, u32>("Who", &(), CallOptions::new()),
        )
        .await
        .expect("failbackup waited for the slow server")
        .unwrap();
        assert_eq!(
            r.reply,
            1,
            "answered by {:?}",
            r.metadata.get("__ServerAddress")
        );
        assert_ne!(r.metadata.get("__ServerAddress"), Some(slow_addr.as_str()));
    }
    x.close();
    slow.stop().await;
    fast.stop().await;
}

#[tokio::test]
async fn service_errors_and_deadlines_are_never_retried() {
    let s = vec![
        start_with(0, true, "tcp@127.0.0.1:0").await,
        start_with(1, true, "tcp@127.0.0.1:0").await,
    ];
    for mode in [FailMode::Failover, FailMode::Failtry, FailMode::Failbackup] {
        let attempts = Attempts::default();
        let x = XClient::builder("Arith")
            .fail_mode(mode)
            .plugin(attempts.clone())
            .discovery(
                MultipleServersDiscovery::new(
                    s.iter().map(|s| KVPair::new(&s.address, "")).collect(),
                )
                .unwrap(),
            )
            .build()
            .unwrap();
        let e = x.call::<_, u32>("Fail", &()).await.unwrap_err();
        assert!(e.as_service_error().unwrap().message().ends_with("refuses"));
        assert_eq!(attempts.take().len(), 1, "{mode}: service error retried");

        let e = x
            .call_with::<_, u32>(
                "Sleep",
                &2_000u64,
                CallOptions::new().timeout(Duration::from_millis(100)),
            )
            .await
            .unwrap_err();
        // The server may give up first (its __ServerTimeout is the same deadline): either way
        // the call is not retried.
        let server_deadline = e
            .as_service_error()
            .is_some_and(|s| s.message().contains("deadline"));
        assert!(
            matches!(e, Error::DeadlineExceeded) || server_deadline,
            "{mode}: {e}"
        );
        let n = attempts.take().len();
        // Failbackup sends a backup after 10 ms, which is not a retry.
        let expected = if mode == FailMode::Failbackup { 2 } else { 1 };
        assert_eq!(n, expected, "{mode}: deadline retried");
        x.close();
    }
    for s in &s {
        s.stop().await;
    }
}
