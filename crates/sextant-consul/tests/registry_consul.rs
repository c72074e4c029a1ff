//! The Consul registry in both layouts against an in-process Consul agent (`fake_consul`, which
//! implements the endpoints the backend uses as Consul's API documentation specifies them: no
//! Consul package exists in the registries this project's machines reach).

mod fake_consul;

use std::time::Duration;

use bytes::Bytes;
use fake_consul::FakeConsul;
use hyper::Method;
use serde_json::json;
use sextant::ServiceDiscovery;
use sextant_consul::{ConsulDiscovery, ConsulMode, ConsulOptions, ConsulStore};
use sextant_registry::http::{escape_path, HttpClient};
use sextant_registry::{RegistryOptions, RegistryStore};
use sextant_registry_testkit::scenarios::{self, Harness, BOUND};
use sextant_registry_testkit::{free_port, init_logging, wait_until};

/// Consul in one of the two layouts (`AGENT`: agent services; otherwise rpcx's KV layout).
struct Consul<const AGENT: bool> {
    agent: FakeConsul,
}

impl<const AGENT: bool> Consul<AGENT> {
    fn options() -> ConsulOptions {
        let mode = if AGENT {
            ConsulMode::AgentService
        } else {
            ConsulMode::Kv
        };
        ConsulOptions::default()
            .mode(mode)
            .wait(Duration::from_secs(5))
    }

    fn http(&self) -> HttpClient {
        HttpClient::new("consul", &self.agent.url()).unwrap()
    }

    async fn put_raw(&self, method: Method, path: &str, body: Vec<u8>) {
        let r = self
            .http()
            .request(
                method,
                path,
                Some(Bytes::from(body)),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert!(r.status.is_success(), "{path}: {} {}", r.status, r.text());
    }

    /// Registers an agent service for `key` by hand, as an operator would.
    async fn register_by_hand(&self, key: &str, metadata: &str, ttl: &str) {
        let id = key.trim_start_matches('/');
        let (dir, child) = key.rsplit_once('/').unwrap();
        let (base, service) = dir.rsplit_once('/').unwrap();
        let body = json!({
            "ID": id,
            "Name": service,
            "Tags": [base],
            "Address": "127.0.0.1",
            "Port": 1,
            "Meta": { "rpcx_address": child, "rpcx_metadata": metadata, "rpcx_base_path": base },
            "Check": { "TTL": ttl, "Status": "passing", "DeregisterCriticalServiceAfter": "1m" },
        });
        self.put_raw(
            Method::PUT,
            "/v1/agent/service/register",
            body.to_string().into_bytes(),
        )
        .await;
    }
}

impl<const AGENT: bool> Harness for Consul<AGENT> {
    type Store = ConsulStore;

    /// An agent service whose check went critical stays registered until Consul deregisters it
    /// (`DeregisterCriticalServiceAfter`, at least a minute); the health API drops it at once.
    const EXPIRY_REMOVES_ENTRY: bool = !AGENT;
    const EDITS_IN_PLACE: bool = !AGENT;

    async fn start_on(port: Option<u16>) -> Option<Self> {
        Some(Consul {
            agent: FakeConsul::start(port.unwrap_or(0)).await,
        })
    }

    fn store(&self) -> ConsulStore {
        ConsulStore::new(&self.agent.url(), Self::options()).unwrap()
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.agent.port())
    }

    fn store_via(&self, port: u16) -> ConsulStore {
        ConsulStore::new(&format!("http://127.0.0.1:{port}"), Self::options()).unwrap()
    }

    fn unreachable_store() -> ConsulStore {
        ConsulStore::new(&format!("127.0.0.1:{}", free_port()), Self::options()).unwrap()
    }

    async fn raw_put(&self, key: &str, value: &[u8]) {
        if AGENT {
            // Meta values are strings: bytes that are not UTF-8 arrive as U+FFFD.
            let v = String::from_utf8_lossy(value).into_owned();
            self.register_by_hand(key, &v, "600s").await;
        } else {
            let path = format!("/v1/kv/{}", escape_path(key.trim_start_matches('/')));
            self.put_raw(Method::PUT, &path, value.to_vec()).await;
        }
    }

    async fn edit_value(&self, key: &str, value: &str) {
        if AGENT {
            self.register_by_hand(key, value, "2s").await;
        } else {
            // A plain PUT keeps the lock of the server's session.
            let path = format!("/v1/kv/{}", escape_path(key.trim_start_matches('/')));
            self.put_raw(Method::PUT, &path, value.as_bytes().to_vec())
                .await;
        }
    }

    fn stop(&mut self) {
        self.agent.stop();
    }

    async fn restart(&mut self) {
        self.agent.restart().await;
    }

    fn plugin_options(&self) -> RegistryOptions {
        let o = RegistryOptions::default()
            .update_interval(Duration::from_secs(1))
            .request_timeout(Duration::from_secs(2))
            .shutdown_timeout(Duration::from_secs(5));
        if AGENT {
            o // TTL 2 s: the check goes critical 2 s after the last pass
        } else {
            // Sessions live at least 10 s (Consul's minimum): TTL 20 s -> session TTL 10 s.
            o.ttl(Duration::from_secs(20))
        }
    }
}

type Kv = Consul<false>;
type Agent = Consul<true>;

async fn kv() -> Kv {
    init_logging();
    Kv::start_on(None).await.unwrap()
}

async fn agent() -> Agent {
    init_logging();
    Agent::start_on(None).await.unwrap()
}

// rpcx's KV layout.

// The scenarios every backend runs (sextant_registry_testkit::scenarios).
sextant_registry_testkit::scenario_tests!(mod consul_kv_scenarios, Kv, kv);
sextant_registry_testkit::scenario_tests!(mod consul_agent_scenarios, Agent, agent);

/// What a Go rpcx program reads: the key without its leading slash, the raw metadata as value,
/// held by a `delete` session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_kv_layout_matches_rpcx() {
    let h = kv().await;
    let server = scenarios::start_server(h.store(), h.plugin_options(), "weight=10").await;
    let key = format!("rpcx_test/Arith/{}", server.address());
    let d = ConsulDiscovery::start(h.store(), "/rpcx_test", "Arith", h.discovery_options())
        .await
        .unwrap();
    wait_until("listed", BOUND, || async { d.get_services().len() == 1 }).await;
    assert_eq!(h.agent.kv_keys(), vec![key.clone()]);
    let r = h
        .http()
        .request(
            Method::GET,
            &format!("/v1/kv/{}", escape_path(&key)),
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let entries: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(
        entries[0]["Session"].is_string(),
        "held by a session: {entries}"
    );
    // A Go rpcx server's entry next to it is read.
    h.put_raw(
        Method::PUT,
        "/v1/kv/rpcx_test/Arith/tcp@127.0.0.1:8972",
        b"group=go".to_vec(),
    )
    .await;
    wait_until("the Go entry is listed", BOUND, || async {
        d.get_services()
            .iter()
            .any(|p| p.key == "tcp@127.0.0.1:8972" && p.value == "group=go")
    })
    .await;
    server.shutdown().await;
    assert_eq!(
        h.agent.kv_keys(),
        vec!["rpcx_test/Arith/tcp@127.0.0.1:8972".to_string()]
    );
}

/// A session invalidated behind the server's back (its keys deleted) is replaced and the entry
/// written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_kv_lost_session_is_replaced() {
    let h = kv().await;
    let server = scenarios::start_server(h.store(), h.plugin_options(), "").await;
    let key = format!("rpcx_test/Arith/{}", server.address());
    wait_until("published", BOUND, || async {
        h.agent.kv_keys() == vec![key.clone()]
    })
    .await;
    let r = h
        .http()
        .request(
            Method::GET,
            &format!("/v1/kv/{}", escape_path(&key)),
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let entries: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let session = entries[0]["Session"].as_str().unwrap().to_string();
    h.put_raw(
        Method::PUT,
        &format!("/v1/session/destroy/{session}"),
        Vec::new(),
    )
    .await;
    assert!(
        h.agent.kv_keys().is_empty(),
        "a delete session takes its keys"
    );
    wait_until("re-created under a new session", BOUND, || async {
        h.agent.kv_keys() == vec![key.clone()]
    })
    .await;
    server.shutdown().await;
}

// Agent services with TTL checks.

/// The registration Consul holds: the rpcx key as ID, the service path as name, the base path as
/// tag, the address split into Address/Port, rpcx's fields in Meta, a TTL check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_agent_registration_shape() {
    let h = agent().await;
    let server = scenarios::start_server(h.store(), h.plugin_options(), "weight=10").await;
    let address = server.address().to_string();
    let id = format!("rpcx_test/Arith/{address}");
    let store = h.store();
    wait_until("registered", BOUND, || async {
        RegistryStore::get(&store, &format!("/{id}"))
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let r = h
        .http()
        .request(
            Method::GET,
            &format!("/v1/agent/service/{}", escape_path(&id)),
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(s["ID"], id.as_str());
    assert_eq!(s["Service"], "Arith");
    assert_eq!(s["Tags"], json!(["/rpcx_test"]));
    assert_eq!(s["Address"], "127.0.0.1");
    assert_eq!(
        s["Port"].as_u64().unwrap().to_string(),
        address.rsplit_once(':').unwrap().1
    );
    assert_eq!(s["Meta"]["rpcx_address"], address.as_str());
    assert!(s["Meta"]["rpcx_metadata"]
        .as_str()
        .unwrap()
        .contains("weight=10"));
    server.shutdown().await;
}

/// Metadata longer than Consul's 512-byte Meta limit is refused with an error that says so.
#[tokio::test]
async fn consul_agent_metadata_too_long_is_a_clear_error() {
    let h = agent().await;
    let long = format!("x={}", "a".repeat(600));
    let e = RegistryStore::put(
        &h.store(),
        "/rpcx_test/Arith/tcp@127.0.0.1:9",
        &long,
        Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("512"), "{e}");
}
