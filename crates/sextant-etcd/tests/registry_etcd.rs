//! The etcd registry against a real etcd started by the test (see sextant-registry-testkit):
//! the scenarios every engine must pass, plus etcd's own cases (leases, revisions).

use std::time::Duration;

use etcd_client::PutOptions;
use sextant::ServiceDiscovery;
use sextant_etcd::{EtcdDiscovery, EtcdOptions, EtcdStore};
use sextant_registry::{DiscoveryOptions, RegistryStore};
use sextant_registry_testkit::scenarios::{self, Harness, BOUND};
use sextant_registry_testkit::{free_port, init_logging, wait_until, Engine, EtcdServer};

/// The test's own calls to etcd (not sextant's), retried: on a loaded 2-core CI machine etcd's
/// gRPC connection was once seen reset in the middle of a test, which is not what these tests
/// are about. At most 5 tries, 200 ms apart; the last error fails the test.
macro_rules! etcd {
    ($op:expr) => {{
        let mut tries = 0;
        loop {
            match $op.await {
                Ok(v) => break v,
                Err(e) if tries < 4 => {
                    tries += 1;
                    eprintln!("etcd call failed ({e}); trying again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("etcd call failed 5 times: {e}"),
            }
        }
    }};
}

struct Etcd {
    engine: Engine,
}

impl Etcd {
    fn endpoint(&self) -> String {
        format!("http://{}", self.engine.address())
    }
}

impl Harness for Etcd {
    type Store = EtcdStore;

    async fn start_on(port: Option<u16>) -> Option<Self> {
        let engine = match port {
            Some(p) => EtcdServer::start_on(p).await?,
            None => EtcdServer::start().await?,
        };
        Some(Etcd { engine })
    }

    fn store(&self) -> EtcdStore {
        EtcdStore::new([self.endpoint()], EtcdOptions::default()).unwrap()
    }

    fn address(&self) -> String {
        self.engine.address()
    }

    fn store_via(&self, port: u16) -> EtcdStore {
        EtcdStore::new([format!("http://127.0.0.1:{port}")], EtcdOptions::default()).unwrap()
    }

    fn unreachable_store() -> EtcdStore {
        EtcdStore::new(
            [format!("http://127.0.0.1:{}", free_port())],
            EtcdOptions::default().connect_timeout(Duration::from_secs(1)),
        )
        .unwrap()
    }

    async fn raw_put(&self, key: &str, value: &[u8]) {
        let mut c = etcd!(self.store().client());
        etcd!(c.put(key, value, None));
    }

    async fn edit_value(&self, key: &str, value: &str) {
        // As `etcdctl put --ignore-lease`: the key stays on the server's lease.
        let mut c = etcd!(self.store().client());
        etcd!(c.put(key, value, Some(PutOptions::new().with_ignore_lease())));
    }

    fn stop(&mut self) {
        self.engine.stop();
    }

    async fn restart(&mut self) {
        self.engine.start_again().await;
    }
}

async fn harness() -> Option<Etcd> {
    init_logging();
    Etcd::start_on(None).await
}

// The scenarios every backend runs (sextant_registry_testkit::scenarios).
sextant_registry_testkit::scenario_tests!(mod etcd_scenarios, Etcd, harness, optional);

/// The layout a Go rpcx program reads: the entry is at the exact rpcx key, attached to a lease
/// with the TTL; rpcx's directory markers (`/rpcx_test/Arith` = `Arith`) and other services' keys
/// are not taken for servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_layout_matches_rpcx() {
    let Some(h) = harness().await else { return };
    let mut c = etcd!(h.store().client());
    // What rpcx's Go plugin writes besides the server entries.
    etcd!(c.put("/rpcx_test", "rpcx_path", None));
    etcd!(c.put("/rpcx_test/Arith", "Arith", None));
    etcd!(c.put("/rpcx_test/ArithX/tcp@127.0.0.1:9", "", None));
    let server = scenarios::start_server(h.store(), h.plugin_options(), "weight=10").await;
    let key = format!("/rpcx_test/Arith/{}", server.address());
    let d = EtcdDiscovery::start(h.store(), "/rpcx_test", "Arith", h.discovery_options())
        .await
        .unwrap();
    wait_until("listed", BOUND, || async { d.get_services().len() == 1 }).await;
    assert_eq!(d.get_services()[0].key, server.address().to_string());
    let r = etcd!(c.get(key.as_str(), None));
    let kv = &r.kvs()[0];
    assert_eq!(kv.value(), b"weight=10");
    let lease = kv.lease();
    assert_ne!(lease, 0, "the entry is on a lease");
    let ttl = etcd!(c.lease_time_to_live(lease, None));
    assert!(
        ttl.granted_ttl() >= 2 && ttl.granted_ttl() <= 3,
        "TTL is twice the 1 s update interval: {}",
        ttl.granted_ttl()
    );
    server.shutdown().await;
    // Shutdown revoked the lease.
    let ttl = etcd!(c.lease_time_to_live(lease, None));
    assert!(ttl.ttl() <= 0, "lease revoked: {}", ttl.ttl());
}

/// A lease revoked behind the server's back (its keys go with it) is replaced, and the entry
/// re-created, at the next refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_revoked_lease_is_replaced() {
    let Some(h) = harness().await else { return };
    let mut c = etcd!(h.store().client());
    let server = scenarios::start_server(h.store(), h.plugin_options(), "").await;
    let key = format!("/rpcx_test/Arith/{}", server.address());
    let d = EtcdDiscovery::start(h.store(), "/rpcx_test", "Arith", h.discovery_options())
        .await
        .unwrap();
    wait_until("listed", BOUND, || async { d.get_services().len() == 1 }).await;
    let lease = etcd!(c.get(key.as_str(), None)).kvs()[0].lease();
    etcd!(c.lease_revoke(lease));
    wait_until("the entry is re-created on a new lease", BOUND, || {
        let mut c = c.clone();
        let key = key.clone();
        async move {
            let r = etcd!(c.get(key.as_str(), None));
            r.kvs()
                .first()
                .is_some_and(|kv| kv.lease() != 0 && kv.lease() != lease)
        }
    })
    .await;
    wait_until("listed again", BOUND, || async {
        d.get_services().len() == 1
    })
    .await;
    server.shutdown().await;
}

/// A watch whose start revision was compacted away is restarted from a new listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_compaction_does_not_lose_changes() {
    let Some(mut h) = harness().await else { return };
    let store = h.store();
    let d = EtcdDiscovery::start(
        store.clone(),
        "/rpcx_test",
        "Arith",
        DiscoveryOptions::default().backoff(Duration::from_millis(50), Duration::from_millis(500)),
    )
    .await
    .unwrap();
    // While etcd is down, history moves on elsewhere and is compacted.
    h.stop();
    h.restart().await;
    let mut c = etcd!(store.client());
    let mut last = 0;
    for i in 0..20 {
        last = etcd!(c.put(format!("/other/{i}"), "x", None))
            .header()
            .unwrap()
            .revision();
    }
    etcd!(c.compact(last, None));
    RegistryStore::put(
        &store,
        "/rpcx_test/Arith/tcp@127.0.0.1:5",
        "",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    wait_until("the new entry is seen", BOUND, || async {
        d.get_services().len() == 1
    })
    .await;
}
