//! Counts heap allocations per round trip (client and server in this process, steady state), as
//! crates/sextant/tests/alloc_per_call.rs does, for three servers: no plugin, a no-op plugin,
//! and MetricsPlugin. Any plugin moves the server onto its plugin path, which has costs of its
//! own; the assertion is that MetricsPlugin adds nothing over the no-op plugin. Prints the three
//! figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sextant::{Client, ClientOptions, Context, Server, ServerPlugin, ServiceError};
use sextant_interop::{Args, Reply};
use sextant_plugins::metrics::MetricsPlugin;

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

/// A plugin with every hook left at its no-op default.
struct Noop;

impl ServerPlugin for Noop {}

const WARM_UP: u64 = 2_000;
const N: u64 = 20_000;

/// Allocations per `Arith.Mul` round trip on `server`, averaged over `N` calls after a warm-up.
async fn per_call(server: Server) -> f64 {
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
    for _ in 0..WARM_UP {
        let _: Reply = client.call("Arith", "Mul", &args).await.unwrap();
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..N {
        let r: Reply = client.call("Arith", "Mul", &args).await.unwrap();
        assert_eq!(r.c, 200);
    }
    let per_call = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / N as f64;
    client.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
    per_call
}

#[test]
fn metrics_plugin_adds_no_allocation_per_call() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let plain = per_call(Server::new()).await;
        let noop = per_call(Server::builder().plugin(Noop).build()).await;
        let metrics = MetricsPlugin::new();
        let with_metrics = per_call(Server::builder().plugin(metrics.clone()).build()).await;
        println!("allocations per Arith.Mul round trip (client + server):");
        println!("  no plugin:      {plain:.3}");
        println!("  no-op plugin:   {noop:.3}");
        println!("  MetricsPlugin:  {with_metrics:.3}");

        // The calls were counted, so the plugin did its work on this path.
        let mul = metrics
            .snapshot()
            .into_iter()
            .find(|m| m.service == "Arith" && m.method == "Mul")
            .unwrap();
        assert_eq!(mul.calls, WARM_UP + N);
        assert_eq!(mul.in_flight, 0);
        assert!(
            with_metrics - noop < 0.05,
            "MetricsPlugin adds {:.3} allocations per call over a no-op plugin",
            with_metrics - noop
        );
    });
}
