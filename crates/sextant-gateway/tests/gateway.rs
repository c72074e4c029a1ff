//! The gateway against real sextant servers on 127.0.0.1, found through the embedded registry
//! (in this process) or a fixed list: HTTP invoke, JSON-RPC, errors and statuses, bounds, HTTP/2,
//! the agent mode and shutdown. No external service.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use sextant::discovery::{MultipleServersDiscovery, Peer2PeerDiscovery};
use sextant::{KVPair, Server};
use sextant_gateway::{Gateway, GatewayError, GatewayMode};
use sextant_registry::{
    DiscoveryOptions, EmbeddedRegistry, EmbeddedRegistryOptions, EmbeddedStore, RegistryDiscovery,
    RegistryOptions, RegistryPlugin,
};

const BASE: &str = "/gateway_test";

/// The embedded registry, two `Arith` servers publishing to it, and a gateway built by `build`
/// from a registry discovery (its template).
struct Fleet {
    registry: EmbeddedRegistry,
    servers: Vec<(Server, u16)>,
    gateway: Gateway,
}

impl Fleet {
    async fn start(
        build: impl FnOnce(sextant_gateway::GatewayBuilder) -> sextant_gateway::GatewayBuilder,
    ) -> Fleet {
        let registry = EmbeddedRegistry::bind("127.0.0.1:0", EmbeddedRegistryOptions::default())
            .await
            .unwrap();
        let store = || {
            EmbeddedStore::new(&registry.url())
                .unwrap()
                .with_long_poll(Duration::from_secs(2))
        };
        let mut servers = Vec::new();
        for _ in 0..2 {
            let plugin = RegistryPlugin::start(
                store(),
                RegistryOptions::default()
                    .base_path(BASE)
                    .update_interval(Duration::from_secs(1)),
            )
            .await
            .unwrap();
            servers.push(arith_server(with_plugin(plugin), Duration::ZERO).await);
        }
        // Any discovery on the registry is a template: the gateway clones it per service.
        let template =
            RegistryDiscovery::start(store(), BASE, "Arith", DiscoveryOptions::default())
                .await
                .unwrap();
        for _ in 0..200 {
            if sextant::ServiceDiscovery::get_services(&template).len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let gateway = build(Gateway::builder(template).listen("127.0.0.1:0"))
            .start()
            .await
            .unwrap();
        Fleet {
            registry,
            servers,
            gateway,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.gateway.local_addr()
    }

    async fn stop(self) {
        self.gateway.shutdown(Duration::from_secs(5)).await.unwrap();
        for (s, _) in &self.servers {
            s.shutdown(Duration::from_secs(2)).await.unwrap();
        }
        self.registry.shutdown().await;
    }
}

/// A gateway on a fixed list of servers (every service path has servers).
async fn fixed_gateway(
    servers: &[u16],
    build: impl FnOnce(sextant_gateway::GatewayBuilder) -> sextant_gateway::GatewayBuilder,
) -> Gateway {
    let pairs = servers
        .iter()
        .map(|p| KVPair::new(format!("tcp@127.0.0.1:{p}"), ""))
        .collect();
    let template = MultipleServersDiscovery::new(pairs).unwrap();
    build(Gateway::builder(template).listen("127.0.0.1:0"))
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn http_invoke_through_the_gateway_spreads_over_both_servers() {
    let fleet = Fleet::start(|b| b).await;
    let mut c = H1::connect(fleet.addr()).await;
    let mut ports: HashMap<String, usize> = HashMap::new();
    for i in 0..20 {
        let mut h = invoke_headers("Mul");
        h.push(("X-RPCX-MessageID", "77"));
        let r = c
            .send(request(
                "POST",
                "/",
                &h,
                format!(r#"{{"A":{i},"B":3}}"#).as_bytes(),
            ))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json(), serde_json::json!({ "C": i * 3 }));
        assert_eq!(r.header("x-rpcx-messageid"), Some("77"));
        assert_eq!(r.header("x-rpcx-servicepath"), Some("Arith"));
        assert_eq!(r.header("x-rpcx-servicemethod"), Some("Mul"));
        assert_eq!(r.header("x-rpcx-serializetype"), Some("1"));
        assert!(r.header("x-rpcx-messagestatustype").is_none());
        // A gateway does not show its callers where the servers are.
        assert_eq!(r.meta("__ServerAddress"), None, "{r:?}");
        *ports.entry(r.meta("port").unwrap()).or_default() += 1;
    }
    // RoundRobin: both servers, evenly.
    let expected: HashMap<String, usize> = fleet
        .servers
        .iter()
        .map(|(_, p)| (p.to_string(), 10))
        .collect();
    assert_eq!(ports, expected);

    // The service from the URL path, GET and PUT too, and request metadata passed on.
    for method in ["GET", "PUT"] {
        let h = [
            ("X-RPCX-SerializeType", "1"),
            ("X-RPCX-ServiceMethod", "Mul"),
        ];
        let r = c
            .send(request(method, "/Arith", &h, br#"{"A":6,"B":7}"#))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.text(), r#"{"C":42}"#);
    }
    assert_eq!(fleet.gateway.services(), ["Arith"]);

    // A heartbeat without a service is answered by the gateway itself: a health check.
    let h = [("X-RPCX-SerializeType", "0"), ("X-RPCX-Heartbeat", "true")];
    let r = c.send(request("POST", "/", &h, b"ping")).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "ping");

    // Another method than GET, POST, PUT.
    let r = c
        .send(request("DELETE", "/", &invoke_headers("Mul"), b""))
        .await
        .unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST, PUT"));
    fleet.stop().await;
}

#[tokio::test]
async fn jsonrpc_through_the_gateway() {
    let fleet = Fleet::start(|b| b).await;
    let mut c = H1::connect(fleet.addr()).await;
    let rpc = |body: &str| request("POST", "/", &[("X-JSONRPC-2.0", "true")], body.as_bytes());

    let r = c
        .send(rpc(
            r#"{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":6,"B":7},"id":1}"#,
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"jsonrpc":"2.0","result":{"C":42},"id":1})
    );

    // A service error is -32603 with the service's text.
    let r = c
        .send(rpc(
            r#"{"jsonrpc":"2.0","method":"Arith.Div","params":{"A":6,"B":0},"id":"x"}"#,
        ))
        .await
        .unwrap();
    let v = r.json();
    assert_eq!(v["error"]["code"], -32603, "{v}");
    assert_eq!(v["error"]["message"], "divide by zero");
    assert_eq!(v["id"], "x");

    // A batch, with an unknown service and a notification in it.
    let r = c
        .send(rpc(
            r#"[{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":2,"B":3},"id":1},
                {"jsonrpc":"2.0","method":"Nope.Mul","params":{},"id":2},
                {"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":1,"B":1}}]"#,
        ))
        .await
        .unwrap();
    let v = r.json();
    let answers = v.as_array().unwrap();
    assert_eq!(answers.len(), 2, "{v}");
    assert_eq!(answers[0]["result"]["C"], 6);
    assert_eq!(answers[1]["error"]["code"], -32603);
    let text = answers[1]["error"]["message"].as_str().unwrap();
    assert!(
        text.contains("no server available") && text.contains("Nope"),
        "{text}"
    );

    // An invalid service path.
    let r = c
        .send(rpc(
            r#"{"jsonrpc":"2.0","method":"a/b.Mul","params":{},"id":3}"#,
        ))
        .await
        .unwrap();
    let v = r.json();
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("invalid service path"));
    fleet.stop().await;
}

#[tokio::test]
async fn errors_have_statuses_and_the_server_s_error_headers() {
    let fleet = Fleet::start(|b| b).await;
    let addr = fleet.addr();

    // A service error: 500 with the two error headers, exactly as a server answers it.
    let r = send(
        addr,
        request("POST", "/", &invoke_headers("Div"), br#"{"A":1,"B":0}"#),
    )
    .await;
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(r.header("x-rpcx-messagestatustype"), Some("Error"));
    assert_eq!(r.header("x-rpcx-errormessage"), Some("divide by zero"));
    assert!(r.body.is_empty());

    // An unknown method is the server's error too.
    let r = send(
        addr,
        request("POST", "/", &invoke_headers("Nope"), br#"{}"#),
    )
    .await;
    assert_eq!(r.status, 500, "{r:?}");
    assert!(r
        .header("x-rpcx-errormessage")
        .unwrap()
        .contains("can't find method"));

    // An unknown service: no server in the registry. 503, and nothing kept for it.
    for _ in 0..3 {
        let h = [
            ("X-RPCX-SerializeType", "1"),
            ("X-RPCX-ServicePath", "Nope"),
            ("X-RPCX-ServiceMethod", "Mul"),
        ];
        let r = send(addr, request("POST", "/", &h, b"{}")).await;
        assert_eq!(r.status, 503, "{r:?}");
        assert_eq!(r.header("x-rpcx-messagestatustype"), Some("Error"));
        let text = r.header("x-rpcx-errormessage").unwrap();
        assert!(text.contains("no server available for \"Nope\""), "{text}");
        assert_eq!(r.text().trim(), text);
    }
    assert_eq!(fleet.gateway.services(), ["Arith"]);

    // A missing header: 400 naming it.
    let h = [
        ("X-RPCX-ServicePath", "Arith"),
        ("X-RPCX-ServiceMethod", "Mul"),
    ];
    let r = send(addr, request("POST", "/", &h, b"{}")).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("X-RPCX-SerializeType"), "{}", r.text());
    fleet.stop().await;
}

#[tokio::test]
async fn invalid_service_paths_are_400() {
    let (server, port) = arith_server(None, Duration::ZERO).await;
    let gateway = fixed_gateway(&[port], |b| b).await;
    let long = "a".repeat(129);
    for path in ["a/b", "../etc", "Ari th", "x:y", "caf\u{e9}", long.as_str()] {
        let h = [
            ("X-RPCX-SerializeType", "1"),
            ("X-RPCX-ServicePath", path),
            ("X-RPCX-ServiceMethod", "Mul"),
        ];
        let req = http::Request::builder()
            .method("POST")
            .uri("http://gateway/")
            .header(h[0].0, h[0].1)
            .header(
                h[1].0,
                http::HeaderValue::from_bytes(h[1].1.as_bytes()).unwrap(),
            )
            .header(h[2].0, h[2].1)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let r = send(gateway.local_addr(), req).await;
        assert_eq!(r.status, 400, "{path}: {r:?}");
        // Not ASCII: refused by the header parser before the path check.
        let why = if path.is_ascii() {
            "invalid service path"
        } else {
            "X-RPCX-ServicePath"
        };
        assert!(r.text().contains(why), "{}", r.text());
        assert_eq!(r.header("x-rpcx-messagestatustype"), Some("Error"));
    }
    // From the URL path too.
    let h = [
        ("X-RPCX-SerializeType", "1"),
        ("X-RPCX-ServiceMethod", "Mul"),
    ];
    let r = send(gateway.local_addr(), request("POST", "/Arith/x", &h, b"{}")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(gateway.services().is_empty());
    gateway.shutdown(Duration::from_secs(2)).await.unwrap();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let (server, port) = arith_server(None, Duration::ZERO).await;
    let gateway = fixed_gateway(&[port], |b| b.max_body_size(1024)).await;
    let addr = gateway.local_addr();
    let big = format!(r#"{{"A":2,"B":3,"pad":"{}"}}"#, "x".repeat(2000));
    let r = send(
        addr,
        request("POST", "/", &invoke_headers("Mul"), big.as_bytes()),
    )
    .await;
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.text().contains("larger than the limit of 1024 bytes"));
    assert_eq!(r.header("connection"), Some("close"));
    // JSON-RPC too.
    let body = format!(
        r#"{{"jsonrpc":"2.0","method":"Arith.Mul","params":{{"A":1,"B":1,"p":"{}"}},"id":1}}"#,
        "x".repeat(2000)
    );
    let r = send(
        addr,
        request("POST", "/", &[("X-JSONRPC-2.0", "true")], body.as_bytes()),
    )
    .await;
    assert_eq!(r.status, 413);
    // Under the limit: served.
    let r = send(
        addr,
        request("POST", "/", &invoke_headers("Mul"), br#"{"A":2,"B":3}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    gateway.shutdown(Duration::from_secs(2)).await.unwrap();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn service_paths_are_bounded() {
    // A fixed list serves every service path: each one would get an XClient.
    let (server, port) = arith_server(None, Duration::ZERO).await;
    let gateway = fixed_gateway(&[port], |b| {
        b.max_services(3)
            .service_idle_timeout(Duration::from_millis(400))
    })
    .await;
    let addr = gateway.local_addr();
    let call = |service: String| {
        let h = [
            ("X-RPCX-SerializeType", "1"),
            ("X-RPCX-ServiceMethod", "Mul"),
        ];
        send(
            addr,
            request("POST", &format!("/{service}"), &h, br#"{"A":2,"B":3}"#),
        )
    };
    assert_eq!(call("Arith".into()).await.status, 200);
    for i in 0..2 {
        // The server has no such service: its error, 500.
        let r = call(format!("Random{i}")).await;
        assert_eq!(r.status, 500, "{r:?}");
    }
    // The fourth service path is refused, with a text saying why.
    let r = call("Random2".into()).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.text().contains("too many service paths"), "{}", r.text());
    assert!(r.text().contains("at most 3"), "{}", r.text());
    assert_eq!(gateway.services().len(), 3);
    // The ones it has are still served.
    assert_eq!(call("Arith".into()).await.status, 200);

    // An attacker's flood of random paths leaves the table as it is.
    let mut refused = 0;
    for i in 0..200 {
        if call(format!("Flood{i}")).await.status == 503 {
            refused += 1;
        }
    }
    assert_eq!(refused, 200);
    assert_eq!(gateway.services().len(), 3);

    // Idle XClients are dropped, making room again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = call("Later".into()).await;
        if r.status == 500 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(
            tokio::time::Instant::now() < deadline,
            "idle XClients never dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gateway.services().contains(&"Later".to_string()));
    gateway.shutdown(Duration::from_secs(2)).await.unwrap();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn random_service_paths_on_a_registry_leave_nothing_behind() {
    let fleet = Fleet::start(|b| b.max_services(4)).await;
    for i in 0..50 {
        let h = [
            ("X-RPCX-SerializeType", "1"),
            ("X-RPCX-ServiceMethod", "Mul"),
        ];
        let r = send(fleet.addr(), request("POST", &format!("/R{i}"), &h, b"{}")).await;
        assert_eq!(r.status, 503, "{r:?}");
        assert!(r.text().contains("no server available"), "{}", r.text());
    }
    assert!(fleet.gateway.services().is_empty());
    let r = send(
        fleet.addr(),
        request("POST", "/", &invoke_headers("Mul"), br#"{"A":1,"B":2}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    fleet.stop().await;
}

type H2Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

async fn h2(addr: SocketAddr) -> H2Sender {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(s),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    sender
}

#[tokio::test]
async fn http2_streams_through_the_gateway() {
    let fleet = Fleet::start(|b| b.max_concurrent_streams(8)).await;
    let mut sender = h2(fleet.addr()).await;
    // One call first, so that the client has the gateway's settings (8 streams at once).
    let res = sender
        .send_request(request(
            "POST",
            "/",
            &invoke_headers("Mul"),
            br#"{"A":3,"B":3}"#,
        ))
        .await
        .unwrap();
    assert_eq!(
        (res.status().as_u16(), res.version()),
        (200, http::Version::HTTP_2)
    );
    // 200 concurrent streams on one connection: 8 at a time, every one answered.
    let mut tasks = Vec::new();
    for i in 0..200i64 {
        let mut s = sender.clone();
        tasks.push(tokio::spawn(async move {
            s.ready().await.ok()?;
            let body = format!(r#"{{"A":{i},"B":2}}"#);
            let res = s
                .send_request(request(
                    "POST",
                    "/",
                    &invoke_headers("Mul"),
                    body.as_bytes(),
                ))
                .await
                .ok()?;
            let ok = res.status() == 200 && res.version() == http::Version::HTTP_2;
            let body = res.into_body().collect().await.ok()?.to_bytes();
            (ok && body == format!(r#"{{"C":{}}}"#, i * 2)).then_some(())
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if let Ok(Some(())) = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 200);
    // JSON-RPC over HTTP/2.
    let mut s = sender.clone();
    let res = s
        .send_request(request(
            "POST",
            "/",
            &[("X-JSONRPC-2.0", "true")],
            br#"{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":4,"B":5},"id":9}"#,
        ))
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"jsonrpc":"2.0","result":{"C":20},"id":9}"#);
    fleet.stop().await;
}

#[tokio::test]
async fn unreachable_servers_are_503_and_slow_calls_504() {
    // A closed port: the dial fails (on every attempt of Failover).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let template = Peer2PeerDiscovery::new(format!("tcp@127.0.0.1:{closed}"), "").unwrap();
    let gateway = Gateway::builder(template)
        .listen("127.0.0.1:0")
        .start()
        .await
        .unwrap();
    let r = send(
        gateway.local_addr(),
        request("POST", "/", &invoke_headers("Mul"), br#"{"A":1,"B":2}"#),
    )
    .await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("x-rpcx-messagestatustype"), Some("Error"));
    let text = r.header("x-rpcx-errormessage").unwrap();
    assert!(text.contains("could be reached"), "{text}");
    // A gateway does not tell remote callers the servers' addresses...
    assert!(!text.contains(&closed.to_string()), "{text}");
    gateway.shutdown(Duration::from_secs(1)).await.unwrap();

    // ... an agent does.
    let template = Peer2PeerDiscovery::new(format!("tcp@127.0.0.1:{closed}"), "").unwrap();
    let agent = Gateway::builder(template)
        .mode(GatewayMode::Agent)
        .listen("127.0.0.1:0")
        .start()
        .await
        .unwrap();
    let r = send(
        agent.local_addr(),
        request("POST", "/", &invoke_headers("Mul"), br#"{"A":1,"B":2}"#),
    )
    .await;
    assert_eq!(r.status, 503, "{r:?}");
    let text = r.header("x-rpcx-errormessage").unwrap();
    assert!(text.contains(&closed.to_string()), "{text}");
    agent.shutdown(Duration::from_secs(1)).await.unwrap();

    // The call timeout: 504 with the error headers.
    let (server, port) = arith_server(None, Duration::ZERO).await;
    let gateway = fixed_gateway(&[port], |b| b.call_timeout(Duration::from_millis(300))).await;
    let started = std::time::Instant::now();
    let r = send(
        gateway.local_addr(),
        request("POST", "/", &invoke_headers("Slow"), br#"{"A":3000,"B":1}"#),
    )
    .await;
    assert_eq!(r.status, 504, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(r.header("x-rpcx-messagestatustype"), Some("Error"));
    assert!(r
        .header("x-rpcx-errormessage")
        .unwrap()
        .contains("timed out"));
    gateway.shutdown(Duration::from_secs(1)).await.unwrap();
    server.shutdown(Duration::from_millis(100)).await.ok();
}

#[tokio::test]
async fn an_agent_listens_on_loopback_only() {
    let (server, port) = arith_server(None, Duration::ZERO).await;
    let template = || Peer2PeerDiscovery::new(format!("tcp@127.0.0.1:{port}"), "").unwrap();
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let e = Gateway::builder(template())
            .mode(GatewayMode::Agent)
            .listen(addr)
            .start()
            .await
            .unwrap_err();
        assert!(matches!(e, GatewayError::NonLoopback { .. }), "{e}");
        assert!(e.to_string().contains("allow_non_loopback"), "{e}");
    }
    // A listener bound by the caller is checked too.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent = Gateway::builder(template())
        .mode(GatewayMode::Agent)
        .start_on(l)
        .await
        .unwrap();
    assert_eq!(agent.mode(), GatewayMode::Agent);
    // An agent shows the servers' addresses, as an rpcx client on the host would see them.
    let r = send(
        agent.local_addr(),
        request("POST", "/", &invoke_headers("Mul"), br#"{"A":6,"B":7}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    let server_address = r
        .meta("__ServerAddress")
        .expect("__ServerAddress in X-RPCX-Meta");
    // Query-string encoded: tcp%40127.0.0.1%3APORT.
    assert!(server_address.ends_with(&format!("{port}")), "{r:?}");
    agent.shutdown(Duration::from_secs(1)).await.unwrap();

    // Bad settings are refused before anything listens.
    let e = Gateway::builder(template())
        .listen("127.0.0.1:0")
        .max_services(0)
        .start()
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::Config(_)), "{e}");
    let e = Gateway::builder(template())
        .listen("127.0.0.1:0")
        .select_mode(sextant::SelectMode::Closest)
        .start()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Closest"), "{e}");
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_calls_finish_then_stops() {
    let (server, port) = arith_server(None, Duration::ZERO).await;
    let gateway = fixed_gateway(&[port], |b| b).await;
    let addr = gateway.local_addr();
    let slow = tokio::spawn(async move {
        send(
            addr,
            request("POST", "/", &invoke_headers("Slow"), br#"{"A":400,"B":5}"#),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(gateway.services(), ["Arith"]);
    gateway.shutdown(Duration::from_secs(5)).await.unwrap();
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), r#"{"C":5}"#);
    assert!(gateway.is_shutting_down());
    assert!(gateway.services().is_empty());
    // No longer listening.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    gateway.stopped().await;
    // Again: a no-op.
    gateway.shutdown(Duration::from_secs(1)).await.unwrap();

    // A call longer than the grace period is dropped, and the error says so.
    let gateway = fixed_gateway(&[port], |b| b).await;
    let addr = gateway.local_addr();
    let slow = tokio::spawn(async move {
        let mut c = H1::connect(addr).await;
        c.send(request(
            "POST",
            "/",
            &invoke_headers("Slow"),
            br#"{"A":3000,"B":5}"#,
        ))
        .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let e = gateway
        .shutdown(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::ShutdownTimeout { .. }), "{e}");
    assert!(slow.await.unwrap().is_err());
    server.shutdown(Duration::from_millis(100)).await.ok();
}
