//! The ZooKeeper registry against a real ZooKeeper started by the test (see
//! sextant-registry-testkit): the scenarios every engine must pass, plus ZooKeeper's own cases
//! (ephemeral nodes, rpcx's parent nodes, sessions).

use std::time::Duration;

use sextant::ServiceDiscovery;
use sextant_registry::RegistryStore;
use sextant_registry_testkit::scenarios::{self, Harness, BOUND};
use sextant_registry_testkit::{free_port, init_logging, wait_until, Engine, ZooKeeperServer};
use sextant_zookeeper::{ZooKeeperDiscovery, ZooKeeperOptions, ZooKeeperStore};
use zookeeper_client::{Acls, CreateMode};

struct ZooKeeper {
    engine: Engine,
}

impl ZooKeeper {
    async fn raw(&self) -> zookeeper_client::Client {
        self.store().client().await.unwrap()
    }
}

impl Harness for ZooKeeper {
    type Store = ZooKeeperStore;

    async fn start_on(port: Option<u16>) -> Option<Self> {
        let engine = match port {
            Some(p) => ZooKeeperServer::start_on(p).await?,
            None => ZooKeeperServer::start().await?,
        };
        Some(ZooKeeper { engine })
    }

    fn store(&self) -> ZooKeeperStore {
        ZooKeeperStore::new(&self.engine.address(), ZooKeeperOptions::default()).unwrap()
    }

    fn address(&self) -> String {
        self.engine.address()
    }

    fn store_via(&self, port: u16) -> ZooKeeperStore {
        ZooKeeperStore::new(&format!("127.0.0.1:{port}"), ZooKeeperOptions::default()).unwrap()
    }

    fn unreachable_store() -> ZooKeeperStore {
        ZooKeeperStore::new(
            &format!("127.0.0.1:{}", free_port()),
            ZooKeeperOptions::default().connect_timeout(Duration::from_secs(1)),
        )
        .unwrap()
    }

    async fn raw_put(&self, key: &str, value: &[u8]) {
        let c = self.raw().await;
        let parent = &key[..key.rfind('/').unwrap()];
        let mut path = String::new();
        for part in parent.trim_start_matches('/').split('/') {
            path = format!("{path}/{part}");
            let _ = c
                .create(
                    &path,
                    b"",
                    &CreateMode::Persistent.with_acls(Acls::anyone_all()),
                )
                .await;
        }
        c.create(
            key,
            value,
            &CreateMode::Persistent.with_acls(Acls::anyone_all()),
        )
        .await
        .unwrap();
    }

    async fn edit_value(&self, key: &str, value: &str) {
        // `set` on an ephemeral node keeps it ephemeral, owned by the server's session.
        self.raw()
            .await
            .set_data(key, value.as_bytes(), None)
            .await
            .unwrap();
    }

    fn stop(&mut self) {
        self.engine.stop();
    }

    async fn restart(&mut self) {
        self.engine.start_again().await;
    }
}

async fn harness() -> Option<ZooKeeper> {
    init_logging();
    ZooKeeper::start_on(None).await
}

// The scenarios every backend runs (sextant_registry_testkit::scenarios).
sextant_registry_testkit::scenario_tests!(mod zookeeper_scenarios, ZooKeeper, harness, optional);

/// What a Go rpcx program reads: an ephemeral node at the rpcx path under persistent parents
/// holding rpcx's data, with the metadata as data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_layout_matches_rpcx() {
    let Some(h) = harness().await else { return };
    let server = scenarios::start_server(h.store(), h.plugin_options(), "weight=10").await;
    let key = format!("/rpcx_test/Arith/{}", server.address());
    let d = ZooKeeperDiscovery::start(h.store(), "/rpcx_test", "Arith", h.discovery_options())
        .await
        .unwrap();
    wait_until("listed", BOUND, || async { d.get_services().len() == 1 }).await;
    let c = h.raw().await;
    let (data, stat) = c.get_data(&key).await.unwrap();
    assert!(String::from_utf8(data).unwrap().contains("weight=10"));
    assert_ne!(stat.ephemeral_owner, 0, "the server's node is ephemeral");
    let (base, base_stat) = c.get_data("/rpcx_test").await.unwrap();
    assert_eq!(base, b"rpcx_path");
    assert_eq!(base_stat.ephemeral_owner, 0);
    let (svc, _) = c.get_data("/rpcx_test/Arith").await.unwrap();
    assert_eq!(svc, b"Arith");
    server.shutdown().await;
    assert!(c.get_data(&key).await.is_err(), "removed at shutdown");
}

/// A node left by another session at the server's address (a previous run that has not expired
/// yet) is replaced by the server's own, so it does not vanish when that session expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_node_of_an_old_session_is_taken_over() {
    let Some(h) = harness().await else { return };
    let old = ZooKeeperStore::new(
        &h.engine.address(),
        ZooKeeperOptions::default().session_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    // The old session writes the entry the new server will want.
    let server = scenarios::start_server(h.store(), h.plugin_options(), "v=new").await;
    let key = format!("/rpcx_test/Arith/{}", server.address());
    let c = h.raw().await;
    wait_until("the server's node exists", BOUND, || async {
        c.get_data(&key).await.is_ok()
    })
    .await;
    // Replace it behind the server's back with a node of another session.
    RegistryStore::delete(&old, &key).await.unwrap();
    RegistryStore::put(&old, &key, "v=old", Duration::from_secs(30))
        .await
        .unwrap();
    let old_owner = c.get_data(&key).await.unwrap().1.ephemeral_owner;
    wait_until("the server takes its node back", BOUND, || async {
        c.get_data(&key).await.is_ok_and(|(d, s)| {
            // The refresh keeps the value it finds (as it keeps an operator's edits), adds its
            // rate figures, and writes it as a node of its own session.
            s.ephemeral_owner != old_owner && String::from_utf8_lossy(&d).contains("v=old")
        })
    })
    .await;
    // Closing the old session no longer removes the server's entry.
    RegistryStore::close(&old).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(c.get_data(&key).await.is_ok());
    server.shutdown().await;
}
