//! Registry scenarios every engine must pass, written once and run by each backend's tests
//! through a [`Harness`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sextant::{
    CallOptions, FailMode, RegisterOptions, SelectMode, Server, ServiceDiscovery, XClient,
    XClientOptions,
};
use sextant_registry::{
    DiscoveryOptions, DiscoveryStore, QueryValues, RegistryDiscovery, RegistryError,
    RegistryOptions, RegistryPlugin, RegistryStore,
};

use crate::proxy::Proxy;
use crate::service::{call_mul, wait_until, Args, Arith, IsolatedServer, Reply};

/// A generous bound for anything that should happen within a few seconds.
pub const BOUND: Duration = Duration::from_secs(20);

/// One engine for one test: how to start it, reach it, write to it behind the plugin's back,
/// and stop and restart it.
pub trait Harness: Sized + Send + Sync + 'static {
    /// The engine's store.
    type Store: RegistryStore + DiscoveryStore + Clone;

    /// Starts the engine (on `port`, or a free one), or `None` if it is not installed and
    /// services are not required.
    fn start_on(port: Option<u16>) -> impl Future<Output = Option<Self>> + Send;

    /// A new client of the engine.
    fn store(&self) -> Self::Store;

    /// The engine's client address, `127.0.0.1:port`.
    fn address(&self) -> String;

    /// A new client of the engine that reaches it through 127.0.0.1:`port` (a [`Proxy`]).
    fn store_via(&self, port: u16) -> Self::Store;

    /// A client of an engine that does not run (a closed port).
    fn unreachable_store() -> Self::Store;

    /// Writes `value` at `key` exactly as given, with no TTL (to plant garbage).
    fn raw_put(&self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send;

    /// Changes the value of an existing entry as an operator would, keeping its TTL mechanism
    /// (its lease, session or expiry).
    fn edit_value(&self, key: &str, value: &str) -> impl Future<Output = ()> + Send;

    /// Whether an expired entry is gone from the engine (`false` for Consul's agent services,
    /// which stay registered, critical, until Consul deregisters them; discoveries drop them at
    /// once all the same).
    const EXPIRY_REMOVES_ENTRY: bool = true;

    /// Whether the store can edit a server's entry in place ([`RegistryStore::update`]);
    /// `false` for Consul's agent services, whose metadata is the server's registration.
    const EDITS_IN_PLACE: bool = true;

    /// Stops the engine (a crash; data is kept).
    fn stop(&mut self);

    /// Starts the engine again on the same port with the same data.
    fn restart(&mut self) -> impl Future<Output = ()> + Send;

    /// Plugin options for tests: 1 s update interval (2 s TTL), short timeouts.
    fn plugin_options(&self) -> RegistryOptions {
        RegistryOptions::default()
            .update_interval(Duration::from_secs(1))
            .request_timeout(Duration::from_secs(2))
            .shutdown_timeout(Duration::from_secs(5))
    }

    /// Discovery options for tests: short timeouts and backoff.
    fn discovery_options(&self) -> DiscoveryOptions {
        DiscoveryOptions::default()
            .request_timeout(Duration::from_secs(2))
            .backoff(Duration::from_millis(100), Duration::from_secs(1))
            .reconnect_grace(Duration::from_secs(5))
    }
}

/// Starts an `Arith` server on its own runtime with a registry plugin on `store`.
pub async fn start_server<S: RegistryStore>(
    store: S,
    options: RegistryOptions,
    metadata: &str,
) -> IsolatedServer {
    let metadata = metadata.to_string();
    IsolatedServer::start(move || async move {
        let plugin = RegistryPlugin::start(store, options)
            .await
            .expect("the registry plugin should start");
        let server = Server::new();
        server.add_plugin(plugin);
        server
            .register_with(Arith, RegisterOptions::default().metadata(metadata))
            .expect("register Arith");
        let address = server
            .start("tcp@127.0.0.1:0")
            .await
            .expect("listen on 127.0.0.1");
        (server, address)
    })
    .await
}

/// Starts a discovery of `Arith` under `base_path`.
pub async fn discover<H: Harness>(h: &H, base_path: &str) -> RegistryDiscovery {
    RegistryDiscovery::start(h.store(), base_path, "Arith", h.discovery_options())
        .await
        .expect("the discovery should start")
}

fn addresses(d: &RegistryDiscovery) -> Vec<String> {
    d.get_services().iter().map(|p| p.key.clone()).collect()
}

fn value_of(d: &RegistryDiscovery, address: &str) -> Option<String> {
    d.get_services()
        .iter()
        .find(|p| p.key == address)
        .map(|p| p.value.clone())
}

async fn wait_listed(d: &RegistryDiscovery, address: &str) {
    wait_until(&format!("{address} is discovered"), BOUND, || async {
        addresses(d).iter().any(|a| a == address)
    })
    .await;
}

async fn wait_gone(d: &RegistryDiscovery, address: &str, bound: Duration) {
    wait_until(&format!("{address} disappears"), bound, || async {
        !addresses(d).iter().any(|a| a == address)
    })
    .await;
}

/// Register → discover → call; the key follows rpcx's layout and refreshes add rate figures.
pub async fn register_discover_call<H: Harness>(h: &H) {
    let store = h.store();
    let server = start_server(h.store(), h.plugin_options(), "weight=7").await;
    let address = server.address().to_string();
    let d = discover(h, "/rpcx_test").await;
    wait_listed(&d, &address).await;
    let servers = d.get_services();
    assert_eq!(servers.len(), 1, "{servers:?}");
    let v = QueryValues::parse(&servers[0].value).expect("value is a query string");
    assert_eq!(v.get("weight"), Some("7"));
    let key = format!("/rpcx_test/Arith/{address}");
    assert!(
        RegistryStore::get(&store, &key).await.unwrap().is_some(),
        "the entry is at {key}"
    );
    assert_eq!(call_mul(&servers[0].key, 10, 20).await.unwrap(), 200);
    // The next refreshes add rpcx's rate figures and keep the metadata.
    wait_until("a refresh adds the rate figures", BOUND, || async {
        value_of(&d, &address).is_some_and(|v| {
            let q = QueryValues::parse(&v).unwrap_or_default();
            q.get("calls").is_some() && q.get("connections").is_some() && q.get("tps").is_some()
        })
    })
    .await;
    let v = value_of(&d, &address).unwrap();
    assert_eq!(
        QueryValues::parse(&v).unwrap().get("weight"),
        Some("7"),
        "{v}"
    );
    server.shutdown().await;
}

/// A server killed without shutdown disappears once its TTL runs out.
pub async fn crash_disappears_within_ttl<H: Harness>(h: &H) {
    let server = start_server(h.store(), h.plugin_options(), "").await;
    let address = server.address().to_string();
    let d = discover(h, "/rpcx_test").await;
    wait_listed(&d, &address).await;
    server.kill();
    // TTL is 2 s; allow for the engine's expiry granularity.
    wait_gone(&d, &address, BOUND).await;
    if H::EXPIRY_REMOVES_ENTRY {
        let key = format!("/rpcx_test/Arith/{address}");
        assert_eq!(RegistryStore::get(&h.store(), &key).await.unwrap(), None);
    }
}

/// A graceful shutdown removes the entry before `shutdown` returns, long before its TTL.
pub async fn graceful_shutdown_removes_at_once<H: Harness>(h: &H) {
    // TTL 60 s: only an explicit removal is quick.
    let options = h
        .plugin_options()
        .update_interval(Duration::from_secs(30))
        .ttl(Duration::from_secs(60));
    let server = start_server(h.store(), options, "").await;
    let address = server.address().to_string();
    let key = format!("/rpcx_test/Arith/{address}");
    let d = discover(h, "/rpcx_test").await;
    wait_listed(&d, &address).await;
    server.shutdown().await;
    assert_eq!(
        RegistryStore::get(&h.store(), &key).await.unwrap(),
        None,
        "the entry is gone when shutdown returns"
    );
    wait_gone(&d, &address, Duration::from_secs(10)).await;
}

/// `state=inactive` written into the registry reaches the discovery and survives refreshes.
pub async fn inactive_state_is_reported<H: Harness>(h: &H) {
    let server = start_server(h.store(), h.plugin_options(), "weight=3").await;
    let address = server.address().to_string();
    let key = format!("/rpcx_test/Arith/{address}");
    let d = discover(h, "/rpcx_test").await;
    wait_listed(&d, &address).await;
    h.edit_value(&key, "state=inactive&weight=3").await;
    let is_inactive = |d: &RegistryDiscovery| {
        value_of(d, &address).is_some_and(|v| {
            QueryValues::parse(&v).unwrap_or_default().get("state") == Some("inactive")
        })
    };
    wait_until("the discovery reports state=inactive", BOUND, || async {
        is_inactive(&d)
    })
    .await;
    // A refresh merges its rate figures into the edited value: the operator's state stays.
    wait_until("a refresh after the edit", BOUND, || async {
        value_of(&d, &address).is_some_and(|v| v.contains("calls="))
    })
    .await;
    assert!(is_inactive(&d), "{:?}", value_of(&d, &address));
    server.shutdown().await;
}

/// [`RegistryStore::update`] (what `sextant set` writes): an operator's store edits a server's
/// entry without taking it over. The edit reaches discoveries and survives the server's
/// refreshes; the operator's store going away leaves the entry; the server crashing still removes
/// it within its TTL (so the entry kept the server's lease or session); a missing entry is
/// `false` and is not created.
pub async fn update_keeps_the_owner<H: Harness>(h: &H) {
    let server = start_server(h.store(), h.plugin_options(), "weight=3").await;
    let address = server.address().to_string();
    let key = format!("/rpcx_test/Arith/{address}");
    let d = discover(h, "/rpcx_test").await;
    wait_listed(&d, &address).await;
    if !H::EDITS_IN_PLACE {
        let e = h.store().update(&key, "weight=5").await.unwrap_err();
        assert!(matches!(e, RegistryError::Config(_)), "{e}");
        server.shutdown().await;
        return;
    }
    {
        let operator = h.store();
        RegistryStore::connect(&operator, Duration::from_secs(60))
            .await
            .expect("the operator's store connects");
        let current = RegistryStore::get(&operator, &key)
            .await
            .unwrap()
            .expect("the entry is there");
        let mut v = QueryValues::parse(&current).expect("a query string");
        v.set("weight", "5");
        v.set("state", "inactive");
        assert!(
            operator.update(&key, &v.encode()).await.unwrap(),
            "update of an existing entry"
        );
        let missing = "/rpcx_test/Arith/tcp@127.0.0.1:1";
        assert!(!operator.update(missing, "weight=1").await.unwrap());
        assert_eq!(RegistryStore::get(&operator, missing).await.unwrap(), None);
        RegistryStore::close(&operator).await;
    }
    let edited = |d: &RegistryDiscovery| {
        value_of(d, &address).is_some_and(|v| {
            let q = QueryValues::parse(&v).unwrap_or_default();
            q.get("weight") == Some("5") && q.get("state") == Some("inactive")
        })
    };
    wait_until("the discovery sees the edit", BOUND, || async {
        edited(&d)
    })
    .await;
    // Two refreshes later (1 s interval) the operator's keys are still there, and the entry too
    // although the operator's store is closed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(edited(&d), "{:?}", value_of(&d, &address));
    let v = RegistryStore::get(&h.store(), &key).await.unwrap();
    assert!(
        v.as_deref().is_some_and(|v| v.contains("weight=5")),
        "{v:?}"
    );
    // The entry is still the server's: killed, it goes with its TTL.
    server.kill();
    wait_gone(&d, &address, BOUND).await;
}

/// Restarting the registry under load: an XClient calling through the discovery loses no call
/// (the discovery keeps its servers through the outage), the discovery reconnects, and the
/// entries are back and refreshed afterwards.
pub async fn restart_under_load<H: Harness>(h: &mut H) {
    let server = start_server(h.store(), h.plugin_options(), "weight=1").await;
    let address = server.address().to_string();
    // One discovery feeds the XClient, one is observed by the test.
    let observed = discover(h, "/rpcx_test").await;
    wait_listed(&observed, &address).await;
    let xclient = XClient::builder("Arith")
        .fail_mode(FailMode::Failover)
        .select_mode(SelectMode::RoundRobin)
        .discovery(discover(h, "/rpcx_test").await)
        .build()
        .expect("build the XClient");
    wait_until("the XClient sees the server", BOUND, || async {
        xclient.servers().len() == 1
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let load = {
        let (xclient, stop, ok) = (xclient.clone(), stop.clone(), ok.clone());
        tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match xclient.call::<_, Reply>("Mul", &Args { a: 6, b: 7 }).await {
                    Ok(r) if r.c == 42 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => errors.push(format!("{other:?}")),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            errors
        })
    };

    tokio::time::sleep(Duration::from_millis(300)).await;
    h.stop();
    wait_until("the discovery notices the outage", BOUND, || async {
        !observed.is_connected()
    })
    .await;
    // Through the outage the last known server stays listed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        addresses(&observed),
        vec![address.clone()],
        "the list survives the outage"
    );
    h.restart().await;
    wait_until("the discovery reconnects", BOUND, || async {
        observed.is_connected()
    })
    .await;
    // The entry is back in the registry and refreshed again: a fresh discovery finds it, and its
    // value changes with the rate figures.
    let fresh = discover(h, "/rpcx_test").await;
    wait_listed(&fresh, &address).await;
    let before = value_of(&fresh, &address);
    wait_until(
        "the entry is refreshed after the restart",
        BOUND,
        || async {
            value_of(&fresh, &address)
                .is_some_and(|v| v.contains("calls=") && Some(&v) != before.as_ref())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let errors = load.await.expect("load task");
    assert!(
        errors.is_empty(),
        "{} calls failed during the restart, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(ok.load(Ordering::Relaxed) > 0, "no call was made");
    assert_eq!(addresses(&observed), vec![address]);
    xclient.close();
    server.shutdown().await;
}

/// Through an XClient: `state=inactive` written into the registry stops calls to that server,
/// and the XClient's group picks servers of that group only.
pub async fn xclient_inactive_and_groups<H: Harness>(h: &H) {
    let a = start_server(h.store(), h.plugin_options(), "group=g1").await;
    let b = start_server(h.store(), h.plugin_options(), "group=g1").await;
    let c = start_server(h.store(), h.plugin_options(), "group=g2").await;
    let (a_addr, b_addr, c_addr) = (
        a.address().to_string(),
        b.address().to_string(),
        c.address().to_string(),
    );
    let xclient = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .select_mode(SelectMode::RoundRobin)
        .options(XClientOptions::default().group("g1"))
        .discovery(discover(h, "/rpcx_test").await)
        .build()
        .expect("build the XClient");
    let servers_of = |x: &XClient| {
        let mut v: Vec<String> = x
            .servers()
            .iter()
            .map(|s| s.address().to_string())
            .collect();
        v.sort();
        v
    };
    let mut g1 = vec![a_addr.clone(), b_addr.clone()];
    g1.sort();
    wait_until("the XClient sees both g1 servers", BOUND, || async {
        servers_of(&xclient) == g1
    })
    .await;
    // Calls go to group g1 only, round robin over both.
    let mut answered = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let r = xclient
            .call_with::<_, Reply>("Mul", &Args { a: 2, b: 3 }, CallOptions::new())
            .await
            .expect("call in group g1");
        assert_eq!(r.reply.c, 6);
        answered.insert(r.metadata.get("__ServerAddress").unwrap_or("").to_string());
    }
    assert!(
        !answered.contains(&c_addr),
        "group g2 was called: {answered:?}"
    );
    assert_eq!(answered.len(), 2, "{answered:?}");

    // An operator marks a inactive in the registry: the XClient stops using it.
    h.edit_value(
        &format!("/rpcx_test/Arith/{a_addr}"),
        "group=g1&state=inactive",
    )
    .await;
    wait_until("the XClient drops the inactive server", BOUND, || async {
        servers_of(&xclient) == vec![b_addr.clone()]
    })
    .await;
    for _ in 0..10 {
        let r = xclient
            .call_with::<_, Reply>("Mul", &Args { a: 2, b: 3 }, CallOptions::new())
            .await
            .expect("call while a is inactive");
        assert_eq!(r.metadata.get("__ServerAddress"), Some(b_addr.as_str()));
    }
    xclient.close();
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

/// Two servers with different groups are both listed, each with its group.
pub async fn two_groups<H: Harness>(h: &H) {
    let a = start_server(h.store(), h.plugin_options(), "group=a").await;
    let b = start_server(h.store(), h.plugin_options(), "group=b").await;
    let d = discover(h, "/rpcx_test").await;
    wait_listed(&d, &a.address().to_string()).await;
    wait_listed(&d, &b.address().to_string()).await;
    let group_of = |addr: &str| {
        value_of(&d, addr).and_then(|v| QueryValues::parse(&v).ok()?.get("group").map(String::from))
    };
    assert_eq!(group_of(&a.address().to_string()).as_deref(), Some("a"));
    assert_eq!(group_of(&b.address().to_string()).as_deref(), Some("b"));
    let in_group_b: Vec<String> = d
        .get_services()
        .iter()
        .filter(|p| {
            QueryValues::parse(&p.value)
                .ok()
                .and_then(|q| q.get("group").map(|g| g == "b"))
                == Some(true)
        })
        .map(|p| p.key.clone())
        .collect();
    assert_eq!(in_group_b, vec![b.address().to_string()]);
    assert_eq!(call_mul(&in_group_b[0], 3, 4).await.unwrap(), 12);
    a.shutdown().await;
    b.shutdown().await;
}

/// Garbage under the service path is skipped: values that are not text or not a query string,
/// keys that are not addresses (or name networks sextant cannot dial). Valid entries written
/// next to them are listed, by a running watch and by a fresh listing.
pub async fn bad_entries_are_skipped<H: Harness>(h: &H) {
    let d = discover(h, "/rpcx_test").await;
    assert!(d.get_services().is_empty());
    let dir = "/rpcx_test/Arith";
    h.raw_put(&format!("{dir}/tcp@127.0.0.1:1"), &[0xff, 0xfe, 0x00])
        .await;
    h.raw_put(&format!("{dir}/tcp@127.0.0.1:2"), b"a=%zz").await;
    h.raw_put(&format!("{dir}/not-an-address"), b"weight=1")
        .await;
    h.raw_put(&format!("{dir}/utp@127.0.0.1:3"), b"weight=1")
        .await;
    h.raw_put(&format!("{dir}/tcp@127.0.0.1:99999"), b"").await;
    let store = h.store();
    RegistryStore::put(
        &store,
        &format!("{dir}/tcp@127.0.0.1:4"),
        "weight=5",
        Duration::from_secs(120),
    )
    .await
    .expect("put a valid entry");
    wait_listed(&d, "tcp@127.0.0.1:4").await;
    // Give the watch time to see every write, then check only the valid entry is listed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(addresses(&d), vec!["tcp@127.0.0.1:4".to_string()]);
    assert_eq!(value_of(&d, "tcp@127.0.0.1:4").as_deref(), Some("weight=5"));
    let fresh = discover(h, "/rpcx_test").await;
    assert_eq!(addresses(&fresh), vec!["tcp@127.0.0.1:4".to_string()]);
}

/// A base path without its leading slash (or with a trailing one) means the same keys.
pub async fn base_path_is_normalized<H: Harness>(h: &H) {
    let options = h.plugin_options().base_path("no_slash/");
    let server = start_server(h.store(), options, "").await;
    let address = server.address().to_string();
    let d = discover(h, "/no_slash").await;
    wait_listed(&d, &address).await;
    let d2 = discover(h, "no_slash").await;
    wait_listed(&d2, &address).await;
    let key = format!("/no_slash/Arith/{address}");
    assert!(RegistryStore::get(&h.store(), &key)
        .await
        .unwrap()
        .is_some());
    server.shutdown().await;
}

/// An unreachable registry at start is a clear error (never a hang); with `retry_on_start`,
/// plugin and discovery start anyway and catch up once the registry comes up.
pub async fn unreachable_at_start<H: Harness>() {
    let options = RegistryOptions::default()
        .update_interval(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(2));
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        RegistryPlugin::start(H::unreachable_store(), options.clone()),
    )
    .await
    .expect("start must not hang")
    .expect_err("an unreachable registry is an error");
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("retry_on_start"), "{text}");
    let dopts = DiscoveryOptions::default()
        .request_timeout(Duration::from_secs(2))
        .backoff(Duration::from_millis(100), Duration::from_millis(500));
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        RegistryDiscovery::start(H::unreachable_store(), "/rpcx_test", "Arith", dopts.clone()),
    )
    .await
    .expect("start must not hang")
    .expect_err("an unreachable registry is an error");
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");

    // retry_on_start: both start at once; once the engine runs on that port, they catch up.
    let port = crate::engine::free_port();
    let Some(probe) = H::start_on(Some(port)).await else {
        return;
    };
    let mut probe = probe;
    probe.stop();
    let store = probe.store();
    let server = start_server(store.clone(), options.retry_on_start(true), "").await;
    let address = server.address().to_string();
    let d = RegistryDiscovery::start(store, "/rpcx_test", "Arith", dopts.retry_on_start(true))
        .await
        .expect("starts with retry_on_start");
    assert!(d.get_services().is_empty());
    probe.restart().await;
    wait_listed(&d, &address).await;
    server.shutdown().await;
}

/// A discovery cut off from a registry that keeps running: it keeps its list meanwhile; once
/// reconnected it lists again and picks up what changed (a server that registered meanwhile
/// appears; one that left meanwhile is dropped when the reconnect grace period ends).
pub async fn partition_then_catch_up<H: Harness>(h: &H) {
    let proxy = Proxy::start(&h.address()).await;
    let d = RegistryDiscovery::start(
        h.store_via(proxy.port()),
        "/rpcx_test",
        "Arith",
        h.discovery_options(),
    )
    .await
    .expect("the discovery should start");
    let a = start_server(h.store(), h.plugin_options(), "name=a").await;
    let a_addr = a.address().to_string();
    wait_listed(&d, &a_addr).await;

    proxy.cut();
    wait_until("the discovery notices the partition", BOUND, || async {
        !d.is_connected()
    })
    .await;
    // Meanwhile: b registers, a leaves.
    let b = start_server(h.store(), h.plugin_options(), "name=b").await;
    let b_addr = b.address().to_string();
    a.shutdown().await;
    assert_eq!(
        addresses(&d),
        vec![a_addr.clone()],
        "the last known list stays"
    );

    proxy.restore().await;
    wait_until("the discovery reconnects", BOUND, || async {
        d.is_connected()
    })
    .await;
    wait_listed(&d, &b_addr).await;
    // a vanished across the outage: kept for the grace period (5 s here), then dropped.
    wait_gone(&d, &a_addr, BOUND).await;
    assert_eq!(addresses(&d), vec![b_addr]);
    b.shutdown().await;
}

/// Declares the shared scenarios above as `#[tokio::test]`s in a module, so that every backend
/// runs every scenario and a new scenario reaches them all at once.
///
/// `harness` is an async function in the calling module returning the backend's [`Harness`];
/// with `optional`, it returns `Option<H>` and `None` (the engine is not installed and
/// `SEXTANT_REQUIRE_SERVICES` is not set) makes each test return early, after the harness has
/// said why.
///
/// ```ignore
/// sextant_registry_testkit::scenario_tests!(mod etcd_scenarios, Etcd, harness, optional);
/// sextant_registry_testkit::scenario_tests!(mod embedded_scenarios, Embedded, harness);
/// ```
#[macro_export]
macro_rules! scenario_tests {
    (mod $module:ident, $harness_type:ty, $harness:ident) => {
        $crate::scenario_tests!(@tests $module, $harness_type, ::std::option::Option::Some(super::$harness().await));
    };
    (mod $module:ident, $harness_type:ty, $harness:ident, optional) => {
        $crate::scenario_tests!(@tests $module, $harness_type, super::$harness().await);
    };
    (@tests $module:ident, $harness_type:ty, $make:expr) => {
        mod $module {
            // The harness type and function live in the calling test file.
            #[allow(unused_imports)]
            use super::*;
            use $crate::scenarios;

            $crate::scenario_tests!(@each $make;
                register_discover_call,
                crash_disappears_within_ttl,
                graceful_shutdown_removes_at_once,
                inactive_state_is_reported,
                update_keeps_the_owner,
                xclient_inactive_and_groups,
                two_groups,
                bad_entries_are_skipped,
                base_path_is_normalized,
                partition_then_catch_up,
            );

            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn restart_under_load() {
                let ::std::option::Option::Some(mut h) = $make else { return };
                scenarios::restart_under_load(&mut h).await;
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unreachable_at_start() {
                scenarios::unreachable_at_start::<$harness_type>().await;
            }
        }
    };
    (@each $make:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let ::std::option::Option::Some(h) = $make else { return };
                scenarios::$scenario(&h).await;
            }
        )*
    };
}
