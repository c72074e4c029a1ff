//! Counts heap allocations per call, client and server together in this process, in steady state.
//! A guard against regressions on the hot path; prints the figure.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sextant::{Client, ClientOptions, Context, Server, ServiceError};

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

#[test]
fn allocations_per_round_trip() {
    let rt = tokio::runtime::Builder::new_current_thread()
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
        let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
        let client = Client::connect(&addr, ClientOptions::default())
            .await
            .unwrap();
        let args = Args { a: 10, b: 20 };
        for _ in 0..1000 {
            client
                .call::<_, Reply>("Arith", "Mul", &args)
                .await
                .unwrap();
        }
        const N: u64 = 5000;
        let before = ALLOCS.load(Ordering::Relaxed);
        for _ in 0..N {
            let r: Reply = client.call("Arith", "Mul", &args).await.unwrap();
            assert_eq!(r.c, 200);
        }
        let per_call = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / N as f64;
        println!("allocations per Arith.Mul round trip (client + server): {per_call:.2}");
        // Client: request frame, pending-call slot. Server: context, handler future, task,
        // response frame. A regression past this bound means a new per-call allocation.
        assert!(per_call <= 8.0, "{per_call:.2} allocations per call");
        client.close();
        server
            .shutdown(std::time::Duration::from_secs(1))
            .await
            .unwrap();
    });
}
