//! Replays every request Go's rpcx client sent (`testdata/wire`) against the sextant interop server
//! over a raw TCP socket and compares each response with Go's server's, byte for byte (gzip
//! payloads after decompression).

use std::path::PathBuf;
use std::time::Duration;

use bytes::BytesMut;
use sextant::protocol::compress::decompress;
use sextant::protocol::{CompressType, Decoder, Message};
use sextant::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn wire_dir() -> PathBuf {
    let d = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/wire"));
    assert!(
        d.is_dir(),
        "{} not found: the Go rpcx captures belong in the repository's testdata/wire",
        d.display()
    );
    d
}

fn load(name: &str) -> Vec<u8> {
    let p = wire_dir().join(format!("{name}.hex"));
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    hex::decode(s.trim()).unwrap()
}

/// Request capture → expected response capture (None: no response, oneway), and whether the
/// server runs with `--auth s3cr3t`.
const CASES: &[(&str, Option<&str>, bool)] = &[
    (
        "go-req-arith-mul-msgpack-meta",
        Some("go-resp-arith-mul-msgpack"),
        false,
    ),
    (
        "go-req-arith-mul-msgpack-seq1",
        Some("go-resp-arith-mul-msgpack-seq1"),
        false,
    ),
    (
        "go-req-arith-mul-json",
        Some("go-resp-arith-mul-json"),
        false,
    ),
    ("go-req-func-mul", Some("go-resp-func-mul"), false),
    (
        "go-req-unknown-method",
        Some("go-resp-error-unknown-method"),
        false,
    ),
    (
        "go-req-unknown-service",
        Some("go-resp-error-unknown-service"),
        false,
    ),
    (
        "go-req-service-error-div0",
        Some("go-resp-service-error-div0"),
        false,
    ),
    ("go-heartbeat-req", Some("go-heartbeat-resp"), false),
    (
        "go-heartbeat-ticker-req",
        Some("go-heartbeat-ticker-resp"),
        false,
    ),
    ("go-gzip-req-echo", Some("go-gzip-resp-echo"), false),
    (
        "go-req-hello-say-protobuf",
        Some("go-resp-hello-say-protobuf"),
        false,
    ),
    ("go-req-auth-ok", Some("go-resp-auth-ok"), true),
    ("go-req-auth-bad", Some("go-resp-error-auth-bad"), true),
    ("go-oneway-req", None, false),
];

async fn start(auth: bool) -> (Server, String) {
    let server = sextant_interop::interop_server(auth.then(|| "s3cr3t".to_string())).unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    (server, addr.addr().to_string())
}

async fn read_message(sock: &mut TcpStream, buf: &mut BytesMut) -> Option<Message> {
    let mut dec = Decoder::default();
    loop {
        if let Some(m) = dec.decode(buf).unwrap() {
            return Some(m);
        }
        let n = tokio::time::timeout(Duration::from_secs(5), sock.read_buf(buf))
            .await
            .expect("no response within 5 s")
            .unwrap();
        if n == 0 {
            return None;
        }
    }
}

fn assert_same(name: &str, got: &Message, want_bytes: &[u8]) {
    let want = Message::parse(want_bytes.to_vec().into()).unwrap();
    if want.header.compress_type() == CompressType::NONE {
        let got_bytes = got.to_bytes().unwrap();
        assert_eq!(
            hex::encode(&got_bytes),
            hex::encode(want_bytes),
            "{name}: response differs from Go's"
        );
        return;
    }
    // Compressed: same header and fields, same payload once decompressed.
    assert_eq!(got.header, want.header, "{name}: header");
    assert_eq!(got.service_path, want.service_path, "{name}: path");
    assert_eq!(got.service_method, want.service_method, "{name}: method");
    assert_eq!(got.metadata, want.metadata, "{name}: metadata");
    let limit = 1 << 20;
    assert_eq!(
        decompress(got.header.compress_type(), got.payload.clone(), limit).unwrap(),
        decompress(want.header.compress_type(), want.payload.clone(), limit).unwrap(),
        "{name}: payload after decompression"
    );
}

#[test]
fn every_capture_is_covered() {
    for entry in std::fs::read_dir(wire_dir()).unwrap() {
        let name = entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".hex")
            .to_string();
        if !name.ends_with("-req") && !name.starts_with("go-req") {
            continue;
        }
        assert!(
            CASES.iter().any(|c| c.0 == name),
            "capture {name} is not replayed: add it to CASES"
        );
    }
}

#[tokio::test]
async fn replay_each_request_on_its_own_connection() {
    let (plain, plain_addr) = start(false).await;
    let (authed, auth_addr) = start(true).await;
    for (req, resp, auth) in CASES {
        let Some(resp) = resp else { continue };
        let mut sock = TcpStream::connect(if *auth { &auth_addr } else { &plain_addr })
            .await
            .unwrap();
        sock.write_all(&load(req)).await.unwrap();
        let mut buf = BytesMut::new();
        let got = read_message(&mut sock, &mut buf)
            .await
            .unwrap_or_else(|| panic!("{req}: connection closed without a response"));
        assert_same(req, &got, &load(resp));
        if *req == "go-req-auth-bad" {
            // Like Go, the server closes the connection after a failed auth.
            assert!(
                read_message(&mut sock, &mut buf).await.is_none(),
                "connection still open after failed auth"
            );
        }
    }
    plain.shutdown(Duration::from_secs(2)).await.unwrap();
    authed.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn oneway_gets_no_response() {
    let (server, addr) = start(false).await;
    let mut sock = TcpStream::connect(&addr).await.unwrap();
    // The oneway request, then a normal one: the first response must be the normal one's.
    sock.write_all(&load("go-oneway-req")).await.unwrap();
    let mut next = load("go-req-arith-mul-msgpack-seq1");
    next[11] = 9; // distinct seq
    sock.write_all(&next).await.unwrap();
    let mut buf = BytesMut::new();
    let got = read_message(&mut sock, &mut buf).await.unwrap();
    assert_eq!(got.header.seq(), 9);
    sock.shutdown().await.unwrap();
    assert!(
        read_message(&mut sock, &mut buf).await.is_none(),
        "an extra response was sent"
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn replay_all_pipelined_on_one_connection() {
    // Go's client pipelines many calls on one connection; send them all at once, then match
    // responses by seq (rewritten to be unique).
    let (server, addr) = start(false).await;
    let mut sock = TcpStream::connect(&addr).await.unwrap();
    let mut expected = Vec::new();
    let mut out = Vec::new();
    for (i, (req, resp, auth)) in CASES.iter().enumerate() {
        if *auth {
            continue;
        }
        let mut r = load(req);
        r[4..12].copy_from_slice(&(100 + i as u64).to_be_bytes());
        out.extend_from_slice(&r);
        if let Some(resp) = resp {
            let mut w = load(resp);
            w[4..12].copy_from_slice(&(100 + i as u64).to_be_bytes());
            expected.push((req, w));
        }
    }
    sock.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    for _ in 0..expected.len() {
        let got = read_message(&mut sock, &mut buf).await.unwrap();
        let (req, want) = expected
            .iter()
            .find(|(_, w)| w[4..12] == got.header.seq().to_be_bytes())
            .expect("response with an unknown seq");
        assert_same(req, &got, want);
    }
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}
