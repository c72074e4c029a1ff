//! End-to-end: a sextant client calls a sextant server running in a separate process on loopback.
//!
//! The bench binary re-executes itself as the server (env `SEXTANT_E2E_SERVER=1`), so both ends
//! are real processes talking over TCP. Groups:
//! - `e2e/mul_msgpack/1`: one call at a time (latency).
//! - `e2e/mul_msgpack/100`, `e2e/hello_protobuf/100`: 100 calls in flight on one connection per
//!   iteration (throughput: criterion reports calls per second).
//!
//! Run: `cargo bench -p sextant --bench e2e`

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use serde::{Deserialize, Serialize};
use sextant::{
    CallOptions, Client, ClientOptions, Context, Proto, SerializeType, Server, ServiceError,
};

#[derive(Serialize, Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "PascalCase")]
struct Args {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    c: i64,
}

/// A protobuf message of rpcx-benchmark's size class (a few hundred bytes).
#[derive(Clone, PartialEq, prost::Message)]
struct Blob {
    #[prost(string, tag = "1")]
    field1: String,
    #[prost(int32, tag = "2")]
    field2: i32,
    #[prost(bytes = "vec", tag = "3")]
    body: Vec<u8>,
}

fn run_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = Server::new();
        server
            .register_fn("Arith", "Mul", |_cx: Context, a: Args| async move {
                Ok::<_, ServiceError>(Reply { c: a.a * a.b })
            })
            .unwrap();
        server
            .register_fn("Hello", "Say", |_cx: Context, m: Proto<Blob>| async move {
                let mut m = m.0;
                m.field1 = "OK".into();
                m.field2 = 100;
                Ok::<_, ServiceError>(Proto(m))
            })
            .unwrap();
        let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
        println!("{addr}");
        // Serve until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            let _ = std::io::stdin().read_line(&mut s);
        })
        .await
        .ok();
        let _ = server.shutdown(Duration::from_secs(1)).await;
    });
}

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_server() -> (ServerProcess, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("SEXTANT_E2E_SERVER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot start the server process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (ServerProcess(child), line.trim().to_string())
}

fn bench(c: &mut Criterion) {
    let (_server, addr) = spawn_server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt
        .block_on(Client::connect(addr.as_str(), ClientOptions::default()))
        .unwrap();
    let args = Args { a: 10, b: 20 };

    let mut g = c.benchmark_group("e2e");
    g.throughput(Throughput::Elements(1));
    g.bench_function("mul_msgpack/1", |b| {
        b.to_async(&rt).iter(|| async {
            client
                .call::<_, Reply>("Arith", "Mul", &args)
                .await
                .unwrap()
        })
    });

    const IN_FLIGHT: usize = 100;
    g.throughput(Throughput::Elements(IN_FLIGHT as u64));
    g.bench_function("mul_msgpack/100", |b| {
        b.to_async(&rt).iter(|| async {
            let mut calls = Vec::with_capacity(IN_FLIGHT);
            for _ in 0..IN_FLIGHT {
                calls.push(
                    client
                        .go::<_, Reply>("Arith", "Mul", &args, CallOptions::new())
                        .await
                        .unwrap(),
                );
            }
            for call in calls {
                assert_eq!(call.await.unwrap().reply.c, 200);
            }
        })
    });

    let blob = Proto(Blob {
        field1: "x".repeat(64),
        field2: 1,
        body: vec![7u8; 500],
    });
    g.bench_function("hello_protobuf/100", |b| {
        b.to_async(&rt).iter(|| async {
            let mut calls = Vec::with_capacity(IN_FLIGHT);
            for _ in 0..IN_FLIGHT {
                let opts = CallOptions::new().serialize_type(SerializeType::PROTOBUF);
                calls.push(
                    client
                        .go::<_, Proto<Blob>>("Hello", "Say", &blob, opts)
                        .await
                        .unwrap(),
                );
            }
            for call in calls {
                assert_eq!(call.await.unwrap().reply.0.field2, 100);
            }
        })
    });
    g.finish();
    client.close();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = bench
}

fn main() {
    if std::env::var_os("SEXTANT_E2E_SERVER").is_some() {
        run_server();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
