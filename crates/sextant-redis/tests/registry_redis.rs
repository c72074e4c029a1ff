//! The Redis registry against a real redis-server started by the test (see
//! sextant-registry-testkit): the scenarios every engine must pass, plus Redis's own cases (the
//! libkv value format, keyspace notifications or polling).

use std::time::Duration;

use sextant::ServiceDiscovery;
use sextant_redis::{libkv, RedisDiscovery, RedisOptions, RedisStore};
use sextant_registry::{DiscoveryOptions, RegistryStore};
use sextant_registry_testkit::scenarios::{self, Harness, BOUND};
use sextant_registry_testkit::{free_port, init_logging, wait_until, Engine, RedisServer};

struct Redis {
    engine: Engine,
    options: RedisOptions,
}

impl Redis {
    fn url(&self) -> String {
        format!("redis://{}", self.engine.address())
    }

    async fn raw(&self) -> redis::aio::ConnectionManager {
        self.store().connection().await.unwrap()
    }
}

impl Harness for Redis {
    type Store = RedisStore;

    /// Redis as a distribution ships it: keyspace notifications off (the store turns them on).
    async fn start_on(port: Option<u16>) -> Option<Self> {
        let engine = match port {
            Some(p) => RedisServer::start_on(p, "").await?,
            None => RedisServer::start("").await?,
        };
        Some(Redis {
            engine,
            options: RedisOptions::default(),
        })
    }

    fn store(&self) -> RedisStore {
        RedisStore::new(&self.url(), self.options.clone()).unwrap()
    }

    fn address(&self) -> String {
        self.engine.address()
    }

    fn store_via(&self, port: u16) -> RedisStore {
        RedisStore::new(&format!("redis://127.0.0.1:{port}"), self.options.clone()).unwrap()
    }

    fn unreachable_store() -> RedisStore {
        RedisStore::new(
            &format!("redis://127.0.0.1:{}", free_port()),
            RedisOptions::default().connect_timeout(Duration::from_secs(1)),
        )
        .unwrap()
    }

    async fn raw_put(&self, key: &str, value: &[u8]) {
        let mut c = self.raw().await;
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query_async::<()>(&mut c)
            .await
            .unwrap();
    }

    async fn edit_value(&self, key: &str, value: &str) {
        // An operator's edit in rpcx's format, keeping the key's TTL.
        let mut c = self.raw().await;
        redis::cmd("SET")
            .arg(key)
            .arg(libkv::encode(key, value))
            .arg("KEEPTTL")
            .query_async::<()>(&mut c)
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

async fn harness() -> Option<Redis> {
    init_logging();
    Redis::start_on(None).await
}

// The scenarios every backend runs (sextant_registry_testkit::scenarios).
sextant_registry_testkit::scenario_tests!(mod redis_scenarios, Redis, harness, optional);

/// What a Go rpcx program reads: libkv's JSON at the normalized key, with a PX TTL; and the
/// store turned keyspace notifications on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_layout_matches_rpcx() {
    let Some(h) = harness().await else { return };
    let server = scenarios::start_server(h.store(), h.plugin_options(), "weight=10").await;
    let key = format!("/rpcx_test/Arith/{}", server.address());
    let d = RedisDiscovery::start(h.store(), "/rpcx_test", "Arith", h.discovery_options())
        .await
        .unwrap();
    wait_until("listed", BOUND, || async { d.get_services().len() == 1 }).await;
    let mut c = h.raw().await;
    let raw: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(json["Key"], key.as_str());
    // base64("weight=10"), unless a refresh already added the rates.
    assert!(libkv::decode(raw.as_bytes()).unwrap().contains("weight=10"));
    assert!(json["LastIndex"].is_u64());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        pttl > 0 && pttl <= 2000,
        "TTL is twice the 1 s update interval: {pttl} ms"
    );
    let flags: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(&mut c)
        .await
        .unwrap();
    for f in ['K', '$', 'g', 'x'] {
        assert!(flags[1].contains(f), "{flags:?}");
    }
    // A value written by Go rpcx for another server is read.
    let go_key = "/rpcx_test/Arith/tcp@127.0.0.1:8972";
    let go_value = format!(
        r#"{{"Key":"{go_key}","Value":"{}","LastIndex":12345}}"#,
        "Z3JvdXA9Z28=" // base64("group=go")
    );
    redis::cmd("SET")
        .arg(go_key)
        .arg(go_value)
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    wait_until("the Go entry is listed", BOUND, || async {
        d.get_services()
            .iter()
            .any(|p| p.key == "tcp@127.0.0.1:8972" && p.value == "group=go")
    })
    .await;
    server.shutdown().await;
}

/// With keyspace notifications off and not allowed to be turned on, discoveries poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_polls_without_keyspace_notifications() {
    init_logging();
    let Some(mut h) = Redis::start_on(None).await else {
        return;
    };
    h.options = RedisOptions::default()
        .enable_keyspace_events(false)
        .poll_interval(Duration::from_millis(200));
    let store = h.store();
    let d = RedisDiscovery::start(
        store.clone(),
        "/rpcx_test",
        "Arith",
        DiscoveryOptions::default(),
    )
    .await
    .unwrap();
    RegistryStore::put(
        &store,
        "/rpcx_test/Arith/tcp@127.0.0.1:7",
        "",
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    wait_until("polling sees the entry", BOUND, || async {
        d.get_services().len() == 1
    })
    .await;
    wait_until("polling sees it expire", BOUND, || async {
        d.get_services().is_empty()
    })
    .await;
    let mut c = h.raw().await;
    let flags: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(flags[1], "", "the server's configuration was left alone");
}
