//! Connection life: heartbeats, closing, auth, oneway, unix sockets, idle connections and
//! graceful shutdown.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sextant::{CallOptions, Client, ClientOptions, Context, Error, Server, ServiceError};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn sleeper() -> Server {
    let s = Server::new();
    s.register_fn("Svc", "Sleep", |_cx: Context, ms: u64| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, ServiceError>(ms)
    })
    .unwrap();
    s
}

/// Waits (bounded) for `f` to become true.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn heartbeat_is_echoed() {
    let server = sleeper();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    client.heartbeat().await.unwrap();
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn heartbeat_detects_a_dead_peer_and_fails_pending_calls() {
    // A "server" that accepts and reads but never answers anything.
    let ln = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = ln.local_addr().unwrap();
    let blackhole = tokio::spawn(async move {
        let (mut s, _) = ln.accept().await.unwrap();
        let mut b = vec![0u8; 4096];
        while s.read(&mut b).await.map(|n| n > 0).unwrap_or(false) {}
    });
    let opts = ClientOptions::default()
        .heartbeat(Duration::from_millis(50))
        .max_wait_for_heartbeat(Duration::from_millis(200));
    let client = Client::connect(addr.to_string(), opts).await.unwrap();
    let call = client
        .go::<_, u64>("Svc", "Sleep", &1u64, CallOptions::new())
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("pending call never failed");
    assert!(
        matches!(r, Err(Error::ConnectionLost(ref why)) if why.contains("heartbeat")),
        "{r:?}"
    );
    assert!(client.is_closed());
    let e = client
        .call::<_, u64>("Svc", "Sleep", &1u64)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    blackhole.abort();
}

#[tokio::test]
async fn close_fails_every_pending_call_at_once() {
    let server = sleeper();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let mut calls = Vec::new();
    for _ in 0..10 {
        calls.push(
            client
                .go::<_, u64>("Svc", "Sleep", &60_000u64, CallOptions::new())
                .await
                .unwrap(),
        );
    }
    client.close();
    for c in calls {
        let r = tokio::time::timeout(Duration::from_secs(5), c)
            .await
            .expect("call not failed by close");
        assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    }
    assert!(matches!(
        client.call::<_, u64>("Svc", "Sleep", &1u64).await,
        Err(Error::Closed)
    ));
    server.shutdown(Duration::from_millis(100)).await.ok();
}

#[tokio::test]
async fn server_going_away_fails_pending_calls_as_connection_lost() {
    let (started_tx, mut started) = mpsc::channel::<()>(1);
    let server = Server::new();
    server
        .register_fn("Svc", "Hang", move |_cx: Context, _: ()| {
            let started_tx = started_tx.clone();
            async move {
                started_tx.send(()).await.ok();
                std::future::pending::<()>().await;
                Ok::<_, ServiceError>(())
            }
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let call = client
        .go::<_, ()>("Svc", "Hang", &(), CallOptions::new())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), started.recv())
        .await
        .unwrap();
    // A grace period too short for the call: the server drops it and closes the connection.
    let r = server.shutdown(Duration::from_millis(50)).await;
    assert!(
        matches!(r, Err(Error::ShutdownTimeout { grace, connections: 1 }) if grace == Duration::from_millis(50)),
        "{r:?}"
    );
    let r = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap();
    assert!(matches!(r, Err(Error::ConnectionLost(_))), "{r:?}");
}

#[tokio::test]
async fn graceful_shutdown_lets_calls_finish_and_runs_hooks() {
    let server = sleeper();
    let hook_ran = Arc::new(AtomicBool::new(false));
    let h = hook_ran.clone();
    server.on_shutdown(move || async move { h.store(true, Ordering::SeqCst) });
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let call = client
        .go::<_, u64>("Svc", "Sleep", &300u64, CallOptions::new())
        .await
        .unwrap();
    // Make sure the request reached the server before shutting down: a second call on the same
    // connection is answered only after the first was read.
    assert_eq!(
        client.call::<_, u64>("Svc", "Sleep", &0u64).await.unwrap(),
        0
    );
    server.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(hook_ran.load(Ordering::SeqCst));
    assert_eq!(
        call.await.unwrap().reply,
        300,
        "in-flight call must finish during graceful shutdown"
    );
    // No new connections.
    assert!(Client::connect(&addr, ClientOptions::default())
        .await
        .is_err());
    // Nothing serves again: each way says the server is shut down (not "client is closed").
    for r in [
        server.start("tcp@127.0.0.1:0").await.map(|_| ()),
        server.serve("tcp@127.0.0.1:0").await,
        server
            .start_listener(sextant::transport::InProcess::new().listen("x").unwrap())
            .await
            .map(|_| ()),
    ] {
        let e = r.unwrap_err();
        assert!(matches!(e, Error::ServerShutdown), "{e:?}");
        assert_eq!(e.to_string(), "the server is shut down");
    }
}

#[tokio::test]
async fn a_port_in_use_is_a_bind_error() {
    let first = Server::new();
    let addr = first.start("tcp@127.0.0.1:0").await.unwrap();
    let second = Server::new();
    let e = second.start(&addr).await.unwrap_err();
    assert!(matches!(e, Error::Bind { .. }), "{e:?}");
    assert!(!e.is_retryable());
    assert!(
        e.to_string()
            .starts_with(&format!("cannot listen on {addr}")),
        "{e}"
    );
    let e = second.start("tcp@127.0.0.1:99999").await.unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    first.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn auth_token_from_client_options() {
    let server = Server::builder()
        .auth_fn(|_req, token| {
            let ok = token == "s3cr3t";
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("invalid token".to_string())
                }
            }
        })
        .build();
    server
        .register_fn("Svc", "Echo", |_cx: Context, s: String| async move {
            Ok::<_, ServiceError>(s)
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();

    let good = Client::connect(&addr, ClientOptions::default().auth_token("s3cr3t"))
        .await
        .unwrap();
    assert_eq!(
        good.call::<_, String>("Svc", "Echo", "hi").await.unwrap(),
        "hi"
    );
    good.heartbeat().await.unwrap();

    let bad = Client::connect(&addr, ClientOptions::default().auth_token("wrong"))
        .await
        .unwrap();
    let e = bad
        .call::<_, String>("Svc", "Echo", "hi")
        .await
        .unwrap_err();
    assert_eq!(
        e.as_service_error().map(|e| e.message()),
        Some("invalid token")
    );
    tokio::time::timeout(Duration::from_secs(5), bad.closed())
        .await
        .expect("server should close after failed auth");
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn oneway_runs_the_handler_and_sends_nothing() {
    let (tx, mut rx) = mpsc::channel::<String>(4);
    let server = Server::new();
    server
        .register_fn("Log", "Write", move |_cx: Context, line: String| {
            let tx = tx.clone();
            async move {
                tx.send(line).await.ok();
                Ok::<_, ServiceError>(())
            }
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    client
        .send_oneway("Log", "Write", "hello", CallOptions::new())
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, "hello");
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn unix_socket_transport() {
    let dir = std::env::temp_dir().join(format!("sextant-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("arith.sock");
    let server = sleeper();
    let addr = server
        .start(format!("unix@{}", path.display()))
        .await
        .unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    assert_eq!(
        client.call::<_, u64>("Svc", "Sleep", &1u64).await.unwrap(),
        1
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn idle_connections_are_closed_but_busy_ones_are_not() {
    let server = Server::builder()
        .idle_timeout(Duration::from_millis(200))
        .build();
    server
        .register_fn("Svc", "Sleep", |_cx: Context, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, ServiceError>(ms)
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    // A call longer than the idle timeout completes: the connection is not idle while it runs.
    let busy = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    assert_eq!(
        busy.call::<_, u64>("Svc", "Sleep", &600u64).await.unwrap(),
        600
    );
    // With nothing going on, the server closes it.
    tokio::time::timeout(Duration::from_secs(10), busy.closed())
        .await
        .expect("idle connection kept open");
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn stats_count_connections_and_calls() {
    let server = sleeper();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    for _ in 0..3 {
        client.call::<_, u64>("Svc", "Sleep", &0u64).await.unwrap();
    }
    let s = server.stats();
    assert_eq!(s.calls, 3);
    assert_eq!(s.connections, 1);
    client.close();
    let srv = server.clone();
    eventually("connection count to drop", move || {
        srv.stats().connections == 0
    })
    .await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn plugins_see_calls_and_can_refuse_them() {
    struct Gate(Arc<AtomicUsize>);
    impl sextant::ServerPlugin for Gate {
        fn pre_call(&self, ctx: &Context, _payload: &bytes::Bytes) -> sextant::Verdict {
            if ctx.metadata().get("token") == Some("let-me-in") {
                sextant::Verdict::Continue
            } else {
                sextant::Verdict::Reject("rate limited".into())
            }
        }
        fn post_call(&self, _ctx: &Context, outcome: &mut sextant::CallOutcome) {
            if outcome.is_ok() {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let ok_calls = Arc::new(AtomicUsize::new(0));
    let server = Server::builder().plugin(Gate(ok_calls.clone())).build();
    server
        .register_fn("Svc", "Echo", |_cx: Context, s: String| async move {
            Ok::<_, ServiceError>(s)
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let e = client
        .call::<_, String>("Svc", "Echo", "x")
        .await
        .unwrap_err();
    assert_eq!(e.as_service_error().unwrap().message(), "rate limited");
    let r = client
        .call_with::<_, String>(
            "Svc",
            "Echo",
            "x",
            CallOptions::new().metadata("token", "let-me-in"),
        )
        .await
        .unwrap();
    assert_eq!(r.reply, "x");
    assert_eq!(ok_calls.load(Ordering::SeqCst), 1);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn post_call_sees_the_error_of_a_failed_oneway_call() {
    type Seen = Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;
    struct Record(Seen);
    impl sextant::ServerPlugin for Record {
        fn post_call(&self, ctx: &Context, outcome: &mut sextant::CallOutcome) {
            self.0.lock().unwrap().push((
                ctx.service_method().to_string(),
                outcome.error().map(str::to_string),
            ));
        }
    }
    let seen: Seen = Default::default();
    let server = Server::builder().plugin(Record(seen.clone())).build();
    server
        .register_fn("Svc", "Fail", |_cx: Context, _: ()| async move {
            Err::<(), _>(ServiceError::new("it went wrong"))
        })
        .unwrap();
    server
        .register_fn("Svc", "Ok", |_cx: Context, _: ()| async move {
            Ok::<_, ServiceError>(())
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    client
        .send_oneway("Svc", "Fail", &(), CallOptions::new())
        .await
        .unwrap();
    client
        .send_oneway("Svc", "Ok", &(), CallOptions::new())
        .await
        .unwrap();
    // A call on the same connection is answered after the oneway ones were read.
    client.call::<_, ()>("Svc", "Ok", &()).await.unwrap();
    eventually("post_call ran three times", || {
        seen.lock().unwrap().len() == 3
    })
    .await;
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("Fail".to_string(), Some("it went wrong".to_string())),
            ("Ok".to_string(), None),
            ("Ok".to_string(), None),
        ]
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}
