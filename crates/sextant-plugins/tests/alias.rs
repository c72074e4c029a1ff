//! The alias plugin end to end on 127.0.0.1: an alias routes to its target, the response
//! carries the names the caller sent, the target's own name still works, and an unknown name
//! gets the usual error.

use std::time::Duration;

use bytes::BytesMut;
use sextant::discovery::Peer2PeerDiscovery;
use sextant::protocol::{Decode, Decoder, Encode, Limits, Message};
use sextant::{Client, ClientOptions, Context, SerializeType, Server, ServiceError, XClient};
use sextant_interop::{Args, Reply};
use sextant_plugins::alias::{AliasPlugin, ALIAS_APPLIED_KEY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test step took too long")
}

/// A server with Arith (sextant-interop) and `Probe.Seen`, which reports the name it was routed
/// by and whether `__aliasAppliedKey` was set; aliases `AliasPath.AliasMethod` → `Arith.Mul`
/// and `Look.Here` → `Probe.Seen`.
async fn start() -> (Server, String) {
    let aliases = AliasPlugin::new()
        .alias("AliasPath", "AliasMethod", "Arith", "Mul")
        .unwrap()
        .alias("Look", "Here", "Probe", "Seen")
        .unwrap();
    let server = Server::builder().plugin(aliases).build();
    sextant_interop::register_all(&server).unwrap();
    server
        .register_fn("Probe", "Seen", |cx: Context, _: String| async move {
            let applied = cx.metadata().get(ALIAS_APPLIED_KEY).unwrap_or("-");
            Ok::<_, ServiceError>(format!(
                "{}.{} {applied}",
                cx.service_path(),
                cx.service_method()
            ))
        })
        .unwrap();
    let address = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    (server, address)
}

/// Sends one msgpack request on a raw socket and returns the response frame as it came, names
/// included (a `RawReply` from `Client::send_raw` carries the header, metadata and payload, not
/// the names).
async fn raw_call(address: &str, path: &str, method: &str, args: &Args) -> Message {
    let mut sock = bounded(tokio::net::TcpStream::connect(
        address.trim_start_matches("tcp@"),
    ))
    .await
    .unwrap();
    let mut m = Message::new();
    m.header.set_serialize_type(SerializeType::MSGPACK);
    m.header.set_seq(11);
    m.service_path = path.into();
    m.service_method = method.into();
    let mut payload = BytesMut::new();
    args.encode(SerializeType::MSGPACK, &Default::default(), &mut payload)
        .unwrap();
    m.payload = payload.freeze();
    let mut frame = BytesMut::new();
    m.encode(&mut frame).unwrap();
    bounded(sock.write_all(&frame)).await.unwrap();
    let mut decoder = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    for _ in 0..1000 {
        if let Some(res) = decoder.decode(&mut buf).unwrap() {
            return res;
        }
        let n = bounded(sock.read_buf(&mut buf)).await.unwrap();
        assert!(n > 0, "connection closed before the response");
    }
    panic!("no whole response in 1000 reads");
}

#[tokio::test]
async fn an_alias_is_served_by_its_target_under_the_names_the_caller_sent() {
    let (server, address) = start().await;

    // A client calls the alias and gets Arith.Mul's answer.
    let client = bounded(Client::connect(address.as_str(), ClientOptions::default()))
        .await
        .unwrap();
    let r: Reply = bounded(client.call("AliasPath", "AliasMethod", &Args { a: 10, b: 20 }))
        .await
        .unwrap();
    assert_eq!(r.c, 200);

    // The response frame carries the alias's names.
    let res = raw_call(&address, "AliasPath", "AliasMethod", &Args { a: 3, b: 4 }).await;
    assert_eq!(&*res.service_path, "AliasPath");
    assert_eq!(&*res.service_method, "AliasMethod");
    assert_eq!(res.header.seq(), 11);
    let reply: Reply =
        Decode::decode(SerializeType::MSGPACK, &Default::default(), &res.payload).unwrap();
    assert_eq!(reply.c, 12);

    // The target's own name still works, and answers under its own name.
    let r: Reply = bounded(client.call("Arith", "Mul", &Args { a: 5, b: 6 }))
        .await
        .unwrap();
    assert_eq!(r.c, 30);
    let res = raw_call(&address, "Arith", "Mul", &Args { a: 3, b: 4 }).await;
    assert_eq!((&*res.service_path, &*res.service_method), ("Arith", "Mul"));

    // The handler sees the target's names and rpcx's __aliasAppliedKey.
    let seen: String = bounded(client.call("Look", "Here", "x")).await.unwrap();
    assert_eq!(seen, "Probe.Seen true");
    let seen: String = bounded(client.call("Probe", "Seen", "x")).await.unwrap();
    assert_eq!(seen, "Probe.Seen -");

    client.close();
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn an_unknown_name_gets_the_usual_error() {
    let (server, address) = start().await;
    let client = bounded(Client::connect(address.as_str(), ClientOptions::default()))
        .await
        .unwrap();
    let e = bounded(client.call::<_, Reply>("AliasPath", "Other", &Args { a: 1, b: 2 }))
        .await
        .unwrap_err();
    let text = e.as_service_error().expect("a server error").message();
    assert_eq!(text, "rpcx: can't find service AliasPath");
    let e = bounded(client.call::<_, Reply>("Arith", "AliasMethod", &Args { a: 1, b: 2 }))
        .await
        .unwrap_err();
    let text = e.as_service_error().expect("a server error").message();
    assert_eq!(text, "rpcx: can't find method AliasMethod");
    client.close();
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn an_xclient_calls_the_alias() {
    let (server, address) = start().await;
    let xclient = XClient::builder("AliasPath")
        .discovery(Peer2PeerDiscovery::new(address.as_str(), "").unwrap())
        .build()
        .unwrap();
    let r: Reply = bounded(xclient.call("AliasMethod", &Args { a: 7, b: 8 }))
        .await
        .unwrap();
    assert_eq!(r.c, 56);
    xclient.close();
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}
