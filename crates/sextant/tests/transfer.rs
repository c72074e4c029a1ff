//! Streams and file transfer (rpcx's `_filetransfer` and `_streamservice`): uploads, downloads
//! and streams through XClients with msgpack and JSON, and each kind of bad side connection.
//! Everything runs on 127.0.0.1 in temporary directories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sextant::discovery::Peer2PeerDiscovery;
use sextant::protocol::codec::{encode_to_bytes, Codecs, Decode};
use sextant::transfer::{
    DownloadFileArgs, FileTransfer, FileTransferArgs, FileTransferReply, SaveToDir, ServeDir,
    SideService, StreamService, StreamServiceArgs, StreamServiceReply, TransferError,
    TransferOptions, Upload,
};
use sextant::{Client, ClientOptions, Error, SerializeType, Server, XClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// What `SaveToDir::on_done` reported: the file name and where it is stored, or the error.
type Done = (String, Result<PathBuf, String>);

struct Setup {
    server: Server,
    side: SideService,
    address: String,
    done: mpsc::UnboundedReceiver<Done>,
    incoming: tempfile::TempDir,
    served: tempfile::TempDir,
}

async fn file_server(options: TransferOptions) -> Setup {
    let incoming = tempfile::tempdir().unwrap();
    let served = tempfile::tempdir().unwrap();
    let (tx, done) = mpsc::unbounded_channel();
    let save = SaveToDir::new(incoming.path()).on_done(move |args, r| {
        let _ = tx.send((
            args.file_name.clone(),
            r.map(Path::to_path_buf).map_err(|e| e.to_string()),
        ));
    });
    let server = Server::new();
    let side = server
        .enable_file_transfer(
            "",
            FileTransfer::new("127.0.0.1:0")
                .upload(save)
                .download(ServeDir::new(served.path()))
                .options(options),
        )
        .await
        .unwrap();
    let address = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    Setup {
        server,
        side,
        address,
        done,
        incoming,
        served,
    }
}

fn xclient(service: &str, address: &str, st: SerializeType) -> XClient {
    XClient::builder(service)
        .discovery(Peer2PeerDiscovery::new(address, "").unwrap())
        .serialize_type(st)
        .build()
        .unwrap()
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn upload_and_download_with_msgpack_and_json() {
    let mut s = file_server(TransferOptions::default()).await;
    for (i, st) in [SerializeType::MSGPACK, SerializeType::JSON]
        .into_iter()
        .enumerate()
    {
        let x = xclient("_filetransfer", &s.address, st);
        let data = content(3 * 1024 * 1024 + i);
        let local = tempfile::tempdir().unwrap();
        let name = format!("upload-{i}.bin");
        let path = local.path().join(&name);
        std::fs::write(&path, &data).unwrap();
        let meta = HashMap::from([("owner".to_string(), "test".to_string())]);
        x.send_file(&path, 0, meta.clone()).await.unwrap();
        let (file, stored) = tokio::time::timeout(WAIT, s.done.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(file, name);
        let stored = stored.unwrap();
        assert_eq!(stored, s.incoming.path().join(&name));
        assert_eq!(std::fs::read(&stored).unwrap(), data);

        std::fs::write(s.served.path().join(&name), &data).unwrap();
        let mut got = Vec::new();
        let n = x.download_file(&name, &mut got, meta).await.unwrap();
        assert_eq!(n as usize, data.len());
        assert_eq!(got, data);
        x.close();
    }
    // Every token was used once and is gone.
    assert_eq!(s.side.pending_tokens(), 0);
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_rate_limited_upload_arrives_whole() {
    let mut s = file_server(TransferOptions::default()).await;
    let x = xclient("_filetransfer", &s.address, SerializeType::MSGPACK);
    let local = tempfile::tempdir().unwrap();
    let path = local.path().join("slow.bin");
    let data = content(64 * 1024);
    std::fs::write(&path, &data).unwrap();
    // 256 KiB/s: a quarter of a second for 64 KiB.
    x.send_file(&path, 256 * 1024, HashMap::new())
        .await
        .unwrap();
    let (_, stored) = tokio::time::timeout(WAIT, s.done.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(std::fs::read(stored.unwrap()).unwrap(), data);
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_download_outside_the_served_directory_is_refused() {
    let s = file_server(TransferOptions::default()).await;
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, b"no").unwrap();
    std::fs::write(s.served.path().join("ok.txt"), b"yes").unwrap();
    let x = xclient("_filetransfer", &s.address, SerializeType::MSGPACK);

    let relative_escape = format!(
        "../{}/secret.txt",
        outside.path().file_name().unwrap().to_string_lossy()
    );
    for name in [
        relative_escape.as_str(),
        "../../../../../../etc/passwd",
        secret.to_str().unwrap(),
        "/etc/passwd",
    ] {
        let mut sink = Vec::new();
        let err = x
            .download_file(name, &mut sink, HashMap::new())
            .await
            .unwrap_err();
        let text = err
            .as_service_error()
            .expect("the call's error")
            .message()
            .to_string();
        assert!(
            text.contains("refused") || text.contains("not found"),
            "{name}: {text}"
        );
        assert!(sink.is_empty());
    }
    let mut sink = Vec::new();
    let err = x
        .download_file("missing.txt", &mut sink, HashMap::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("file not found"), "{err}");
    // No token was issued for any of them.
    assert_eq!(s.side.pending_tokens(), 0);
    // A file inside is served.
    x.download_file("ok.txt", &mut sink, HashMap::new())
        .await
        .unwrap();
    assert_eq!(sink, b"yes");
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// Asks for an upload token with a raw call, as a Go client would.
async fn upload_token(x: &XClient, name: &str, size: i64) -> FileTransferReply {
    x.call(
        "TransferFile",
        &FileTransferArgs {
            file_name: name.into(),
            file_size: size,
            meta: HashMap::new(),
        },
    )
    .await
    .unwrap()
}

/// Reads until the server closes; fails the test if it does not within the wait.
async fn closed_by_server(conn: &mut TcpStream) {
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, conn.read(&mut buf))
        .await
        .expect("the server closes the connection")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_nothing() {
    let mut s = file_server(TransferOptions::default()).await;
    let x = xclient("_filetransfer", &s.address, SerializeType::MSGPACK);
    let reply = upload_token(&x, "partial.bin", 1 << 20).await;
    let mut conn = TcpStream::connect(&reply.addr).await.unwrap();
    conn.write_all(&reply.token).await.unwrap();
    conn.write_all(&content(1000)).await.unwrap();
    drop(conn);
    let (file, result) = tokio::time::timeout(WAIT, s.done.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(file, "partial.bin");
    let err = result.unwrap_err();
    assert!(err.contains("after 1000 of 1048576 bytes"), "{err}");
    let left: Vec<_> = std::fs::read_dir(s.incoming.path()).unwrap().collect();
    assert!(left.is_empty(), "partial files left: {left:?}");
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// A handler of its own is told how the upload ended through `Upload::copy_to`.
#[tokio::test]
async fn a_custom_upload_handler_is_told_of_an_incomplete_upload() {
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<u64, String>>();
    let server = Server::new();
    server
        .enable_file_transfer(
            "",
            FileTransfer::new("127.0.0.1:0").upload(move |mut up: Upload| {
                let tx = tx.clone();
                async move {
                    let mut sink = tokio::io::sink();
                    let r = up.copy_to(&mut sink).await;
                    let r = r.map_err(|e| match e {
                        TransferError::Incomplete { received, expected } => {
                            format!("incomplete {received}/{expected}")
                        }
                        other => other.to_string(),
                    });
                    let _ = tx.send(r);
                }
            }),
        )
        .await
        .unwrap();
    let address = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let x = xclient("_filetransfer", &address, SerializeType::MSGPACK);
    let reply = upload_token(&x, "x", 500).await;
    let mut conn = TcpStream::connect(&reply.addr).await.unwrap();
    conn.write_all(&reply.token).await.unwrap();
    conn.write_all(&[1u8; 200]).await.unwrap();
    drop(conn);
    let r = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r, Err("incomplete 200/500".to_string()));
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_wrong_token_is_closed_at_once() {
    let mut s = file_server(TransferOptions::default()).await;
    let x = xclient("_filetransfer", &s.address, SerializeType::MSGPACK);
    let reply = upload_token(&x, "a.bin", 10).await;
    let mut wrong = reply.token.clone();
    wrong[0] ^= 0xff;
    let mut conn = TcpStream::connect(&reply.addr).await.unwrap();
    conn.write_all(&wrong).await.unwrap();
    let _ = conn.write_all(&[0u8; 10]).await;
    closed_by_server(&mut conn).await;
    // The right token still works once.
    let mut conn = TcpStream::connect(&reply.addr).await.unwrap();
    conn.write_all(&reply.token).await.unwrap();
    conn.write_all(&[5u8; 10]).await.unwrap();
    closed_by_server(&mut conn).await;
    let (_, stored) = tokio::time::timeout(WAIT, s.done.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(std::fs::read(stored.unwrap()).unwrap(), vec![5u8; 10]);
    // And never again.
    let mut conn = TcpStream::connect(&reply.addr).await.unwrap();
    conn.write_all(&reply.token).await.unwrap();
    closed_by_server(&mut conn).await;
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn an_expired_token_is_closed_at_once() {
    let mut s = file_server(TransferOptions::default().token_ttl(Duration::ZERO)).await;
    let x = xclient("_filetransfer", &s.address, SerializeType::MSGPACK);
    let reply = upload_token(&x, "late.bin", 10).await;
    let mut conn = TcpStream::connect(&reply.addr).await.unwrap();
    conn.write_all(&reply.token).await.unwrap();
    let _ = conn.write_all(&[0u8; 10]).await;
    closed_by_server(&mut conn).await;
    assert!(s.done.try_recv().is_err(), "the handler never ran");
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_side_connection_without_a_token_is_cut_at_the_token_timeout() {
    let s = file_server(TransferOptions::default().token_read_timeout(Duration::from_millis(200)))
        .await;
    let mut silent = TcpStream::connect(s.side.local_addr()).await.unwrap();
    let mut short = TcpStream::connect(s.side.local_addr()).await.unwrap();
    short.write_all(&[1, 2, 3]).await.unwrap();
    closed_by_server(&mut silent).await;
    closed_by_server(&mut short).await;
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn ten_thousand_unused_tokens_stay_bounded() {
    let s = file_server(TransferOptions::default().max_tokens(100)).await;
    let x = Arc::new(xclient("_filetransfer", &s.address, SerializeType::MSGPACK));
    let mut tasks = Vec::new();
    for t in 0..10 {
        let x = x.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..1000 {
                upload_token(&x, &format!("f{t}-{i}"), 1).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.side.pending_tokens(), 100);
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

async fn stream_server() -> (Server, String) {
    let server = Server::new();
    server
        .enable_stream_service(
            "",
            StreamService::new("127.0.0.1:0")
                .acceptor(|_cx, args| args.meta.get("user").map(String::as_str) == Some("alice"))
                .handler(|mut conn: TcpStream, args: StreamServiceArgs| async move {
                    // Echo, prefixed by the user's name.
                    let user = args.meta.get("user").cloned().unwrap_or_default();
                    let _ = conn.write_all(format!("{user}:").as_bytes()).await;
                    let (mut rd, mut wr) = conn.split();
                    let _ = tokio::io::copy(&mut rd, &mut wr).await;
                }),
        )
        .await
        .unwrap();
    let address = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    (server, address)
}

#[tokio::test]
async fn a_stream_carries_raw_bytes_both_ways() {
    let (server, address) = stream_server().await;
    for st in [SerializeType::MSGPACK, SerializeType::JSON] {
        let x = xclient("_streamservice", &address, st);
        let meta = HashMap::from([("user".to_string(), "alice".to_string())]);
        let mut conn = x.stream(meta).await.unwrap();
        let data = content(200_000);
        let (mut rd, mut wr) = conn.split();
        let mut got = vec![0u8; "alice:".len() + data.len()];
        let (w, r) = tokio::join!(wr.write_all(&data), rd.read_exact(&mut got));
        w.unwrap();
        r.unwrap();
        assert_eq!(&got[..6], b"alice:");
        assert_eq!(&got[6..], &data[..]);
        x.close();
    }
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn the_acceptor_refuses_a_stream_with_gos_text() {
    let (server, address) = stream_server().await;
    let x = xclient("_streamservice", &address, SerializeType::MSGPACK);
    let meta = HashMap::from([("user".to_string(), "mallory".to_string())]);
    let err = x.stream(meta).await.unwrap_err();
    match &err {
        Error::Service(e) => assert_eq!(e.message(), "server refused the connection"),
        other => panic!("{other:?}"),
    }
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn the_side_listener_stops_with_the_server() {
    let s = file_server(TransferOptions::default()).await;
    let side = s.side.local_addr();
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(side).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the side listener still accepts after shutdown");
}

#[tokio::test]
async fn enabling_a_service_name_twice_fails_and_leaves_no_listener() {
    let server = Server::new();
    server
        .enable_stream_service("", StreamService::new("127.0.0.1:0"))
        .await
        .unwrap();
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let err = server
        .enable_stream_service("", StreamService::new(addr.to_string()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("_streamservice"), "{err}");
    let mut closed = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "a listener was left on the second address");
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_plain_client_uploads_downloads_and_streams() {
    let mut s = file_server(TransferOptions::default()).await;
    let (stream_server, stream_address) = stream_server().await;
    let files = Client::connect(s.address.as_str(), ClientOptions::default())
        .await
        .unwrap();
    let local = tempfile::tempdir().unwrap();
    let path = local.path().join("plain.bin");
    let data = content(700_000);
    std::fs::write(&path, &data).unwrap();
    files
        .send_file("_filetransfer", &path, 0, HashMap::new())
        .await
        .unwrap();
    let (_, stored) = tokio::time::timeout(WAIT, s.done.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(std::fs::read(stored.unwrap()).unwrap(), data);

    std::fs::write(s.served.path().join("plain.bin"), &data).unwrap();
    let mut got = Vec::new();
    let n = files
        .download_file("_filetransfer", "plain.bin", &mut got, HashMap::new())
        .await
        .unwrap();
    assert_eq!(n as usize, data.len());
    assert_eq!(got, data);

    let streams = Client::connect(stream_address.as_str(), ClientOptions::default())
        .await
        .unwrap();
    let meta = HashMap::from([("user".to_string(), "alice".to_string())]);
    let mut conn = streams.stream("_streamservice", meta).await.unwrap();
    conn.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 10];
    conn.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"alice:ping");
    drop(conn);
    files.close();
    streams.close();
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
    stream_server
        .shutdown(Duration::from_secs(1))
        .await
        .unwrap();
}

/// With `max_transfers(1)`, a second stream whose token is valid waits for the first to end,
/// then runs (it is not closed).
#[tokio::test]
async fn a_transfer_beyond_max_transfers_waits_for_a_slot() {
    let (started_tx, mut started) = mpsc::unbounded_channel::<String>();
    let server = Server::new();
    let side = server
        .enable_stream_service(
            "",
            StreamService::new("127.0.0.1:0")
                .options(TransferOptions::default().max_transfers(1))
                .handler(move |mut conn: TcpStream, args: StreamServiceArgs| {
                    let started_tx = started_tx.clone();
                    async move {
                        let _ = started_tx.send(args.meta["n"].clone());
                        let (mut rd, mut wr) = conn.split();
                        let _ = tokio::io::copy(&mut rd, &mut wr).await;
                    }
                }),
        )
        .await
        .unwrap();
    let address = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let x = xclient("_streamservice", &address, SerializeType::MSGPACK);
    let meta = |n: &str| HashMap::from([("n".to_string(), n.to_string())]);

    let first = x.stream(meta("1")).await.unwrap();
    let n = tokio::time::timeout(WAIT, started.recv()).await.unwrap();
    assert_eq!(n.as_deref(), Some("1"));
    let mut second = x.stream(meta("2")).await.unwrap();
    second.write_all(b"queued").await.unwrap();
    // The only slot is taken: the second handler cannot have started.
    assert!(started.try_recv().is_err());
    assert_eq!(side.active_transfers(), 1);

    drop(first);
    let n = tokio::time::timeout(WAIT, started.recv()).await.unwrap();
    assert_eq!(n.as_deref(), Some("2"));
    let mut got = [0u8; 6];
    tokio::time::timeout(WAIT, second.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"queued");
    x.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

fn encode<T: serde::Serialize>(v: &T, st: SerializeType) -> Vec<u8> {
    encode_to_bytes(v, st, &Codecs::new()).unwrap().to_vec()
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], st: SerializeType) -> T {
    T::decode(st, &Codecs::new(), &Bytes::copy_from_slice(bytes)).unwrap()
}

/// The bytes sextant's msgpack codec puts on the wire: maps keyed by the Go field names, in Go's
/// field order, as vmihailenco/msgpack v5 (rpcx's codec, no `UseJSONTag`) writes them; an empty
/// map or token as nil, the token as bin.
#[test]
fn wire_msgpack_bytes_are_gos() {
    let st = SerializeType::MSGPACK;
    let meta = HashMap::from([("k".to_string(), "v".to_string())]);
    let args = FileTransferArgs {
        file_name: "a.txt".into(),
        file_size: 300,
        meta: meta.clone(),
    };
    assert_eq!(
        encode(&args, st),
        b"\x83\xa8FileName\xa5a.txt\xa8FileSize\xcd\x01\x2c\xa4Meta\x81\xa1k\xa1v"
    );
    let download = DownloadFileArgs {
        file_name: "a.txt".into(),
        meta: HashMap::new(),
    };
    assert_eq!(
        encode(&download, st),
        b"\x82\xa8FileName\xa5a.txt\xa4Meta\xc0"
    );
    assert_eq!(
        encode(&StreamServiceArgs { meta }, st),
        b"\x81\xa4Meta\x81\xa1k\xa1v"
    );
    let token: Vec<u8> = (0..32).collect();
    let mut want = b"\x82\xa5Token\xc4\x20".to_vec();
    want.extend_from_slice(&token);
    want.extend_from_slice(b"\xa4Addr\xae127.0.0.1:8973");
    let reply = FileTransferReply {
        token: token.clone(),
        addr: "127.0.0.1:8973".into(),
    };
    assert_eq!(encode(&reply, st), want);
    let stream_reply = StreamServiceReply {
        token,
        addr: "127.0.0.1:8973".into(),
    };
    assert_eq!(encode(&stream_reply, st), want);
    assert_eq!(decode::<FileTransferReply>(&want, st), reply);
    assert_eq!(decode::<StreamServiceReply>(&want, st), stream_reply);
}

/// What Go's encoder writes and sextant must read: the `int64` `FileSize` always as `d3` and 8
/// bytes (rmp-serde writes the smallest int instead), a nil map as nil.
#[test]
fn wire_gos_msgpack_decodes() {
    let st = SerializeType::MSGPACK;
    let go =
        b"\x83\xa8FileName\xa5a.txt\xa8FileSize\xd3\x00\x00\x00\x00\x00\x00\x01\x2c\xa4Meta\xc0";
    assert_eq!(
        decode::<FileTransferArgs>(go, st),
        FileTransferArgs {
            file_name: "a.txt".into(),
            file_size: 300,
            meta: HashMap::new(),
        }
    );
    let go = b"\x82\xa8FileName\xa3x/y\xa4Meta\x81\xa1k\xa1v";
    let d: DownloadFileArgs = decode(go, st);
    assert_eq!(d.file_name, "x/y");
    assert_eq!(d.meta["k"], "v");
    let s: StreamServiceArgs = decode(b"\x81\xa4Meta\xc0", st);
    assert!(s.meta.is_empty());
}

/// The bytes sextant's JSON codec puts on the wire: Go's json tags, empty fields left out
/// (`omitempty`), the token in base64 (encoding/json's `[]byte`).
#[test]
fn wire_json_bytes_are_gos() {
    let st = SerializeType::JSON;
    let meta = HashMap::from([("k".to_string(), "v".to_string())]);
    let args = FileTransferArgs {
        file_name: "a.txt".into(),
        file_size: 300,
        meta: meta.clone(),
    };
    let json = br#"{"file_name":"a.txt","file_size":300,"meta":{"k":"v"}}"#;
    assert_eq!(encode(&args, st), json);
    assert_eq!(decode::<FileTransferArgs>(json, st), args);
    let download = DownloadFileArgs {
        file_name: "a.txt".into(),
        meta: HashMap::new(),
    };
    assert_eq!(encode(&download, st), br#"{"file_name":"a.txt"}"#);
    assert_eq!(
        encode(&StreamServiceArgs::default(), st),
        b"{}",
        "an empty struct is an empty object"
    );
    assert_eq!(
        encode(&StreamServiceArgs { meta }, st),
        br#"{"meta":{"k":"v"}}"#
    );
    let reply = FileTransferReply {
        token: (0..32).collect(),
        addr: "127.0.0.1:8973".into(),
    };
    let json =
        br#"{"token":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","addr":"127.0.0.1:8973"}"#;
    assert_eq!(encode(&reply, st), json);
    assert_eq!(decode::<FileTransferReply>(json, st), reply);
    assert_eq!(decode::<StreamServiceReply>(json, st).token, reply.token);
    // A null map (how encoding/json writes a nil map without omitempty) is accepted too.
    let a: FileTransferArgs = decode(br#"{"file_name":"a","meta":null}"#, st);
    assert!(a.meta.is_empty());
}

#[tokio::test]
async fn an_upload_over_save_to_dirs_max_size_is_refused_by_the_call() {
    let incoming = tempfile::tempdir().unwrap();
    let server = Server::new();
    let side = server
        .enable_file_transfer(
            "",
            FileTransfer::new("127.0.0.1:0").upload(SaveToDir::new(incoming.path()).max_size(100)),
        )
        .await
        .unwrap();
    let address = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let x = xclient("_filetransfer", &address, SerializeType::MSGPACK);
    let local = tempfile::tempdir().unwrap();
    let path = local.path().join("big.bin");
    std::fs::write(&path, content(101)).unwrap();
    let err = x.send_file(&path, 0, HashMap::new()).await.unwrap_err();
    assert_eq!(
        err.as_service_error().expect("the call's error").message(),
        "file too large: 101 bytes, at most 100"
    );
    assert_eq!(side.pending_tokens(), 0);
    std::fs::write(&path, content(100)).unwrap();
    x.send_file(&path, 0, HashMap::new()).await.unwrap();
    assert_eq!(
        std::fs::read(incoming.path().join("big.bin")).unwrap(),
        content(100)
    );
    x.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}
