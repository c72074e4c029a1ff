//! The mDNS registry on this machine's loopback interface: multicast on 127.0.0.1 works in this
//! sandbox (a socket joins 224.0.0.251 on lo and receives its own datagrams), so every test
//! runs real mDNS daemons (`mdns-sd`) restricted to loopback, on a port of its own so tests do
//! not hear each other or other mDNS traffic.

use std::net::UdpSocket;
use std::time::Duration;

use mdns_sd::{ServiceDaemon, ServiceInfo, TxtProperty};
use sextant::{
    FailMode, RegisterOptions, SelectMode, Server, ServiceDiscovery, XClient, XClientOptions,
};
use sextant_mdns::{MdnsDiscovery, MdnsOptions, MdnsRegisterPlugin, MdnsStore, SERVICE_TYPE};
use sextant_registry::{DiscoveryOptions, QueryValues, RegistryOptions};
use sextant_registry_testkit::{
    call_mul, init_logging, wait_until, Args, Arith, IsolatedServer, Reply,
};

const BOUND: Duration = Duration::from_secs(20);

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn options(port: u16) -> MdnsOptions {
    MdnsOptions::default()
        .port(port)
        .loopback_only(true)
        .verify(Duration::from_millis(500), Duration::from_millis(500))
        .browse_wait(Duration::from_millis(300))
}

fn plugin_options() -> RegistryOptions {
    RegistryOptions::default()
        .update_interval(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(2))
}

async fn start_server(port: u16, services: &[(&str, &str)]) -> IsolatedServer {
    let services: Vec<(String, String)> = services
        .iter()
        .map(|(n, m)| (n.to_string(), m.to_string()))
        .collect();
    IsolatedServer::start(move || async move {
        let plugin = MdnsRegisterPlugin::start(MdnsStore::new(options(port)), plugin_options())
            .await
            .expect("start the mDNS plugin");
        let server = Server::new();
        server.add_plugin(plugin);
        for (name, metadata) in services {
            server
                .register_with(
                    Arith,
                    RegisterOptions::default().name(name).metadata(metadata),
                )
                .unwrap();
        }
        let address = server.start("tcp@127.0.0.1:0").await.unwrap();
        (server, address)
    })
    .await
}

async fn discover(port: u16, service: &str) -> MdnsDiscovery {
    MdnsDiscovery::start(
        MdnsStore::new(options(port)),
        "/rpcx_test",
        service,
        DiscoveryOptions::default().request_timeout(Duration::from_secs(3)),
    )
    .await
    .expect("start the mDNS discovery")
}

fn addresses(d: &MdnsDiscovery) -> Vec<String> {
    d.get_services().iter().map(|p| p.key.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdns_register_discover_call() {
    init_logging();
    let port = free_udp_port();
    let server = start_server(port, &[("Arith", "weight=7")]).await;
    let address = server.address().to_string();
    let d = discover(port, "Arith").await;
    wait_until("the server is discovered", BOUND, || async {
        addresses(&d) == vec![address.clone()]
    })
    .await;
    let v = QueryValues::parse(&d.get_services()[0].value).unwrap();
    assert_eq!(v.get("weight"), Some("7"));
    assert_eq!(call_mul(&address, 10, 20).await.unwrap(), 200);
    wait_until(
        "a refresh re-announces with rate figures",
        BOUND,
        || async {
            d.get_services()
                .first()
                .is_some_and(|p| p.value.contains("calls=") && p.value.contains("weight=7"))
        },
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdns_graceful_shutdown_removes_at_once() {
    init_logging();
    let port = free_udp_port();
    let server = start_server(port, &[("Arith", "")]).await;
    let address = server.address().to_string();
    // Verification far apart: only the goodbye packets can remove it quickly.
    let d = MdnsDiscovery::start(
        MdnsStore::new(options(port).verify(Duration::from_secs(60), Duration::from_secs(2))),
        "/rpcx_test",
        "Arith",
        DiscoveryOptions::default(),
    )
    .await
    .unwrap();
    wait_until("discovered", BOUND, || async {
        addresses(&d) == vec![address.clone()]
    })
    .await;
    server.shutdown().await;
    wait_until(
        "goodbye packets remove it",
        Duration::from_secs(10),
        || async { addresses(&d).is_empty() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdns_crash_disappears_after_verification() {
    init_logging();
    let port = free_udp_port();
    let server = start_server(port, &[("Arith", "")]).await;
    let address = server.address().to_string();
    let d = discover(port, "Arith").await;
    wait_until("discovered", BOUND, || async {
        addresses(&d) == vec![address.clone()]
    })
    .await;
    // The server's store is dropped with its runtime: it leaves without goodbye packets, and
    // the next verification finds nobody answering.
    server.kill();
    wait_until("the silent server is dropped", BOUND, || async {
        addresses(&d).is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdns_two_servers_groups_through_an_xclient() {
    init_logging();
    let port = free_udp_port();
    let a = start_server(port, &[("Arith", "group=a")]).await;
    let b = start_server(port, &[("Arith", "group=b")]).await;
    let d = discover(port, "Arith").await;
    wait_until("both discovered", BOUND, || async {
        addresses(&d).len() == 2
    })
    .await;
    let xclient = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .select_mode(SelectMode::RoundRobin)
        .options(XClientOptions::default().group("b"))
        .discovery(discover(port, "Arith").await)
        .build()
        .unwrap();
    wait_until("the XClient sees group b", BOUND, || async {
        xclient.servers().len() == 1
    })
    .await;
    for _ in 0..5 {
        let r = xclient
            .call_with::<_, Reply>("Mul", &Args { a: 3, b: 4 }, sextant::CallOptions::new())
            .await
            .unwrap();
        assert_eq!(r.reply.c, 12);
        assert_eq!(
            r.metadata.get("__ServerAddress"),
            Some(b.address().to_string().as_str())
        );
    }
    xclient.close();
    a.shutdown().await;
    b.shutdown().await;
}

/// One server, two services: unregistering one re-announces the instance without it; the other
/// stays discoverable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdns_unregister_one_service_keeps_the_other() {
    init_logging();
    let port = free_udp_port();
    let server = start_server(port, &[("Arith", ""), ("Echo", "")]).await;
    let address = server.address().to_string();
    let arith = discover(port, "Arith").await;
    let echo = discover(port, "Echo").await;
    wait_until("both services discovered", BOUND, || async {
        addresses(&arith) == vec![address.clone()] && addresses(&echo) == vec![address.clone()]
    })
    .await;
    server.server().unregister("Echo").unwrap();
    wait_until("Echo is gone", BOUND, || async {
        addresses(&echo).is_empty()
    })
    .await;
    assert_eq!(addresses(&arith), vec![address.clone()]);
    server.shutdown().await;
}

/// Instances announced by others with garbage are skipped: no address, an address that is not
/// one, a value that is not a query string. A valid one next to them is listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdns_bad_entries_are_skipped() {
    init_logging();
    let port = free_udp_port();
    let daemon = ServiceDaemon::new_with_port(port).unwrap();
    daemon.disable_interface(mdns_sd::IfKind::All).unwrap();
    daemon
        .enable_interface(mdns_sd::IfKind::LoopbackV4)
        .unwrap();
    let announce = |name: &str, props: Vec<TxtProperty>| {
        let mut info =
            ServiceInfo::new(SERVICE_TYPE, name, "garbage.local.", "127.0.0.1", 1, props).unwrap();
        info.set_requires_probe(false);
        daemon.register(info).unwrap();
    };
    announce(
        "no-addr",
        vec![TxtProperty::from(("/rpcx_test/Arith", "weight=1"))],
    );
    announce(
        "bad-addr",
        vec![
            TxtProperty::from(("addr", "not-an-address")),
            TxtProperty::from(("/rpcx_test/Arith", "weight=1")),
        ],
    );
    announce(
        "bad-value",
        vec![
            TxtProperty::from(("addr", "tcp@127.0.0.1:5")),
            TxtProperty::from(("/rpcx_test/Arith", "a=%zz")),
        ],
    );
    announce(
        "good",
        vec![
            TxtProperty::from(("addr", "tcp@127.0.0.1:4")),
            TxtProperty::from(("/rpcx_test/Arith", "weight=5")),
        ],
    );
    let d = discover(port, "Arith").await;
    wait_until("the valid instance is listed", BOUND, || async {
        addresses(&d) == vec!["tcp@127.0.0.1:4".to_string()]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(addresses(&d), vec!["tcp@127.0.0.1:4".to_string()]);
    let _ = daemon.shutdown();
}
