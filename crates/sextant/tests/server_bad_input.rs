//! Hostile and broken input against a running server: each gets a clear error (an error response
//! when the request could be parsed, otherwise the connection is closed), never a panic, a hang or
//! unbounded memory, and other connections keep working.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sextant::protocol::{
    ByteStr, CompressType, Decoder, Limits, Message, MessageStatusType, SerializeType,
};
use sextant::{Client, ClientOptions, Context, Server, ServiceError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
struct Args {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    c: i64,
}

async fn server_with(builder: sextant::ServerBuilder) -> (Server, String) {
    let server = builder.build();
    server
        .register_fn("Arith", "Mul", |_cx: Context, a: Args| async move {
            Ok::<_, ServiceError>(Reply { c: a.a * a.b })
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    (server, addr.addr().to_string())
}

fn request(seq: u64, path: &str, method: &str, st: SerializeType, payload: Bytes) -> Message {
    let mut m = Message::new();
    m.header.set_seq(seq);
    m.header.set_serialize_type(st);
    m.service_path = ByteStr::from(path);
    m.service_method = ByteStr::from(method);
    m.payload = payload;
    m
}

fn mul_request(seq: u64) -> Message {
    request(
        seq,
        "Arith",
        "Mul",
        SerializeType::MSGPACK,
        Bytes::from_static(&[0x82, 0xa1, 0x41, 0x0a, 0xa1, 0x42, 0x14]),
    )
}

/// Reads one message, or `None` when the server closed the connection. Bounded by 10 s.
async fn read_message(sock: &mut TcpStream, buf: &mut BytesMut) -> Option<Message> {
    let mut dec = Decoder::default();
    loop {
        if let Some(m) = dec.decode(buf).unwrap() {
            return Some(m);
        }
        match tokio::time::timeout(Duration::from_secs(10), sock.read_buf(buf))
            .await
            .expect("server hung")
        {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn error_of(addr: &str, frame: &[u8]) -> String {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(frame).await.unwrap();
    let mut buf = BytesMut::new();
    let m = read_message(&mut sock, &mut buf)
        .await
        .expect("expected an error response");
    assert_eq!(m.header.status(), MessageStatusType::Error);
    // The connection is still usable afterwards.
    sock.write_all(&mul_request(99).to_bytes().unwrap())
        .await
        .unwrap();
    let ok = read_message(&mut sock, &mut buf)
        .await
        .expect("connection closed after a recoverable error");
    assert_eq!(ok.header.seq(), 99);
    assert_eq!(ok.header.status(), MessageStatusType::Normal);
    m.metadata.get("__rpcx_error__").unwrap().to_string()
}

async fn assert_closed(addr: &str, bytes: &[u8]) {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(bytes).await.unwrap();
    let mut buf = BytesMut::new();
    assert!(
        read_message(&mut sock, &mut buf).await.is_none(),
        "connection should have been closed"
    );
}

async fn assert_still_serving(addr: &str) {
    let c = Client::connect(addr, ClientOptions::default())
        .await
        .unwrap();
    let r: Reply = c.call("Arith", "Mul", &Args { a: 6, b: 7 }).await.unwrap();
    assert_eq!(r.c, 42);
}

#[tokio::test]
async fn framing_errors_close_only_that_connection() {
    let (server, addr) = server_with(Server::builder().limits(Limits::new(1 << 20, 1 << 20))).await;
    // Wrong magic byte (neither rpcx nor HTTP, which the same port also answers).
    assert_closed(&addr, b"\x07garbage\r\n\r\n").await;
    assert_closed(&addr, b"get / http/1.1\r\n\r\n").await;
    // A declared length of 4 GiB: refused at once, nothing buffered.
    let mut huge = mul_request(1).to_bytes().unwrap().to_vec();
    huge[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_closed(&addr, &huge).await;
    // Inner lengths beyond the frame.
    let mut bad = mul_request(1).to_bytes().unwrap().to_vec();
    bad[16..20].copy_from_slice(&1000u32.to_be_bytes());
    assert_closed(&addr, &bad).await;
    // A truncated frame followed by end of stream.
    let whole = mul_request(1).to_bytes().unwrap();
    let mut sock = TcpStream::connect(&addr).await.unwrap();
    sock.write_all(&whole[..whole.len() - 3]).await.unwrap();
    sock.shutdown().await.unwrap();
    let mut buf = BytesMut::new();
    assert!(read_message(&mut sock, &mut buf).await.is_none());
    assert_still_serving(&addr).await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn slow_partial_request_is_cut_by_read_timeout() {
    let (server, addr) =
        server_with(Server::builder().read_timeout(Duration::from_millis(200))).await;
    let whole = mul_request(1).to_bytes().unwrap();
    let mut sock = TcpStream::connect(&addr).await.unwrap();
    sock.write_all(&whole[..10]).await.unwrap();
    let mut buf = BytesMut::new();
    assert!(
        read_message(&mut sock, &mut buf).await.is_none(),
        "partial request kept the connection open"
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn parsable_but_bad_requests_get_error_responses() {
    let (server, addr) = server_with(Server::builder().limits(Limits::new(1 << 20, 1 << 20))).await;

    // Non-UTF-8 service name.
    let mut m = mul_request(1).to_bytes().unwrap().to_vec();
    m[20] = 0xff; // first byte of "Arith"
    assert!(error_of(&addr, &m).await.contains("not valid UTF-8"));

    // Unknown serialize type.
    let m = request(
        2,
        "Arith",
        "Mul",
        SerializeType::new(9).unwrap(),
        Bytes::from_static(b"x"),
    );
    assert_eq!(
        error_of(&addr, &m.to_bytes().unwrap()).await,
        "can not find codec for 9"
    );

    // Unknown compress type.
    let mut m = mul_request(3);
    m.header.set_compress_type(CompressType::new(5).unwrap());
    assert!(error_of(&addr, &m.to_bytes().unwrap())
        .await
        .contains("unknown compress type 5"));

    // A gzip bomb: 64 MiB of zeros in a few tens of KiB, limit 1 MiB.
    let zeros = vec![0u8; 64 << 20];
    let bomb = sextant::protocol::compress::compress(CompressType::GZIP, &zeros).unwrap();
    drop(zeros);
    let mut m = request(4, "Arith", "Mul", SerializeType::MSGPACK, bomb);
    m.header.set_compress_type(CompressType::GZIP);
    assert!(error_of(&addr, &m.to_bytes().unwrap())
        .await
        .contains("exceeds the limit"));

    // A payload that does not decode into the handler's argument type.
    let m = request(
        5,
        "Arith",
        "Mul",
        SerializeType::MSGPACK,
        Bytes::from_static(&[0xa3, b'a', b'b', b'c']),
    );
    assert!(error_of(&addr, &m.to_bytes().unwrap())
        .await
        .contains("msgpack decode error"));
    let m = request(
        6,
        "Arith",
        "Mul",
        SerializeType::JSON,
        Bytes::from_static(b"{\"A\":\"ten\"}"),
    );
    assert!(error_of(&addr, &m.to_bytes().unwrap())
        .await
        .contains("json decode error"));

    assert_still_serving(&addr).await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn a_flood_on_one_connection_is_held_back_and_others_keep_working() {
    const LIMIT: usize = 4;
    let server = Server::builder().max_concurrent_requests(LIMIT).build();
    let gate = Arc::new(Semaphore::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (g, r, p) = (gate.clone(), running.clone(), peak.clone());
    server
        .register_fn("Slow", "Wait", move |_cx: Context, n: u64| {
            let (g, r, p) = (g.clone(), r.clone(), p.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                g.acquire().await.unwrap().forget();
                r.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, ServiceError>(n)
            }
        })
        .unwrap();
    server
        .register_fn("Arith", "Mul", |_cx: Context, a: Args| async move {
            Ok::<_, ServiceError>(Reply { c: a.a * a.b })
        })
        .unwrap();
    let addr = server
        .start("tcp@127.0.0.1:0")
        .await
        .unwrap()
        .addr()
        .to_string();

    // 2,000 requests written in one go without reading any reply.
    const N: u64 = 2000;
    let mut flood = BytesMut::new();
    for i in 0..N {
        let payload = Bytes::from(vec![0xcd, (i >> 8) as u8, i as u8]); // msgpack u16
        request(i, "Slow", "Wait", SerializeType::MSGPACK, payload)
            .encode(&mut flood)
            .unwrap();
    }
    let sock = TcpStream::connect(&addr).await.unwrap();
    let (mut rd, mut wr) = sock.into_split();
    let writer = tokio::spawn(async move { wr.write_all(&flood).await.map(|_| wr) });

    // Let the server take in what it will.
    for _ in 0..200 {
        if running.load(Ordering::SeqCst) == LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        running.load(Ordering::SeqCst),
        LIMIT,
        "the server should run exactly LIMIT calls at once"
    );
    // Another connection is served meanwhile.
    assert_still_serving(&addr).await;

    // Release everything: every request is answered, never more than LIMIT ran at once.
    gate.add_permits(N as usize);
    let mut buf = BytesMut::new();
    let mut dec = Decoder::default();
    let mut answered = 0u64;
    while answered < N {
        while let Some(m) = dec.decode(&mut buf).unwrap() {
            assert_eq!(m.header.status(), MessageStatusType::Normal);
            answered += 1;
        }
        if answered == N {
            break;
        }
        let n = tokio::time::timeout(Duration::from_secs(20), rd.read_buf(&mut buf))
            .await
            .expect("stalled")
            .unwrap();
        assert!(
            n > 0,
            "server closed the connection after {answered} answers"
        );
    }
    writer.await.unwrap().unwrap();
    assert!(
        peak.load(Ordering::SeqCst) <= LIMIT,
        "peak concurrency {} over the limit",
        peak.load(Ordering::SeqCst)
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_by_write_timeout() {
    let (server, addr) =
        server_with(Server::builder().write_timeout(Duration::from_millis(200))).await;
    server
        .register_fn("Echo", "Echo", |_cx: Context, b: sextant::Raw| async move {
            Ok::<_, ServiceError>(b)
        })
        .unwrap();

    // 40 requests whose 1 MiB replies fill the socket buffers of a peer that does not read.
    let payload = Bytes::from(vec![7u8; 1 << 20]);
    let mut sock = TcpStream::connect(&addr).await.unwrap();
    for i in 0..40u64 {
        let m = request(i, "Echo", "Echo", SerializeType::NONE, payload.clone());
        let frame = m.to_bytes().unwrap();
        if tokio::time::timeout(Duration::from_secs(10), sock.write_all(&frame))
            .await
            .is_err()
        {
            break; // the server stopped reading too: enough is queued
        }
    }
    // Give the write timeout time to fire, then drain: the stream must end (bounded).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
            .await
            .expect("connection never closed")
        {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n,
        }
    }
    assert!(
        received < 40 << 20,
        "all {received} bytes arrived: the write timeout did not cut the connection"
    );
    assert_still_serving(&addr).await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}
