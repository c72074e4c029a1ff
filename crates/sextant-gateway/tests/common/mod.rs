//! What the gateway tests share: an `Arith` server that says which port served a call, and a
//! small HTTP/1.1 and HTTP/2 client.
#![allow(dead_code)] // each test file uses part of it

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use sextant::{Context, RegisterOptions, Server, ServerPlugin, ServiceError};
use tokio::net::TcpStream;

/// rpcx-examples' argument.
#[derive(Debug, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    pub a: i64,
    pub b: i64,
}

/// rpcx-examples' reply.
#[derive(Debug, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Reply {
    pub c: i64,
}

/// Something done to a server before it starts (adding a plugin).
pub type Setup = Option<Box<dyn FnOnce(&Server)>>;

/// A server of `Arith` (listening on 127.0.0.1, with `plugin` if given):
/// - `Mul(Args) -> Reply`, with `port=<its port>` in the response metadata, after sleeping
///   `delay`;
/// - `Div(Args) -> Reply`, the error `divide by zero` when `B` is 0;
/// - `Slow(Args) -> Reply`: sleeps `A` ms, answers `B`.
pub async fn arith_server(plugin: Setup, delay: Duration) -> (Server, u16) {
    let server = Server::new();
    if let Some(add) = plugin {
        add(&server);
    }
    let port = Arc::new(AtomicU16::new(0));
    let p = port.clone();
    server
        .register_fn_with(
            "Arith",
            "Mul",
            move |cx: Context, args: Args| {
                cx.set_response_metadata("port", p.load(Ordering::Relaxed).to_string());
                async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Ok::<_, ServiceError>(Reply { c: args.a * args.b })
                }
            },
            RegisterOptions::default(),
        )
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
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let n = addr.addr().rsplit(':').next().unwrap().parse().unwrap();
    port.store(n, Ordering::Relaxed);
    (server, n)
}

/// Adds `plugin` to a server (for [`arith_server`]).
pub fn with_plugin(plugin: impl ServerPlugin) -> Setup {
    Some(Box::new(move |s: &Server| s.add_plugin(plugin)))
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Res {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// The value of `key` in `X-RPCX-Meta`.
    pub fn meta(&self, key: &str) -> Option<String> {
        let meta = self.header("x-rpcx-meta")?;
        meta.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| v.to_string())
        })
    }
}

/// An HTTP request: method, path, headers, body.
pub fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://gateway{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::copy_from_slice(body))).unwrap()
}

/// The headers of an HTTP invoke of `Arith.<method>` with a JSON payload.
pub fn invoke_headers(method: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("X-RPCX-SerializeType", "1"),
        ("X-RPCX-ServicePath", "Arith"),
        ("X-RPCX-ServiceMethod", method),
    ]
}

/// One HTTP/1.1 connection to the gateway.
pub struct H1 {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl H1 {
    pub async fn connect(addr: std::net::SocketAddr) -> H1 {
        let s = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        H1 { sender }
    }

    /// Sends `req` and reads the whole response, at most 30 s.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Res, String> {
        tokio::time::timeout(Duration::from_secs(30), async {
            self.sender.ready().await.map_err(|e| e.to_string())?;
            let res = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| e.to_string())?;
            let (parts, body) = res.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok(Res {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        })
        .await
        .map_err(|_| "no response within 30 s".to_string())?
    }
}

/// Sends one request on a new HTTP/1.1 connection.
pub async fn send(addr: std::net::SocketAddr, req: Request<Full<Bytes>>) -> Res {
    H1::connect(addr).await.send(req).await.unwrap()
}
