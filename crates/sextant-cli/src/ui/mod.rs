//! `sextant ui`: a web UI for a registry's services (rpcx-ui's views), served by axum with
//! every asset embedded in the binary (no CDN, no build step).
//!
//! ```text
//! sextant ui --registry etcd://127.0.0.1:2379/rpcx [--listen 127.0.0.1:8080] [--read-only]
//!            [--user admin --password-hash '$argon2id$...']
//! sextant ui --hash-password < password.txt     print the argon2id PHC string of a password
//! ```
//!
//! The page is plain HTML and JavaScript over a JSON API (see docs/UI.md): the services with
//! server counts, a service's servers with their metadata, activate / deactivate and metadata
//! edits (written as `sextant set` writes them, through [`AdminStore::update`]), a heartbeat
//! probe per server, a call form, and an auto refresh fed by the registry's watch over
//! Server-Sent Events.
//!
//! Every change is a POST that must carry the page's CSRF token (`X-CSRF-Token`), must not come
//! from another origin, and must fit in [`MAX_BODY`] bytes. Registry data is only ever put in the
//! page as text (`textContent`), and the page's Content-Security-Policy allows no inline script.

// The handlers' helpers fail with the `Response` the handler returns as it is.
#![allow(clippy::result_large_err)]

mod auth;

use std::convert::Infallible;
use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use clap::Args;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::admin::{self, ServerEntry};
use crate::call::{self, CodecName};
use crate::registry_url::{self, AdminStore};
use crate::CliError;

use auth::{Credentials, Failures, Sessions};

/// The largest request body read (an edit, a call's arguments, a login).
pub const MAX_BODY: usize = 64 * 1024;
/// The most of an over-large body that is read and dropped before the 413 is sent (so that the
/// client sees the answer instead of a reset connection); past it the connection is closed.
const DRAIN_LIMIT: usize = 16 << 20;
/// How long one registry request may take.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a probe or a call may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// Change notifications are sent at most this often per page.
const EVENT_COALESCE: Duration = Duration::from_millis(300);

const INDEX_HTML: &str = include_str!("assets/index.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

/// `sextant ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// The registry: `etcd://h:p[,h:p]/base`, zookeeper://…, redis://…, consul://…, or
    /// http://h:p for the embedded registry (`sextant registry`). Also $SEXTANT_REGISTRY.
    #[arg(
        long,
        env = "SEXTANT_REGISTRY",
        default_value = "http://127.0.0.1:9980"
    )]
    registry: String,
    /// The base path services are under, when the registry URL has none.
    #[arg(long, default_value = "/rpcx")]
    base_path: String,
    /// The address to serve on. Keep it on loopback unless a login is configured.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Show, never change: activate, deactivate, metadata edits and calls are refused (403).
    #[arg(long)]
    read_only: bool,
    /// The user name of the login (with --password-hash).
    #[arg(long, env = "SEXTANT_UI_USER")]
    user: Option<String>,
    /// The login's password as an argon2id PHC string (`sextant ui --hash-password` makes one).
    /// Also $SEXTANT_UI_PASSWORD_HASH.
    #[arg(long, env = "SEXTANT_UI_PASSWORD_HASH", hide_env_values = true)]
    password_hash: Option<String>,
    /// Host names (besides IP addresses and `localhost`) the UI answers to in the Host header:
    /// the name it is reached by behind a proxy (repeatable). Others are refused (403), which
    /// keeps DNS-rebinding pages out.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_host: Vec<String>,
    /// Read a password from stdin, print its argon2id PHC string for --password-hash, and exit.
    #[arg(long)]
    hash_password: bool,
}

struct Ui {
    store: Arc<dyn AdminStore>,
    base: String,
    read_only: bool,
    credentials: Option<Arc<Credentials>>,
    sessions: Sessions,
    failures: Failures,
    /// The CSRF token of the whole process, when there is no login.
    process_csrf: String,
    allow_hosts: Vec<String>,
    changes: watch::Receiver<u64>,
}

type Shared = Arc<Ui>;

/// The CSRF token the request's page carries, found by the guard.
#[derive(Clone)]
struct Csrf(String);

/// `sextant ui`.
pub async fn run(args: UiArgs) -> Result<(), CliError> {
    if args.hash_password {
        return print_hash();
    }
    let credentials = match (&args.user, &args.password_hash) {
        (Some(user), Some(hash)) if !user.is_empty() => Some(Arc::new(Credentials::new(
            user.clone(),
            hash.trim().to_string(),
        )?)),
        (None, None) => None,
        _ => {
            return Err(CliError::usage(
                "a login needs both --user NAME and --password-hash PHC (make the hash with \
                 `sextant ui --hash-password`)",
            ))
        }
    };
    let opened = registry_url::open(&args.registry, &args.base_path).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::transport(format!("cannot listen on {}: {e}", args.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::transport(e.to_string()))?;
    if credentials.is_none() && !local.ip().is_loopback() {
        tracing::warn!(
            "sextant ui serves {local} without a login: anyone who reaches it can change the \
             registry; configure --user and --password-hash, or listen on 127.0.0.1"
        );
    }
    let (tx, rx) = watch::channel(0u64);
    tokio::spawn(watch_registry(
        opened.store.clone(),
        opened.base.clone(),
        tx,
    ));
    let ui = Arc::new(Ui {
        store: opened.store,
        base: opened.base,
        read_only: args.read_only,
        credentials,
        sessions: Sessions::default(),
        failures: Failures::default(),
        process_csrf: auth::random_hex(32).map_err(CliError::transport)?,
        allow_hosts: args
            .allow_host
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        changes: rx,
    });
    tracing::info!(
        "sextant ui on http://{local}/ for the {} registry at {} (base {}){}{}",
        ui.store.engine(),
        ui.store.endpoints(),
        ui.base,
        if ui.credentials.is_some() {
            ", login required"
        } else {
            ", no login"
        },
        if ui.read_only { ", read-only" } else { "" },
    );
    let app = router(ui);
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    );
    tokio::select! {
        r = serve => r.map_err(|e| CliError::transport(format!("the web server stopped: {e}"))),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

fn print_hash() -> Result<(), CliError> {
    use std::io::BufRead as _;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(4096)
        .read_line(&mut line)
        .map_err(|e| CliError::usage(format!("cannot read the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(CliError::usage(
            "no password on stdin: write it as the first line (e.g. `sextant ui --hash-password < file`)",
        ));
    }
    println!("{}", auth::hash_password(password)?);
    Ok(())
}

fn router(ui: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route(
            "/assets/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/assets/style.css",
            get(|| asset(STYLE_CSS, "text/css; charset=utf-8")),
        )
        .route("/favicon.ico", get(|| asset(FAVICON_SVG, "image/svg+xml")))
        .route("/api/services", get(api_services))
        .route("/api/services/{name}", get(api_service))
        .route(
            "/api/services/{name}/servers/{address}/state",
            post(api_state),
        )
        .route(
            "/api/services/{name}/servers/{address}/metadata",
            post(api_metadata),
        )
        .route("/api/probe", post(api_probe))
        .route("/api/call", post(api_call))
        .route("/api/events", get(api_events))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page") })
        .layer(middleware::from_fn_with_state(ui.clone(), guard))
        .with_state(ui)
}

// ---------------------------------------------------------------------------------------------
// Responses.

fn security_headers(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    // Not `no-referrer`: with it, browsers send `Origin: null` on same-origin POSTs.
    set(headers, "referrer-policy", "same-origin");
    set(headers, "cache-control", "no-store");
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn cli_error(e: CliError) -> Response {
    let status = match e.code {
        2 => StatusCode::BAD_REQUEST,
        3 => StatusCode::BAD_GATEWAY,
        _ => StatusCode::CONFLICT,
    };
    error(status, e.message)
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// The guard: Host, Origin, login, CSRF and the body limit, before any handler.

fn host_allowed(ui: &Ui, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h),
    };
    name.parse::<IpAddr>().is_ok()
        || name == "localhost"
        || ui.allow_hosts.iter().any(|h| h == name)
}

/// A POST from another origin: its Origin is not this UI's own (`http://` + Host), or the
/// browser says it is cross-site.
fn cross_origin(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.to_str().ok(), host) {
        (Some(o), Some(h)) => {
            let o = o.to_ascii_lowercase();
            o != format!("http://{}", h.to_ascii_lowercase())
                && o != format!("https://{}", h.to_ascii_lowercase())
        }
        _ => true,
    }
}

/// Reads and drops what is left of a body (at most [`DRAIN_LIMIT`] bytes, 5 s), so that the
/// answer sent before it reaches the client.
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}

fn too_large(size: Option<usize>) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request is too large ({}at most {} KiB are accepted): nothing was changed",
            size.map(|s| format!("{s} bytes; ")).unwrap_or_default(),
            MAX_BODY / 1024
        ),
    )
}

async fn guard(State(ui): State<Shared>, request: Request, next: Next) -> Response {
    let mut response = guarded(&ui, request, next).await;
    security_headers(response.headers_mut());
    response
}

async fn guarded(ui: &Ui, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let is_post = parts.method == Method::POST;
    let reject = |response: Response, body: Body| async move {
        if is_post {
            drain(body).await;
        }
        response
    };
    if !host_allowed(ui, &parts.headers) {
        return reject(
            error(
                StatusCode::FORBIDDEN,
                "unexpected Host header: reach the UI by IP address or localhost, or allow the \
                 name with --allow-host",
            ),
            body,
        )
        .await;
    }
    if is_post && cross_origin(&parts.headers) {
        return reject(
            error(StatusCode::FORBIDDEN, "cross-origin request refused"),
            body,
        )
        .await;
    }
    let path = parts.uri.path().to_string();
    let public = matches!(path.as_str(), "/login" | "/favicon.ico") || path.starts_with("/assets/");
    // Who is asking: the session's CSRF token, or the process's without a login.
    let csrf = if ui.credentials.is_none() {
        Some(ui.process_csrf.clone())
    } else {
        parts
            .headers
            .get(header::COOKIE)
            .and_then(|c| c.to_str().ok())
            .and_then(|c| auth::cookie(c, auth::COOKIE))
            .and_then(|token| ui.sessions.get(token))
            .map(|s| s.csrf)
    };
    if !public {
        let Some(csrf) = csrf else {
            if parts.method == Method::GET && path == "/" {
                return login_form(StatusCode::OK, None);
            }
            return reject(
                error(
                    StatusCode::UNAUTHORIZED,
                    "log in first (open the UI's page and sign in)",
                ),
                body,
            )
            .await;
        };
        if is_post {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .map(|v| v.as_bytes().to_vec());
            match sent {
                None => return reject(
                    error(
                        StatusCode::FORBIDDEN,
                        "missing CSRF token (X-CSRF-Token header): reload the page and try again",
                    ),
                    body,
                )
                .await,
                Some(t) if !auth::constant_time_eq(&t, csrf.as_bytes()) => {
                    return reject(
                        error(
                            StatusCode::FORBIDDEN,
                            "forged or stale CSRF token: reload the page and try again",
                        ),
                        body,
                    )
                    .await
                }
                Some(_) => {}
            }
        }
        parts.extensions.insert(Csrf(csrf));
    }
    if !is_post {
        return next.run(Request::from_parts(parts, body)).await;
    }
    // The body limit.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return reject(too_large(declared), body).await;
    }
    // No Content-Length (chunked): read up to the limit, and past it drain as above.
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return error(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            );
        };
        if bytes.len() + chunk.len() > MAX_BODY {
            drain(Body::from_stream(stream)).await;
            return too_large(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

// ---------------------------------------------------------------------------------------------
// Pages and login.

async fn index(State(ui): State<Shared>, csrf: Option<axum::Extension<Csrf>>) -> Response {
    let Some(axum::Extension(Csrf(token))) = csrf else {
        return login_form(StatusCode::OK, None);
    };
    let page = INDEX_HTML
        .replace("{{CSRF}}", &token)
        .replace("{{READ_ONLY}}", if ui.read_only { "true" } else { "false" })
        .replace(
            "{{LOGIN}}",
            if ui.credentials.is_some() {
                "true"
            } else {
                "false"
            },
        );
    html(StatusCode::OK, page)
}

fn login_form(status: StatusCode, message: Option<&str>) -> Response {
    // The messages are fixed text, never user input.
    let message = message.map_or(String::new(), |m| {
        format!("<p id=\"login-error\" class=\"error\">{m}</p>")
    });
    html(status, LOGIN_HTML.replace("{{MESSAGE}}", &message))
}

async fn login_page(State(ui): State<Shared>) -> Response {
    if ui.credentials.is_none() {
        return redirect_home(None);
    }
    login_form(StatusCode::OK, None)
}

fn redirect_home(cookie: Option<String>) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(ui): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(credentials) = ui.credentials.clone() else {
        return redirect_home(None);
    };
    let Ok(Form(form)) = form else {
        return login_form(
            StatusCode::BAD_REQUEST,
            Some("Send the user and password fields."),
        );
    };
    let ip = peer.ip();
    if ui.failures.blocked(ip) {
        return login_form(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed logins from this address: wait a minute and try again."),
        );
    }
    let ok = tokio::task::spawn_blocking(move || credentials.verify(&form.user, &form.password))
        .await
        .unwrap_or(false);
    if !ok {
        ui.failures.fail(ip);
        return login_form(
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name or password."),
        );
    }
    ui.failures.clear(ip);
    match ui.sessions.create() {
        Ok((token, _)) => redirect_home(Some(format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            auth::COOKIE,
            auth::SESSION_TTL.as_secs()
        ))),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn logout(State(ui): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(token) = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| auth::cookie(c, auth::COOKIE))
    {
        ui.sessions.remove(token);
    }
    redirect_home(Some(format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        auth::COOKIE
    )))
}

// ---------------------------------------------------------------------------------------------
// The API.

async fn browse(ui: &Ui, service: Option<&str>) -> Result<admin::Services, Response> {
    match tokio::time::timeout(
        REGISTRY_TIMEOUT,
        admin::browse(ui.store.as_ref(), &ui.base, service),
    )
    .await
    {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(cli_error(e)),
        Err(_) => Err(error(
            StatusCode::GATEWAY_TIMEOUT,
            format!("the registry did not answer within {REGISTRY_TIMEOUT:?}"),
        )),
    }
}

fn timing(mut response: Response, started: Instant) -> Response {
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.1}")) {
        response.headers_mut().insert("server-timing", v);
    }
    response
}

#[derive(Serialize)]
struct ServiceRow<'a> {
    name: &'a str,
    servers: usize,
    active: usize,
}

async fn api_services(State(ui): State<Shared>) -> Response {
    let started = Instant::now();
    let services = match browse(&ui, None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let rows: Vec<ServiceRow<'_>> = services
        .iter()
        .map(|(name, servers)| ServiceRow {
            name,
            servers: servers.len(),
            active: servers.iter().filter(|s| s.active()).count(),
        })
        .collect();
    let body = json!({
        "base": ui.base,
        "registry": format!("{} {}", ui.store.engine(), ui.store.endpoints()),
        "read_only": ui.read_only,
        "services": rows,
        "total_servers": services.values().map(Vec::len).sum::<usize>(),
    });
    timing(Json(body).into_response(), started)
}

#[derive(Serialize)]
struct ServerView<'a> {
    #[serde(flatten)]
    entry: &'a ServerEntry,
    active: bool,
    group: Option<&'a str>,
    weight: Option<&'a str>,
    calls: Option<&'a str>,
    tps: Option<&'a str>,
}

fn view(entry: &ServerEntry) -> ServerView<'_> {
    let get = |k: &str| entry.metadata.get(k).map(String::as_str);
    ServerView {
        entry,
        active: entry.active(),
        group: get("group"),
        weight: get("weight"),
        calls: get("calls"),
        tps: get("tps"),
    }
}

async fn servers_of(ui: &Ui, name: &str) -> Result<Vec<ServerEntry>, Response> {
    let mut services = browse(ui, Some(name)).await?;
    Ok(services.remove(name).unwrap_or_default())
}

async fn api_service(State(ui): State<Shared>, Path(name): Path<String>) -> Response {
    let started = Instant::now();
    let servers = match servers_of(&ui, &name).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if servers.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            format!("no server of {name:?} under {}", ui.base),
        );
    }
    let views: Vec<ServerView<'_>> = servers.iter().map(view).collect();
    timing(
        Json(json!({ "service": name, "read_only": ui.read_only, "servers": views }))
            .into_response(),
        started,
    )
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("the request body is not the JSON expected: {e}"),
        )
    })
}

fn refuse_read_only(ui: &Ui) -> Result<(), Response> {
    if ui.read_only {
        return Err(error(
            StatusCode::FORBIDDEN,
            "the UI runs with --read-only: nothing can be changed",
        ));
    }
    Ok(())
}

/// Edits a listed server's metadata as `sextant set` does: read, apply, update (keeping the
/// entry's owner), and answers with the entry as written.
async fn edit(
    ui: &Ui,
    service: &str,
    address: &str,
    edits: &[(String, Option<String>)],
) -> Response {
    let servers = match servers_of(ui, service).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !servers.iter().any(|s| s.address == address) {
        return error(
            StatusCode::NOT_FOUND,
            format!("{service:?} has no server {address:?}"),
        );
    }
    let key = format!("{}/{service}/{address}", ui.base);
    let store = ui.store.as_ref();
    let current = match tokio::time::timeout(REGISTRY_TIMEOUT, store.get(&key)).await {
        Ok(Ok(Some(v))) => v,
        Ok(Ok(None)) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("{key} is gone from the registry"),
            )
        }
        Ok(Err(e)) => return error(StatusCode::BAD_GATEWAY, format!("get {key}: {e}")),
        Err(_) => return error(StatusCode::GATEWAY_TIMEOUT, format!("get {key}: timed out")),
    };
    let value = match admin::apply_edits(&current, edits) {
        Ok(v) => v,
        Err(e) => return cli_error(e),
    };
    match tokio::time::timeout(REGISTRY_TIMEOUT, store.update(&key, &value)).await {
        Ok(Ok(true)) => {
            tracing::info!("sextant ui: {key} = {}", admin::printable(&value));
            Json(json!({ "key": key, "value": value })).into_response()
        }
        Ok(Ok(false)) => error(
            StatusCode::NOT_FOUND,
            format!("{key} went from the registry while it was being edited"),
        ),
        Ok(Err(e)) => error(StatusCode::BAD_GATEWAY, format!("update {key}: {e}")),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!("update {key}: timed out"),
        ),
    }
}

#[derive(Deserialize)]
struct StateBody {
    active: bool,
}

async fn api_state(
    State(ui): State<Shared>,
    Path((name, address)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = refuse_read_only(&ui) {
        return r;
    }
    let body: StateBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let state = if body.active { "active" } else { "inactive" };
    edit(
        &ui,
        &name,
        &address,
        &[("state".into(), Some(state.into()))],
    )
    .await
}

#[derive(Deserialize)]
struct MetadataBody {
    /// `key=value` pairs to set.
    #[serde(default)]
    set: Vec<String>,
    /// Keys to remove.
    #[serde(default)]
    unset: Vec<String>,
}

async fn api_metadata(
    State(ui): State<Shared>,
    Path((name, address)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = refuse_read_only(&ui) {
        return r;
    }
    let body: MetadataBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let edits = match admin::parse_edits(&body.set, &body.unset) {
        Ok(e) => e,
        Err(e) => return cli_error(e),
    };
    edit(&ui, &name, &address, &edits).await
}

#[derive(Deserialize)]
struct ProbeBody {
    service: String,
    address: String,
}

/// Whether `address` is a server the registry lists under `service` (probes and calls go only
/// to those, not to any address a page names).
async fn listed(ui: &Ui, service: &str, address: &str) -> Result<(), Response> {
    let servers = servers_of(ui, service).await?;
    if servers.iter().any(|s| s.address == address) {
        return Ok(());
    }
    Err(error(
        StatusCode::NOT_FOUND,
        format!("{service:?} has no server {address:?} in the registry"),
    ))
}

async fn api_probe(State(ui): State<Shared>, body: Bytes) -> Response {
    let body: ProbeBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = listed(&ui, &body.service, &body.address).await {
        return r;
    }
    let result = tokio::time::timeout(RPC_TIMEOUT, probe(&body.address)).await;
    let answer = match result {
        Ok(Ok((connect, rtt))) => json!({
            "ok": true,
            "connect_ms": connect.as_secs_f64() * 1e3,
            "rtt_ms": rtt.as_secs_f64() * 1e3,
        }),
        Ok(Err(e)) => json!({ "ok": false, "error": e }),
        Err(_) => json!({
            "ok": false,
            "error": format!("no answer within {RPC_TIMEOUT:?}"),
        }),
    };
    Json(answer).into_response()
}

/// Connects to `address` and sends one rpcx heartbeat: the connect time and the heartbeat's
/// round trip.
async fn probe(address: &str) -> Result<(Duration, Duration), String> {
    let started = Instant::now();
    let options = sextant::ClientOptions::default()
        .connect_timeout(RPC_TIMEOUT)
        .max_wait_for_heartbeat(RPC_TIMEOUT);
    let client = sextant::Client::connect(address, options)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let connected = started.elapsed();
    let t = Instant::now();
    let r = client.heartbeat().await;
    let rtt = t.elapsed();
    client.close();
    r.map_err(|e| format!("heartbeat failed: {e}"))?;
    Ok((connected, rtt))
}

#[derive(Deserialize)]
struct CallBody {
    service: String,
    method: String,
    address: String,
    #[serde(default)]
    args: String,
    #[serde(default)]
    codec: Option<String>,
}

async fn api_call(State(ui): State<Shared>, body: Bytes) -> Response {
    if let Err(r) = refuse_read_only(&ui) {
        return r;
    }
    let body: CallBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let codec = match body.codec.as_deref().unwrap_or("msgpack") {
        "msgpack" => CodecName::Msgpack,
        "json" => CodecName::Json,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("codec {other:?}: use msgpack or json"),
            )
        }
    };
    let method = body.method.trim();
    if method.is_empty() {
        return error(StatusCode::BAD_REQUEST, "give a method name (e.g. Mul)");
    }
    let args = if body.args.trim().is_empty() {
        "{}"
    } else {
        body.args.as_str()
    };
    // Parse first: bad JSON is the page's error, not the server's.
    if let Err(e) = serde_json::from_str::<serde_json::Value>(args) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("the arguments are not JSON: {e} (write e.g. {{\"A\":7,\"B\":6}})"),
        );
    }
    if let Err(r) = listed(&ui, &body.service, &body.address).await {
        return r;
    }
    let started = Instant::now();
    match call::call_once(
        &body.address,
        &body.service,
        method,
        args,
        codec,
        RPC_TIMEOUT,
    )
    .await
    {
        Ok(reply) => Json(json!({
            "ok": true,
            "reply": reply,
            "ms": started.elapsed().as_secs_f64() * 1e3,
        }))
        .into_response(),
        Err(e) => {
            let status = match e.code {
                2 => StatusCode::BAD_REQUEST,
                1 => StatusCode::OK, // the service answered an error: a result like any other
                _ => StatusCode::BAD_GATEWAY,
            };
            (status, Json(json!({ "ok": false, "error": e.message }))).into_response()
        }
    }
}

async fn api_events(
    State(ui): State<Shared>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let mut rx = ui.changes.clone();
    rx.mark_unchanged();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        // Coalesce bursts (every server's refresh is a change).
        tokio::time::sleep(EVENT_COALESCE).await;
        let n = *rx.borrow_and_update();
        Some((
            Ok(Event::default().event("changed").data(n.to_string())),
            rx,
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Follows the registry's watch on the base path, counting changes into `tx`; a broken watch is
/// started again with backoff (up to 5 s).
async fn watch_registry(store: Arc<dyn AdminStore>, base: String, tx: watch::Sender<u64>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = async {
            let listing = tokio::time::timeout(REGISTRY_TIMEOUT, store.list(&base))
                .await
                .map_err(|_| "listing timed out".to_string())?
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(REGISTRY_TIMEOUT, store.watch(&base, &listing))
                .await
                .map_err(|_| "starting the watch timed out".to_string())?
                .map_err(|e| e.to_string())
        }
        .await;
        match started {
            Ok(mut w) => {
                backoff = Duration::from_millis(100);
                // What changed while the watch was down.
                tx.send_modify(|n| *n += 1);
                loop {
                    match w.changed().await {
                        Ok(()) => tx.send_modify(|n| *n += 1),
                        Err(e) => {
                            tracing::warn!(
                                "sextant ui: the registry watch broke ({e}); restarting it"
                            );
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!("sextant ui: cannot watch {base}: {e}; retrying in {backoff:?}")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
