//! Bad input on every transport gets a clear error and harms nothing else: plain rpcx on a TLS
//! port and TLS on a plain one, untrusted, expired and wrong-host certificates, a missing client
//! certificate, handshakes that never finish, CONNECT to another path, an oversized WebSocket
//! message and a close mid-message, a QUIC client with another ALPN.

mod transport_common;

use std::time::Duration;

use sextant::transport::{ClientTlsConfig, ServerTlsConfig};
use sextant::{Client, ClientOptions, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use transport_common::{pki, Args, Reply};

use transport_common::arith;

fn tls_server(pki: &pki::TestPki) -> sextant::ServerBuilder {
    Server::builder().tls(
        ServerTlsConfig::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap(),
    )
}

fn trusting(pki: &pki::TestPki) -> ClientOptions {
    ClientOptions::default().tls(ClientTlsConfig::from_ca_pem(pki.ca.as_bytes()).unwrap())
}

async fn mul_ok(addr: &sextant::Address, opts: ClientOptions) {
    let c = Client::connect(addr, opts).await.unwrap();
    let r: Reply = c.call("Arith", "Mul", &Args { a: 6, b: 7 }).await.unwrap();
    assert_eq!(r.c, 42);
    c.close();
}

/// Reads until the peer closes (or errors); panics if it stays open past `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) {
    let mut b = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server kept the connection open");
}

fn capture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../testdata/wire/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    hex_decode(std::fs::read_to_string(path).unwrap().trim())
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn plain_rpcx_on_a_tls_port_is_closed_and_tls_clients_go_on() {
    let pki = pki::TestPki::new().unwrap();
    let server = arith(tls_server(&pki));
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let mut raw = TcpStream::connect(addr.addr()).await.unwrap();
    raw.write_all(&capture("go-req-arith-mul-msgpack-seq1"))
        .await
        .unwrap();
    closed_within(&mut raw, Duration::from_secs(5)).await;
    mul_ok(&addr, trusting(&pki)).await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn tls_on_a_plain_port_fails_clearly() {
    let pki = pki::TestPki::new().unwrap();
    let server = arith(Server::builder());
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let e = Client::connect(&addr, trusting(&pki)).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("TLS"), "{text}");
    assert!(e.is_retryable());
    mul_ok(&addr, ClientOptions::default()).await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn untrusted_expired_and_wrong_host_certificates_say_which() {
    let pki = pki::TestPki::new().unwrap();
    let other_ca = pki::TestPki::new().unwrap();
    let server = arith(tls_server(&pki));
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let e = Client::connect(&addr, trusting(&other_ca))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not trusted"), "{e}");

    let expired = pki.leaf("localhost", &["127.0.0.1"], false, true).unwrap();
    let server2 =
        arith(Server::builder().tls(
            ServerTlsConfig::from_pem(expired.cert.as_bytes(), expired.key.as_bytes()).unwrap(),
        ));
    let addr2 = server2.start("tcp@127.0.0.1:0").await.unwrap();
    let e = Client::connect(&addr2, trusting(&pki))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("expired"), "{e}");

    let elsewhere = pki
        .leaf("elsewhere", &["elsewhere.example"], false, false)
        .unwrap();
    let server3 = arith(Server::builder().tls(
        ServerTlsConfig::from_pem(elsewhere.cert.as_bytes(), elsewhere.key.as_bytes()).unwrap(),
    ));
    let addr3 = server3.start("tcp@127.0.0.1:0").await.unwrap();
    let e = Client::connect(&addr3, trusting(&pki))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not valid for the name"), "{e}");
    // The name can be set apart from the address dialled (SNI): then it is accepted.
    let tls = ClientTlsConfig::builder()
        .ca_pem(pki.ca.as_bytes())
        .unwrap()
        .server_name("elsewhere.example")
        .build()
        .unwrap();
    mul_ok(&addr3, ClientOptions::default().tls(tls)).await;
    for s in [server, server2, server3] {
        s.shutdown(Duration::from_secs(2)).await.unwrap();
    }
}

#[tokio::test]
async fn a_missing_client_certificate_is_refused_when_required() {
    let pki = pki::TestPki::new().unwrap();
    let tls = transport_common::mutual_tls_server(&pki);
    let server = arith(Server::builder().tls(tls));
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    // TLS 1.3: the client's handshake ends before the server checks its certificate, so the
    // refusal shows on the first call (or on connect, if the alert is already there).
    let err = match Client::connect(&addr, trusting(&pki)).await {
        Err(e) => e.to_string(),
        Ok(c) => c
            .call::<_, Reply>("Arith", "Mul", &Args { a: 1, b: 1 })
            .await
            .unwrap_err()
            .to_string(),
    };
    assert!(err.contains("client certificate"), "{err}");
    let with_cert = transport_common::client_with_cert(&pki, &pki.client);
    mul_ok(&addr, ClientOptions::default().tls(with_cert)).await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn a_thousand_unfinished_handshakes_are_cut_and_others_are_served() {
    let pki = pki::TestPki::new().unwrap();
    let server = arith(tls_server(&pki).handshake_timeout(Duration::from_millis(1500)));
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let mut stalled = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut s = TcpStream::connect(addr.addr()).await.unwrap();
        // Half of them send the start of a ClientHello and stop; the others send nothing.
        if i % 2 == 0 {
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .await
                .unwrap();
        }
        stalled.push(s);
    }
    // Meanwhile a real client is served at once.
    tokio::time::timeout(Duration::from_secs(1), mul_ok(&addr, trusting(&pki)))
        .await
        .expect("a new client waited behind unfinished handshakes");
    // And every stalled connection is closed once the handshake timeout has passed.
    let all = futures::future::join_all(
        stalled
            .iter_mut()
            .map(|s| closed_within(s, Duration::from_secs(10))),
    );
    all.await;
    mul_ok(&addr, trusting(&pki)).await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn connect_to_another_path_is_refused() {
    let server = arith(Server::builder());
    let addr = server.start("http@127.0.0.1:0").await.unwrap();
    let e = Client::connect(&addr, ClientOptions::default().rpc_path("/elsewhere"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unexpected HTTP response") && e.contains("404"),
        "{e}"
    );
    // By hand: a GET on /_rpcx_ gets Go's 405 text.
    let mut s = TcpStream::connect(addr.addr()).await.unwrap();
    s.write_all(b"GET /_rpcx_ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(answer.ends_with("405 must CONNECT\n"), "{answer}");
    mul_ok(&addr, ClientOptions::default()).await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn websocket_oversized_message_and_close_mid_message() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let limits = sextant::protocol::Limits::new(64 * 1024, 64 * 1024);
    let server = arith(Server::builder().limits(limits));
    let addr = server.start("ws@127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/_rpcx_", addr.addr());

    // A message far over the limit: the server closes the connection.
    let (mut ws, _) = ws_connect(&url).await.unwrap();
    let _ = ws.send(Message::binary(vec![8u8; 1 << 20])).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        use futures::StreamExt;
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the oversized message did not close the connection"
    );

    // Half an rpcx message, then a close: nothing is called, nothing breaks.
    let (mut ws, _) = ws_connect(&url).await.unwrap();
    let req = capture("go-req-arith-mul-msgpack-seq1");
    ws.send(Message::binary(req[..10].to_vec())).await.unwrap();
    ws.close(None).await.unwrap();

    // A wrong path is 404.
    let e = ws_connect(&format!("ws://{}/nope", addr.addr()))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("404"), "{e}");

    // The one rpcx message split over two WebSocket messages, in text frames that are not
    // UTF-8, as Go's client sends them: served.
    let (mut ws, _) = ws_connect(&url).await.unwrap();
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    assert!(std::str::from_utf8(&req).is_err(), "the capture is binary");
    for part in [&req[..7], &req[7..]] {
        let f = Frame::message(part.to_vec(), OpCode::Data(Data::Text), true);
        ws.send(Message::Frame(f)).await.unwrap();
    }
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        use futures::StreamExt;
        let mut out = Vec::new();
        while out.len() < 16 {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => out.extend_from_slice(&b),
                Some(Ok(_)) => {}
                other => panic!("no reply: {other:?}"),
            }
        }
        out
    })
    .await
    .unwrap();
    assert_eq!(got[0], 0x08, "an rpcx reply");

    mul_ok(&addr, ClientOptions::default()).await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn ws_connect(url: &str) -> Result<(Ws, ()), tokio_tungstenite::tungstenite::Error> {
    let hostport = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let tcp = TcpStream::connect(hostport).await?;
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await?;
    Ok((ws, ()))
}

#[cfg(feature = "quic")]
#[tokio::test]
async fn a_quic_client_with_another_alpn_is_refused() {
    let pki = pki::TestPki::new().unwrap();
    let server = arith(tls_server(&pki));
    let addr = server.start("quic@127.0.0.1:0").await.unwrap();
    let h3 = ClientTlsConfig::builder()
        .ca_pem(pki.ca.as_bytes())
        .unwrap()
        .alpn(["h3"])
        .build()
        .unwrap();
    let e = Client::connect(&addr, ClientOptions::default().tls(h3))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("QUIC") && e.contains("handshake"), "{e}");
    // Without TLS settings a quic@ dial is refused before sending anything.
    let e = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("quic@ needs ClientOptions::tls"), "{e}");
    mul_ok(&addr, trusting(&pki)).await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn transports_that_need_settings_refuse_to_start_without_them() {
    let e = Server::new()
        .start("wss@127.0.0.1:0")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("wss@ needs ServerOptions::tls"), "{e}");
    #[cfg(feature = "quic")]
    {
        let e = Server::new()
            .start("quic@127.0.0.1:0")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("quic@ needs ServerOptions::tls"), "{e}");
    }
    #[cfg(feature = "kcp")]
    {
        let e = Server::new()
            .start("kcp@127.0.0.1:0")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("kcp@ needs ServerOptions::kcp"), "{e}");
    }
}

#[cfg(feature = "kcp")]
#[tokio::test]
async fn random_datagrams_and_a_wrong_key_on_a_kcp_port_are_dropped() {
    use sextant::transport::KcpConfig;
    let config = KcpConfig::new().with_pass_salt("right-pass", "salt");
    let server = arith(Server::builder().kcp(config.clone()));
    let addr = server.start("kcp@127.0.0.1:0").await.unwrap();
    // Random datagrams of every size, from many sockets.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..50 {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for _ in 0..40 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 1500) as usize;
            let datagram: Vec<u8> = (0..len).map(|i| (seed >> (i % 56)) as u8).collect();
            let _ = sock.send_to(&datagram, addr.addr()).await;
        }
    }
    // A client with the wrong key cannot get through: its connect or its call fails in time.
    let wrong = ClientOptions::default()
        .kcp(KcpConfig::new().with_pass_salt("wrong-pass", "salt"))
        .default_timeout(Duration::from_millis(500));
    if let Ok(c) = Client::connect(&addr, wrong).await {
        let r = c
            .call::<_, Reply>("Arith", "Mul", &Args { a: 1, b: 1 })
            .await;
        assert!(r.is_err(), "a wrong key got an answer");
    }
    // The right key is served.
    mul_ok(&addr, ClientOptions::default().kcp(config)).await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}
