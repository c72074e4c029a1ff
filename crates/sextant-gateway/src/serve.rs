//! Serving HTTP: the accept loop, one hyper connection per TCP connection (HTTP/1.1 and HTTP/2
//! with hyper-util's auto builder, set up as a sextant server's HTTP side), the request handler,
//! forwarding, and shutdown.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sextant::client::RawReply;
use sextant::http::{
    close_after, full, read_body_within, serve_invoke, serve_jsonrpc, text_response, CorsLayer,
    HttpBody, InvokeError, InvokeOutcome, JsonRpcError, JsonRpcOptions, CODE_INTERNAL_ERROR,
    CODE_INVALID_REQUEST, JSONRPC_HEADER,
};
use sextant::protocol::Message;
use sextant::{keys, CallOptions, Error, FailMode, SelectMode, ServiceDiscovery, XClientOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex as AsyncMutex, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::{Layer, ServiceExt};

use crate::services::{Refusal, Services, XClientSettings};
use crate::{GatewayError, GatewayMode};

/// What a request is served with.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) mode: GatewayMode,
    pub(crate) fail_mode: FailMode,
    pub(crate) select_mode: SelectMode,
    pub(crate) xclient: XClientOptions,
    pub(crate) call_timeout: Duration,
    pub(crate) max_body_size: usize,
    pub(crate) body_read_timeout: Duration,
    pub(crate) max_services: usize,
    pub(crate) service_idle_timeout: Duration,
    pub(crate) jsonrpc: JsonRpcOptions,
    pub(crate) cors: Option<CorsLayer>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("fail_mode", &self.fail_mode)
            .field("select_mode", &self.select_mode)
            .field("xclient", &self.xclient)
            .field("call_timeout", &self.call_timeout)
            .field("max_body_size", &self.max_body_size)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("max_services", &self.max_services)
            .field("service_idle_timeout", &self.service_idle_timeout)
            .field("jsonrpc", &self.jsonrpc)
            .field("cors", &self.cors.is_some())
            .finish()
    }
}

/// Connection-level bounds.
#[derive(Debug, Clone)]
pub(crate) struct HttpLimits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_header_size: usize,
    pub(crate) max_concurrent_streams: u32,
    pub(crate) max_connections: usize,
}

/// Everything a running gateway holds.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) services: Services,
    pub(crate) local_addr: SocketAddr,
    builder: auto::Builder<TokioExecutor>,
    /// Fired when shutdown starts: stop accepting, finish the connections gracefully.
    pub(crate) shutdown: CancellationToken,
    /// Fired when the grace period ran out: drop the connections.
    force: CancellationToken,
    /// Fired when shutdown has finished.
    pub(crate) stopped: CancellationToken,
    /// The accept loop and every connection.
    tracker: TaskTracker,
    /// Held by the one shutdown that runs.
    shutdown_lock: AsyncMutex<()>,
    connections: Arc<Semaphore>,
    max_connections: usize,
}

fn http_builder(limits: &HttpLimits) -> auto::Builder<TokioExecutor> {
    sextant::http::connection_builder(
        limits.header_read_timeout,
        limits.max_header_size,
        limits.max_concurrent_streams,
    )
}

/// Starts the accept loop and the idle sweeper.
pub(crate) fn start(
    template: Arc<dyn ServiceDiscovery>,
    config: Config,
    limits: HttpLimits,
    listener: TcpListener,
    local_addr: SocketAddr,
) -> Arc<Shared> {
    let settings = XClientSettings {
        fail_mode: config.fail_mode,
        select_mode: config.select_mode,
        options: config.xclient.clone(),
    };
    let services = Services::new(
        template,
        settings,
        config.max_services,
        config.service_idle_timeout,
    );
    let shared = Arc::new(Shared {
        services,
        local_addr,
        builder: http_builder(&limits),
        shutdown: CancellationToken::new(),
        force: CancellationToken::new(),
        stopped: CancellationToken::new(),
        tracker: TaskTracker::new(),
        shutdown_lock: AsyncMutex::new(()),
        connections: Arc::new(Semaphore::new(limits.max_connections)),
        max_connections: limits.max_connections,
        config,
    });
    shared.tracker.spawn(accept_loop(shared.clone(), listener));
    tokio::spawn(sweep_loop(shared.clone()));
    shared
}

async fn sweep_loop(shared: Arc<Shared>) {
    let every = (shared.config.service_idle_timeout / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shared.shutdown.cancelled() => return,
        }
        shared.services.sweep();
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let permit = tokio::select! {
            p = shared.connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shared.shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shared.shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let s = shared.clone();
                shared.tracker.spawn(async move {
                    serve_connection(s, stream, peer).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "gateway: accept failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = shared.shutdown.cancelled() => break,
                }
            }
        }
    }
    // The listener is dropped here: no connection is accepted any more.
}

async fn serve_connection(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let s = shared.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let s = s.clone();
        // Boxed as `Send` here, as the server does: spelled out, the future's type trips
        // rustc's check of higher-ranked `Send` bounds in hyper's generic connection type.
        let fut: BoxFuture<'static, Result<Response<HttpBody>, Infallible>> =
            Box::pin(async move {
                match s.config.cors.clone() {
                    None => Ok(handle(&s, req).await),
                    Some(cors) => {
                        let inner = tower::service_fn(move |req: Request<Incoming>| {
                            let s = s.clone();
                            async move { Ok::<_, Infallible>(handle(&s, req).await) }
                        });
                        cors.layer(inner).oneshot(req).await
                    }
                }
            });
        fut
    });
    let conn = shared.builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shared.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn.as_mut() => r,
                _ = shared.force.cancelled() => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "gateway: connection ended with an error");
    }
}

async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<HttpBody> {
    let jsonrpc = req
        .headers()
        .get(JSONRPC_HEADER)
        .is_some_and(|v| v.as_bytes() == b"true");
    if jsonrpc {
        return jsonrpc_request(shared, req).await;
    }
    invoke(shared, req).await
}

async fn invoke(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<HttpBody> {
    let c = &shared.config;
    let mut res = serve_invoke(
        req,
        c.max_body_size,
        c.body_read_timeout,
        |msg| async move {
            if msg.header.is_heartbeat() && msg.service_path.is_empty() {
                // A heartbeat for the gateway itself: a health check.
                let res = msg.into_heartbeat_reply();
                return InvokeOutcome::Reply {
                    header: res.header,
                    metadata: res.metadata,
                    payload: res.payload,
                };
            }
            match forward(shared, msg).await {
                Ok(r) => InvokeOutcome::Reply {
                    header: r.header,
                    metadata: r.metadata,
                    payload: r.payload,
                },
                Err(e) => InvokeOutcome::Failed(e),
            }
        },
    )
    .await;
    with_text(&mut res);
    res
}

/// Gives the gateway's own failures (`502`, `503`, `504`) their text as body too, for callers
/// that do not look at headers (a server's `500` stays empty, as Go's).
fn with_text(res: &mut Response<HttpBody>) {
    let status = res.status();
    if !matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    ) {
        return;
    }
    let text = res
        .headers()
        .get("x-rpcx-errormessage")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    *res.body_mut() = full(Bytes::from(format!("{text}\n")));
}

async fn jsonrpc_request(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<HttpBody> {
    let (parts, body) = req.into_parts();
    let c = &shared.config;
    let body =
        match read_body_within(&parts.headers, body, c.max_body_size, c.body_read_timeout).await {
            Ok(b) => b,
            Err(e) => return close_after(text_response(e.status, e.message)),
        };
    serve_jsonrpc(&parts.headers, &body, &shared.config.jsonrpc, |message| {
        let shared = shared.clone();
        async move {
            match forward(&shared, message).await {
                Ok(r) => Ok(r.payload),
                Err(e) if e.status == StatusCode::BAD_REQUEST => {
                    Err(JsonRpcError::new(CODE_INVALID_REQUEST, e.message))
                }
                Err(e) => Err(JsonRpcError::new(CODE_INTERNAL_ERROR, e.message)),
            }
        }
    })
    .await
}

/// The longest a service path may be.
pub(crate) const MAX_SERVICE_PATH: usize = 128;

/// Checks a service path: 1 to [`MAX_SERVICE_PATH`] characters from `A-Z a-z 0-9 _ - .`.
pub(crate) fn check_service_path(path: &str) -> Result<(), InvokeError> {
    let ok = !path.is_empty()
        && path.len() <= MAX_SERVICE_PATH
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        return Ok(());
    }
    let shown: String = path.chars().take(MAX_SERVICE_PATH).collect();
    Err(InvokeError::new(
        StatusCode::BAD_REQUEST,
        format!(
            "rpcx gateway: invalid service path {shown:?}: 1 to {MAX_SERVICE_PATH} characters \
             from A-Z a-z 0-9 _ - . are expected"
        ),
    ))
}

/// Sends `msg` to a server of its service and returns the reply, or the HTTP status and text
/// of the failure.
async fn forward(shared: &Shared, msg: Message) -> Result<RawReply, InvokeError> {
    let deadline = Instant::now() + shared.config.call_timeout;
    // A shared handle on the request's bytes, not a copy.
    let path = msg.service_path.clone();
    check_service_path(&path)?;
    let mode = shared.config.mode;
    let lease = match tokio::time::timeout_at(deadline, shared.services.get(&path)).await {
        Err(_) => return Err(failure(mode, &path, &Error::DeadlineExceeded)),
        Ok(Err(r)) => return Err(refusal(mode, &path, r)),
        Ok(Ok(l)) => l,
    };
    let Some(xclient) = lease.xclient() else {
        return Err(refusal(mode, &path, Refusal::Closed));
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(failure(mode, &path, &Error::DeadlineExceeded));
    }
    let options = CallOptions::new().timeout(left);
    match xclient.send_raw(msg, options).await {
        Ok(mut r) => {
            if mode == GatewayMode::Gateway {
                r.metadata.remove(keys::SERVER_ADDRESS);
            }
            Ok(r)
        }
        Err(e) => Err(failure(mode, &path, &e)),
    }
}

/// The status and text of a service that could not be had.
fn refusal(mode: GatewayMode, path: &str, r: Refusal) -> InvokeError {
    match r {
        Refusal::TooMany(_) | Refusal::Closed => InvokeError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("rpcx gateway: {r}"),
        ),
        Refusal::NoServer => failure(mode, path, &Error::NoServer(path.to_string())),
        Refusal::Create(Error::Config(text)) => {
            // The discovery refused the path (the registry's own rules).
            InvokeError::new(
                StatusCode::BAD_REQUEST,
                format!("rpcx gateway: service path {path:?} refused: {text}"),
            )
        }
        Refusal::Create(e) => {
            tracing::warn!(service = path, error = %e, "gateway: cannot discover a service");
            let text = match mode {
                GatewayMode::Agent => format!("rpcx gateway: cannot discover {path:?}: {e}"),
                GatewayMode::Gateway => {
                    format!(
                        "rpcx gateway: cannot discover {path:?}: the registry cannot be reached"
                    )
                }
            };
            InvokeError::new(StatusCode::SERVICE_UNAVAILABLE, text)
        }
    }
}

/// The status and text of a failed call: a service error is `500` with the service's text, as
/// a server answers it; the gateway's own failures are `502`, `503` and `504`.
fn failure(mode: GatewayMode, path: &str, e: &Error) -> InvokeError {
    let (status, generic) = match e {
        Error::Service(se) => {
            return InvokeError::new(StatusCode::INTERNAL_SERVER_ERROR, se.message());
        }
        Error::DeadlineExceeded => (
            StatusCode::GATEWAY_TIMEOUT,
            format!("rpcx gateway: the call to {path:?} timed out"),
        ),
        Error::NoServer(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("rpcx gateway: no server available for {path:?}"),
        ),
        Error::Connect { .. }
        | Error::ConnectTimeout { .. }
        | Error::Closed
        | Error::Canceled
        | Error::ServerShutdown => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("rpcx gateway: no server of {path:?} could be reached"),
        ),
        Error::ConnectionLost(_) | Error::Io(_) | Error::Protocol(_) => (
            StatusCode::BAD_GATEWAY,
            format!("rpcx gateway: the server of {path:?} failed during the call"),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rpcx gateway: the call to {path:?} failed"),
        ),
    };
    tracing::debug!(service = path, error = %e, %status, "gateway: call failed");
    let text = match mode {
        GatewayMode::Gateway => generic,
        GatewayMode::Agent => format!("rpcx gateway: {e}"),
    };
    InvokeError::new(status, text)
}

/// See [`Gateway::shutdown`](crate::Gateway::shutdown).
pub(crate) async fn shutdown(shared: &Shared, grace: Duration) -> Result<(), GatewayError> {
    let _one = shared.shutdown_lock.lock().await;
    if shared.stopped.is_cancelled() {
        return Ok(());
    }
    tracing::info!(address = %shared.local_addr, "sextant gateway: shutting down");
    shared.shutdown.cancel();
    shared.tracker.close();
    let graceful = tokio::time::timeout(grace, shared.tracker.wait())
        .await
        .is_ok();
    let mut result = Ok(());
    if !graceful {
        let connections = shared
            .max_connections
            .saturating_sub(shared.connections.available_permits());
        tracing::warn!(
            ?grace,
            connections,
            "gateway: shutdown grace period over: dropping requests still running"
        );
        shared.force.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), shared.tracker.wait()).await;
        result = Err(GatewayError::ShutdownTimeout { grace, connections });
    }
    shared.services.close_all();
    shared.connections.close();
    shared.stopped.cancel();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_paths() {
        for ok in ["Arith", "arith_v2", "a.b-c", "X", &"a".repeat(128)] {
            assert!(check_service_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a/b",
            "/Arith",
            "Ari th",
            "Arith\n",
            "é",
            "a:b",
            "..%2f",
            &"a".repeat(129),
        ] {
            let e = check_service_path(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn failures_have_statuses() {
        use sextant::ServiceError;
        let lost = Error::ConnectionLost("eof".into());
        let cases = [
            (Error::Service(ServiceError::new("boom")), 500, "boom"),
            (Error::DeadlineExceeded, 504, "timed out"),
            (Error::NoServer("Arith".into()), 503, "no server available"),
            (Error::Closed, 503, "could be reached"),
            (lost, 502, "failed during the call"),
        ];
        for (e, status, text) in cases {
            let f = failure(GatewayMode::Gateway, "Arith", &e);
            assert_eq!(f.status.as_u16(), status, "{e}");
            assert!(f.message.contains(text), "{}", f.message);
        }
        let connect = Error::Connect {
            address: "tcp@10.1.2.3:8972".into(),
            source: Arc::new(std::io::Error::other("refused")),
        };
        let g = failure(GatewayMode::Gateway, "Arith", &connect);
        assert_eq!(g.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!g.message.contains("10.1.2.3"), "{}", g.message);
        let a = failure(GatewayMode::Agent, "Arith", &connect);
        assert!(a.message.contains("10.1.2.3"), "{}", a.message);
    }
}
