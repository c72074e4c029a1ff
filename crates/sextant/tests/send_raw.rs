//! Raw calls (rpcx's `SendRaw`): `Client::send_raw` and `XClient::send_raw` against real servers
//! on 127.0.0.1, and `ServiceDiscovery::clone_for` on the fixed-list discoveries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sextant::discovery::MultipleServersDiscovery;
use sextant::protocol::compress::{compress, decompress};
use sextant::protocol::{heartbeat_payload, Codecs, Decode, Encode, Header, Message};
use sextant::xclient::{CallInfo, ClientPlugin, FailMode};
use sextant::{
    keys, CallOptions, Client, ClientOptions, CompressType, Context, Error, KVPair, SelectMode,
    SerializeType, Server, ServiceDiscovery, ServiceError, XClient,
};

#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Args {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    c: i64,
}

/// A server of service "Arith" that says who it is (`id` in the response metadata `server`):
/// - `Mul(Args) -> Reply`, echoing every request metadata pair back as `echo-<key>`
/// - `Fail(()) -> ()`: the error `boom`, with response metadata `why=because`
/// - `Sleep(u64 ms) -> ()`
/// - `Note(String) -> ()`: counts the call in `notes` (for oneway calls)
/// - `Echo(String) -> String`
struct TestServer {
    server: Server,
    address: String,
    calls: Arc<AtomicU64>,
    notes: Arc<AtomicU64>,
}

async fn start(id: u32) -> TestServer {
    let server = Server::new();
    let calls = Arc::new(AtomicU64::new(0));
    let notes = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    server
        .register_fn("Arith", "Mul", move |cx: Context, a: Args| {
            c.fetch_add(1, Ordering::Relaxed);
            cx.set_response_metadata("server", id.to_string());
            for (k, v) in cx.metadata().iter() {
                cx.set_response_metadata(format!("echo-{k}"), v.to_string());
            }
            async move { Ok::<_, ServiceError>(Reply { c: a.a * a.b }) }
        })
        .unwrap();
    server
        .register_fn("Arith", "Fail", |cx: Context, _: ()| async move {
            cx.set_response_metadata("why", "because");
            Err::<(), _>(ServiceError::new("boom"))
        })
        .unwrap();
    server
        .register_fn("Arith", "Sleep", |_cx: Context, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, ServiceError>(())
        })
        .unwrap();
    let n = notes.clone();
    server
        .register_fn("Arith", "Note", move |_cx: Context, _: String| {
            n.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, ServiceError>(()) }
        })
        .unwrap();
    server
        .register_fn("Arith", "Echo", |_cx: Context, s: String| async move {
            Ok::<_, ServiceError>(s)
        })
        .unwrap();
    let address = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    TestServer {
        server,
        address,
        calls,
        notes,
    }
}

impl TestServer {
    async fn stop(self) {
        let _ = self.server.shutdown(Duration::from_millis(500)).await;
    }
}

fn encode<T: Encode>(value: &T, st: SerializeType) -> Bytes {
    let mut b = bytes::BytesMut::new();
    value.encode(st, &Codecs::default(), &mut b).unwrap();
    b.freeze()
}

fn decode<T: Decode>(header: &Header, payload: Bytes) -> T {
    let payload = decompress(header.compress_type(), payload, 1 << 24).unwrap();
    T::decode(header.serialize_type(), &Codecs::default(), &payload).unwrap()
}

/// A request for `Arith.method` with `payload` serialized as `st`, message id `seq`.
fn request(method: &str, st: SerializeType, payload: Bytes, seq: u64) -> Message {
    let mut m = Message::new();
    m.header.set_serialize_type(st);
    m.header.set_seq(seq);
    m.service_path = "Arith".into();
    m.service_method = method.into();
    m.payload = payload;
    m
}

async fn connect(s: &TestServer, options: ClientOptions) -> Client {
    Client::connect(s.address.as_str(), options).await.unwrap()
}

#[tokio::test]
async fn send_raw_json_and_msgpack_reach_a_real_server() {
    let s = start(1).await;
    let client = connect(&s, ClientOptions::default()).await;

    let payload = encode(&Args { a: 6, b: 7 }, SerializeType::JSON);
    assert_eq!(&payload[..], br#"{"A":6,"B":7}"#);
    let r = client
        .send_raw(
            request("Mul", SerializeType::JSON, payload, 4242),
            CallOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.header.serialize_type(), SerializeType::JSON);
    assert_eq!(r.header.seq(), 4242, "the caller's id comes back");
    assert_eq!(&r.payload[..], br#"{"C":42}"#);
    assert_eq!(decode::<Reply>(&r.header, r.payload), Reply { c: 42 });
    assert_eq!(r.metadata.get("server"), Some("1"));
    assert_eq!(
        r.metadata.get(keys::SERVER_ADDRESS),
        Some(s.address.as_str())
    );

    // msgpack, and many requests with the same caller id at once: the wire ids are the
    // client's, so they do not clash.
    let calls = (0..20i64).map(|i| {
        let client = client.clone();
        async move {
            let payload = encode(&Args { a: i, b: 3 }, SerializeType::MSGPACK);
            let r = client
                .send_raw(
                    request("Mul", SerializeType::MSGPACK, payload, 7),
                    CallOptions::new(),
                )
                .await
                .unwrap();
            assert_eq!(r.header.seq(), 7);
            assert_eq!(r.header.serialize_type(), SerializeType::MSGPACK);
            assert_eq!(decode::<Reply>(&r.header, r.payload), Reply { c: i * 3 });
        }
    });
    futures::future::join_all(calls).await;
    assert_eq!(s.calls.load(Ordering::Relaxed), 21);

    client.close();
    s.stop().await;
}

#[tokio::test]
async fn send_raw_metadata_goes_both_ways_and_the_request_s_own_pairs_win() {
    let s = start(1).await;
    let client = connect(&s, ClientOptions::default().auth_token("client-token")).await;
    let payload = encode(&Args { a: 2, b: 3 }, SerializeType::MSGPACK);
    let mut req = request("Mul", SerializeType::MSGPACK, payload, 1);
    req.metadata.insert("k", "from-request");
    req.metadata.insert("both", "request");
    let options = CallOptions::new()
        .metadata("both", "options")
        .metadata("o", "from-options")
        .timeout(Duration::from_secs(5));
    let r = client.send_raw(req, options).await.unwrap();
    let m = &r.metadata;
    assert_eq!(m.get("echo-k"), Some("from-request"));
    assert_eq!(m.get("echo-both"), Some("request"), "{m:?}");
    assert_eq!(m.get("echo-o"), Some("from-options"));
    assert_eq!(m.get(&format!("echo-{}", keys::AUTH)), Some("client-token"));
    let timeout = m.get(&format!("echo-{}", keys::SERVER_TIMEOUT)).unwrap();
    assert!(
        (4000..=5000).contains(&timeout.parse::<u64>().unwrap()),
        "{timeout}"
    );
    assert_eq!(m.get("server"), Some("1"));

    // The request's own __AUTH wins over the client's token.
    let payload = encode(&Args { a: 2, b: 3 }, SerializeType::MSGPACK);
    let mut req = request("Mul", SerializeType::MSGPACK, payload, 1);
    req.metadata.insert(keys::AUTH, "request-token");
    let r = client.send_raw(req, CallOptions::new()).await.unwrap();
    assert_eq!(
        r.metadata.get(&format!("echo-{}", keys::AUTH)),
        Some("request-token")
    );
    assert!(!r
        .metadata
        .contains_key(&format!("echo-{}", keys::SERVER_TIMEOUT)));

    client.close();
    s.stop().await;
}

#[tokio::test]
async fn send_raw_service_errors_are_service_errors_like_typed_calls() {
    let s = start(1).await;
    let client = connect(&s, ClientOptions::default()).await;

    let raw = client
        .send_raw(
            request(
                "Fail",
                SerializeType::MSGPACK,
                encode(&(), SerializeType::MSGPACK),
                3,
            ),
            CallOptions::new(),
        )
        .await
        .unwrap_err();
    let typed = client
        .call_with::<_, ()>("Arith", "Fail", &(), CallOptions::new())
        .await
        .unwrap_err();
    let (Error::Service(raw), Error::Service(typed)) = (&raw, &typed) else {
        panic!("not service errors: {raw:?}, {typed:?}");
    };
    assert_eq!(raw.message(), "boom");
    assert_eq!(raw.metadata().get("why"), Some("because"));
    assert_eq!(
        raw.metadata().get(keys::SERVER_ADDRESS),
        Some(s.address.as_str())
    );
    assert_eq!(raw.metadata().get(keys::SERVICE_ERROR), Some("boom"));
    assert_eq!(raw, typed, "raw and typed calls see the same error");

    // An unknown service: the server's error, as for a typed call.
    let mut req = request("Mul", SerializeType::MSGPACK, Bytes::new(), 3);
    req.service_path = "NoSuchService".into();
    let raw = client.send_raw(req, CallOptions::new()).await.unwrap_err();
    let typed = client
        .call::<_, Reply>("NoSuchService", "Mul", &Args::default())
        .await
        .unwrap_err();
    let Error::Service(e) = &raw else {
        panic!("not a service error: {raw:?}");
    };
    assert!(e.message().contains("NoSuchService"), "{e}");
    assert_eq!(raw.to_string(), typed.to_string());
    assert!(!raw.is_retryable());

    client.close();
    s.stop().await;
}

#[tokio::test]
async fn send_raw_oneway_returns_once_queued() {
    let s = start(1).await;
    let client = connect(&s, ClientOptions::default()).await;
    let mut req = request(
        "Note",
        SerializeType::MSGPACK,
        encode(&"hello", SerializeType::MSGPACK),
        99,
    );
    req.header.set_oneway(true);
    let r = client.send_raw(req, CallOptions::new()).await.unwrap();
    assert_eq!(r.header.seq(), 99);
    assert!(r.header.is_oneway());
    assert!(r.payload.is_empty() && r.metadata.is_empty());
    for _ in 0..200 {
        if s.notes.load(Ordering::Relaxed) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        s.notes.load(Ordering::Relaxed),
        1,
        "the server ran the call"
    );
    // The connection still serves ordinary calls.
    let c: Reply = client
        .call("Arith", "Mul", &Args { a: 2, b: 2 })
        .await
        .unwrap();
    assert_eq!(c.c, 4);
    client.close();
    s.stop().await;
}

#[tokio::test]
async fn send_raw_times_out_with_deadline_exceeded() {
    let s = start(1).await;
    let client = connect(&s, ClientOptions::default()).await;
    let req = request(
        "Sleep",
        SerializeType::MSGPACK,
        encode(&2000u64, SerializeType::MSGPACK),
        1,
    );
    let started = Instant::now();
    let e = client
        .send_raw(req, CallOptions::new().timeout(Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DeadlineExceeded), "{e:?}");
    assert!(started.elapsed() < Duration::from_millis(1500));

    // The client's default timeout applies too.
    let client2 = connect(
        &s,
        ClientOptions::default().default_timeout(Duration::from_millis(100)),
    )
    .await;
    let req = request(
        "Sleep",
        SerializeType::MSGPACK,
        encode(&2000u64, SerializeType::MSGPACK),
        1,
    );
    let e = client2.send_raw(req, CallOptions::new()).await.unwrap_err();
    assert!(matches!(e, Error::DeadlineExceeded), "{e:?}");
    client.close();
    client2.close();
    s.stop().await;
}

#[tokio::test]
async fn send_raw_sends_a_gzip_payload_as_it_is() {
    let s = start(1).await;
    let client = connect(&s, ClientOptions::default()).await;
    let text = "sextant ".repeat(400);
    let plain = encode(&text, SerializeType::MSGPACK);
    let zipped = compress(CompressType::GZIP, &plain).unwrap();
    assert!(zipped.len() < plain.len());
    let mut req = request("Echo", SerializeType::MSGPACK, zipped, 5);
    req.header.set_compress_type(CompressType::GZIP);
    let r = client.send_raw(req, CallOptions::new()).await.unwrap();
    // Over 1024 bytes and the request was compressed: so is the reply, as on the wire.
    assert_eq!(r.header.compress_type(), CompressType::GZIP);
    assert!(r.payload.len() < plain.len());
    assert_eq!(decode::<String>(&r.header, r.payload), text);
    client.close();
    s.stop().await;
}

#[tokio::test]
async fn send_raw_heartbeat_is_echoed() {
    let s = start(1).await;
    let client = connect(&s, ClientOptions::default()).await;
    let mut req = Message::heartbeat(31, 1_234_567);
    req.metadata.insert("k", "v");
    let r = client.send_raw(req, CallOptions::new()).await.unwrap();
    assert!(r.header.is_heartbeat());
    assert_eq!(r.header.seq(), 31);
    assert_eq!(&r.payload[..], &heartbeat_payload(1_234_567)[..]);
    assert_eq!(r.metadata.get("k"), Some("v"));
    assert_eq!(s.calls.load(Ordering::Relaxed), 0);
    client.close();
    s.stop().await;
}

/// Counts plugin hooks for raw calls.
#[derive(Default)]
struct Hooks {
    pre: AtomicU64,
    post: AtomicU64,
}

struct CountHooks(Arc<Hooks>);

impl ClientPlugin for CountHooks {
    fn pre_call(&self, call: &mut CallInfo<'_>) -> sextant::Result<()> {
        assert_eq!(call.service_method, "Mul");
        assert_eq!(call.metadata.get(keys::AUTH), Some("x-token"));
        self.0.pre.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn post_call(&self, _: &CallInfo<'_>, _: Option<&Error>, _: Duration) {
        self.0.post.fetch_add(1, Ordering::Relaxed);
    }
}

fn mul_request(a: i64) -> Message {
    request(
        "Mul",
        SerializeType::MSGPACK,
        encode(&Args { a, b: 2 }, SerializeType::MSGPACK),
        a as u64,
    )
}

/// A 127.0.0.1 address nothing listens on.
fn closed_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    format!("tcp@{a}")
}

#[tokio::test]
async fn xclient_send_raw_fails_over_when_a_server_is_down() {
    let s = start(1).await;
    let pairs = vec![
        KVPair::new(closed_address(), ""),
        KVPair::new(&s.address, ""),
    ];
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failover)
        .select_mode(SelectMode::RoundRobin)
        .discovery(MultipleServersDiscovery::new(pairs).unwrap())
        .build()
        .unwrap();
    x.auth("x-token");
    let hooks = Arc::new(Hooks::default());
    x.add_plugin(CountHooks(hooks.clone()));
    let mut failures = 0;
    for i in 0..200 {
        match x.send_raw(mul_request(i), CallOptions::new()).await {
            Ok(r) => {
                assert_eq!(r.header.seq(), i as u64);
                assert_eq!(decode::<Reply>(&r.header, r.payload), Reply { c: i * 2 });
                assert_eq!(
                    r.metadata.get(&format!("echo-{}", keys::AUTH)),
                    Some("x-token")
                );
            }
            Err(e) => {
                failures += 1;
                eprintln!("call {i}: {e}");
            }
        }
    }
    assert_eq!(failures, 0);
    assert_eq!(s.calls.load(Ordering::Relaxed), 200);
    let (pre, post) = (
        hooks.pre.load(Ordering::Relaxed),
        hooks.post.load(Ordering::Relaxed),
    );
    assert!(pre >= 200 && pre == post, "pre {pre}, post {post}");

    // Failfast on the dead server fails; the error is retryable (the failover's business).
    let x2 = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .discovery(MultipleServersDiscovery::new(vec![KVPair::new(closed_address(), "")]).unwrap())
        .build()
        .unwrap();
    let e = x2
        .send_raw(mul_request(1), CallOptions::new())
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");

    x.close();
    x2.close();
    s.stop().await;
}

#[tokio::test]
async fn xclient_send_raw_round_robin_spreads_and_other_modes_work() {
    let (s1, s2) = (start(1).await, start(2).await);
    let pairs = vec![KVPair::new(&s1.address, ""), KVPair::new(&s2.address, "")];
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failover)
        .select_mode(SelectMode::RoundRobin)
        .discovery(MultipleServersDiscovery::new(pairs.clone()).unwrap())
        .build()
        .unwrap();
    let mut by_server = [0u32; 2];
    for i in 0..100 {
        // An empty service path is the XClient's.
        let mut req = mul_request(i);
        req.service_path = Default::default();
        let r = x.send_raw(req, CallOptions::new()).await.unwrap();
        let id: usize = r.metadata.get("server").unwrap().parse().unwrap();
        by_server[id - 1] += 1;
        assert!(r.metadata.contains_key(keys::SERVER_ADDRESS));
    }
    assert_eq!(by_server, [50, 50]);

    // A service error is not retried on the other server.
    let before = s1.calls.load(Ordering::Relaxed) + s2.calls.load(Ordering::Relaxed);
    let e = x
        .send_raw(
            request(
                "Fail",
                SerializeType::MSGPACK,
                encode(&(), SerializeType::MSGPACK),
                1,
            ),
            CallOptions::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.as_service_error().unwrap().message(), "boom");
    assert_eq!(
        e.as_service_error().unwrap().metadata().get("why"),
        Some("because")
    );
    let after = s1.calls.load(Ordering::Relaxed) + s2.calls.load(Ordering::Relaxed);
    assert_eq!(before, after);
    x.close();

    // Consistent hash routes by the payload: the same request always goes to the same server.
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .select_mode(SelectMode::ConsistentHash)
        .discovery(MultipleServersDiscovery::new(pairs.clone()).unwrap())
        .build()
        .unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let r = x
            .send_raw(mul_request(21), CallOptions::new())
            .await
            .unwrap();
        seen.insert(r.metadata.get("server").unwrap().to_string());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    x.close();

    // Failbackup and Failtry answer too; a oneway raw request under either is queued (and
    // run: wait for it before closing, which would drop what is still queued).
    let notes = || s1.notes.load(Ordering::Relaxed) + s2.notes.load(Ordering::Relaxed);
    for (i, mode) in [FailMode::Failbackup, FailMode::Failtry]
        .into_iter()
        .enumerate()
    {
        let x = XClient::builder("Arith")
            .fail_mode(mode)
            .select_mode(SelectMode::RoundRobin)
            .discovery(MultipleServersDiscovery::new(pairs.clone()).unwrap())
            .build()
            .unwrap();
        let r = x
            .send_raw(mul_request(5), CallOptions::new())
            .await
            .unwrap();
        assert_eq!(decode::<Reply>(&r.header, r.payload), Reply { c: 10 });
        let mut note = request(
            "Note",
            SerializeType::MSGPACK,
            encode(&"x", SerializeType::MSGPACK),
            1,
        );
        note.header.set_oneway(true);
        x.send_raw(note, CallOptions::new()).await.unwrap();
        for _ in 0..200 {
            if notes() == i as u64 + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(notes(), i as u64 + 1, "{mode}");
        x.close();
    }

    // A deadline bounds an XClient raw call too.
    let x = XClient::builder("Arith")
        .discovery(MultipleServersDiscovery::new(pairs).unwrap())
        .build()
        .unwrap();
    let req = request(
        "Sleep",
        SerializeType::MSGPACK,
        encode(&2000u64, SerializeType::MSGPACK),
        1,
    );
    let started = std::time::Instant::now();
    let e = x
        .send_raw(req, CallOptions::new().timeout(Duration::from_millis(100)))
        .await
        .unwrap_err();
    // The client's timer or the server's (sent as `__ServerTimeout`, 99 ms) ends it, whichever
    // fires first: either way long before the 2 s the handler would take.
    let server_side =
        matches!(&e, Error::Service(s) if s.to_string().contains("exceeded its deadline"));
    assert!(matches!(e, Error::DeadlineExceeded) || server_side, "{e:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    x.close();

    s1.stop().await;
    s2.stop().await;
}

#[tokio::test]
async fn clone_for_a_fixed_list_serves_another_xclient() {
    let s = start(1).await;
    let d = MultipleServersDiscovery::new(vec![KVPair::new(&s.address, "weight=3")]).unwrap();
    let clone = d.clone_for("Other").await.unwrap();
    assert_eq!(clone.get_services(), d.get_services());
    let x = XClient::builder("Arith").discovery(clone).build().unwrap();
    let r: Reply = x.call("Mul", &Args { a: 3, b: 4 }).await.unwrap();
    assert_eq!(r.c, 12);
    let r = x
        .send_raw(mul_request(4), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(decode::<Reply>(&r.header, r.payload), Reply { c: 8 });
    x.close();
    s.stop().await;
}
