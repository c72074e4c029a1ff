//! The embedded registry server: an in-memory key/value registry over HTTP, with TTLs.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api;
use crate::http::unescape_path;
use sextant::util::lock;

/// Settings of an [`EmbeddedRegistry`]. Every field states its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmbeddedRegistryOptions {
    /// The longest TTL an entry may ask for; longer ones are cut to this. Default: 10 min.
    pub max_ttl: Duration,
    /// The longest a watch request blocks before answering "no change". Default: 60 s.
    pub max_wait: Duration,
    /// The most entries held; writes of new keys past this are refused with 507. Default: 100 000.
    pub max_entries: usize,
    /// The largest key plus value accepted, in bytes. Default: 64 KiB.
    pub max_entry_size: usize,
}

impl Default for EmbeddedRegistryOptions {
    fn default() -> Self {
        EmbeddedRegistryOptions {
            max_ttl: Duration::from_secs(600),
            max_wait: Duration::from_secs(60),
            max_entries: 100_000,
            max_entry_size: 64 << 10,
        }
    }
}

impl EmbeddedRegistryOptions {
    /// Sets [`max_ttl`](Self::max_ttl).
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// Sets [`max_wait`](Self::max_wait).
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Sets [`max_entries`](Self::max_entries).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }
}

struct Entry {
    value: String,
    ttl: Duration,
    expires: Instant,
}

struct Inner {
    entries: BTreeMap<String, Entry>,
    index: u64,
}

struct State {
    inner: Mutex<Inner>,
    /// The current index, for watchers.
    changed: watch::Sender<u64>,
    options: EmbeddedRegistryOptions,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Bumps the index after a change and wakes the watchers.
    fn bump(&self, inner: &mut Inner) {
        inner.index = inner.index.wrapping_add(1).max(1);
        self.changed.send_replace(inner.index);
    }

    /// Removes expired entries; returns whether any were.
    fn sweep(&self, now: Instant) -> bool {
        let mut inner = self.lock();
        let before = inner.entries.len();
        inner.entries.retain(|_, e| e.expires > now);
        let removed = inner.entries.len() != before;
        if removed {
            self.bump(&mut inner);
        }
        removed
    }
}

/// The embedded registry: a small in-memory registry served over HTTP on one machine, for
/// development and first contact (no external service). Servers keep their entries alive with
/// heartbeats (each refresh is one); an entry not refreshed within its TTL expires, as in
/// GeeRPC's registry. Run it in a process with [`EmbeddedRegistry::bind`], or from the command
/// line with `sextant registry --addr 127.0.0.1:9980`.
///
/// It keeps nothing on disk: when it restarts, servers re-create their entries at their next
/// refresh, and discoveries keep the servers they knew meanwhile
/// ([`reconnect_grace`](crate::DiscoveryOptions::reconnect_grace)). The HTTP API is described in
/// [`embedded`](crate::embedded).
pub struct EmbeddedRegistry {
    local: SocketAddr,
    state: Arc<State>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmbeddedRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedRegistry")
            .field("local", &self.local)
            .field("entries", &self.state.lock().entries.len())
            .finish()
    }
}

impl EmbeddedRegistry {
    /// Binds `addr` (`127.0.0.1:9980`; port 0 picks a free port) and serves in the background
    /// until [`shutdown`](Self::shutdown) or drop.
    pub async fn bind(
        addr: impl tokio::net::ToSocketAddrs,
        options: EmbeddedRegistryOptions,
    ) -> std::io::Result<EmbeddedRegistry> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        // Indexes start at a random point, so a client watching with an index from before a
        // restart sees a different index at once and lists again.
        let start = RandomState::new().build_hasher().finish() >> 16;
        let state = Arc::new(State {
            inner: Mutex::new(Inner {
                entries: BTreeMap::new(),
                index: start.max(1),
            }),
            changed: watch::channel(start.max(1)).0,
            options,
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(listener, state.clone(), cancel.clone()));
        tracing::info!(address = %local, "embedded registry listening");
        Ok(EmbeddedRegistry {
            local,
            state,
            cancel,
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The URL clients and servers use: `http://127.0.0.1:9980`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local)
    }

    /// The entries held now, `(key, value)`, sorted by key.
    pub fn entries(&self) -> Vec<(String, String)> {
        let now = Instant::now();
        self.state
            .lock()
            .entries
            .iter()
            .filter(|(_, e)| e.expires > now)
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }

    /// Stops serving: the listener closes and open requests are dropped.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Waits until the registry stops (after [`shutdown`](Self::shutdown) from another task, or
    /// never).
    pub async fn stopped(&self) {
        self.cancel.cancelled().await
    }

    /// A token that stops the registry when cancelled (e.g. on Ctrl-C).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

impl Drop for EmbeddedRegistry {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn serve(listener: TcpListener, state: Arc<State>, cancel: CancellationToken) {
    let sweeper = {
        let state = state.clone();
        let cancel = cancel.clone();
        async move {
            // Expired entries are also invisible to reads at once; the sweep makes their removal
            // a change that wakes watchers.
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => { state.sweep(Instant::now()); }
                }
            }
        }
    };
    tokio::spawn(sweeper);
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "embedded registry: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "embedded registry: connection error");
                },
                _ = cancel.cancelled() => {}
            }
        });
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error(status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    json(status, &ErrorBody { error: msg })
}

/// Parses `a=1&b=2` into pairs (values percent-decoded).
fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((unescape_path(k)?, unescape_path(v)?))
        })
        .collect()
}

fn query_u64(pairs: &[(String, String)], name: &str) -> Result<Option<u64>, String> {
    match pairs.iter().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("query parameter {name}={v:?} is not a number")),
    }
}

fn check_key(key: &str, max: usize) -> Result<(), String> {
    if !key.starts_with('/') || key.len() < 2 {
        return Err(format!("key {key:?} must start with / and not be empty"));
    }
    if key.len() > max {
        return Err(format!("key is longer than {max} bytes"));
    }
    if key.chars().any(char::is_control) {
        return Err("key contains a control character".into());
    }
    Ok(())
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = query_pairs(req.uri().query());
    let Some(path) = unescape_path(&path) else {
        return error(StatusCode::BAD_REQUEST, "invalid percent-escape in path");
    };
    if path == api::STATUS && method == Method::GET {
        let inner = state.lock();
        return json(
            StatusCode::OK,
            &api::Status {
                index: inner.index,
                entries: inner.entries.len(),
            },
        );
    }
    if let Some(key) = path.strip_prefix(api::KV) {
        let key = format!("/{key}");
        if let Err(e) = check_key(&key, state.options.max_entry_size) {
            return error(StatusCode::BAD_REQUEST, &e);
        }
        return match method {
            Method::PUT => put(state, key, &query, req).await,
            Method::GET => get(state, &key),
            Method::DELETE => delete(state, &key),
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET, PUT or DELETE"),
        };
    }
    if let Some(dir) = path.strip_prefix(api::LIST) {
        if method != Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "use GET");
        }
        let dir = format!("/{}", dir.trim_end_matches('/'));
        return list(state, &dir, &query).await;
    }
    error(
        StatusCode::NOT_FOUND,
        "unknown path; the API is /v1/status, /v1/kv/{key}, /v1/list/{dir}",
    )
}

async fn put(
    state: &State,
    key: String,
    query: &[(String, String)],
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    // `keep_ttl=1`: replace the value of a live entry, keeping its TTL and expiry (an operator's
    // edit of a server's entry); no entry is created.
    let keep_ttl = query.iter().any(|(k, v)| k == "keep_ttl" && v == "1");
    let ttl = match query_u64(query, "ttl_ms") {
        Ok(None) if keep_ttl => None,
        Ok(Some(ms)) if ms > 0 && !keep_ttl => {
            Some(Duration::from_millis(ms).min(state.options.max_ttl))
        }
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "give ttl_ms (milliseconds, > 0), or keep_ttl=1 to keep an entry's TTL",
            )
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let limit = state.options.max_entry_size.saturating_sub(key.len());
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "key and value together exceed {} bytes",
                    state.options.max_entry_size
                ),
            )
        }
    };
    let Ok(value) = String::from_utf8(body.to_vec()) else {
        return error(StatusCode::BAD_REQUEST, "the value must be UTF-8");
    };
    let now = Instant::now();
    let mut inner = state.lock();
    let created = match (inner.entries.get_mut(&key), ttl) {
        (Some(e), ttl) if e.expires > now => {
            let changed = e.value != value;
            e.value = value;
            if let Some(ttl) = ttl {
                e.ttl = ttl;
                e.expires = now + ttl;
            }
            if changed {
                state.bump(&mut inner);
            }
            false
        }
        (_, None) => return error(StatusCode::NOT_FOUND, "no such key"),
        (_, Some(ttl)) => {
            if inner.entries.len() >= state.options.max_entries && !inner.entries.contains_key(&key)
            {
                return error(
                    StatusCode::INSUFFICIENT_STORAGE,
                    &format!(
                        "the registry holds {} entries already",
                        state.options.max_entries
                    ),
                );
            }
            inner.entries.insert(
                key,
                Entry {
                    value,
                    ttl,
                    expires: now + ttl,
                },
            );
            state.bump(&mut inner);
            true
        }
    };
    json(StatusCode::OK, &api::PutResult { created })
}

fn get(state: &State, key: &str) -> Response<Full<Bytes>> {
    let now = Instant::now();
    let inner = state.lock();
    match inner.entries.get(key) {
        Some(e) if e.expires > now => json(
            StatusCode::OK,
            &api::Entry {
                key: key.to_string(),
                value: e.value.clone(),
                ttl_ms: Some(e.ttl.as_millis() as u64),
            },
        ),
        _ => error(StatusCode::NOT_FOUND, "no such key"),
    }
}

fn delete(state: &State, key: &str) -> Response<Full<Bytes>> {
    let mut inner = state.lock();
    let deleted = inner.entries.remove(key).is_some();
    if deleted {
        state.bump(&mut inner);
    }
    json(StatusCode::OK, &api::DeleteResult { deleted })
}

async fn list(state: &State, dir: &str, query: &[(String, String)]) -> Response<Full<Bytes>> {
    let (index, wait) = match (query_u64(query, "index"), query_u64(query, "wait_ms")) {
        (Ok(i), Ok(w)) => (i, w),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, &e),
    };
    if let (Some(index), Some(wait)) = (index, wait) {
        let wait = Duration::from_millis(wait).min(state.options.max_wait);
        let mut rx = state.changed.subscribe();
        // Answer as soon as the index differs from the client's (a change, or a restart).
        let _ = tokio::time::timeout(wait, rx.wait_for(|cur| *cur != index)).await;
    }
    let now = Instant::now();
    let inner = state.lock();
    let prefix = format!("{dir}/");
    let entries = inner
        .entries
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(_, e)| e.expires > now)
        .map(|(k, e)| api::Entry {
            key: k.clone(),
            value: e.value.clone(),
            ttl_ms: None,
        })
        .collect();
    json(
        StatusCode::OK,
        &api::ListResult {
            index: inner.index,
            entries,
        },
    )
}
