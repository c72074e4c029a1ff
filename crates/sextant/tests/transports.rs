//! Every transport end to end: TLS and mutual TLS, HTTP CONNECT, WebSocket (ws, wss), QUIC,
//! reuseport, keepalive, the client's idle timeout, a user's own connector and incoming stream,
//! and the XClient over each.

mod transport_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use sextant::discovery::Peer2PeerDiscovery;
use sextant::transport::{Address, ClientTlsConfig, ServerTlsConfig, Stream};
use sextant::{Client, ClientOptions, Context, Error, Server, ServiceError, XClient};

use transport_common::{pki, Args, Reply};

/// `Arith.Mul`, and `Arith.Who`, which answers who called.
fn arith(builder: sextant::ServerBuilder) -> Server {
    let s = transport_common::arith(builder);
    // Who called: the peer's certificate common name, or "-".
    s.register_fn("Arith", "Who", |cx: Context, _: ()| async move {
        let cn = cx
            .peer_identity()
            .and_then(|i| i.common_name())
            .unwrap_or("-")
            .to_string();
        Ok::<_, ServiceError>(cn)
    })
    .unwrap();
    s
}

fn server_tls(pki: &pki::TestPki) -> ServerTlsConfig {
    ServerTlsConfig::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap()
}

fn client_tls(pki: &pki::TestPki) -> ClientTlsConfig {
    ClientTlsConfig::from_ca_pem(pki.ca.as_bytes()).unwrap()
}

async fn mul(client: &Client) -> i64 {
    let r: Reply = client
        .call("Arith", "Mul", &Args { a: 6, b: 7 })
        .await
        .unwrap();
    r.c
}

async fn check_network(server: Server, listen: &str, options: ClientOptions) {
    let addr = server.start(listen).await.unwrap();
    assert_eq!(
        addr.network(),
        Address::parse(listen).unwrap().network(),
        "{addr}"
    );
    let client = Client::connect(&addr, options.clone()).await.unwrap();
    assert_eq!(mul(&client).await, 42, "{addr}");
    // Many calls at once, replies in any order, over the one connection.
    let calls = (0..200i64).map(|i| {
        let c = client.clone();
        async move {
            let r: Reply = c.call("Arith", "Mul", &Args { a: i, b: 2 }).await.unwrap();
            assert_eq!(r.c, i * 2);
        }
    });
    futures::future::join_all(calls).await;
    // A large message crosses too (many TLS records, WebSocket messages, QUIC frames).
    let big = vec![7u8; 3 << 20];
    let echoed: sextant::Raw = client
        .call("Echo", "Echo", &sextant::Raw(big.clone().into()))
        .await
        .unwrap();
    assert_eq!(echoed.0.len(), big.len());
    // The XClient over the same network.
    let xc = XClient::builder("Arith")
        .discovery(Peer2PeerDiscovery::new(addr.to_string(), "").unwrap())
        .client_options(options)
        .build()
        .unwrap();
    let r: Reply = xc.call("Mul", &Args { a: 3, b: 5 }).await.unwrap();
    assert_eq!(r.c, 15);
    xc.close();
    client.close();
    server.shutdown(Duration::from_secs(5)).await.unwrap();
}

fn with_echo(s: Server) -> Server {
    s.register_fn("Echo", "Echo", |_cx: Context, b: sextant::Raw| async move {
        Ok::<_, ServiceError>(b)
    })
    .unwrap();
    s
}

#[tokio::test]
async fn tls_over_tcp() {
    let pki = pki::TestPki::new().unwrap();
    let server = with_echo(arith(Server::builder().tls(server_tls(&pki))));
    let opts = ClientOptions::default().tls(client_tls(&pki));
    check_network(server, "tcp@127.0.0.1:0", opts).await;
}

#[tokio::test]
async fn mutual_tls_shows_the_client_certificate_to_auth_and_handlers() {
    let pki = pki::TestPki::new().unwrap();
    let tls = transport_common::mutual_tls_server(&pki);
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    let server = arith(
        Server::builder()
            .tls(tls)
            .auth_fn_with_peer(move |_m, _t, peer| {
                let cn = peer
                    .identity()
                    .and_then(|i| i.common_name())
                    .unwrap_or("")
                    .to_string();
                s2.lock().unwrap().push(cn.clone());
                async move {
                    if cn == "client" {
                        Ok(())
                    } else {
                        Err(format!("certificate {cn:?} not allowed"))
                    }
                }
            }),
    );
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let tls = ClientTlsConfig::builder()
        .ca_pem(pki.ca.as_bytes())
        .unwrap()
        .identity_pem(pki.client.cert.as_bytes(), pki.client.key.as_bytes())
        .unwrap()
        .server_name("localhost")
        .build()
        .unwrap();
    let client = Client::connect(&addr, ClientOptions::default().tls(tls))
        .await
        .unwrap();
    assert_eq!(mul(&client).await, 42);
    let who: String = client.call("Arith", "Who", &()).await.unwrap();
    assert_eq!(who, "client");
    assert_eq!(seen.lock().unwrap()[0], "client");

    // Another certificate from the same CA gets in through TLS but not past the auth function.
    let other = pki.leaf("intruder", &[], true, false).unwrap();
    let tls = transport_common::client_with_cert(&pki, &other);
    let client = Client::connect(&addr, ClientOptions::default().tls(tls))
        .await
        .unwrap();
    let e = client
        .call::<_, Reply>("Arith", "Mul", &Args { a: 1, b: 1 })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("\"intruder\" not allowed"), "{e}");
    server.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn http_connect() {
    let server = with_echo(arith(Server::builder()));
    check_network(server, "http@127.0.0.1:0", ClientOptions::default()).await;
}

#[tokio::test]
async fn http_connect_over_tls() {
    let pki = pki::TestPki::new().unwrap();
    let server = with_echo(arith(Server::builder().tls(server_tls(&pki))));
    let opts = ClientOptions::default().tls(client_tls(&pki));
    check_network(server, "http@127.0.0.1:0", opts).await;
}

#[tokio::test]
async fn websocket() {
    let server = with_echo(arith(Server::builder()));
    check_network(server, "ws@127.0.0.1:0", ClientOptions::default()).await;
}

#[tokio::test]
async fn websocket_over_tls() {
    let pki = pki::TestPki::new().unwrap();
    let server = with_echo(arith(Server::builder().tls(server_tls(&pki))));
    let opts = ClientOptions::default().tls(client_tls(&pki));
    check_network(server, "wss@127.0.0.1:0", opts).await;
}

#[cfg(feature = "quic")]
#[tokio::test]
async fn quic() {
    let pki = pki::TestPki::new().unwrap();
    let server = with_echo(arith(Server::builder().tls(server_tls(&pki))));
    let opts = ClientOptions::default().tls(client_tls(&pki));
    check_network(server, "quic@127.0.0.1:0", opts).await;
}

#[cfg(feature = "kcp")]
#[tokio::test]
async fn kcp() {
    let config = sextant::transport::KcpConfig::new().with_pass_salt("rpcx-pass", "rpcx-salt");
    let server = with_echo(arith(Server::builder().kcp(config.clone())));
    let opts = ClientOptions::default().kcp(config);
    check_network(server, "kcp@127.0.0.1:0", opts).await;
}

#[tokio::test]
async fn reuseport_lets_two_servers_share_a_port() {
    let a = arith(Server::builder());
    let addr = a.start("reuseport@127.0.0.1:0").await.unwrap();
    let b = arith(Server::builder());
    let addr_b = b.start(addr.clone()).await.unwrap();
    assert_eq!(addr, addr_b);
    // A plain listener on the same port is refused: the port is taken by reuseport sockets.
    assert!(matches!(
        Server::new()
            .start(addr.with_network(sextant::transport::Network::Tcp))
            .await,
        Err(Error::Bind { .. })
    ));
    // Clients reach one or the other; with one shut down, the other still serves.
    let tcp = addr.with_network(sextant::transport::Network::Tcp);
    for _ in 0..5 {
        let c = Client::connect(&tcp, ClientOptions::default())
            .await
            .unwrap();
        assert_eq!(mul(&c).await, 42);
    }
    a.shutdown(Duration::from_secs(2)).await.unwrap();
    for _ in 0..5 {
        let c = Client::connect(&tcp, ClientOptions::default())
            .await
            .unwrap();
        assert_eq!(mul(&c).await, 42);
    }
    b.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn client_idle_timeout_closes_a_silent_connection() {
    // A peer that accepts and never sends a byte: a half-open connection, as seen from here.
    let ln = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = ln.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (s, _) = ln.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(s);
    });
    let opts = ClientOptions::default().idle_timeout(Duration::from_millis(200));
    let client = Client::connect(addr.to_string(), opts).await.unwrap();
    let call = client.call::<_, Reply>("Arith", "Mul", &Args { a: 1, b: 2 });
    let e = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the idle timeout did not fire")
        .unwrap_err();
    assert!(e.to_string().contains("idle_timeout"), "{e}");
    assert!(client.is_closed());
    hold.abort();
}

#[tokio::test]
async fn a_user_connector_and_a_user_incoming_stream() {
    let server = arith(Server::builder());
    // The server takes connections from a channel: here, in-memory pipes made by the connector.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<tokio::io::DuplexStream>>(8);
    let addr = server
        .start_incoming("tcp@10.1.2.3:9", tokio_stream_from(rx))
        .await
        .unwrap();
    assert_eq!(addr.to_string(), "tcp@10.1.2.3:9");
    let dialled = Arc::new(Mutex::new(Vec::<String>::new()));
    let d2 = dialled.clone();
    let connector = move |a: &Address| -> BoxFuture<'static, std::io::Result<Stream>> {
        d2.lock().unwrap().push(a.to_string());
        let tx = tx.clone();
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            tx.send(Ok(server))
                .await
                .map_err(|_| std::io::Error::other("server gone"))?;
            Ok(Stream::from_io(client))
        })
    };
    let client = Client::connect(&addr, ClientOptions::default().connector(connector))
        .await
        .unwrap();
    assert_eq!(mul(&client).await, 42);
    assert_eq!(dialled.lock().unwrap().as_slice(), ["tcp@10.1.2.3:9"]);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// A receiver as a `futures::Stream`.
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + Unpin + 'static {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

#[tokio::test]
async fn tcp_keepalive_is_on_by_default() {
    // Observed on the client's socket through a connector that dials as sextant does.
    let ln = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = ln.local_addr().unwrap();
    let accept = tokio::spawn(async move { ln.accept().await.unwrap().0 });
    let s = Stream::connect(&Address::from(addr), Duration::from_secs(1))
        .await
        .unwrap();
    let Stream::Tcp(tcp) = s else {
        panic!("a tcp stream")
    };
    let sock = socket2::SockRef::from(&tcp);
    assert!(sock.keepalive().unwrap());
    assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
    assert!(tcp.nodelay().unwrap());
    // And off when asked.
    let opts = ClientOptions::default().tcp_keepalive(None);
    let accept2 = accept;
    let _server_side = accept2.await.unwrap();
    let ln = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = ln.local_addr().unwrap();
    let s = Stream::connect_with(&Address::from(addr), &opts)
        .await
        .unwrap();
    let Stream::Tcp(tcp) = s else {
        panic!("a tcp stream")
    };
    assert!(!socket2::SockRef::from(&tcp).keepalive().unwrap());
}

#[tokio::test]
async fn the_server_sets_keepalive_on_accepted_connections() {
    use sextant::transport::Listener;
    for (options, want) in [
        (
            sextant::ServerOptions::default(),
            Some(Duration::from_secs(180)),
        ),
        (
            Server::builder()
                .tcp_keepalive(None)
                .build()
                .options()
                .clone(),
            None,
        ),
    ] {
        let listener = Listener::bind_with(&"tcp@127.0.0.1:0".parse().unwrap(), &options)
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr.addr()).await.unwrap();
        let accepted = listener
            .accept()
            .await
            .unwrap()
            .finish(Duration::from_secs(1))
            .await
            .unwrap();
        let Stream::Tcp(tcp) = accepted.stream else {
            panic!("a tcp stream")
        };
        let sock = socket2::SockRef::from(&tcp);
        assert_eq!(sock.keepalive().unwrap(), want.is_some());
        if let Some(t) = want {
            assert_eq!(sock.tcp_keepalive_time().unwrap(), t);
        }
    }
}
