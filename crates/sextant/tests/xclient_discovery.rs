//! The server list of an XClient: state and group filtering, run-time updates, in-process
//! servers, and the connection per server (dial once, redial, close).

#[path = "xclient_common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use sextant::discovery::{InprocessDiscovery, MultipleServersDiscovery, Peer2PeerDiscovery};
use sextant::selector::SelectMode;
use sextant::transport::InProcess;
use sextant::xclient::{CallInfo, ClientPlugin, FailMode, XClient, XClientOptions};
use sextant::{CallOptions, ClientOptions, Error, KVPair, Server};

fn xclient(d: impl sextant::ServiceDiscovery, options: XClientOptions) -> XClient {
    XClient::builder("Arith")
        .fail_mode(FailMode::Failover)
        .select_mode(SelectMode::RoundRobin)
        .options(options)
        .discovery(d)
        .build()
        .unwrap()
}

async fn who_answers(x: &XClient, n: usize) -> HashSet<u32> {
    let mut ids = HashSet::new();
    for _ in 0..n {
        ids.insert(x.call::<_, u32>("Who", &()).await.unwrap());
    }
    ids
}

#[tokio::test]
async fn inactive_servers_are_never_chosen() {
    let s = vec![start(0).await, start(1).await, start(2).await];
    let d = MultipleServersDiscovery::new(vec![
        KVPair::new(&s[0].address, ""),
        KVPair::new(&s[1].address, "state=inactive&weight=10"),
        KVPair::new(&s[2].address, "state=active"),
    ])
    .unwrap();
    let x = xclient(d, XClientOptions::default());
    assert_eq!(x.servers().len(), 2);
    assert_eq!(who_answers(&x, 30).await, HashSet::from([0, 2]));
    assert_eq!(s[1].calls(), 0);
    x.close();
    for s in &s {
        s.stop().await;
    }
}

#[tokio::test]
async fn group_selects_servers_of_the_group() {
    let s = vec![start(0).await, start(1).await, start(2).await];
    let pairs = vec![
        KVPair::new(&s[0].address, ""),
        KVPair::new(&s[1].address, "group=test"),
        KVPair::new(&s[2].address, "group=test&state=inactive"),
    ];
    let x = xclient(
        MultipleServersDiscovery::new(pairs.clone()).unwrap(),
        XClientOptions::default().group("test"),
    );
    assert_eq!(who_answers(&x, 20).await, HashSet::from([1]));
    x.close();
    // Without a group every active server is used, grouped or not (rpcx's rule).
    let x = xclient(
        MultipleServersDiscovery::new(pairs.clone()).unwrap(),
        XClientOptions::default(),
    );
    assert_eq!(who_answers(&x, 20).await, HashSet::from([0, 1]));
    x.close();
    // A group no server has: a clear error.
    let x = xclient(
        MultipleServersDiscovery::new(pairs).unwrap(),
        XClientOptions::default().group("prod"),
    );
    let e = x.call::<_, u32>("Who", &()).await.unwrap_err();
    assert!(matches!(e, Error::NoServer(_)), "{e}");
    let text = e.to_string();
    assert!(text.contains("not in group \"prod\""), "{text}");
    x.close();
    for s in &s {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_added_and_removed_while_calls_run() {
    let s = vec![start(0).await, start(1).await, start(2).await];
    let d = Arc::new(
        MultipleServersDiscovery::new(vec![
            KVPair::new(&s[0].address, ""),
            KVPair::new(&s[1].address, ""),
        ])
        .unwrap(),
    );
    let x = xclient(d.clone(), XClientOptions::default());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (x, stop, failures, seen) =
                (x.clone(), stop.clone(), failures.clone(), seen.clone());
            tokio::spawn(async move {
                // Bounded: at most 20,000 calls per task.
                for _ in 0..20_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match x.call::<_, u32>("Who", &()).await {
                        Ok(id) => seen.lock().unwrap().push(id),
                        Err(e) => {
                            eprintln!("call failed: {e}");
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    let seen_len = || seen.lock().unwrap().len();
    eventually(Duration::from_secs(10), "calls before the update", || {
        seen_len() > 500
    })
    .await;
    // Add server 2 and remove server 0 while the calls run.
    d.update(vec![
        KVPair::new(&s[1].address, ""),
        KVPair::new(&s[2].address, ""),
    ])
    .unwrap();
    eventually(Duration::from_secs(10), "the new list", || {
        x.servers().iter().any(|n| **n.address() == *s[2].address)
    })
    .await;
    let mark = seen_len();
    eventually(Duration::from_secs(10), "calls after the update", || {
        seen_len() > mark + 1_000
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    // A few calls selected before the update may still land on server 0; none long after.
    let after: HashSet<u32> = seen.lock().unwrap()[mark + 100..].iter().copied().collect();
    assert_eq!(after, HashSet::from([1, 2]));
    // The connection to the removed server is closed.
    assert!(!x.connected_servers().contains(&s[0].address));
    eventually(
        Duration::from_secs(5),
        "server 0's connection to close",
        || s[0].server.stats().connections == 0,
    )
    .await;
    x.close();
    for s in &s {
        s.stop().await;
    }
}

#[tokio::test]
async fn inprocess_servers_need_no_socket() {
    let hub = InProcess::new();
    let (server, _) = arith_server(5, false, "");
    let address = hub.serve(&server, "arith").await.unwrap();
    assert_eq!(address.to_string(), "inprocess@arith");
    let x = xclient(
        InprocessDiscovery::new(["arith"]).unwrap(),
        XClientOptions::default().client(ClientOptions::default().in_process(hub.clone())),
    );
    let r = x
        .call_with::<_, Reply>("Mul", &Args { a: 6, b: 7 }, CallOptions::new())
        .await
        .unwrap();
    assert_eq!(r.reply.c, 42);
    assert_eq!(r.metadata.get("__ServerAddress"), Some("inprocess@arith"));
    // Another hub does not see it.
    let other = xclient(
        InprocessDiscovery::new(["arith"]).unwrap(),
        XClientOptions::default().client(ClientOptions::default().in_process(InProcess::new())),
    );
    let e = other.call::<_, u32>("Who", &()).await.unwrap_err();
    assert!(e.to_string().contains("no server listens"), "{e}");
    other.close();
    x.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
    assert!(hub.names().is_empty());

    // The process-wide hub, rpcx style: Server::start("inprocess@name").
    let (server, _) = arith_server(6, false, "");
    server.start("inprocess@xclient-test-global").await.unwrap();
    let x = xclient(
        Peer2PeerDiscovery::new("inprocess@xclient-test-global", "").unwrap(),
        XClientOptions::default(),
    );
    assert_eq!(x.call::<_, u32>("Who", &()).await.unwrap(), 6);
    x.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// Counts connection events and calls.
#[derive(Clone, Default)]
struct Events {
    created: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    pre: Arc<AtomicUsize>,
    post: Arc<AtomicUsize>,
}

impl ClientPlugin for Events {
    fn on_conn_created(&self, _: &str) {
        self.created.fetch_add(1, Ordering::Relaxed);
    }
    fn on_conn_close(&self, _: &str) {
        self.closed.fetch_add(1, Ordering::Relaxed);
    }
    fn pre_call(&self, call: &mut CallInfo<'_>) -> sextant::Result<()> {
        assert_eq!(call.metadata.get("__AUTH"), Some("secret"));
        self.pre.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn post_call(&self, _: &CallInfo<'_>, _: Option<&Error>, _: Duration) {
        self.post.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_dialled_once_redialled_and_closed() {
    let s = start(0).await;
    let events = Events::default();
    let x = XClient::builder("Arith")
        .plugin(events.clone())
        .auth("secret")
        .discovery(Peer2PeerDiscovery::new(&s.address, "").unwrap())
        .build()
        .unwrap();
    // 64 concurrent first calls: one dial.
    let calls: Vec<_> = (0..64)
        .map(|_| {
            let x = x.clone();
            tokio::spawn(async move { x.call::<_, u32>("Who", &()).await.unwrap() })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), 0);
    }
    assert_eq!(events.created.load(Ordering::Relaxed), 1);
    assert_eq!(s.server.stats().total_connections, 1);
    assert_eq!(events.pre.load(Ordering::Relaxed), 64);
    assert_eq!(events.post.load(Ordering::Relaxed), 64);
    assert_eq!(x.connected_servers(), vec![s.address.clone()]);

    // The server restarts on the same port: the broken connection is dropped and redialled.
    s.stop().await;
    let s2 = start_with(1, false, &s.address).await;
    assert_eq!(x.call::<_, u32>("Who", &()).await.unwrap(), 1);
    assert_eq!(events.created.load(Ordering::Relaxed), 2);
    assert!(events.closed.load(Ordering::Relaxed) >= 1);

    // close() closes it and fails later calls.
    x.close();
    assert!(x.connected_servers().is_empty());
    eventually(
        Duration::from_secs(5),
        "the server to see the close",
        || s2.server.stats().connections == 0,
    )
    .await;
    assert!(matches!(
        x.call::<_, u32>("Who", &()).await.unwrap_err(),
        Error::Closed
    ));
    s2.stop().await;
}

#[tokio::test]
async fn failed_dials_back_off() {
    let dead = dead_address();
    #[derive(Clone, Default)]
    struct Dials(Arc<AtomicUsize>);
    impl ClientPlugin for Dials {
        fn on_conn_create_failed(&self, _: &str, _: &Error) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let dials = Dials::default();
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .plugin(dials.clone())
        .options(
            XClientOptions::default()
                .reconnect_backoff(Duration::from_secs(30), Duration::from_secs(60)),
        )
        .discovery(Peer2PeerDiscovery::new(&dead, "").unwrap())
        .build()
        .unwrap();
    for _ in 0..20 {
        let e = x.call::<_, u32>("Who", &()).await.unwrap_err();
        assert!(matches!(e, Error::Connect { .. }), "{e}");
    }
    // One dial; the other 19 calls got its error at once during the backoff.
    assert_eq!(dials.0.load(Ordering::Relaxed), 1);
    x.close();
}

#[tokio::test]
async fn go_oneway_and_metadata() {
    let server = Server::builder()
        .auth_fn(|_m, token| {
            let ok = token == "secret";
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("bad token".to_string())
                }
            }
        })
        .build();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    server
        .register_fn("Arith", "Echo", |cx: sextant::Context, _: ()| async move {
            let v = cx.metadata().get("trace").unwrap_or("none").to_string();
            cx.set_response_metadata("echo", v);
            Ok::<_, sextant::ServiceError>(1u32)
        })
        .unwrap();
    server
        .register_fn("Arith", "Hit", move |_cx: sextant::Context, _: ()| {
            h.fetch_add(1, Ordering::Relaxed);
            async move { Ok::<_, sextant::ServiceError>(()) }
        })
        .unwrap();
    let address = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let x = xclient(
        Peer2PeerDiscovery::new(&address, "").unwrap(),
        XClientOptions::default(),
    );
    // No token: refused by the server (a service error, not retried).
    let e = x.call::<_, u32>("Echo", &()).await.unwrap_err();
    assert!(e.to_string().contains("bad token"), "{e}");
    x.auth("secret");
    let r = x
        .call_with::<_, u32>("Echo", &(), CallOptions::new().metadata("trace", "t-1"))
        .await
        .unwrap();
    assert_eq!(r.metadata.get("echo"), Some("t-1"));
    let pending = x
        .go::<_, u32>("Echo", &(), CallOptions::new().metadata("trace", "t-2"))
        .await
        .unwrap();
    assert_eq!(pending.server(), Some(address.as_str()));
    let r = pending.await.unwrap();
    assert_eq!(r.metadata.get("echo"), Some("t-2"));
    for _ in 0..5 {
        x.oneway("Hit", &(), CallOptions::new()).await.unwrap();
    }
    eventually(Duration::from_secs(5), "5 oneway calls", || {
        hits.load(Ordering::Relaxed) == 5
    })
    .await;
    x.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}
