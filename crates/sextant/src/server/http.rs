//! HTTP on the service port: a connection whose first byte is not rpcx's magic number but an
//! HTTP method's first letter is served by hyper (HTTP/1.1 and HTTP/2): HTTP invoke, JSON-RPC 2.0,
//! `CONNECT /_rpcx_` (then rpcx frames on the same connection), and the routes users add.
//!
//! The rpcx path pays nothing for this: the first read of a connection is looked at once.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::{Buf, Bytes, BytesMut};
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sextant_protocol::{keys, Header, Message, MessageStatusType, Metadata};
use tokio::io::{AsyncRead, ReadBuf};
use tower::{Layer, ServiceExt};

use super::call::process;
use super::ServerInner;
use crate::context::Origin;
use crate::http::{
    close_after, read_body_within, serve_invoke, serve_jsonrpc, text_response, CorsLayer, HttpBody,
    InvokeError, InvokeOutcome, JsonRpcError, JsonRpcOptions, CODE_INTERNAL_ERROR,
};
use crate::transport::{PeerAddr, PeerIdentity, Stream};
use crate::util::lock;

/// The HTTP request type user routes receive.
pub type HttpRequest = Request<Incoming>;

/// A handler for an HTTP route added with
/// [`ServerBuilder::http_route`](super::ServerBuilder::http_route): any
/// `Fn(HttpRequest, PeerAddr) -> impl Future<Output = Response<HttpBody>>`.
pub trait HttpHandler: Send + Sync + 'static {
    /// Answers one request from `peer`.
    fn call(&self, req: HttpRequest, peer: PeerAddr) -> BoxFuture<'static, Response<HttpBody>>;
}

impl<F, Fut> HttpHandler for F
where
    F: Fn(HttpRequest, PeerAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<HttpBody>> + Send + 'static,
{
    fn call(&self, req: HttpRequest, peer: PeerAddr) -> BoxFuture<'static, Response<HttpBody>> {
        Box::pin(self(req, peer))
    }
}

/// Settings of the HTTP side of the service port. Every field states its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// The largest request body read; a larger one is answered `413` and not read. Default:
    /// 16 MiB (the rpcx message limit).
    pub max_body_size: usize,
    /// The request line and headers must arrive within this time, or the connection is closed
    /// (slow-header attacks). Default: 10 s.
    pub header_read_timeout: Duration,
    /// The request body must arrive within this time once the headers have, or the request is
    /// answered `408` and the connection closed (slow-body attacks). Default: 30 s.
    pub body_read_timeout: Duration,
    /// The largest request head (HTTP/1) or header list (HTTP/2). Default: 64 KiB.
    pub max_header_size: usize,
    /// HTTP/2 streams one connection may have open at once. Default: 256.
    pub max_concurrent_streams: u32,
    /// JSON-RPC settings (batch size). Default: [`JsonRpcOptions::default`].
    pub jsonrpc: JsonRpcOptions,
    /// CORS for HTTP invoke and JSON-RPC (rpcx's `SetCORS`), e.g.
    /// [`cors_allow_all`](crate::http::cors_allow_all). Default: none.
    pub cors: Option<CorsLayer>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_body_size: 16 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_header_size: 64 * 1024,
            max_concurrent_streams: 256,
            jsonrpc: JsonRpcOptions::default(),
            cors: None,
        }
    }
}

impl HttpOptions {
    /// Sets [`max_body_size`](Self::max_body_size).
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// Sets [`header_read_timeout`](Self::header_read_timeout).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Sets [`body_read_timeout`](Self::body_read_timeout).
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// Sets [`max_header_size`](Self::max_header_size).
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.max_header_size = bytes;
        self
    }

    /// Sets [`max_concurrent_streams`](Self::max_concurrent_streams).
    pub fn max_concurrent_streams(mut self, streams: u32) -> Self {
        self.max_concurrent_streams = streams;
        self
    }

    /// Sets the JSON-RPC batch bound, [`JsonRpcOptions::max_batch`].
    pub fn jsonrpc_max_batch(mut self, requests: usize) -> Self {
        self.jsonrpc.max_batch = requests;
        self
    }
}

/// A route: an exact path, or every path under a prefix ending in `/`.
pub(crate) struct Route {
    path: String,
    handler: Arc<dyn HttpHandler>,
}

impl Route {
    pub(crate) fn new(path: String, handler: Arc<dyn HttpHandler>) -> Route {
        Route { path, handler }
    }

    pub(crate) fn clone_route(&self) -> Route {
        Route {
            path: self.path.clone(),
            handler: self.handler.clone(),
        }
    }

    fn matches(&self, path: &str) -> bool {
        if self.path.ends_with('/') {
            path.starts_with(&self.path) || path == self.path.trim_end_matches('/')
        } else {
            path == self.path
        }
    }
}

/// What the server keeps for its HTTP side.
pub(crate) struct HttpSide {
    builder: auto::Builder<TokioExecutor>,
    pub(crate) routes: ArcSwap<Vec<Route>>,
}

impl HttpSide {
    pub(crate) fn new(opts: &HttpOptions, routes: Vec<Route>) -> HttpSide {
        let builder = crate::http::connection_builder(
            opts.header_read_timeout,
            opts.max_header_size,
            opts.max_concurrent_streams,
        );
        HttpSide {
            builder,
            routes: ArcSwap::from_pointee(routes),
        }
    }
}

/// Whether a connection whose first byte is `b` is taken for HTTP: every HTTP/1 method starts
/// with an upper-case letter, and the HTTP/2 preface with `P`.
pub(crate) fn looks_like_http(b: u8) -> bool {
    b.is_ascii_uppercase()
}

/// Whether this server answers HTTP at all.
pub(crate) fn enabled(server: &ServerInner) -> bool {
    let o = &server.options;
    !(o.disable_http_gateway && o.disable_jsonrpc && server.http.routes.load().is_empty())
}

struct Conn {
    server: Arc<ServerInner>,
    peer: PeerAddr,
    identity: Option<Arc<PeerIdentity>>,
    /// A `CONNECT` that was accepted: rpcx continues on the upgraded connection.
    upgrade: Mutex<Option<OnUpgrade>>,
}

/// Serves an HTTP connection whose first bytes, already read, are `first`.
pub(crate) async fn serve(
    server: Arc<ServerInner>,
    stream: Stream,
    first: Bytes,
    peer: PeerAddr,
    identity: Option<Arc<PeerIdentity>>,
) {
    let conn = Arc::new(Conn {
        server: server.clone(),
        peer: peer.clone(),
        identity: identity.clone(),
        upgrade: Mutex::new(None),
    });
    let c = conn.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let c = c.clone();
        // Boxed as `Send` here: spelled out, the future's type trips rustc's check of
        // higher-ranked `Send` bounds in hyper's generic connection type.
        let fut: BoxFuture<'static, Result<Response<HttpBody>, Infallible>> =
            Box::pin(async move {
                match &c.server.options.http.cors {
                    None => Ok(handle(&c, req).await),
                    Some(cors) => {
                        let cors = cors.clone();
                        let inner = tower::service_fn(move |req: Request<Incoming>| {
                            let c = c.clone();
                            async move { Ok::<_, Infallible>(handle(&c, req).await) }
                        });
                        cors.layer(inner).oneshot(req).await
                    }
                }
            });
        fut
    });
    let io = TokioIo::new(Rewind {
        prefix: first,
        inner: stream,
    });
    let http = server.http.builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(http);
    let result = tokio::select! {
        r = http.as_mut() => r,
        _ = server.shutdown.cancelled() => {
            http.as_mut().graceful_shutdown();
            tokio::select! {
                r = http.as_mut() => r,
                _ = server.force.cancelled() => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "http connection ended with an error");
    }
    let upgrade = lock(&conn.upgrade).take();
    if let Some(on) = upgrade {
        match on.await {
            Ok(upgraded) => {
                let stream = Stream::from_io(TokioIo::new(upgraded));
                let rpcx: BoxFuture<'_, ()> = Box::pin(super::conn::serve_rpcx(
                    &server,
                    stream,
                    &peer,
                    BytesMut::new(),
                    identity,
                ));
                rpcx.await;
            }
            Err(e) => tracing::debug!(%peer, error = %e, "CONNECT upgrade failed"),
        }
    }
}

async fn handle(conn: &Conn, mut req: Request<Incoming>) -> Response<HttpBody> {
    let path = req.uri().path();
    let rpc_path = path == keys::DEFAULT_RPC_PATH || path == GEERPC_PATH;
    if req.method() == Method::CONNECT {
        return connect(conn, &mut req);
    }
    if rpc_path {
        // Go's `ServeHTTP` answers this to anything but CONNECT.
        return text_response(StatusCode::METHOD_NOT_ALLOWED, "405 must CONNECT");
    }
    let route = conn
        .server
        .http
        .routes
        .load()
        .iter()
        .find(|r| r.matches(path))
        .map(|r| r.handler.clone());
    if let Some(h) = route {
        return h.call(req, conn.peer.clone()).await;
    }
    let opts = &conn.server.options;
    let jsonrpc = req
        .headers()
        .get(const { http::HeaderName::from_static("x-jsonrpc-2.0") })
        .is_some_and(|v| v.as_bytes() == b"true");
    if jsonrpc && !opts.disable_jsonrpc {
        return jsonrpc_request(conn, req).await;
    }
    if opts.disable_http_gateway {
        return text_response(StatusCode::NOT_FOUND, "404 page not found");
    }
    invoke(conn, req).await
}

/// geerpc's CONNECT path, accepted too.
const GEERPC_PATH: &str = "/_geerpc_";

fn connect(conn: &Conn, req: &mut Request<Incoming>) -> Response<HttpBody> {
    let path = req.uri().path();
    let reason = if path == keys::DEFAULT_RPC_PATH {
        "Connected to rpcx"
    } else if path == GEERPC_PATH {
        "Connected to Gee RPC"
    } else {
        return text_response(
            StatusCode::NOT_FOUND,
            format!(
                "rpcx: CONNECT is answered on {} only, not on {path:?}",
                keys::DEFAULT_RPC_PATH
            ),
        );
    };
    *lock(&conn.upgrade) = Some(hyper::upgrade::on(req));
    let mut res = Response::new(crate::http::empty());
    // rpcx's client checks the status text: "200 Connected to rpcx".
    res.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(reason.as_bytes()));
    res
}

async fn invoke(conn: &Conn, req: Request<Incoming>) -> Response<HttpBody> {
    let opts = &conn.server.options.http;
    serve_invoke(req, opts.max_body_size, opts.body_read_timeout, |msg| {
        call(&conn.server, &conn.peer, conn.identity.as_ref(), msg, false)
    })
    .await
}

async fn jsonrpc_request(conn: &Conn, req: Request<Incoming>) -> Response<HttpBody> {
    let (parts, body) = req.into_parts();
    let opts = &conn.server.options.http;
    let body = match read_body_within(
        &parts.headers,
        body,
        opts.max_body_size,
        opts.body_read_timeout,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return close_after(text_response(e.status, e.message)),
    };
    serve_jsonrpc(&parts.headers, &body, &opts.jsonrpc, |msg| {
        jsonrpc_call(
            conn.server.clone(),
            conn.peer.clone(),
            conn.identity.clone(),
            msg,
        )
    })
    .await
}

async fn jsonrpc_call(
    server: Arc<ServerInner>,
    peer: PeerAddr,
    identity: Option<Arc<PeerIdentity>>,
    msg: Message,
) -> Result<Bytes, JsonRpcError> {
    if msg.header.is_oneway() {
        // A notification: answered at once, run in the background (as rpcx does).
        let s = server.clone();
        server.tracker.spawn(async move {
            call(&s, &peer, identity.as_ref(), msg, true).await;
        });
        return Ok(Bytes::new());
    }
    match call(&server, &peer, identity.as_ref(), msg, false).await {
        InvokeOutcome::Reply {
            header, metadata, ..
        } if header.status() == MessageStatusType::Error => {
            let text = metadata.get(keys::SERVICE_ERROR).unwrap_or("unknown error");
            Err(JsonRpcError::new(CODE_INTERNAL_ERROR, text))
        }
        InvokeOutcome::Reply { payload, .. } => Ok(payload),
        InvokeOutcome::Failed(e) => Err(JsonRpcError::new(CODE_INTERNAL_ERROR, e.message)),
    }
}

/// Runs one call that came over HTTP through the same path as rpcx frames (auth, plugins,
/// routing, the handler) and returns the response's header, metadata and payload.
///
/// With `keep_oneway` (JSON-RPC notifications) a oneway request stays oneway: the handler sees
/// it and nothing comes back.
async fn call(
    server: &Arc<ServerInner>,
    peer: &PeerAddr,
    identity: Option<&Arc<PeerIdentity>>,
    mut msg: Message,
    keep_oneway: bool,
) -> InvokeOutcome {
    if msg.header.is_heartbeat() {
        let res = msg.into_heartbeat_reply();
        return InvokeOutcome::Reply {
            header: res.header,
            metadata: res.metadata,
            payload: res.payload,
        };
    }
    if let Some(auth) = &server.auth {
        let token = msg.metadata.get(keys::AUTH).unwrap_or("").to_string();
        let who = super::AuthPeer {
            addr: peer,
            identity: identity.map(|i| &**i),
        };
        if let Err(text) = auth(&msg, &token, &who).await {
            tracing::info!(%peer, error = %text, "auth failed for an HTTP request");
            return InvokeOutcome::Failed(InvokeError::new(StatusCode::UNAUTHORIZED, text));
        }
    }
    if !keep_oneway {
        // Go's HTTP invoke waits for the reply even when X-RPCX-Oneway is set, and sends it.
        msg.header.set_oneway(false);
    }
    // The call runs in a task of its own, as rpcx frames' calls do: a client that goes away (or
    // an HTTP/2 stream reset) drops this future but not the call, so the handler finishes and
    // every plugin hook runs.
    let server2 = server.clone();
    let origin = Origin::Http(peer.clone(), identity.cloned());
    let task = server.tracker.spawn(async move {
        let done = process(&server2, msg, origin).await;
        if let Some(after) = done.after {
            after.done(done.frame.is_some());
        }
        done.frame
    });
    let frame = match task.await {
        Ok(frame) => frame,
        Err(e) => {
            return InvokeOutcome::Failed(InvokeError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("rpcx: the call's task failed: {e}"),
            ))
        }
    };
    let Some(frame) = frame else {
        let mut header = Header::new();
        header.set_message_type(sextant_protocol::MessageType::Response);
        return InvokeOutcome::Reply {
            header,
            metadata: Metadata::new(),
            payload: Bytes::new(),
        };
    };
    match Message::parse(frame.freeze()) {
        Ok(res) => InvokeOutcome::Reply {
            header: res.header,
            metadata: res.metadata,
            payload: res.payload,
        },
        Err(e) => InvokeOutcome::Failed(InvokeError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rpcx: unreadable response: {e}"),
        )),
    }
}

/// A byte stream with bytes already read put back in front.
struct Rewind {
    prefix: Bytes,
    inner: Stream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

crate::transport::impl_write_through!(Rewind);
