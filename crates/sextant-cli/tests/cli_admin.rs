//! `sextant list`, `describe`, `set` and `watch` as processes, against the embedded registry, a
//! real etcd and a real ZooKeeper with Arith servers publishing through the registry plugin:
//! what they print (text and `--json`), that `set` writes `state=inactive` as rpcx-ui does and an
//! XClient then stops calling that server, that the edit survives the server's refreshes and the
//! entry stays the server's, and the bad input each must survive.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use sextant::{ServiceDiscovery, XClient};
use sextant_registry::{
    DiscoveryOptions, DiscoveryStore, EmbeddedRegistry, EmbeddedRegistryOptions, EmbeddedStore,
    QueryValues, RegistryDiscovery, RegistryOptions, RegistryStore,
};
use sextant_registry_testkit::scenarios::start_server;
use sextant_registry_testkit::{wait_until, Args, IsolatedServer, Reply};

mod common;
use common::sextant;

const BOUND: Duration = Duration::from_secs(20);

/// Runs `sextant ARGS` to the end (at most 30 s: the process is killed after that).
async fn run(args: &[&str]) -> Output {
    let mut command = sextant();
    command.args(args);
    tokio::task::spawn_blocking(move || common::run_to_end(command, b""))
        .await
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    serde_json::from_str(stdout(o).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn options(base: &str) -> RegistryOptions {
    RegistryOptions::default()
        .base_path(base)
        .update_interval(Duration::from_secs(1))
}

/// The value of `address` under `base`/Arith as the registry holds it now.
async fn value_of<S: RegistryStore>(store: &S, base: &str, address: &str) -> Option<String> {
    RegistryStore::get(store, &format!("{base}/Arith/{address}"))
        .await
        .unwrap()
}

/// The walk-through every registry gets: two servers, list, describe, set inactive (the XClient
/// stops calling it, the edit survives refreshes), set active again, and a server that is
/// killed still goes with its TTL.
///
/// Each server and discovery gets a store of its own from `new_store`, as separate processes
/// would: a store's connection, session or lease lives on the runtime that opened it, and a
/// killed server must take its own down with it.
async fn operate<S>(registry: &str, new_store: impl Fn() -> S, base: &str)
where
    S: RegistryStore + DiscoveryStore,
{
    let store = new_store();
    let a = start_server(new_store(), options(base), "weight=1&group=g1").await;
    let b = start_server(new_store(), options(base), "weight=2").await;
    let (a_addr, b_addr) = (a.address().to_string(), b.address().to_string());
    let discovery = RegistryDiscovery::start(
        new_store(),
        base,
        "Arith",
        DiscoveryOptions::default().request_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    wait_until("both servers are listed", BOUND, || async {
        discovery.get_services().len() == 2
    })
    .await;

    // list
    let out = run(&["list", "--registry", registry, "--base-path", base]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("SERVICE") && text.contains("Arith"), "{text}");
    assert!(text.contains("1 services, 2 servers"), "{text}");
    let v = json(
        &run(&[
            "list",
            "--registry",
            registry,
            "--base-path",
            base,
            "--json",
        ])
        .await,
    );
    assert_eq!(
        v,
        serde_json::json!([{"service": "Arith", "servers": 2, "active": 2}])
    );

    // describe
    let v = json(
        &run(&[
            "describe",
            "Arith",
            "--registry",
            registry,
            "--base-path",
            base,
            "--json",
        ])
        .await,
    );
    let servers = v["servers"].as_array().unwrap();
    let addresses: BTreeSet<&str> = servers
        .iter()
        .map(|s| s["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        addresses,
        BTreeSet::from([a_addr.as_str(), b_addr.as_str()])
    );
    let sa = servers
        .iter()
        .find(|s| s["address"] == a_addr.as_str())
        .unwrap();
    assert_eq!(sa["metadata"]["group"], "g1");
    assert_eq!(sa["metadata"]["weight"], "1");
    assert_eq!(sa["valid"], true);
    let out = run(&[
        "describe",
        "Arith",
        "--registry",
        registry,
        "--base-path",
        base,
    ])
    .await;
    let text = stdout(&out);
    assert!(
        text.contains("Arith (2 servers)") && text.contains("WEIGHT"),
        "{text}"
    );
    assert!(text.contains(&a_addr) && text.contains("active"), "{text}");

    // set state=inactive on a, by host:port
    let host_port = a_addr.split_once('@').unwrap().1;
    let out = run(&[
        "set",
        "Arith",
        host_port,
        "state=inactive",
        "weight=5",
        "--registry",
        registry,
        "--base-path",
        base,
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("state=inactive"), "{}", stdout(&out));
    let v = value_of(&store, base, &a_addr).await.unwrap();
    let q = QueryValues::parse(&v).unwrap();
    assert_eq!(
        (q.get("state"), q.get("weight"), q.get("group")),
        (Some("inactive"), Some("5"), Some("g1")),
        "{v}"
    );

    // The XClient stops calling a.
    let for_xclient = RegistryDiscovery::start(
        new_store(),
        base,
        "Arith",
        DiscoveryOptions::default().request_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let xclient = XClient::builder("Arith")
        .discovery(for_xclient)
        .build()
        .unwrap();
    wait_until("the XClient sees state=inactive", BOUND, || async {
        let servers = xclient.servers();
        discovery
            .get_services()
            .iter()
            .any(|p| p.value.contains("state=inactive"))
            && servers.len() == 1
            && &**servers[0].address() == b_addr.as_str()
    })
    .await;
    // Give the XClient's own discovery the time to see the edit too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls_before = a.server().stats().calls;
    for i in 0..20 {
        let r: Reply = xclient.call("Mul", &Args { a: i, b: 2 }).await.unwrap();
        assert_eq!(r.c, i * 2);
    }
    assert_eq!(
        a.server().stats().calls,
        calls_before,
        "an inactive server gets no call"
    );

    // Two refreshes later the operator's keys are still there, with fresh rate figures.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let v = value_of(&store, base, &a_addr).await.unwrap();
    let q = QueryValues::parse(&v).unwrap();
    assert_eq!(
        (q.get("state"), q.get("weight")),
        (Some("inactive"), Some("5")),
        "{v}"
    );
    assert!(q.get("tps").is_some(), "{v}");

    // state=active brings it back.
    let out = run(&[
        "set",
        "Arith",
        &a_addr,
        "state=active",
        "--registry",
        registry,
        "--base-path",
        base,
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    wait_until("a is active again", BOUND, || async {
        discovery
            .get_services()
            .iter()
            .any(|p| p.key == a_addr && p.value.contains("state=active"))
    })
    .await;
    let mut reached = false;
    for i in 0..200 {
        let _: Reply = xclient.call("Mul", &Args { a: i, b: 1 }).await.unwrap();
        if a.server().stats().calls > calls_before {
            reached = true;
            break;
        }
    }
    assert!(reached, "a gets calls again");
    let v = json(
        &run(&[
            "list",
            "--registry",
            registry,
            "--base-path",
            base,
            "--json",
        ])
        .await,
    );
    assert_eq!(v[0]["active"], 2);

    // The entry is still the server's: killed, it goes with its TTL.
    a.kill();
    wait_until("a killed server's entry expires", BOUND, || async {
        value_of(&store, base, &a_addr).await.is_none()
    })
    .await;
    xclient.close();
    b.shutdown().await;
}

async fn embedded() -> (EmbeddedRegistry, EmbeddedStore) {
    let registry = EmbeddedRegistry::bind("127.0.0.1:0", EmbeddedRegistryOptions::default())
        .await
        .unwrap();
    let store = EmbeddedStore::new(&registry.url()).unwrap();
    (registry, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operate_the_embedded_registry() {
    let (registry, store) = embedded().await;
    operate(&registry.url(), || store.clone(), "/cli_admin").await;
    registry.shutdown().await;
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operate_etcd() {
    let Some(etcd) = sextant_registry_testkit::EtcdServer::start().await else {
        return;
    };
    let new_store = || {
        sextant_etcd::EtcdStore::new(
            [format!("http://{}", etcd.address())],
            sextant_etcd::EtcdOptions::default(),
        )
        .unwrap()
    };
    // rpcx's etcd plugin also writes directory keys: they are not servers.
    RegistryStore::put(
        &new_store(),
        "/cli_etcd/Arith",
        "rpcx_path",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    operate(
        &format!("etcd://{}", etcd.address()),
        new_store,
        "/cli_etcd",
    )
    .await;
}

#[cfg(feature = "zookeeper")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operate_zookeeper() {
    let Some(zk) = sextant_registry_testkit::ZooKeeperServer::start().await else {
        return;
    };
    let new_store = || {
        sextant_zookeeper::ZooKeeperStore::new(
            &zk.address(),
            sextant_zookeeper::ZooKeeperOptions::default(),
        )
        .unwrap()
    };
    operate(
        &format!("zookeeper://{}/cli_zk", zk.address()),
        new_store,
        "/cli_zk",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reports_servers_and_changes() {
    let (registry, store) = embedded().await;
    let url = registry.url();
    let a = start_server(store.clone(), options("/cli_watch"), "weight=1").await;
    let a_addr = a.address().to_string();
    wait_until("a is published", BOUND, || async {
        value_of(&store, "/cli_watch", &a_addr).await.is_some()
    })
    .await;
    let mut child = sextant()
        .args([
            "watch",
            "--registry",
            &url,
            "--base-path",
            "/cli_watch",
            "--json",
            "--no-rates",
            "--count",
            "2",
            "--for",
            "30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut child = Kill(child);
    let first = tokio::task::block_in_place(|| lines.next())
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["event"], "added");
    assert_eq!(v["address"], a_addr.as_str());

    // A second server comes, the first is shut down: two changes, then watch exits by --count.
    let b: IsolatedServer = start_server(store.clone(), options("/cli_watch"), "weight=2").await;
    let b_addr = b.address().to_string();
    let second = tokio::task::block_in_place(|| lines.next())
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["address"].as_str()),
        (Some("added"), Some(b_addr.as_str()))
    );
    a.shutdown().await;
    let third = tokio::task::block_in_place(|| lines.next())
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&third).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["address"].as_str()),
        (Some("removed"), Some(a_addr.as_str()))
    );
    let status = tokio::task::block_in_place(|| child.0.wait()).unwrap();
    assert!(status.success(), "{status}");
    b.shutdown().await;
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error() {
    // An unknown scheme: usage (2), naming it.
    let out = run(&["list", "--registry", "nacos://127.0.0.1:8848"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown registry type \"nacos\""),
        "{}",
        stderr(&out)
    );
    // A fixed list is not a registry.
    let out = run(&["list", "--registry", "peer2peer://127.0.0.1:8972"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // An unreachable registry: transport (3), naming it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(&["list", "--registry", &format!("http://127.0.0.1:{port}")]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be reached") && stderr(&out).contains(&port.to_string()),
        "{}",
        stderr(&out)
    );

    let (registry, store) = embedded().await;
    let url = registry.url();
    let base = "/cli_bad";
    // A value that is not a query string, one with a terminal escape, a deeper key.
    let put = |k: &str, v: &str| {
        let (store, k, v) = (store.clone(), k.to_string(), v.to_string());
        async move {
            RegistryStore::put(&store, &k, &v, Duration::from_secs(60))
                .await
                .unwrap()
        }
    };
    put("/cli_bad/Arith/tcp@127.0.0.1:1", "%zz;not a query").await;
    put("/cli_bad/Arith/tcp@127.0.0.1:2", "weight=1&note=hello").await;
    put("/cli_bad/Arith/tcp@127.0.0.1:3", "weight=1&note=\u{1b}[2J").await;
    put("/cli_bad/Arith/tcp@127.0.0.1:4/extra", "x=1").await;
    let out = run(&["describe", "Arith", "--registry", &url, "--base-path", base]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("%zz;not a query (not a metadata query string)"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("Arith (3 servers)"), "{text}");
    let v = json(
        &run(&[
            "describe",
            "Arith",
            "--registry",
            &url,
            "--base-path",
            base,
            "--json",
        ])
        .await,
    );
    assert_eq!(v["servers"][0]["valid"], false);
    // set refuses to rewrite a value it cannot read.
    let out = run(&[
        "set",
        "Arith",
        "tcp@127.0.0.1:1",
        "state=inactive",
        "--registry",
        &url,
        "--base-path",
        base,
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a metadata query string"),
        "{}",
        stderr(&out)
    );
    // No such service, no such server, nothing to set, a bad pair.
    let out = run(&["describe", "Nope", "--registry", &url, "--base-path", base]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no server of \"Nope\""),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "set",
        "Arith",
        "127.0.0.1:9",
        "state=inactive",
        "--registry",
        &url,
        "--base-path",
        base,
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("tcp@127.0.0.1:2"), "{}", stderr(&out));
    let out = run(&[
        "set",
        "Arith",
        "127.0.0.1:2",
        "--registry",
        &url,
        "--base-path",
        base,
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nothing to set"), "{}", stderr(&out));
    let out = run(&[
        "set",
        "Arith",
        "127.0.0.1:2",
        "weight",
        "--registry",
        &url,
        "--base-path",
        base,
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    // Metadata past the limit (64 KiB) is refused before anything is written (a command line
    // holds at most 128 KiB per argument; the web UI's form gets the 10 MB case).
    let huge = format!("note={}", "x".repeat(100 << 10));
    let out = run(&[
        "set",
        "Arith",
        "127.0.0.1:2",
        &huge,
        "--registry",
        &url,
        "--base-path",
        base,
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("at most"), "{}", stderr(&out));
    let v = RegistryStore::get(&store, "/cli_bad/Arith/tcp@127.0.0.1:2")
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("weight=1&note=hello"));
    // --unset removes a key.
    let out = run(&[
        "set",
        "Arith",
        "127.0.0.1:2",
        "--unset",
        "note",
        "--registry",
        &url,
        "--base-path",
        base,
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = RegistryStore::get(&store, "/cli_bad/Arith/tcp@127.0.0.1:2")
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("weight=1"));
    registry.shutdown().await;
}
