//! Serving the metrics over HTTP: a route for the service port ([`MetricsHandler`]) and a small
//! server of its own ([`MetricsServer`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sextant::http::{full, text_response, HttpBody};
use sextant::server::{HttpHandler, HttpRequest};
use sextant::PeerAddr;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::MetricsPlugin;

/// The `Content-Type` of the Prometheus text format 0.0.4, served unless the scraper asks for
/// OpenMetrics.
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The `Content-Type` of the OpenMetrics text format 1.0.0, served when the request's `Accept`
/// names `application/openmetrics-text` (as Prometheus' own scrapes do).
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The path [`MetricsPlugin::serve`] answers on.
pub const METRICS_PATH: &str = "/metrics";

/// At most this many scrape connections at once on a [`MetricsServer`]; more are closed at once.
const MAX_CONNECTIONS: usize = 64;

impl MetricsPlugin {
    /// The scrape response for a request with `method` and `headers`: `GET` and `HEAD` only,
    /// OpenMetrics or Prometheus text by the `Accept` header.
    pub(crate) fn respond(&self, method: &Method, headers: &HeaderMap) -> Response<HttpBody> {
        if method != Method::GET && method != Method::HEAD {
            let mut res =
                text_response(StatusCode::METHOD_NOT_ALLOWED, "use GET to scrape metrics");
            res.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return res;
        }
        let openmetrics = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/openmetrics-text"));
        let (text, content_type) = if openmetrics {
            (self.try_encode(), OPENMETRICS_TEXT)
        } else {
            (self.try_encode_prometheus(), PROMETHEUS_TEXT)
        };
        match text {
            Ok(text) => {
                let mut res = Response::new(full(text));
                res.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                res
            }
            Err(_) => text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "a metrics collector failed to encode",
            ),
        }
    }

    /// An [`HttpHandler`] answering scrapes, for
    /// [`ServerBuilder::http_route`](sextant::ServerBuilder::http_route) or
    /// [`Server::http_route`](sextant::Server::http_route): `/metrics` on the service port.
    ///
    /// ```
    /// use sextant::Server;
    /// use sextant_plugins::metrics::MetricsPlugin;
    ///
    /// let metrics = MetricsPlugin::new();
    /// let server = Server::builder()
    ///     .plugin(metrics.clone())
    ///     .http_route("/metrics", metrics.http_handler())
    ///     .build();
    /// # drop(server);
    /// ```
    pub fn http_handler(&self) -> MetricsHandler {
        MetricsHandler {
            metrics: self.clone(),
        }
    }

    /// Serves [`METRICS_PATH`] (`/metrics`) on an HTTP/1.1 and HTTP/2 listener of its own at
    /// `address` (e.g. `127.0.0.1:9090`; port 0 picks one), for a process whose service port
    /// must not speak HTTP or that has no server at all. Other paths are answered `404`. The
    /// listener runs in a background task until the returned [`MetricsServer`] is shut down or
    /// dropped.
    ///
    /// Fails when `address` cannot be bound.
    pub async fn serve(&self, address: impl ToSocketAddrs) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(address).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(self.clone(), listener, stopped));
        tracing::info!(address = %local_addr, "serving metrics");
        Ok(MetricsServer {
            local_addr,
            stop: Some(stop),
            task,
        })
    }
}

/// The [`HttpHandler`] of [`MetricsPlugin::http_handler`]: answers `GET` with the metrics in
/// the Prometheus text format 0.0.4 ([`PROMETHEUS_TEXT`]), or in OpenMetrics
/// ([`OPENMETRICS_TEXT`]) when the `Accept` header asks for it; other methods get `405`.
#[derive(Clone, Debug)]
pub struct MetricsHandler {
    metrics: MetricsPlugin,
}

impl HttpHandler for MetricsHandler {
    fn call(&self, req: HttpRequest, _peer: PeerAddr) -> BoxFuture<'static, Response<HttpBody>> {
        let res = self.metrics.respond(req.method(), req.headers());
        Box::pin(async move { res })
    }
}

/// The metrics listener [`MetricsPlugin::serve`] started. Dropping it stops the listener and
/// closes its connections; [`shutdown`](MetricsServer::shutdown) does the same and waits for it.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The bound address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The scrape URL, `http://<address>/metrics`.
    pub fn url(&self) -> String {
        format!("http://{}{METRICS_PATH}", self.local_addr)
    }

    /// Stops accepting, closes the open scrape connections and waits for the listener's task to
    /// end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    metrics: MetricsPlugin,
    listener: TcpListener,
    mut stop: oneshot::Receiver<()>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Dropped with this task, which aborts the connections still open.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        tracing::debug!(%peer, "too many metrics connections; closing this one");
                        continue;
                    };
                    let metrics = metrics.clone();
                    conns.spawn(async move {
                        serve_conn(metrics, stream).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn serve_conn(metrics: MetricsPlugin, stream: tokio::net::TcpStream) {
    let service = hyper::service::service_fn(move |req: HttpRequest| {
        let res = if req.uri().path() == METRICS_PATH {
            metrics.respond(req.method(), req.headers())
        } else {
            text_response(StatusCode::NOT_FOUND, "not found: metrics are at /metrics")
        };
        async move { Ok::<_, Infallible>(res) }
    });
    let builder = sextant::http::connection_builder(Duration::from_secs(10), 16 * 1024, 16);
    if let Err(e) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "metrics connection ended with an error");
    }
}
