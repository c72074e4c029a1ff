//! rpcx's HTTP invoke of `Arith.Mul`, served by axum: the peer that sextant's HTTP invoke (an
//! HTTP request to an rpcx server's own port) is compared with in `bench/http.sh`.
//!
//! It does the work rpcx's gateway handler does for one JSON call, and no more: `POST /*path`
//! reads `X-RPCX-MessageID`, `X-RPCX-SerializeType`, `X-RPCX-ServicePath` (or the URL path
//! without its leading `/`) and `X-RPCX-ServiceMethod`, parses the JSON body into `{"A","B"}`,
//! and answers `200` with `{"C":A*B}` and the headers rpcx sets (`X-Rpcx-Messageid`,
//! `X-Rpcx-Servicepath`, `X-Rpcx-Servicemethod`, `X-Rpcx-Serializetype`, an empty `X-Rpcx-Meta`).
//! A missing header answers `X-Rpcx-Messagestatustype: Error` with `X-Rpcx-Errormessage` (status
//! 200, as rpcx does), an unknown service or method, another serialize type or a bad body the
//! same with status 500.
//!
//! axum 0.8 with `axum::serve` (hyper, HTTP/1.1 and HTTP/2 on the same port, keep-alive),
//! TCP_NODELAY on accepted connections, no other middleware.
//!
//! ```text
//! axum-bench server --addr 127.0.0.1:8972
//! sextant-bench http-client --url http://127.0.0.1:8972/Arith -c 100 -k 10 -n 100000 --json
//! ```

use anyhow::Context as _;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt as _;
use axum::Router;
use clap::Parser;
use serde::{Deserialize, Serialize};
use sextant_bench_driver::cli::{self, ServerArgs};

const MESSAGE_ID: HeaderName = HeaderName::from_static("x-rpcx-messageid");
const SERIALIZE_TYPE: HeaderName = HeaderName::from_static("x-rpcx-serializetype");
const SERVICE_PATH: HeaderName = HeaderName::from_static("x-rpcx-servicepath");
const SERVICE_METHOD: HeaderName = HeaderName::from_static("x-rpcx-servicemethod");
const VERSION: HeaderName = HeaderName::from_static("x-rpcx-version");
const META: HeaderName = HeaderName::from_static("x-rpcx-meta");
const STATUS_TYPE: HeaderName = HeaderName::from_static("x-rpcx-messagestatustype");
const ERROR_MESSAGE: HeaderName = HeaderName::from_static("x-rpcx-errormessage");
/// rpcx's serialize type for JSON.
const JSON: &str = "1";

/// The axum peer of sextant's HTTP invoke.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Serve `POST /*path` (Arith.Mul over rpcx's HTTP invoke headers) until killed. Load it
    /// with `sextant-bench http-client`.
    Server(ServerArgs),
}

fn main() -> anyhow::Result<()> {
    let Command::Server(args) = Cli::parse().command;
    cli::runtime(args.threads)?.block_on(serve(args))
}

/// rpcx-examples' `Arith` arguments.
#[derive(Debug, Deserialize)]
struct Args {
    #[serde(rename = "A")]
    a: i64,
    #[serde(rename = "B")]
    b: i64,
}

/// rpcx-examples' `Arith` reply.
#[derive(Debug, Serialize)]
struct Reply {
    #[serde(rename = "C")]
    c: i64,
}

/// The value of header `name`, or "" (as Go's `Header.Get`).
fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> &'a [u8] {
    headers.get(name).map_or(b"", HeaderValue::as_bytes)
}

/// rpcx's gateway handler for one JSON call of `Arith.Mul`.
async fn invoke(uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let service_path = match headers.get(&SERVICE_PATH) {
        Some(v) if !v.is_empty() => v.clone(),
        // The URL path is valid header text already.
        _ => HeaderValue::from_str(uri.path().trim_start_matches('/'))
            .unwrap_or(HeaderValue::from_static("")),
    };
    let method = header(&headers, &SERVICE_METHOD);
    let serialize_type = header(&headers, &SERIALIZE_TYPE);
    let mut reply = HeaderMap::with_capacity(8);
    for name in [VERSION, MESSAGE_ID] {
        if let Some(v) = headers.get(&name) {
            reply.insert(name, v.clone());
        }
    }
    reply.insert(SERVICE_PATH, service_path.clone());
    reply.insert(
        SERVICE_METHOD,
        HeaderValue::from_bytes(method).unwrap_or(HeaderValue::from_static("")),
    );
    reply.insert(
        SERIALIZE_TYPE,
        HeaderValue::from_bytes(serialize_type).unwrap_or(HeaderValue::from_static("")),
    );

    let missing = if service_path.is_empty() {
        Some("empty servicepath")
    } else if method.is_empty() {
        Some("empty servicemethod")
    } else if serialize_type.is_empty() {
        Some("empty serialized type")
    } else {
        None
    };
    if let Some(error) = missing {
        // rpcx answers these with status 200 and the error in the headers.
        return error_reply(StatusCode::OK, reply, error.to_string());
    }
    if service_path.as_bytes() != b"Arith" {
        let path = String::from_utf8_lossy(service_path.as_bytes()).into_owned();
        return error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            reply,
            format!("rpcx: can't find service {path}"),
        );
    }
    if method != b"Mul" {
        let method = String::from_utf8_lossy(method).into_owned();
        return error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            reply,
            format!("rpcx: can't find method {method}"),
        );
    }
    if serialize_type != JSON.as_bytes() {
        return error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            reply,
            "unsupported serialize type".to_string(),
        );
    }
    let args: Args = match serde_json::from_slice(&body) {
        Ok(args) => args,
        Err(e) => return error_reply(StatusCode::INTERNAL_SERVER_ERROR, reply, e.to_string()),
    };
    let body = match serde_json::to_vec(&Reply {
        c: args.a.wrapping_mul(args.b),
    }) {
        Ok(body) => body,
        Err(e) => return error_reply(StatusCode::INTERNAL_SERVER_ERROR, reply, e.to_string()),
    };
    reply.insert(META, HeaderValue::from_static(""));
    (StatusCode::OK, reply, body).into_response()
}

fn error_reply(status: StatusCode, mut headers: HeaderMap, error: String) -> Response {
    headers.insert(STATUS_TYPE, HeaderValue::from_static("Error"));
    // Error texts here are plain ASCII.
    headers.insert(
        ERROR_MESSAGE,
        HeaderValue::try_from(error).unwrap_or(HeaderValue::from_static("error")),
    );
    (status, headers).into_response()
}

/// Serves `POST /*path` on `args.addr` until Ctrl-C (or until killed).
async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/{*path}", post(invoke))
        .route("/", post(invoke));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?
        .tap_io(|tcp| {
            // Only fails on a closed socket, which the server then drops anyway.
            let _ = tcp.set_nodelay(true);
        });
    eprintln!("axum server listening on {}", args.addr);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // If the signal handler cannot be installed, serve until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
        .with_context(|| format!("serving on {}", args.addr))
}
