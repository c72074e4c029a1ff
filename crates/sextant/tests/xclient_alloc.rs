//! Heap allocations an XClient call adds to a plain Client call (selection, fail mode,
//! breaker, connection lookup): a guard against allocations creeping into the hot path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::breaker::ConsecutiveBreaker;
use sextant::discovery::MultipleServersDiscovery;
use sextant::selector::SelectMode;
use sextant::xclient::{FailMode, XClient, XClientOptions};
use sextant::{Client, ClientOptions, Context, KVPair, Server, ServiceError};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Serialize, Deserialize, Default)]
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

const N: u64 = 4000;

async fn per_call<F, Fut>(mut call: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    for _ in 0..500 {
        call().await;
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..N {
        assert_eq!(call().await, 200);
    }
    (ALLOCS.load(Ordering::Relaxed) - before) as f64 / N as f64
}

#[test]
fn xclient_adds_no_allocation_per_call() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut servers = Vec::new();
        let mut pairs = Vec::new();
        for _ in 0..3 {
            let s = Server::new();
            s.register_fn("Arith", "Mul", |_cx: Context, a: Args| async move {
                Ok::<_, ServiceError>(Reply { c: a.a * a.b })
            })
            .unwrap();
            pairs.push(KVPair::new(
                s.start("tcp@127.0.0.1:0").await.unwrap().to_string(),
                "weight=2",
            ));
            servers.push(s);
        }
        let args = Args { a: 10, b: 20 };

        let client = Client::connect(pairs[0].key.as_str(), ClientOptions::default())
            .await
            .unwrap();
        let plain = per_call(|| async {
            client
                .call::<_, Reply>("Arith", "Mul", &args)
                .await
                .unwrap()
                .c
        })
        .await;
        client.close();

        for (fail, select) in [
            (FailMode::Failover, SelectMode::RoundRobin),
            (FailMode::Failfast, SelectMode::Random),
            (FailMode::Failtry, SelectMode::WeightedRoundRobin),
        ] {
            let x = XClient::builder("Arith")
                .fail_mode(fail)
                .select_mode(select)
                .options(
                    XClientOptions::default()
                        .breaker(|| ConsecutiveBreaker::new(5, Duration::from_secs(10))),
                )
                .discovery(MultipleServersDiscovery::new(pairs.clone()).unwrap())
                .build()
                .unwrap();
            let xc = per_call(|| async { x.call::<_, Reply>("Mul", &args).await.unwrap().c }).await;
            println!("allocations per call: Client {plain:.2}, XClient {fail}/{select} {xc:.2}");
            // The XClient's own work (select, breaker, connection lookup, fail mode) allocates
            // nothing; allow a little noise from the runtime.
            assert!(xc <= plain + 0.5, "{xc:.2} vs {plain:.2}");
            x.close();
        }
        for s in servers {
            s.shutdown(Duration::from_secs(1)).await.unwrap();
        }
    });
}
