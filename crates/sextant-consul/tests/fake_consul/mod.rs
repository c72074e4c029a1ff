//! An in-process Consul agent for tests: exactly the HTTP endpoints `sextant-consul` uses,
//! behaving as Consul's API documentation specifies them (no Consul package exists in the
//! registries this project's machines reach).
//!
//! | endpoint | documented behaviour kept here |
//! |---|---|
//! | `GET /v1/status/leader` | the leader's address as a JSON string |
//! | `PUT /v1/session/create` | `TTL` must be between 10s and 86400s (else 400); `Behavior` `release` (default) or `delete`; answers `{"ID": ...}` |
//! | `PUT /v1/session/renew/:id` | 200 with the session in an array, 404 once invalidated |
//! | `PUT /v1/session/destroy/:id` | invalidates: `delete` removes the keys the session holds, `release` frees them |
//! | session TTL | invalidated when not renewed within its TTL (Consul allows up to 2 × TTL; this agent uses exactly TTL) |
//! | `GET /v1/kv/:key` | 200 with `[{"Key", "Value" (base64 or null), "Flags", "Session", "CreateIndex", "ModifyIndex", "LockIndex"}]` or 404; `recurse` lists a string prefix (404 when empty) |
//! | `PUT /v1/kv/:key` | body is the value; `acquire=<session>` takes the lock (`false` if another session holds it, 500 `invalid session` for an unknown one); without it the value changes and a held lock stays; `cas=N` writes only if the key's ModifyIndex is N (0: absent), else `false`; answers `true` |
//! | `DELETE /v1/kv/:key` | answers `true`, also for a missing key |
//! | blocking queries | `index=N&wait=D`: wait until the index is greater than `N` or `D` passes (default 5m, at most 10m); `X-Consul-Index` on every read |
//! | `PUT /v1/agent/service/register` | `ID`, `Name`, `Tags`, `Address`, `Port`, `Meta` (at most 64 pairs, keys up to 128 and values up to 512 characters, else 400), `Check` with `TTL`, `Status` (default `critical`), `DeregisterCriticalServiceAfter` (at least 1m); the check is `service:<ID>` |
//! | `GET /v1/agent/service/:id` | the service, or 404 |
//! | `PUT /v1/agent/service/deregister/:id` | 200, or 404 for an unknown ID |
//! | `PUT /v1/agent/check/pass/:check_id` | sets the TTL check passing and restarts its TTL; 404 for an unknown check |
//! | TTL checks | critical when not passed within the TTL; the service is deregistered after `DeregisterCriticalServiceAfter` in critical |
//! | `GET /v1/health/service/:service` | `[{"Node", "Service", "Checks"}]`; `passing` keeps instances whose checks all pass; `tag` filters by tag |

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util_free::Token;

/// A cancellation flag without extra dependencies.
mod tokio_util_free {
    use tokio::sync::watch;

    #[derive(Clone)]
    pub struct Token(watch::Sender<bool>);

    impl Token {
        pub fn new() -> Token {
            Token(watch::channel(false).0)
        }
        pub fn cancel(&self) {
            self.0.send_replace(true);
        }
        pub async fn cancelled(&self) {
            let mut rx = self.0.subscribe();
            let _ = rx.wait_for(|c| *c).await;
        }
    }
}

struct Session {
    ttl: Duration,
    behavior: String,
    expires: Instant,
}

struct KvEntry {
    value: Vec<u8>,
    flags: u64,
    session: Option<String>,
    create_index: u64,
    modify_index: u64,
    lock_index: u64,
}

struct Service {
    id: String,
    name: String,
    tags: Vec<String>,
    address: String,
    port: u16,
    meta: BTreeMap<String, String>,
    check_ttl: Option<Duration>,
    passing: bool,
    check_expires: Instant,
    critical_since: Option<Instant>,
    deregister_after: Option<Duration>,
}

#[derive(Default)]
struct Data {
    index: u64,
    next_id: u64,
    sessions: HashMap<String, Session>,
    kv: BTreeMap<String, KvEntry>,
    services: BTreeMap<String, Service>,
}

struct State {
    data: Mutex<Data>,
    changed: watch::Sender<u64>,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self, d: &mut Data) {
        d.index += 1;
        self.changed.send_replace(d.index);
    }

    fn invalidate(&self, d: &mut Data, id: &str) {
        let Some(s) = d.sessions.remove(id) else {
            return;
        };
        let held: Vec<String> =
            d.kv.iter()
                .filter(|(_, e)| e.session.as_deref() == Some(id))
                .map(|(k, _)| k.clone())
                .collect();
        for k in held {
            if s.behavior == "delete" {
                d.kv.remove(&k);
            } else if let Some(e) = d.kv.get_mut(&k) {
                e.session = None;
            }
        }
        self.bump(d);
    }

    /// Session TTLs and TTL checks, as time passes.
    fn tick(&self, now: Instant) {
        let mut d = self.lock();
        let expired: Vec<String> = d
            .sessions
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.invalidate(&mut d, &id);
        }
        let mut changed = false;
        let mut deregister = Vec::new();
        for s in d.services.values_mut() {
            if s.check_ttl.is_some() && s.passing && s.check_expires <= now {
                s.passing = false;
                s.critical_since = Some(now);
                changed = true;
            }
            if let (Some(since), Some(after)) = (s.critical_since, s.deregister_after) {
                if !s.passing && since + after <= now {
                    deregister.push(s.id.clone());
                }
            }
        }
        for id in deregister {
            d.services.remove(&id);
            changed = true;
        }
        if changed {
            self.bump(&mut d);
        }
    }
}

/// The fake agent. Stopping it closes its listener and connections but keeps its state (as a
/// restarted Consul keeps its Raft data); starting it again serves the same state on the same
/// port.
pub struct FakeConsul {
    port: u16,
    state: Arc<State>,
    stop: Option<Token>,
    sweeper: Token,
}

impl FakeConsul {
    /// Starts on `port` (0: any free port).
    pub async fn start(port: u16) -> FakeConsul {
        let state = Arc::new(State {
            data: Mutex::new(Data {
                index: 1,
                ..Data::default()
            }),
            changed: watch::channel(1).0,
        });
        let sweeper = Token::new();
        {
            let state = state.clone();
            let stop = sweeper.clone();
            tokio::spawn(async move {
                let mut t = tokio::time::interval(Duration::from_millis(50));
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = t.tick() => state.tick(Instant::now()),
                    }
                }
            });
        }
        let mut f = FakeConsul {
            port,
            state,
            stop: None,
            sweeper,
        };
        f.serve().await;
        f
    }

    /// The agent's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops serving (listener and open connections close); the state is kept.
    pub fn stop(&mut self) {
        if let Some(t) = self.stop.take() {
            t.cancel();
        }
    }

    /// Serves again on the same port.
    pub async fn restart(&mut self) {
        self.serve().await;
    }

    /// The KV keys held now.
    pub fn kv_keys(&self) -> Vec<String> {
        self.state.lock().kv.keys().cloned().collect()
    }

    async fn serve(&mut self) {
        assert!(self.stop.is_none(), "already serving");
        let mut listener = None;
        // The previous listener closes once its task sees the stop: retry briefly (bounded).
        for _ in 0..100 {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let listener = listener.expect("bind the fake Consul port");
        self.port = listener.local_addr().unwrap().port();
        let stop = Token::new();
        self.stop = Some(stop.clone());
        let state = self.state.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                };
                let state = state.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
    }
}

impl Drop for FakeConsul {
    fn drop(&mut self) {
        self.stop();
        self.sweeper.cancel();
    }
}

fn reply(status: StatusCode, body: Value, index: Option<u64>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().unwrap());
    if let Some(i) = index {
        r.headers_mut()
            .insert("X-Consul-Index", i.to_string().parse().unwrap());
        r.headers_mut()
            .insert("X-Consul-KnownLeader", "true".parse().unwrap());
    }
    r
}

fn text(status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(msg.to_string())));
    *r.status_mut() = status;
    r
}

/// Go's `time.ParseDuration` for the forms Consul clients send (`10s`, `1500ms`, `1m`, `2h`).
fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))?;
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// Decodes `%XX` escapes, and `+` as a space when `plus` (query strings).
fn unescape(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if plus && b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k, true), unescape(v, true))
        })
        .collect()
}

/// Waits as a blocking query does: until the index exceeds `index` or `wait` passes.
async fn block(state: &State, q: &HashMap<String, String>) {
    let Some(index) = q.get("index").and_then(|i| i.parse::<u64>().ok()) else {
        return;
    };
    let wait = q
        .get("wait")
        .and_then(|w| parse_duration(w))
        .unwrap_or(Duration::from_secs(300))
        .min(Duration::from_secs(600));
    let mut rx = state.changed.subscribe();
    let _ = tokio::time::timeout(wait, rx.wait_for(|i| *i > index)).await;
}

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn kv_json(key: &str, e: &KvEntry) -> Value {
    json!({
        "Key": key,
        "Value": if e.value.is_empty() { Value::Null } else { Value::String(b64(&e.value)) },
        "Flags": e.flags,
        "Session": e.session,
        "CreateIndex": e.create_index,
        "ModifyIndex": e.modify_index,
        "LockIndex": e.lock_index,
    })
}

fn service_json(s: &Service) -> Value {
    json!({
        "ID": s.id,
        "Service": s.name,
        "Tags": s.tags,
        "Address": s.address,
        "Port": s.port,
        "Meta": s.meta,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SessionCreate {
    #[serde(default)]
    behavior: Option<String>,
    #[serde(rename = "TTL", default)]
    ttl: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CheckDef {
    #[serde(rename = "TTL", default)]
    ttl: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    deregister_critical_service_after: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceDef {
    #[serde(rename = "ID", default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    address: String,
    #[serde(default)]
    port: u16,
    #[serde(default)]
    meta: BTreeMap<String, String>,
    #[serde(default)]
    check: Option<CheckDef>,
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = unescape(req.uri().path(), false);
    let q = query(&req);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let now = Instant::now();
    match (&method, path.as_str()) {
        (&Method::GET, "/v1/status/leader") => reply(StatusCode::OK, json!("127.0.0.1:8300"), None),
        (&Method::PUT, "/v1/session/create") => {
            let def: SessionCreate = if body.is_empty() {
                SessionCreate {
                    behavior: None,
                    ttl: None,
                }
            } else {
                match serde_json::from_slice(&body) {
                    Ok(d) => d,
                    Err(e) => {
                        return text(
                            StatusCode::BAD_REQUEST,
                            &format!("Request decode failed: {e}"),
                        )
                    }
                }
            };
            let behavior = def.behavior.unwrap_or_else(|| "release".into());
            if behavior != "release" && behavior != "delete" {
                return text(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid Behavior setting '{behavior}'"),
                );
            }
            let ttl = match def.ttl.as_deref() {
                None | Some("") => None,
                Some(t) => match parse_duration(t) {
                    Some(d) if d >= Duration::from_secs(10) && d <= Duration::from_secs(86400) => {
                        Some(d)
                    }
                    _ => {
                        return text(
                            StatusCode::BAD_REQUEST,
                            &format!("Invalid Session TTL '{t}', must be between [10s=24h0m0s]"),
                        )
                    }
                },
            };
            let mut d = state.lock();
            d.next_id += 1;
            let id = format!("00000000-0000-0000-0000-{:012}", d.next_id);
            d.sessions.insert(
                id.clone(),
                Session {
                    ttl: ttl.unwrap_or(Duration::from_secs(86400 * 365)),
                    behavior,
                    expires: now + ttl.unwrap_or(Duration::from_secs(86400 * 365)),
                },
            );
            state.bump(&mut d);
            reply(StatusCode::OK, json!({ "ID": id }), None)
        }
        (&Method::PUT, p) if p.starts_with("/v1/session/renew/") => {
            let id = &p["/v1/session/renew/".len()..];
            let mut d = state.lock();
            let index = d.index;
            match d.sessions.get_mut(id) {
                Some(s) => {
                    s.expires = now + s.ttl;
                    reply(
                        StatusCode::OK,
                        json!([{ "ID": id, "Behavior": s.behavior }]),
                        Some(index),
                    )
                }
                None => text(
                    StatusCode::NOT_FOUND,
                    &format!("Session id '{id}' not found"),
                ),
            }
        }
        (&Method::PUT, p) if p.starts_with("/v1/session/destroy/") => {
            let id = p["/v1/session/destroy/".len()..].to_string();
            let mut d = state.lock();
            state.invalidate(&mut d, &id);
            reply(StatusCode::OK, json!(true), None)
        }
        (_, p) if p.starts_with("/v1/kv/") => {
            let key = p["/v1/kv/".len()..].to_string();
            kv(state, &method, key, &q, body, now).await
        }
        (&Method::PUT, "/v1/agent/service/register") => register(state, &body, now),
        (&Method::GET, p)
            if p.starts_with("/v1/agent/service/")
                && !p.starts_with("/v1/agent/service/deregister/") =>
        {
            let id = &p["/v1/agent/service/".len()..];
            let d = state.lock();
            match d.services.get(id) {
                Some(s) => reply(StatusCode::OK, service_json(s), None),
                None => text(StatusCode::NOT_FOUND, &format!("unknown service ID: {id}")),
            }
        }
        (&Method::PUT, p) if p.starts_with("/v1/agent/service/deregister/") => {
            let id = &p["/v1/agent/service/deregister/".len()..];
            let mut d = state.lock();
            if d.services.remove(id).is_some() {
                state.bump(&mut d);
                reply(StatusCode::OK, Value::Null, None)
            } else {
                text(StatusCode::NOT_FOUND, &format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."))
            }
        }
        (&Method::PUT, p) if p.starts_with("/v1/agent/check/pass/") => {
            let check = &p["/v1/agent/check/pass/".len()..];
            let mut d = state.lock();
            let Some(id) = check.strip_prefix("service:") else {
                return text(
                    StatusCode::NOT_FOUND,
                    &format!("Unknown check ID {check:?}"),
                );
            };
            match d.services.get_mut(id) {
                Some(s) if s.check_ttl.is_some() => {
                    let was = s.passing;
                    s.passing = true;
                    s.critical_since = None;
                    s.check_expires = now + s.check_ttl.unwrap();
                    if !was {
                        state.bump(&mut d);
                    }
                    reply(StatusCode::OK, Value::Null, None)
                }
                _ => text(
                    StatusCode::NOT_FOUND,
                    &format!("Unknown check ID {check:?}"),
                ),
            }
        }
        (&Method::GET, p) if p.starts_with("/v1/health/service/") => {
            let name = p["/v1/health/service/".len()..].to_string();
            block(state, &q).await;
            let d = state.lock();
            let passing = q
                .get("passing")
                .is_some_and(|v| v.is_empty() || v == "true" || v == "1");
            let tag = q.get("tag");
            let entries: Vec<Value> = d
                .services
                .values()
                .filter(|s| s.name == name)
                .filter(|s| !passing || s.passing)
                .filter(|s| tag.is_none_or(|t| s.tags.contains(t)))
                .map(|s| {
                    json!({
                        "Node": { "Node": "fake", "Address": "127.0.0.1" },
                        "Service": service_json(s),
                        "Checks": [{
                            "CheckID": format!("service:{}", s.id),
                            "ServiceID": s.id,
                            "Status": if s.passing { "passing" } else { "critical" },
                        }],
                    })
                })
                .collect();
            reply(StatusCode::OK, Value::Array(entries), Some(d.index))
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "fake Consul: endpoint not implemented",
        ),
    }
}

fn register(state: &State, body: &[u8], now: Instant) -> Response<Full<Bytes>> {
    let def: ServiceDef = match serde_json::from_slice(body) {
        Ok(d) => d,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Request decode failed: {e}"),
            )
        }
    };
    if def.meta.len() > 64 {
        return text(
            StatusCode::BAD_REQUEST,
            "Invalid Service Meta: cannot have more than 64 key/value pairs",
        );
    }
    for (k, v) in &def.meta {
        if k.len() > 128 {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Invalid Service Meta: Key is too long (limit: 128 characters): {k}"),
            );
        }
        if v.len() > 512 {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Invalid Service Meta: Value is too long (limit: 512 characters): {k}"),
            );
        }
    }
    let (check_ttl, passing, deregister_after) = match &def.check {
        None => (None, true, None),
        Some(c) => {
            let ttl = match c.ttl.as_deref().map(parse_duration) {
                Some(Some(t)) => Some(t),
                Some(None) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "Invalid check: TTL is not a duration",
                    )
                }
                None => None,
            };
            let after = c
                .deregister_critical_service_after
                .as_deref()
                .and_then(parse_duration)
                .map(|a| a.max(Duration::from_secs(60)));
            (ttl, c.status.as_deref() == Some("passing"), after)
        }
    };
    let id = def.id.clone().unwrap_or_else(|| def.name.clone());
    let mut d = state.lock();
    d.services.insert(
        id.clone(),
        Service {
            id,
            name: def.name,
            tags: def.tags,
            address: def.address,
            port: def.port,
            meta: def.meta,
            check_ttl,
            passing,
            check_expires: now + check_ttl.unwrap_or_default(),
            critical_since: (!passing).then_some(now),
            deregister_after,
        },
    );
    state.bump(&mut d);
    reply(StatusCode::OK, Value::Null, None)
}

async fn kv(
    state: &State,
    method: &Method,
    key: String,
    q: &HashMap<String, String>,
    body: Bytes,
    now: Instant,
) -> Response<Full<Bytes>> {
    let _ = now;
    match *method {
        Method::GET => {
            block(state, q).await;
            let d = state.lock();
            let index = d.index;
            let found: Vec<Value> = if q.contains_key("recurse") {
                d.kv.range(key.clone()..)
                    .take_while(|(k, _)| k.starts_with(&key))
                    .map(|(k, e)| kv_json(k, e))
                    .collect()
            } else {
                d.kv.get(&key)
                    .map(|e| kv_json(&key, e))
                    .into_iter()
                    .collect()
            };
            if found.is_empty() {
                let mut r = text(StatusCode::NOT_FOUND, "");
                r.headers_mut()
                    .insert("X-Consul-Index", index.to_string().parse().unwrap());
                r
            } else {
                reply(StatusCode::OK, Value::Array(found), Some(index))
            }
        }
        Method::PUT => {
            let mut d = state.lock();
            let acquire = q.get("acquire").cloned();
            if let Some(s) = &acquire {
                if !d.sessions.contains_key(s) {
                    return text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("invalid session {s:?}"),
                    );
                }
                if let Some(holder) = d.kv.get(&key).and_then(|e| e.session.clone()) {
                    if &holder != s {
                        return reply(StatusCode::OK, json!(false), None);
                    }
                }
            }
            if let Some(cas) = q.get("cas") {
                let Ok(cas) = cas.parse::<u64>() else {
                    return text(StatusCode::BAD_REQUEST, "cas must be a number");
                };
                let current = d.kv.get(&key).map(|e| e.modify_index);
                let ok = match current {
                    None => cas == 0,
                    Some(m) => cas == m,
                };
                if !ok {
                    return reply(StatusCode::OK, json!(false), None);
                }
            }
            d.index += 1;
            let index = d.index;
            let e = d.kv.entry(key).or_insert(KvEntry {
                value: Vec::new(),
                flags: 0,
                session: None,
                create_index: index,
                modify_index: index,
                lock_index: 0,
            });
            e.value = body.to_vec();
            e.modify_index = index;
            if let Some(s) = acquire {
                if e.session.as_deref() != Some(&s) {
                    e.lock_index += 1;
                }
                e.session = Some(s);
            }
            state.changed.send_replace(index);
            reply(StatusCode::OK, json!(true), None)
        }
        Method::DELETE => {
            let mut d = state.lock();
            let removed = if q.contains_key("recurse") {
                let keys: Vec<String> =
                    d.kv.range(key.clone()..)
                        .take_while(|(k, _)| k.starts_with(&key))
                        .map(|(k, _)| k.clone())
                        .collect();
                for k in &keys {
                    d.kv.remove(k);
                }
                !keys.is_empty()
            } else {
                d.kv.remove(&key).is_some()
            };
            if removed {
                state.bump(&mut d);
            }
            reply(StatusCode::OK, json!(true), None)
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}
