//! Shared by the xclient_* tests: real sextant servers on 127.0.0.1 that say who they are.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sextant::{Context, Server, ServiceError};

#[derive(Serialize, Deserialize, Default, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    pub a: i64,
    pub b: i64,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Reply {
    pub c: i64,
}

/// A server of service "Arith" with:
/// - `Mul(Args) -> Reply`
/// - `Who(()) -> u32`: the server's id
/// - `Sleep(u64 ms) -> u32`: sleeps, then the id
/// - `Fail(()) -> u32`: a service error when the server was started with `fail = true`
pub struct TestServer {
    pub id: u32,
    pub server: Server,
    pub address: String,
    pub calls: Arc<AtomicU64>,
}

impl TestServer {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub async fn stop(&self) {
        let _ = self.server.shutdown(Duration::from_millis(200)).await;
    }
}

pub fn arith_server(id: u32, fail: bool, metadata: &str) -> (Server, Arc<AtomicU64>) {
    arith_server_lagging(id, fail, metadata, Duration::ZERO)
}

/// Like [`arith_server`], but `Who` answers only after `lag`.
pub fn arith_server_lagging(
    id: u32,
    fail: bool,
    metadata: &str,
    lag: Duration,
) -> (Server, Arc<AtomicU64>) {
    let server = Server::new();
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    server
        .register_fn_with(
            "Arith",
            "Mul",
            move |_cx: Context, a: Args| {
                c.fetch_add(1, Ordering::Relaxed);
                async move { Ok::<_, ServiceError>(Reply { c: a.a * a.b }) }
            },
            sextant::RegisterOptions::default().metadata(metadata),
        )
        .unwrap();
    let c = calls.clone();
    server
        .register_fn("Arith", "Who", move |_cx: Context, _: ()| {
            c.fetch_add(1, Ordering::Relaxed);
            async move {
                if !lag.is_zero() {
                    tokio::time::sleep(lag).await;
                }
                Ok::<_, ServiceError>(id)
            }
        })
        .unwrap();
    let c = calls.clone();
    server
        .register_fn("Arith", "Sleep", move |_cx: Context, ms: u64| {
            c.fetch_add(1, Ordering::Relaxed);
            async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, ServiceError>(id)
            }
        })
        .unwrap();
    let c = calls.clone();
    server
        .register_fn("Arith", "Fail", move |_cx: Context, _: ()| {
            c.fetch_add(1, Ordering::Relaxed);
            async move {
                if fail {
                    Err(ServiceError::new(format!("server {id} refuses")))
                } else {
                    Ok(id)
                }
            }
        })
        .unwrap();
    (server, calls)
}

pub async fn start(id: u32) -> TestServer {
    start_with(id, false, "tcp@127.0.0.1:0").await
}

pub async fn start_with(id: u32, fail: bool, address: &str) -> TestServer {
    let (server, calls) = arith_server(id, fail, "");
    let address = server.start(address).await.unwrap().to_string();
    TestServer {
        id,
        server,
        address,
        calls,
    }
}

/// A server whose `Who` answers after `lag`.
pub async fn start_lagging(id: u32, lag: Duration) -> TestServer {
    let (server, calls) = arith_server_lagging(id, false, "", lag);
    let address = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    TestServer {
        id,
        server,
        address,
        calls,
    }
}

/// A "server" on 127.0.0.1 that accepts connections and reads requests but never answers
/// (a hung process). Abort the handle to stop it.
pub async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = format!("tcp@{}", l.local_addr().unwrap());
    let h = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut s, _)) = l.accept().await {
            conns.spawn(async move {
                let mut sink = tokio::io::sink();
                let _ = tokio::io::copy(&mut s, &mut sink).await;
            });
        }
    });
    (a, h)
}

/// An address on 127.0.0.1 where nothing listens (bound, then released).
pub fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    format!("tcp@{a}")
}

/// Waits (bounded) until `f` is true; panics with `what` after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
