//! The embedded registry end to end: its HTTP server, the registry plugin and the discovery,
//! through the scenarios every engine must pass, plus what is particular to it.

use std::time::Duration;

use sextant::ServiceDiscovery;
use sextant_registry::{
    DiscoveryOptions, EmbeddedRegistry, EmbeddedRegistryOptions, EmbeddedStore, RegistryDiscovery,
    RegistryStore,
};
use sextant_registry_testkit::scenarios::{self, Harness};
use sextant_registry_testkit::{free_port, init_logging, wait_until};

/// The embedded registry, in process. Stopping it loses its entries (it keeps nothing on disk);
/// restarting binds the same port again.
struct Embedded {
    port: u16,
    registry: Option<EmbeddedRegistry>,
}

impl Embedded {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Harness for Embedded {
    type Store = EmbeddedStore;

    async fn start_on(port: Option<u16>) -> Option<Self> {
        let port = port.unwrap_or_else(free_port);
        let registry =
            EmbeddedRegistry::bind(("127.0.0.1", port), EmbeddedRegistryOptions::default())
                .await
                .expect("bind the embedded registry");
        Some(Embedded {
            port,
            registry: Some(registry),
        })
    }

    fn store(&self) -> EmbeddedStore {
        EmbeddedStore::new(&self.url())
            .unwrap()
            .with_long_poll(Duration::from_secs(5))
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn store_via(&self, port: u16) -> EmbeddedStore {
        EmbeddedStore::new(&format!("http://127.0.0.1:{port}"))
            .unwrap()
            .with_long_poll(Duration::from_secs(5))
    }

    fn unreachable_store() -> EmbeddedStore {
        EmbeddedStore::new(&format!("127.0.0.1:{}", free_port())).unwrap()
    }

    async fn raw_put(&self, key: &str, value: &[u8]) {
        // The embedded registry holds text only: bytes that are not UTF-8 arrive as U+FFFD.
        let value = String::from_utf8_lossy(value).into_owned();
        RegistryStore::put(&self.store(), key, &value, Duration::from_secs(600))
            .await
            .unwrap();
    }

    async fn edit_value(&self, key: &str, value: &str) {
        RegistryStore::put(&self.store(), key, value, Duration::from_secs(600))
            .await
            .unwrap();
    }

    fn stop(&mut self) {
        // Dropping it stops serving at once.
        self.registry = None;
    }

    async fn restart(&mut self) {
        // The old listener closes once its task sees the cancellation: retry briefly (bounded).
        for _ in 0..100 {
            match EmbeddedRegistry::bind(
                ("127.0.0.1", self.port),
                EmbeddedRegistryOptions::default(),
            )
            .await
            {
                Ok(r) => {
                    self.registry = Some(r);
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("bind the embedded registry again: {e}"),
            }
        }
        panic!(
            "port {} still in use 2 s after the registry stopped",
            self.port
        );
    }
}

async fn harness() -> Embedded {
    init_logging();
    Embedded::start_on(None).await.unwrap()
}

// The scenarios every backend runs (sextant_registry_testkit::scenarios).
sextant_registry_testkit::scenario_tests!(mod embedded_scenarios, Embedded, harness);

/// Without the grace period, a registry that restarted empty would empty the list until the
/// servers refresh; with it (the default), the list never empties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_restart_without_grace_shows_the_gap() {
    let mut h = harness().await;
    // A long update interval: after the restart the entry stays missing for a while.
    let options = h.plugin_options().update_interval(Duration::from_secs(30));
    let server = scenarios::start_server(h.store(), options, "").await;
    let d = RegistryDiscovery::start(
        h.store(),
        "/rpcx_test",
        "Arith",
        h.discovery_options().reconnect_grace(Duration::ZERO),
    )
    .await
    .unwrap();
    wait_until("listed", scenarios::BOUND, || async {
        d.get_services().len() == 1
    })
    .await;
    h.stop();
    h.restart().await;
    wait_until(
        "the empty registry empties the list",
        scenarios::BOUND,
        || async { d.get_services().is_empty() },
    )
    .await;
    server.kill();
}

/// `RegistryPlugin::abort` stops refreshing without removing anything: the entry expires with
/// its TTL; `stop` removes it at once and is idempotent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_plugin_abort_and_stop() {
    let h = harness().await;
    let store = h.store();
    let options = h.plugin_options();
    let (a, b) = (
        sextant_registry::RegistryPlugin::start(store.clone(), options.clone())
            .await
            .unwrap(),
        sextant_registry::RegistryPlugin::start(store.clone(), options)
            .await
            .unwrap(),
    );
    let sa = sextant::Server::new();
    sa.add_plugin(a.clone());
    sa.register_with(
        sextant_registry_testkit::Arith,
        sextant::RegisterOptions::default(),
    )
    .unwrap();
    let addr_a = sa.start("tcp@127.0.0.1:0").await.unwrap();
    let sb = sextant::Server::new();
    sb.add_plugin(b.clone());
    sb.register_with(
        sextant_registry_testkit::Arith,
        sextant::RegisterOptions::default(),
    )
    .unwrap();
    let addr_b = sb.start("tcp@127.0.0.1:0").await.unwrap();
    let key_a = format!("/rpcx_test/Arith/{addr_a}");
    let key_b = format!("/rpcx_test/Arith/{addr_b}");
    wait_until("both published", scenarios::BOUND, || async {
        a.published() == vec![key_a.clone()] && b.published() == vec![key_b.clone()]
    })
    .await;
    b.stop().await;
    assert_eq!(RegistryStore::get(&store, &key_b).await.unwrap(), None);
    assert!(b.published().is_empty());
    b.stop().await; // idempotent
    a.abort();
    assert!(RegistryStore::get(&store, &key_a).await.unwrap().is_some());
    wait_until("the aborted entry expires", scenarios::BOUND, || async {
        RegistryStore::get(&store, &key_a).await.unwrap().is_none()
    })
    .await;
    sa.shutdown(Duration::from_secs(1)).await.unwrap();
    sb.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// The HTTP API answers bad requests with 4xx and a JSON error, and bounds TTLs.
#[tokio::test]
async fn embedded_http_api_rejects_bad_requests() {
    let registry = EmbeddedRegistry::bind(
        "127.0.0.1:0",
        EmbeddedRegistryOptions::default().max_ttl(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let http = sextant_registry::http::HttpClient::new("embedded", &registry.url()).unwrap();
    let t = Duration::from_secs(5);
    use hyper::Method;
    let r = http
        .request(Method::PUT, "/v1/kv/a/b", Some("x".into()), t)
        .await
        .unwrap();
    assert_eq!(r.status, 400, "ttl_ms is required: {}", r.text());
    assert!(r.text().contains("ttl_ms"));
    let r = http
        .request(Method::PUT, "/v1/kv/a/b?ttl_ms=abc", Some("x".into()), t)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let r = http
        .request(
            Method::PUT,
            "/v1/kv/a/b?ttl_ms=1",
            Some(vec![0xffu8, 0xfe].into()),
            t,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let r = http
        .request(Method::GET, "/v1/nope", None, t)
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = http
        .request(Method::POST, "/v1/kv/a", None, t)
        .await
        .unwrap();
    assert_eq!(r.status, 405);
    let big = vec![b'x'; 70 << 10];
    let r = http
        .request(Method::PUT, "/v1/kv/a/big?ttl_ms=1000", Some(big.into()), t)
        .await
        .unwrap();
    assert_eq!(r.status, 413);
    // A TTL above max_ttl is cut to it: the entry expires within about a second.
    let store = EmbeddedStore::new(&registry.url()).unwrap();
    RegistryStore::put(
        &store,
        "/x/Arith/tcp@127.0.0.1:1",
        "",
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    assert_eq!(registry.entries().len(), 1);
    wait_until("the entry expires at max_ttl", scenarios::BOUND, || async {
        registry.entries().is_empty()
    })
    .await;
}

/// A discovery on an empty directory starts with an empty list and sees servers appear.
#[tokio::test]
async fn embedded_empty_directory_then_entries() {
    let registry = EmbeddedRegistry::bind("127.0.0.1:0", EmbeddedRegistryOptions::default())
        .await
        .unwrap();
    let store = EmbeddedStore::new(&registry.url()).unwrap();
    let d = RegistryDiscovery::start(store.clone(), "/base", "Svc", DiscoveryOptions::default())
        .await
        .unwrap();
    assert!(d.get_services().is_empty());
    let mut rx = d.watch_services();
    RegistryStore::put(
        &store,
        "/base/Svc/tcp@127.0.0.1:7",
        "weight=1",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    // Another service's entry does not show up here.
    RegistryStore::put(
        &store,
        "/base/SvcX/tcp@127.0.0.1:8",
        "",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    wait_until("the entry is seen", scenarios::BOUND, || async {
        d.get_services().len() == 1
    })
    .await;
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update()[0].key, "tcp@127.0.0.1:7");
    RegistryStore::delete(&store, "/base/Svc/tcp@127.0.0.1:7")
        .await
        .unwrap();
    wait_until("the entry is gone", scenarios::BOUND, || async {
        d.get_services().is_empty()
    })
    .await;
}

/// Servers on other networks are published with their network and called through the
/// discovery: ws@, http@ and quic@ (as Go rpcx servers registered that way would be), and a
/// reuseport@ listener, published as tcp@ since clients dial it as TCP.
#[tokio::test]
async fn servers_on_every_network_are_published_and_called() {
    use sextant::transport::{ClientTlsConfig, ServerTlsConfig};
    use sextant::{ClientOptions, Context, Server, ServiceError, XClient};
    use sextant_registry::{RegistryOptions, RegistryPlugin};
    init_logging();
    let registry = EmbeddedRegistry::bind("127.0.0.1:0", EmbeddedRegistryOptions::default())
        .await
        .unwrap();
    let pki = sextant_interop_pki::TestPki::new().unwrap();
    let tls =
        ServerTlsConfig::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap();
    let mut servers = Vec::new();
    let mut published = Vec::new();
    for network in ["ws", "http", "quic", "reuseport"] {
        let plugin = RegistryPlugin::start(
            EmbeddedStore::new(&registry.url()).unwrap(),
            RegistryOptions::default().base_path("/nets"),
        )
        .await
        .unwrap();
        let server = Server::builder().tls(tls.clone()).plugin(plugin).build();
        server
            .register_fn("Net", "Name", move |_cx: Context, _: ()| async move {
                Ok::<_, ServiceError>(network.to_string())
            })
            .unwrap();
        let addr = server
            .start(format!("{network}@127.0.0.1:0"))
            .await
            .unwrap();
        let expect = if network == "reuseport" {
            addr.with_network(sextant::transport::Network::Tcp)
        } else {
            addr
        };
        published.push(expect.to_string());
        servers.push(server);
    }
    let discovery = RegistryDiscovery::start(
        EmbeddedStore::new(&registry.url()).unwrap(),
        "/nets",
        "Net",
        DiscoveryOptions::default(),
    )
    .await
    .unwrap();
    wait_until("every server is listed", scenarios::BOUND, || async {
        discovery.get_services().len() == 4
    })
    .await;
    let mut listed: Vec<String> = discovery
        .get_services()
        .iter()
        .map(|kv| kv.key.clone())
        .collect();
    listed.sort();
    published.sort();
    assert_eq!(listed, published);
    // TLS (for the quic@ server, and over tcp@ for the others, which serve TLS too).
    let tls = ClientTlsConfig::from_ca_pem(pki.ca.as_bytes()).unwrap();
    let xclient = XClient::builder("Net")
        .discovery(discovery)
        .client_options(ClientOptions::default().tls(tls))
        .select_mode(sextant::SelectMode::RoundRobin)
        .build()
        .unwrap();
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..8 {
        let name: String = xclient.call("Name", &()).await.unwrap();
        names.insert(name);
    }
    assert_eq!(names.len(), 4, "{names:?}");
    xclient.close();
    for s in servers {
        s.shutdown(Duration::from_secs(2)).await.unwrap();
    }
}

#[path = "../../sextant-interop/src/pki.rs"]
#[allow(dead_code)]
mod sextant_interop_pki;
