//! HTTP on the service port: rpcx's HTTP invoke (header for header as Go rpcx's
//! `server/gateway.go` and `converter.go`), JSON-RPC 2.0, CONNECT, user routes, CORS, HTTP/2, and
//! the bad input of the HTTP issue. Every test also checks that an rpcx client on the same port
//! is still served.
#![cfg(feature = "http")]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use sextant::http::{cors_allow_all, text_response};
use sextant::server::HttpOptions;
use sextant::transport::Stream;
use sextant::{Address, Client, ClientOptions, Context, Server, ServiceError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Args {
    a: i64,
    b: i64,
}

#[derive(Debug, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    c: i64,
}

fn server_with(builder: sextant::ServerBuilder) -> Server {
    let server = builder.build();
    server
        .register_fn("Arith", "Mul", |cx: Context, args: Args| async move {
            if let Some(v) = cx.metadata().get("echo") {
                cx.set_response_metadata("echoed", v.to_string());
            }
            Ok::<_, ServiceError>(Reply { c: args.a * args.b })
        })
        .unwrap();
    server
        .register_fn("Arith", "Div", |_cx: Context, args: Args| async move {
            if args.b == 0 {
                return Err(ServiceError::new("divide by zero"));
            }
            Ok(Reply { c: args.a / args.b })
        })
        .unwrap();
    server
        .register_fn("Arith", "Slow", |_cx: Context, args: Args| async move {
            tokio::time::sleep(Duration::from_millis(args.a as u64)).await;
            Ok::<_, ServiceError>(Reply { c: args.b })
        })
        .unwrap();
    server
}

/// What the last `Note.Take` call got: its argument and whether it was oneway.
static NOTED: std::sync::Mutex<Option<(i64, bool)>> = std::sync::Mutex::new(None);

async fn start(builder: sextant::ServerBuilder) -> (Server, String) {
    let server = server_with(builder);
    server
        .register_fn("Note", "Take", |cx: Context, n: i64| async move {
            *NOTED.lock().unwrap() = Some((n, cx.is_oneway()));
            Ok::<_, ServiceError>(())
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let hp = addr.addr().to_string();
    (server, hp)
}

/// An rpcx call on the same port must still work.
async fn rpcx_still_served(hp: &str) {
    let client = Client::connect(format!("tcp@{hp}"), ClientOptions::default())
        .await
        .unwrap();
    let r: Reply = client
        .call("Arith", "Mul", &Args { a: 6, b: 7 })
        .await
        .unwrap();
    assert_eq!(r.c, 42);
    client.close();
}

/// A parsed HTTP/1 response: status line, headers as written (name case kept), body.
#[derive(Debug)]
struct Raw {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn status(&self) -> u16 {
        self.status_line.split(' ').nth(1).unwrap().parse().unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response (Content-Length or no body) from `s`, at most 5 s.
async fn read_response(s: &mut TcpStream) -> Raw {
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before a response: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end - 4].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_string();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.to_string(), v.trim().to_string())
            })
            .collect();
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().unwrap())
            .unwrap_or(0);
        let mut body = buf[head_end..].to_vec();
        while body.len() < len {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            body.extend_from_slice(&chunk[..n]);
        }
        Raw {
            status_line,
            headers,
            body,
        }
    })
    .await
    .expect("no response within 5 s")
}

/// Sends one HTTP/1.1 request on a new connection and reads the response.
async fn request(hp: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Raw {
    let mut s = TcpStream::connect(hp).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {hp}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    read_response(&mut s).await
}

const MUL: &[(&str, &str)] = &[
    ("X-RPCX-MessageID", "10000"),
    ("X-RPCX-SerializeType", "1"),
    ("X-RPCX-ServicePath", "Arith"),
    ("X-RPCX-ServiceMethod", "Mul"),
];

#[tokio::test]
async fn invoke_json_as_go_answers() {
    let (server, hp) = start(Server::builder()).await;
    let r = request(&hp, "POST", "/", MUL, br#"{"A":10,"B":20}"#).await;
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.text(), r#"{"C":200}"#);
    // Go's headers (names compare without case: Go writes X-Rpcx-Messageid, sextant lower
    // case), empty ones included.
    for (name, value) in [
        ("X-Rpcx-Messageid", "10000"),
        ("X-Rpcx-Servicepath", "Arith"),
        ("X-Rpcx-Servicemethod", "Mul"),
        ("X-Rpcx-Serializetype", "1"),
        ("X-Rpcx-Meta", ""),
        ("X-Rpcx-Version", ""),
        ("Content-Type", "text/plain; charset=utf-8"),
    ] {
        assert_eq!(r.header(name), Some(value), "{name} in {:?}", r.headers);
    }
    assert!(r.header("X-Rpcx-Messagestatustype").is_none());
    rpcx_still_served(&hp).await;
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn invoke_msgpack_with_metadata_and_path_from_url() {
    let (server, hp) = start(Server::builder()).await;
    let args = rmp_serde::to_vec_named(&Args { a: 3, b: 4 }).unwrap();
    let r = request(
        &hp,
        "PUT",
        "/Arith",
        &[
            ("X-RPCX-SerializeType", "3"),
            ("X-RPCX-ServiceMethod", "Mul"),
            ("X-RPCX-Meta", "echo=hello+world&other=1"),
        ],
        &args,
    )
    .await;
    assert_eq!(r.status(), 200, "{r:?}");
    let reply: Reply = rmp_serde::from_slice(&r.body).unwrap();
    assert_eq!(reply.c, 12);
    assert_eq!(r.header("X-Rpcx-Servicepath"), Some("Arith"));
    assert_eq!(r.header("X-Rpcx-Meta"), Some("echoed=hello+world"));
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn service_errors_are_500_with_the_error_headers() {
    let (server, hp) = start(Server::builder()).await;
    let mut h = MUL.to_vec();
    h[3] = ("X-RPCX-ServiceMethod", "Div");
    let r = request(&hp, "POST", "/", &h, br#"{"A":1,"B":0}"#).await;
    assert_eq!(r.status(), 500);
    assert_eq!(r.header("X-Rpcx-Messagestatustype"), Some("Error"));
    assert_eq!(r.header("X-Rpcx-Errormessage"), Some("divide by zero"));
    assert_eq!(r.header("X-Rpcx-Messageid"), Some("10000"));
    assert!(r.body.is_empty());

    // Unknown service and method: Go's texts.
    let mut h = MUL.to_vec();
    h[2] = ("X-RPCX-ServicePath", "Nope");
    let r = request(&hp, "POST", "/", &h, b"{}").await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.header("X-Rpcx-Errormessage"),
        Some("rpcx: can't find service Nope")
    );
    let mut h = MUL.to_vec();
    h[3] = ("X-RPCX-ServiceMethod", "Pow");
    let r = request(&hp, "POST", "/", &h, b"{}").await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.header("X-Rpcx-Errormessage"),
        Some("rpcx: can't find method Pow")
    );
    // A payload the codec cannot read.
    let r = request(&hp, "POST", "/", MUL, b"{not json").await;
    assert_eq!(r.status(), 500);
    assert!(r.header("X-Rpcx-Errormessage").is_some());
    rpcx_still_served(&hp).await;
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn missing_or_invalid_headers_are_400_naming_the_header() {
    let (server, hp) = start(Server::builder()).await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-ServicePath", "Arith"),
            ],
            "X-RPCX-ServiceMethod",
        ),
        (
            vec![
                ("X-RPCX-ServicePath", "Arith"),
                ("X-RPCX-ServiceMethod", "Mul"),
            ],
            "X-RPCX-SerializeType",
        ),
        (
            vec![
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-ServiceMethod", "Mul"),
            ],
            "X-RPCX-ServicePath",
        ),
        (
            vec![
                ("X-RPCX-MessageID", "abc"),
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-ServicePath", "Arith"),
                ("X-RPCX-ServiceMethod", "Mul"),
            ],
            "X-RPCX-MessageID",
        ),
        (
            vec![
                ("X-RPCX-SerializeType", "99"),
                ("X-RPCX-ServicePath", "Arith"),
                ("X-RPCX-ServiceMethod", "Mul"),
            ],
            "X-RPCX-SerializeType",
        ),
        (
            vec![
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-CompressType", "5"),
                ("X-RPCX-ServicePath", "Arith"),
                ("X-RPCX-ServiceMethod", "Mul"),
            ],
            "X-RPCX-CompressType",
        ),
        (
            vec![
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-Meta", "a=%zz"),
                ("X-RPCX-ServicePath", "Arith"),
                ("X-RPCX-ServiceMethod", "Mul"),
            ],
            "X-RPCX-Meta",
        ),
    ];
    for (headers, which) in cases {
        let r = request(&hp, "POST", "/", &headers, br#"{"A":1,"B":2}"#).await;
        assert_eq!(r.status(), 400, "{which}: {r:?}");
        assert!(r.text().contains(which), "{which}: {}", r.text());
        assert_eq!(r.header("X-Rpcx-Messagestatustype"), Some("Error"));
        assert!(r.header("X-Rpcx-Errormessage").unwrap().contains(which));
    }
    rpcx_still_served(&hp).await;
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn auth_failure_is_401() {
    let (server, hp) = start(Server::builder().auth_fn(|_m, token| {
        let ok = token == "Bearer s3cret";
        async move {
            if ok {
                Ok(())
            } else {
                Err("invalid token".to_string())
            }
        }
    }))
    .await;
    let r = request(&hp, "POST", "/", MUL, br#"{"A":2,"B":3}"#).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.header("X-Rpcx-Errormessage"), Some("invalid token"));
    let mut h = MUL.to_vec();
    h.push(("Authorization", "Bearer s3cret"));
    let r = request(&hp, "POST", "/", &h, br#"{"A":2,"B":3}"#).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), r#"{"C":6}"#);
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn heartbeat_and_oneway_over_http() {
    let (server, hp) = start(Server::builder()).await;
    let r = request(
        &hp,
        "POST",
        "/",
        &[("X-RPCX-Heartbeat", "true"), ("X-RPCX-SerializeType", "3")],
        b"ping",
    )
    .await;
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.body, b"ping");
    // Go runs a oneway HTTP invoke to the end and sends the reply anyway.
    let mut h = MUL.to_vec();
    h.push(("X-RPCX-Oneway", "true"));
    let r = request(&hp, "POST", "/", &h, br#"{"A":2,"B":5}"#).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), r#"{"C":10}"#);
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn gzip_request_is_decompressed_and_large_replies_come_back_compressed() {
    use std::io::Write;
    let server = Server::new();
    server
        .register_fn("Echo", "Say", |_cx: Context, s: String| async move {
            Ok::<_, ServiceError>(s.repeat(2))
        })
        .unwrap();
    let hp = server
        .start("127.0.0.1:0")
        .await
        .unwrap()
        .addr()
        .to_string();
    let text = "x".repeat(2000);
    let json = serde_json::to_vec(&text).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json).unwrap();
    let body = gz.finish().unwrap();
    let r = request(
        &hp,
        "POST",
        "/Echo",
        &[
            ("X-RPCX-SerializeType", "1"),
            ("X-RPCX-ServiceMethod", "Say"),
            ("Content-Encoding", "gzip"),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.header("X-Rpcx-Compresstype"), Some("1"));
    let mut d = flate2::read::GzDecoder::new(&r.body[..]);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut d, &mut out).unwrap();
    let reply: String = serde_json::from_str(&out).unwrap();
    assert_eq!(reply.len(), 4000);
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn body_over_the_limit_is_413_and_not_read() {
    let opts = HttpOptions::default().max_body_size(1024);
    let (server, hp) = start(Server::builder().http_options(opts)).await;
    let big = vec![b' '; 4096];
    let r = request(&hp, "POST", "/", MUL, &big).await;
    assert_eq!(r.status(), 413);
    assert!(r.text().contains("1024"));

    // A declared Content-Length of 4 GiB: refused at once, without waiting for the body.
    let mut s = TcpStream::connect(&hp).await.unwrap();
    let mut req = String::from("POST / HTTP/1.1\r\nHost: x\r\n");
    for (k, v) in MUL {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 4294967296\r\n\r\n{\"A\":");
    s.write_all(req.as_bytes()).await.unwrap();
    let r = read_response(&mut s).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.header("Connection"), Some("close"));
    // The server closes the connection rather than reading 4 GiB.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "connection left open");

    // Chunked bodies are bounded too.
    let mut s = TcpStream::connect(&hp).await.unwrap();
    let mut req = String::from("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n");
    for (k, v) in MUL {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    for _ in 0..4 {
        s.write_all(format!("400\r\n{}\r\n", " ".repeat(1024)).as_bytes())
            .await
            .unwrap();
    }
    let r = read_response(&mut s).await;
    assert_eq!(r.status(), 413);
    rpcx_still_served(&hp).await;
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn headers_that_never_end_are_cut_and_do_not_block_others() {
    let opts = HttpOptions::default().header_read_timeout(Duration::from_millis(800));
    let (server, hp) = start(Server::builder().http_options(opts)).await;
    let mut slow = Vec::new();
    for i in 0..1000 {
        let mut s = TcpStream::connect(&hp).await.unwrap();
        s.write_all(format!("POST / HTTP/1.1\r\nX-Slow-{i}: ").as_bytes())
            .await
            .unwrap();
        slow.push(s);
    }
    // Meanwhile a new HTTP client and a new rpcx client are served.
    let r = request(&hp, "POST", "/", MUL, br#"{"A":2,"B":2}"#).await;
    assert_eq!(r.status(), 200);
    rpcx_still_served(&hp).await;
    // After the header timeout every slow connection has been closed by the server.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut closed = 0;
    for mut s in slow {
        let mut b = [0u8; 256];
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await {
            Ok(Ok(_)) | Ok(Err(_)) => closed += 1,
            Err(_) => {}
        }
    }
    assert_eq!(closed, 1000);
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

async fn jsonrpc(hp: &str, body: &str) -> Raw {
    request(
        hp,
        "POST",
        "/",
        &[
            ("X-JSONRPC-2.0", "true"),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn jsonrpc_calls_errors_and_notifications() {
    let (server, hp) = start(Server::builder()).await;
    let r = jsonrpc(
        &hp,
        r#"{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":6,"B":7},"id":1}"#,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), r#"{"jsonrpc":"2.0","result":{"C":42},"id":1}"#);
    assert_eq!(r.header("Content-Type"), Some("application/json"));

    let r = jsonrpc(
        &hp,
        r#"{"jsonrpc":"2.0","method":"Arith.Div","params":{"A":6,"B":0},"id":"x"}"#,
    )
    .await;
    assert_eq!(
        r.text(),
        r#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"divide by zero","data":null},"id":"x"}"#
    );
    let r = jsonrpc(
        &hp,
        r#"{"jsonrpc":"2.0","method":"Nope.Mul","params":{},"id":2}"#,
    )
    .await;
    assert!(r.text().contains(r#""code":-32603"#), "{}", r.text());
    assert!(r.text().contains("can't find service Nope"));
    let r = jsonrpc(
        &hp,
        r#"{"jsonrpc":"2.0","method":"Mul","params":{},"id":3}"#,
    )
    .await;
    assert!(r.text().contains(r#""code":-32601"#));
    assert!(r.text().contains("must contains servicepath and method"));
    let r = jsonrpc(&hp, r#"{"jsonrpc":"2.0","method":"#).await;
    assert!(r
        .text()
        .starts_with(r#"{"jsonrpc":"2.0","error":{"code":-32700"#));
    let r = jsonrpc(&hp, r#"{"jsonrpc":"1.0","method":"Arith.Mul","id":4}"#).await;
    assert!(r.text().contains(r#""code":-32600"#), "{}", r.text());
    let r = jsonrpc(&hp, r#"42"#).await;
    assert!(r.text().contains(r#""code":-32600"#), "{}", r.text());

    // A notification: nothing answered, but the call runs.
    let r = jsonrpc(
        &hp,
        r#"{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":1,"B":1}}"#,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.body.is_empty());
    rpcx_still_served(&hp).await;
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn jsonrpc_batches_are_answered_in_order_and_bounded() {
    let (server, hp) = start(Server::builder()).await;
    let r = jsonrpc(
        &hp,
        r#"[{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":2,"B":3},"id":1},
            {"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":1,"B":1}},
            {"jsonrpc":"2.0","method":"Arith.Slow","params":{"A":50,"B":9},"id":2},
            {"foo":1}]"#,
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 3, "{v}");
    assert_eq!(a[0]["result"]["C"], 6);
    assert_eq!(a[1]["result"]["C"], 9);
    assert_eq!(a[2]["error"]["code"], -32600);

    let r = jsonrpc(&hp, "[]").await;
    assert!(r.text().contains(r#""code":-32600"#));

    let entry = r#"{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":1,"B":1},"id":1}"#;
    let huge = format!("[{}]", vec![entry; 100_000].join(","));
    let r = jsonrpc(&hp, &huge).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("100"));
    rpcx_still_served(&hp).await;
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn connect_then_rpcx_on_the_same_connection() {
    let (server, hp) = start(Server::builder()).await;
    // Exactly what Go's client (newDirectHTTPConn) sends.
    let mut s = TcpStream::connect(&hp).await.unwrap();
    s.write_all(b"CONNECT /_rpcx_ HTTP/1.0\n\n").await.unwrap();
    let r = read_response(&mut s).await;
    assert_eq!(r.status_line, "HTTP/1.0 200 Connected to rpcx", "{r:?}");
    let address = Address::parse(&format!("tcp@{hp}")).unwrap();
    let client = Client::from_stream(address, Stream::Tcp(s), ClientOptions::default());
    let reply: Reply = client
        .call("Arith", "Mul", &Args { a: 5, b: 5 })
        .await
        .unwrap();
    assert_eq!(reply.c, 25);
    client.close();

    // GeeRPC's path works too.
    let mut s = TcpStream::connect(&hp).await.unwrap();
    s.write_all(b"CONNECT /_geerpc_ HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut s).await;
    assert_eq!(r.status(), 200);

    // Another path: refused with a clear text; another method on the rpc path: Go's 405.
    let mut s = TcpStream::connect(&hp).await.unwrap();
    s.write_all(b"CONNECT /elsewhere HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut s).await;
    assert_eq!(r.status(), 404);
    assert!(r.text().contains("/_rpcx_"));
    let r = request(&hp, "GET", "/_rpcx_", &[], b"").await;
    assert_eq!(r.status(), 405);
    assert_eq!(r.text(), "405 must CONNECT\n");
    rpcx_still_served(&hp).await;
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn http_routes_cors_and_switches() {
    let (server, hp) = start(
        Server::builder()
            .cors(cors_allow_all())
            .http_route("/healthz", |_req, _peer| async {
                text_response(http::StatusCode::OK, "ok")
            }),
    )
    .await;
    let r = request(&hp, "GET", "/healthz", &[], b"").await;
    assert_eq!((r.status(), r.text().as_str()), (200, "ok\n"));
    // A CORS preflight and a cross-origin call.
    let r = request(
        &hp,
        "OPTIONS",
        "/",
        &[
            ("Origin", "http://example.com"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "x-rpcx-servicemethod"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(r
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("x-rpcx-servicemethod"));
    let mut h = MUL.to_vec();
    h.push(("Origin", "http://example.com"));
    let r = request(&hp, "POST", "/", &h, br#"{"A":1,"B":2}"#).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    server.shutdown(Duration::from_secs(1)).await.unwrap();

    // HTTP invoke off, JSON-RPC on.
    let (server, hp) = start(Server::builder().disable_http_gateway()).await;
    let r = request(&hp, "POST", "/", MUL, br#"{"A":1,"B":2}"#).await;
    assert_eq!(r.status(), 404);
    let r = jsonrpc(
        &hp,
        r#"{"method":"Arith.Mul","params":{"A":2,"B":2},"id":1}"#,
    )
    .await;
    assert!(r.text().contains(r#""result":{"C":4}"#));
    server.shutdown(Duration::from_secs(1)).await.unwrap();

    // Both off: the port speaks rpcx only, and an HTTP request is closed as before.
    let (server, hp) = start(Server::builder().disable_http_gateway().disable_jsonrpc()).await;
    let mut s = TcpStream::connect(&hp).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(n.is_err() || rest.is_empty(), "{rest:?}");
    rpcx_still_served(&hp).await;
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

type H2Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

async fn h2(hp: &str) -> H2Sender {
    let s = TcpStream::connect(hp).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(s),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    sender
}

fn h2_mul(a: i64, b: i64) -> http::Request<Full<Bytes>> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri("http://localhost/Arith");
    req = req
        .header("X-RPCX-SerializeType", "1")
        .header("X-RPCX-ServiceMethod", "Mul");
    req.body(Full::new(Bytes::from(format!(r#"{{"A":{a},"B":{b}}}"#))))
        .unwrap()
}

#[tokio::test]
async fn http2_invoke_and_a_stream_flood_is_bounded() {
    let opts = HttpOptions::default().max_concurrent_streams(16);
    let (server, hp) = start(Server::builder().http_options(opts)).await;
    let mut sender = h2(&hp).await;
    let res = sender.send_request(h2_mul(3, 3)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-rpcx-servicemethod"], "Mul");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"C":9}"#);

    // 2,000 concurrent streams on one connection: the server lets 16 run at once; the client
    // queues the rest, and every one is answered.
    let mut tasks = Vec::new();
    for i in 0..2000 {
        let mut s = sender.clone();
        tasks.push(tokio::spawn(async move {
            s.ready().await.ok()?;
            let res = s.send_request(h2_mul(i, 2)).await.ok()?;
            let ok = res.status() == 200;
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
    assert_eq!(ok, 2000);
    rpcx_still_served(&hp).await;
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_body_that_never_arrives_is_cut() {
    let opts = HttpOptions::default().body_read_timeout(Duration::from_millis(300));
    let (server, hp) = start(Server::builder().http_options(opts)).await;
    let mut s = TcpStream::connect(&hp).await.unwrap();
    let mut req = String::from("POST / HTTP/1.1\r\nHost: x\r\n");
    for (k, v) in MUL {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 100\r\n\r\n{");
    s.write_all(req.as_bytes()).await.unwrap();
    let r = read_response(&mut s).await;
    assert_eq!(r.status(), 408);
    assert_eq!(r.header("Connection"), Some("close"));
    rpcx_still_served(&hp).await;
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_lets_http_calls_finish() {
    let (server, hp) = start(Server::builder()).await;
    let hp2 = hp.clone();
    let slow = tokio::spawn(async move {
        let mut h = MUL.to_vec();
        h[3] = ("X-RPCX-ServiceMethod", "Slow");
        request(&hp2, "POST", "/", &h, br#"{"A":300,"B":1}"#).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.shutdown(Duration::from_secs(5)).await.unwrap();
    let r = slow.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), r#"{"C":1}"#);
}
