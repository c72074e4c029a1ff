//! Circuit breakers in an XClient: trip, skip, trial, recover.

#[path = "xclient_common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sextant::breaker::{BreakerState, ConsecutiveBreaker, RateBreaker};
use sextant::discovery::{MultipleServersDiscovery, Peer2PeerDiscovery};
use sextant::selector::SelectMode;
use sextant::xclient::{ClientPlugin, FailMode, XClient, XClientOptions};
use sextant::{Error, KVPair};

/// Counts failed dials.
#[derive(Clone, Default)]
struct DialFailures(Arc<AtomicUsize>);

impl ClientPlugin for DialFailures {
    fn on_conn_create_failed(&self, _server: &str, _error: &Error) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn consecutive_breaker_trips_skips_and_recovers() {
    let live = start(0).await;
    let dead = dead_address();
    let dials = DialFailures::default();
    let window = Duration::from_millis(300);
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failover)
        .select_mode(SelectMode::RoundRobin)
        .plugin(dials.clone())
        .options(
            XClientOptions::default()
                .breaker(move || ConsecutiveBreaker::new(2, window))
                // Redial at once, so that only the breaker keeps calls away from the dead server.
                .reconnect_backoff(Duration::ZERO, Duration::ZERO),
        )
        .discovery(
            MultipleServersDiscovery::new(vec![
                KVPair::new(&live.address, ""),
                KVPair::new(&dead, ""),
            ])
            .unwrap(),
        )
        .build()
        .unwrap();
    // Every call succeeds (failover), and the dead server fails twice in a row: open.
    for _ in 0..6 {
        assert_eq!(x.call::<_, u32>("Who", &()).await.unwrap(), 0);
    }
    assert_eq!(x.breaker_state(&dead), Some(BreakerState::Open));
    assert_eq!(x.breaker_state(&live.address), Some(BreakerState::Closed));
    let failed_dials = dials.0.load(Ordering::Relaxed);
    assert_eq!(failed_dials, 2);
    // While open, the dead server is skipped: no more dials.
    for _ in 0..20 {
        assert_eq!(x.call::<_, u32>("Who", &()).await.unwrap(), 0);
    }
    assert_eq!(dials.0.load(Ordering::Relaxed), failed_dials);

    // The server comes back on that address; after the window one trial call reaches it and
    // closes the breaker.
    let back = start_with(1, false, &dead).await;
    eventually(Duration::from_secs(5), "the half-open state", || {
        x.breaker_state(&dead) == Some(BreakerState::HalfOpen)
    })
    .await;
    let mut answered_by_1 = 0;
    for _ in 0..10 {
        if x.call::<_, u32>("Who", &()).await.unwrap() == 1 {
            answered_by_1 += 1;
        }
    }
    assert_eq!(x.breaker_state(&dead), Some(BreakerState::Closed));
    assert!(answered_by_1 >= 4, "{answered_by_1}");
    x.close();
    live.stop().await;
    back.stop().await;
}

#[tokio::test]
async fn every_breaker_open_fails_at_once() {
    let dead = dead_address();
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failover)
        .options(
            XClientOptions::default()
                .breaker(|| ConsecutiveBreaker::new(1, Duration::from_secs(60))),
        )
        .discovery(Peer2PeerDiscovery::new(&dead, "").unwrap())
        .build()
        .unwrap();
    let e = x.call::<_, u32>("Who", &()).await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
    let started = Instant::now();
    for _ in 0..100 {
        let e = x.call::<_, u32>("Who", &()).await.unwrap_err();
        assert!(matches!(e, Error::NoServer(_)), "{e}");
        assert!(e.to_string().contains("circuit breaker is open"), "{e}");
    }
    // "At once": 100 refused calls take no dial and no wait (generous bound).
    assert!(started.elapsed() < Duration::from_secs(2));
    x.close();
}

#[tokio::test]
async fn rate_breaker_opens_on_failure_rate() {
    let live = start(0).await;
    let dead = dead_address();
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .select_mode(SelectMode::RoundRobin)
        .options(
            XClientOptions::default()
                .breaker(|| RateBreaker::new(0.5, 4, Duration::from_secs(30)))
                .reconnect_backoff(Duration::ZERO, Duration::ZERO),
        )
        .discovery(
            MultipleServersDiscovery::new(vec![
                KVPair::new(&live.address, ""),
                KVPair::new(&dead, ""),
            ])
            .unwrap(),
        )
        .build()
        .unwrap();
    let mut errors = 0;
    for _ in 0..40 {
        if x.call::<_, u32>("Who", &()).await.is_err() {
            errors += 1;
        }
    }
    // The dead server failed 4 of 4 calls, then was skipped: every later call went to 0.
    assert_eq!(errors, 4);
    assert_eq!(x.breaker_state(&dead), Some(BreakerState::Open));
    x.close();
    live.stop().await;
}

#[tokio::test]
async fn service_errors_do_not_trip_breakers() {
    let s = start_with(0, true, "tcp@127.0.0.1:0").await;
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .options(
            XClientOptions::default()
                .breaker(|| ConsecutiveBreaker::new(3, Duration::from_secs(60))),
        )
        .discovery(Peer2PeerDiscovery::new(&s.address, "").unwrap())
        .build()
        .unwrap();
    for _ in 0..20 {
        let e = x.call::<_, u32>("Fail", &()).await.unwrap_err();
        assert!(e.as_service_error().is_some());
    }
    assert_eq!(x.breaker_state(&s.address), Some(BreakerState::Closed));
    x.close();
    s.stop().await;
}

#[tokio::test]
async fn timeouts_trip_breakers() {
    // A hung server: connections are accepted, nothing is ever answered.
    let (hung, task) = black_hole().await;
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .options(
            XClientOptions::default()
                .breaker(|| ConsecutiveBreaker::new(3, Duration::from_secs(60))),
        )
        .default_timeout(Duration::from_millis(30))
        .discovery(Peer2PeerDiscovery::new(&hung, "").unwrap())
        .build()
        .unwrap();
    for _ in 0..3 {
        let e = x.call::<_, u32>("Who", &()).await.unwrap_err();
        assert!(matches!(e, Error::DeadlineExceeded), "{e}");
    }
    assert_eq!(x.breaker_state(&hung), Some(BreakerState::Open));
    let e = x.call::<_, u32>("Who", &()).await.unwrap_err();
    assert!(e.to_string().contains("circuit breaker is open"), "{e}");
    x.close();
    task.abort();
}
