//! The gateway on a real etcd (started by the test on a free 127.0.0.1 port, as every registry
//! test does; skipped with a loud message when etcd is not installed, a failure with
//! `SEXTANT_REQUIRE_SERVICES=1`): two servers publish `Arith` into etcd through
//! `RegistryPlugin`, the gateway discovers them there, and several HTTP callers make 400 calls
//! through it while one server is killed midway: it runs on a runtime of its own, which is torn
//! down at once, as a crash would: calls in flight are cut, nothing is deregistered (its etcd
//! entry lives on until its lease runs out). With Failover, no caller sees a failure.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use sextant::ServiceDiscovery;
use sextant_etcd::{EtcdOptions, EtcdStore};
use sextant_gateway::Gateway;
use sextant_registry::{DiscoveryOptions, RegistryDiscovery, RegistryOptions, RegistryPlugin};
use sextant_registry_testkit::EtcdServer;

const BASE: &str = "/gateway_etcd_test";
const CALLS: usize = 400;
const CALLERS: usize = 8;

fn registry_options() -> RegistryOptions {
    RegistryOptions::default()
        .base_path(BASE)
        .update_interval(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(2))
}

fn store(etcd: &sextant_registry_testkit::Engine) -> EtcdStore {
    EtcdStore::new(
        [format!("http://{}", etcd.address())],
        EtcdOptions::default(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_through_the_gateway_survive_a_server_killed_midway() {
    sextant_registry_testkit::init_logging();
    let Some(etcd) = EtcdServer::start().await else {
        return;
    };
    // Two servers, each publishing Arith into etcd; Mul takes 10 ms so the run is long enough
    // for the kill to land in its middle. The doomed one runs on its own runtime, in a thread.
    let plugin = RegistryPlugin::start(store(&etcd), registry_options())
        .await
        .unwrap();
    let (survivor, survivor_port) =
        arith_server(with_plugin(plugin), Duration::from_millis(10)).await;
    let (port_tx, port_rx) = tokio::sync::oneshot::channel();
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let doomed_store = store(&etcd);
    let doomed_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (server, port) = rt.block_on(async move {
            let plugin = RegistryPlugin::start(doomed_store, registry_options())
                .await
                .unwrap();
            arith_server(with_plugin(plugin), Duration::from_millis(10)).await
        });
        let _ = port_tx.send(port);
        // Bounded: the test sends the kill, or gives up (and the runtime goes with the thread).
        let _ = kill_rx.recv_timeout(Duration::from_secs(120));
        // The crash: every task of this runtime (accept loop, connections, calls in flight, the
        // registry's lease keep-alive) is dropped where it stands.
        rt.shutdown_background();
        drop(server);
    });
    let doomed_port = port_rx.await.expect("the doomed server starts");

    // The gateway's template: a discovery on the same etcd and base path.
    let template = RegistryDiscovery::start(
        store(&etcd),
        BASE,
        "Arith",
        DiscoveryOptions::default().request_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while template.get_services().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both servers should be in etcd: {:?}",
            template.get_services()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gateway = Gateway::builder(template)
        .listen("127.0.0.1:0")
        .start()
        .await
        .unwrap();
    let addr = gateway.local_addr();

    let started = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let per_port: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let after_down: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();

    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (started, done, down) = (started.clone(), done.clone(), down.clone());
        let (per_port, after_down, failures) =
            (per_port.clone(), after_down.clone(), failures.clone());
        callers.push(tokio::spawn(async move {
            let mut conn = H1::connect(addr).await;
            loop {
                let i = started.fetch_add(1, Ordering::SeqCst);
                if i >= CALLS {
                    break;
                }
                let was_down = down.load(Ordering::SeqCst);
                let body = format!(r#"{{"A":{i},"B":2}}"#);
                let req = request("POST", "/", &invoke_headers("Mul"), body.as_bytes());
                let res = match conn.send(req).await {
                    Ok(r) => r,
                    Err(e) => {
                        failures.lock().unwrap().push(format!("call {i}: {e}"));
                        conn = H1::connect(addr).await;
                        done.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                };
                let expected = format!(r#"{{"C":{}}}"#, i * 2);
                if res.status != 200 || res.text() != expected {
                    failures.lock().unwrap().push(format!(
                        "call {i}: {} {:?} {:?}",
                        res.status,
                        res.headers,
                        res.text()
                    ));
                } else {
                    let port = res.meta("port").unwrap_or_default();
                    *per_port.lock().unwrap().entry(port.clone()).or_default() += 1;
                    if was_down {
                        *after_down.lock().unwrap().entry(port).or_default() += 1;
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    // A quarter of the way in, one server is killed; the calls go on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < CALLS / 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "calls do not progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_shutdown = done.load(Ordering::SeqCst);
    kill_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || doomed_thread.join())
        .await
        .unwrap()
        .expect("the doomed server's thread");
    down.store(true, Ordering::SeqCst);
    let at_down = done.load(Ordering::SeqCst);

    for c in callers {
        tokio::time::timeout(Duration::from_secs(120), c)
            .await
            .expect("the callers finish")
            .unwrap();
    }
    let per_port = per_port.lock().unwrap().clone();
    let after_down = after_down.lock().unwrap().clone();
    let failures = failures.lock().unwrap().clone();
    eprintln!(
        "gateway on etcd: {CALLS} calls by {CALLERS} callers; server {doomed_port} killed \
         after {at_shutdown} calls (down after {at_down}); per server: {per_port:?}; after the \
         kill: {after_down:?}; failures: {}",
        failures.len()
    );
    assert!(failures.is_empty(), "failed calls: {failures:#?}");
    assert_eq!(per_port.values().sum::<usize>(), CALLS);
    assert_eq!(per_port.len(), 2, "both servers served calls: {per_port:?}");
    let doomed_calls = per_port[&doomed_port.to_string()];
    let survivor_calls = per_port[&survivor_port.to_string()];
    assert!(
        doomed_calls > 0 && survivor_calls > doomed_calls,
        "{per_port:?}"
    );
    // Once killed, the server served nothing more.
    assert!(
        after_down.keys().all(|p| *p == survivor_port.to_string()),
        "{after_down:?}"
    );
    assert!(
        at_down < CALLS,
        "the shutdown landed after the run: {at_down}"
    );

    gateway.shutdown(Duration::from_secs(5)).await.unwrap();
    survivor.shutdown(Duration::from_secs(5)).await.unwrap();
    // The template discovery goes with the gateway, before etcd does.
    drop(gateway);
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(etcd);
}
