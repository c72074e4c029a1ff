//! HTTP access to rpcx services: rpcx's *HTTP invoke* (an HTTP request whose `X-RPCX-*` headers
//! say which service and method to call, and whose body is the payload) and JSON-RPC 2.0.
//!
//! A [`Server`](crate::Server) answers both on its service port (see
//! [`server::http`](crate::server#http-on-the-service-port)); the conversions here are also what the
//! gateway (`sextant-gateway`) uses to put an HTTP front on a whole fleet.
//!
//! ## HTTP invoke, as Go rpcx's `server/gateway.go` and `converter.go`
//!
//! | request header | meaning |
//! |---|---|
//! | `X-RPCX-ServicePath` | the service; when absent, the URL path without its leading `/` |
//! | `X-RPCX-ServiceMethod` | the method (required) |
//! | `X-RPCX-SerializeType` | the payload's codec: 0 raw, 1 JSON, 2 protobuf, 3 msgpack, 4 thrift (required) |
//! | `X-RPCX-MessageID` | a number echoed back (the rpcx `seq`) |
//! | `X-RPCX-Meta` | request metadata as a query string, `a=1&b=2` |
//! | `X-RPCX-CompressType` | 1 when the body is gzip (also `Content-Encoding: gzip`) |
//! | `X-RPCX-Oneway`, `X-RPCX-Heartbeat` | set the oneway or heartbeat bit (any non-empty value) |
//! | `X-RPCX-MessageType` (and rpcx's old spelling `X-RPCX-MesssageType`) | accepted and ignored, as Go does |
//! | `Authorization` | the auth token (`__AUTH`) |
//!
//! The answer is `200` with `X-RPCX-Version`, `X-RPCX-MessageID`, `X-RPCX-ServicePath`,
//! `X-RPCX-ServiceMethod` and `X-RPCX-SerializeType` echoed, the response metadata in
//! `X-RPCX-Meta`, `X-RPCX-CompressType` when the body is compressed, and the reply payload as the
//! body. A service error is `500` with `X-RPCX-MessageStatusType: Error` and
//! `X-RPCX-ErrorMessage`; a failed auth is `401` with the same two headers.
//!
//! Differences from Go rpcx, all deliberate:
//! - a request with a missing or invalid `X-RPCX-*` header is answered `400` with a text saying
//!   which header (Go answers `200` with the two error headers); the headers are the same;
//! - a body over the limit is `413` (Go reads any size);
//! - when the request was compressed and the reply is too, the body is the compressed reply
//!   (Go says `X-RPCX-CompressType: 1` but sends the reply uncompressed).
//! - header names go out in lower case (`x-rpcx-messageid`; Go writes `X-Rpcx-Messageid`): HTTP
//!   header names are case-insensitive, and title-casing them cost a tenth of a call;
//! - the body's `Content-Type` is picked as Go's `DetectContentType` picks it for text and binary
//!   bodies ([`detect_content_type`]), without Go's HTML, XML and image signatures.

mod jsonrpc;

use std::fmt;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use sextant_protocol::{
    keys, CompressType, Header, MessageStatusType, MessageType, Metadata, SerializeType,
};

pub use jsonrpc::{
    serve_jsonrpc, JsonRpcError, JsonRpcOptions, CODE_INTERNAL_ERROR, CODE_INVALID_PARAMS,
    CODE_INVALID_REQUEST, CODE_METHOD_NOT_FOUND, CODE_PARSE_ERROR, CODE_UNKNOWN_ERROR,
    JSONRPC_HEADER,
};
pub use tower_http::cors::CorsLayer;

use crate::query::QueryValues;
use sextant_protocol::Message;

/// rpcx's `X-RPCX-Version`.
pub const X_VERSION: &str = "X-RPCX-Version";
/// rpcx's `X-RPCX-MessageType` (ignored on requests).
pub const X_MESSAGE_TYPE: &str = "X-RPCX-MessageType";
/// The old spelling rpcx-gateway still sends, `X-RPCX-MesssageType` (ignored on requests).
pub const X_MESSSAGE_TYPE: &str = "X-RPCX-MesssageType";
/// rpcx's `X-RPCX-Heartbeat`.
pub const X_HEARTBEAT: &str = "X-RPCX-Heartbeat";
/// rpcx's `X-RPCX-Oneway`.
pub const X_ONEWAY: &str = "X-RPCX-Oneway";
/// rpcx's `X-RPCX-MessageStatusType`: `Error` on a failed call.
pub const X_MESSAGE_STATUS_TYPE: &str = "X-RPCX-MessageStatusType";
/// rpcx's `X-RPCX-SerializeType`.
pub const X_SERIALIZE_TYPE: &str = "X-RPCX-SerializeType";
/// rpcx's `X-RPCX-CompressType`.
pub const X_COMPRESS_TYPE: &str = "X-RPCX-CompressType";
/// rpcx's `X-RPCX-MessageID`.
pub const X_MESSAGE_ID: &str = "X-RPCX-MessageID";
/// rpcx's `X-RPCX-ServicePath`.
pub const X_SERVICE_PATH: &str = "X-RPCX-ServicePath";
/// rpcx's `X-RPCX-ServiceMethod`.
pub const X_SERVICE_METHOD: &str = "X-RPCX-ServiceMethod";
/// rpcx's `X-RPCX-Meta`.
pub const X_META: &str = "X-RPCX-Meta";
/// rpcx's `X-RPCX-ErrorMessage`.
pub const X_ERROR_MESSAGE: &str = "X-RPCX-ErrorMessage";

/// The body type of every response sextant's HTTP side produces.
pub type HttpBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;
/// The error type of [`HttpBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request that cannot be turned into an rpcx call, or a call that failed before a service
/// answered: the HTTP status and the text to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeError {
    /// The status to answer with: 400 for bad headers, 413 for a body over the limit, ...
    pub status: StatusCode,
    /// What went wrong, sent in `X-RPCX-ErrorMessage` and as the body.
    pub message: String,
}

impl InvokeError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> InvokeError {
        InvokeError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> InvokeError {
        InvokeError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl fmt::Display for InvokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for InvokeError {}

/// How an invoked call ended, to be written as an HTTP response by [`invoke_response`].
#[derive(Debug)]
pub enum InvokeOutcome {
    /// The service answered: the response's header, metadata and payload (as on the wire,
    /// compressed when the header says so).
    Reply {
        /// The response header.
        header: Header,
        /// The response metadata.
        metadata: Metadata,
        /// The reply payload.
        payload: Bytes,
    },
    /// The call failed: a service error (500), failed auth (401), an unreachable server, ...
    Failed(InvokeError),
}

/// A header's value as text, `None` when absent or blank; `400` naming it when not ASCII.
fn text<'a>(v: Option<&'a HeaderValue>, name: &str) -> Result<Option<&'a str>, InvokeError> {
    match v {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()).filter(|s| !s.is_empty()))
            .map_err(|_| InvokeError::bad_request(format!("rpcx: {name} is not visible ASCII"))),
    }
}

/// The request headers [`invoke_request`] reads.
#[derive(Default)]
struct Fields<'a> {
    id: Option<&'a HeaderValue>,
    heartbeat: Option<&'a HeaderValue>,
    oneway: Option<&'a HeaderValue>,
    st: Option<&'a HeaderValue>,
    ct: Option<&'a HeaderValue>,
    meta: Option<&'a HeaderValue>,
    path: Option<&'a HeaderValue>,
    method: Option<&'a HeaderValue>,
    auth: Option<&'a HeaderValue>,
    encoding: Option<&'a HeaderValue>,
}

/// Turns an HTTP invoke request into an rpcx request message (Go rpcx's
/// `HTTPRequest2RpcxRequest`, plus the checks of `handleGatewayRequest`).
///
/// `path` is the URL path: when `X-RPCX-ServicePath` is absent the service is the path without
/// its leading `/`. The payload is `body` as is. Fails with `400` naming the header that is
/// missing or invalid.
pub fn invoke_request(
    headers: &HeaderMap,
    path: &str,
    body: Bytes,
) -> Result<Message, InvokeError> {
    // One pass over the headers (no hashing per name); the first value of each counts, as Go's
    // `Header.Get`.
    let mut f = Fields::default();
    for (name, value) in headers {
        let slot = match name.as_str() {
            "x-rpcx-messageid" => &mut f.id,
            "x-rpcx-heartbeat" => &mut f.heartbeat,
            "x-rpcx-oneway" => &mut f.oneway,
            "x-rpcx-serializetype" => &mut f.st,
            "x-rpcx-compresstype" => &mut f.ct,
            "x-rpcx-meta" => &mut f.meta,
            "x-rpcx-servicepath" => &mut f.path,
            "x-rpcx-servicemethod" => &mut f.method,
            "authorization" => &mut f.auth,
            "content-encoding" => &mut f.encoding,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    let mut header = Header::new();
    header.set_message_type(MessageType::Request);
    if let Some(id) = text(f.id, X_MESSAGE_ID)? {
        let seq = id.parse::<u64>().map_err(|e| {
            InvokeError::bad_request(format!("rpcx: invalid {X_MESSAGE_ID} {id:?}: {e}"))
        })?;
        header.set_seq(seq);
    }
    if text(f.heartbeat, X_HEARTBEAT)?.is_some() {
        header.set_heartbeat(true);
    }
    if text(f.oneway, X_ONEWAY)?.is_some() {
        header.set_oneway(true);
    }
    let st = text(f.st, X_SERIALIZE_TYPE)?
        .ok_or_else(|| InvokeError::bad_request(format!("rpcx: missing {X_SERIALIZE_TYPE}")))?;
    let st = st
        .parse::<u8>()
        .ok()
        .and_then(SerializeType::new)
        .ok_or_else(|| {
            InvokeError::bad_request(format!(
                "rpcx: invalid {X_SERIALIZE_TYPE} {st:?}: a number from 0 to 15 is expected"
            ))
        })?;
    header.set_serialize_type(st);
    if f.encoding
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"))
    {
        header.set_compress_type(CompressType::GZIP);
    }
    if let Some(ct) = text(f.ct, X_COMPRESS_TYPE)? {
        let ct = ct
            .parse::<u8>()
            .ok()
            .and_then(CompressType::new)
            .filter(|c| c.is_known())
            .ok_or_else(|| {
                InvokeError::bad_request(format!(
                    "rpcx: invalid {X_COMPRESS_TYPE} {ct:?}: 0 (none) or 1 (gzip) is expected"
                ))
            })?;
        header.set_compress_type(ct);
    }

    let mut metadata = Metadata::new();
    if let Some(meta) = text(f.meta, X_META)? {
        let values = QueryValues::parse(meta)
            .map_err(|e| InvokeError::bad_request(format!("rpcx: invalid {X_META}: {e}")))?;
        for (k, vs) in values.iter() {
            if let Some(v) = vs.first() {
                metadata.insert(k.to_string(), v.clone());
            }
        }
    }
    if let Some(auth) = text(f.auth, AUTHORIZATION)? {
        metadata.insert(keys::AUTH, auth.to_string());
    }

    let service_path = match text(f.path, X_SERVICE_PATH)? {
        Some(p) => p.to_string(),
        None => path.trim_start_matches('/').to_string(),
    };
    if service_path.is_empty() && !header.is_heartbeat() {
        return Err(InvokeError::bad_request(format!(
            "rpcx: missing {X_SERVICE_PATH} (or a service in the URL path)"
        )));
    }
    let service_method = text(f.method, X_SERVICE_METHOD)?.unwrap_or("");
    if service_method.is_empty() && !header.is_heartbeat() {
        return Err(InvokeError::bad_request(format!(
            "rpcx: missing {X_SERVICE_METHOD}"
        )));
    }
    Ok(Message {
        header,
        service_path: service_path.into(),
        service_method: service_method.to_string().into(),
        metadata,
        payload: body,
    })
}

/// Reads a request body of at most `limit` bytes. A declared `Content-Length` over the limit
/// is refused before anything is read.
pub async fn read_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, InvokeError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let too_large = || {
        InvokeError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("rpcx: request body is larger than the limit of {limit} bytes"),
        )
    };
    if let Some(len) = headers.get(http::header::CONTENT_LENGTH) {
        let len = len
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| InvokeError::bad_request("rpcx: invalid Content-Length"))?;
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(InvokeError::bad_request(format!(
            "rpcx: reading the request body: {e}"
        ))),
    }
}

/// [`read_body`] bounded by `timeout` (`408` when the body has not arrived by then). A body that
/// is already in costs no timer.
pub async fn read_body_within<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, InvokeError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let read = read_body(headers, body, limit);
    tokio::pin!(read);
    if let std::task::Poll::Ready(r) = futures::poll!(read.as_mut()) {
        return r;
    }
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(InvokeError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("rpcx: the request body did not arrive within {timeout:?}"),
        )),
    }
}

/// Marks `res` as the last response of its connection (`Connection: close`): for requests
/// whose body was not read to its end.
pub fn close_after(mut res: Response<HttpBody>) -> Response<HttpBody> {
    res.headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Serves one HTTP invoke request, as Go rpcx's `handleGatewayRequest`: only `GET`, `POST` and
/// `PUT` (`405` otherwise), the body read within `max_body_size` and `body_read_timeout`, turned
/// into an rpcx request by [`invoke_request`] and answered by [`invoke_response`] with what
/// `call` made of it. The server's service port and the gateway both answer with this.
pub async fn serve_invoke<B, F, Fut>(
    req: http::Request<B>,
    max_body_size: usize,
    body_read_timeout: std::time::Duration,
    call: F,
) -> Response<HttpBody>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
    F: FnOnce(Message) -> Fut,
    Fut: std::future::Future<Output = InvokeOutcome>,
{
    let (parts, body) = req.into_parts();
    if !matches!(
        parts.method,
        http::Method::GET | http::Method::POST | http::Method::PUT
    ) {
        let mut res = text_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        res.headers_mut().insert(
            http::header::ALLOW,
            HeaderValue::from_static("GET, POST, PUT"),
        );
        return res;
    }
    let body = match read_body_within(&parts.headers, body, max_body_size, body_read_timeout).await
    {
        Ok(b) => b,
        Err(e) => {
            return close_after(invoke_response(
                &parts.headers,
                None,
                InvokeOutcome::Failed(e),
            ))
        }
    };
    let msg = match invoke_request(&parts.headers, parts.uri.path(), body) {
        Ok(m) => m,
        Err(e) => return invoke_response(&parts.headers, None, InvokeOutcome::Failed(e)),
    };
    let path = msg.service_path.clone();
    let method = msg.service_method.clone();
    let outcome = call(msg).await;
    invoke_response(&parts.headers, Some((&path, &method)), outcome)
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    let v = HeaderValue::from_str(value).unwrap_or_else(|_| {
        // Only reachable for texts with control characters: send them escaped.
        HeaderValue::from_str(&value.escape_default().to_string())
            .unwrap_or(HeaderValue::from_static(""))
    });
    h.insert(hname(name), v);
}

/// `Authorization`, as [`hname`] takes it.
const AUTHORIZATION: &str = "Authorization";

/// The parsed form of one of the `X_*` constants (or `Authorization`): no parsing per request.
fn hname(name: &'static str) -> HeaderName {
    const fn n(s: &'static str) -> HeaderName {
        HeaderName::from_static(s)
    }
    match name {
        X_VERSION => const { n("x-rpcx-version") },
        X_MESSAGE_TYPE => const { n("x-rpcx-messagetype") },
        X_MESSSAGE_TYPE => const { n("x-rpcx-messsagetype") },
        X_HEARTBEAT => const { n("x-rpcx-heartbeat") },
        X_ONEWAY => const { n("x-rpcx-oneway") },
        X_MESSAGE_STATUS_TYPE => const { n("x-rpcx-messagestatustype") },
        X_SERIALIZE_TYPE => const { n("x-rpcx-serializetype") },
        X_COMPRESS_TYPE => const { n("x-rpcx-compresstype") },
        X_MESSAGE_ID => const { n("x-rpcx-messageid") },
        X_SERVICE_PATH => const { n("x-rpcx-servicepath") },
        X_SERVICE_METHOD => const { n("x-rpcx-servicemethod") },
        X_META => const { n("x-rpcx-meta") },
        X_ERROR_MESSAGE => const { n("x-rpcx-errormessage") },
        AUTHORIZATION => http::header::AUTHORIZATION,
        other => HeaderName::from_bytes(other.as_bytes()).expect("a valid header name"),
    }
}

/// Echoes the request's `name` header (empty when it has none), as Go sets it.
fn echo(h: &mut HeaderMap, req: &HeaderMap, name: &'static str) {
    let name = hname(name);
    let v = req
        .get(&name)
        .cloned()
        .unwrap_or(HeaderValue::from_static(""));
    h.insert(name, v);
}

/// Sets `name` to `value`, sharing the request's value when it is the same (no copy).
fn set_like(h: &mut HeaderMap, req: &HeaderMap, name: &'static str, value: &str) {
    let name = hname(name);
    match req.get(&name) {
        Some(v) if v.as_bytes() == value.as_bytes() => {
            h.insert(name, v.clone());
        }
        _ => {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        }
    }
}

/// Builds the HTTP response to an invoke request, header for header as Go rpcx's
/// `handleGatewayRequest`: `req_headers` are the request's headers (for the echoed ones),
/// `request` the service path and method of the message [`invoke_request`] made of it (`None`
/// when it could not be made).
pub fn invoke_response(
    req_headers: &HeaderMap,
    request: Option<(&str, &str)>,
    outcome: InvokeOutcome,
) -> Response<HttpBody> {
    let mut res = Response::new(empty());
    *res.headers_mut() = HeaderMap::with_capacity(12);
    let h = res.headers_mut();
    echo(h, req_headers, X_VERSION);
    echo(h, req_headers, X_MESSAGE_ID);
    match request {
        Some((path, method)) => {
            set_like(h, req_headers, X_SERVICE_PATH, path);
            set_like(h, req_headers, X_SERVICE_METHOD, method);
        }
        None => {
            echo(h, req_headers, X_SERVICE_PATH);
            echo(h, req_headers, X_SERVICE_METHOD);
        }
    }
    echo(h, req_headers, X_SERIALIZE_TYPE);
    match outcome {
        InvokeOutcome::Reply {
            header,
            metadata,
            payload,
        } => {
            if header.status() == MessageStatusType::Error {
                let text = metadata.get(keys::SERVICE_ERROR).unwrap_or("unknown error");
                set(h, X_MESSAGE_STATUS_TYPE, "Error");
                set(h, X_ERROR_MESSAGE, text);
                *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                return res;
            }
            if metadata.is_empty() {
                h.insert(hname(X_META), HeaderValue::from_static(""));
            } else {
                let mut meta = QueryValues::new();
                for (k, v) in metadata.iter() {
                    meta.set(k, v);
                }
                set(h, X_META, &meta.encode());
            }
            if header.compress_type() != CompressType::NONE {
                h.insert(
                    hname(X_COMPRESS_TYPE),
                    HeaderValue::from(u16::from(header.compress_type().id())),
                );
            }
            if let Some(ct) = detect_content_type(&payload) {
                h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            }
            *res.body_mut() = full(payload);
            res
        }
        InvokeOutcome::Failed(e) => {
            if request.is_none() {
                // Go copies every X-RPCX-* request header back when the request is unusable.
                for (k, v) in req_headers {
                    if k.as_str().starts_with("x-rpcx-") && !h.contains_key(k) {
                        h.insert(k.clone(), v.clone());
                    }
                }
            }
            set(h, X_MESSAGE_STATUS_TYPE, "Error");
            set(h, X_ERROR_MESSAGE, &e.message);
            let with_text = matches!(
                e.status,
                StatusCode::BAD_REQUEST
                    | StatusCode::PAYLOAD_TOO_LARGE
                    | StatusCode::REQUEST_TIMEOUT
            );
            if with_text {
                h.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                *res.body_mut() = full(Bytes::from(format!("{}\n", e.message)));
            }
            *res.status_mut() = e.status;
            res
        }
    }
}

/// The `Content-Type` Go's `net/http` picks for a reply body it was given none for
/// (`http.DetectContentType`), for the bodies RPC replies are: text when no byte is one of the
/// control bytes Go calls binary, otherwise `application/octet-stream`. (Go also recognises
/// HTML, XML, images and archives by their signatures; those are not checked.)
pub fn detect_content_type(body: &[u8]) -> Option<&'static str> {
    if body.is_empty() {
        return None;
    }
    let head = &body[..body.len().min(512)];
    let binary = head
        .iter()
        .any(|&b| matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F));
    Some(if binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    })
}

/// rpcx's `AllowAllCORSOptions`: any origin, the methods HEAD, GET, POST, PUT, PATCH and DELETE,
/// any request header (reflected), no credentials.
pub fn cors_allow_all() -> CorsLayer {
    use http::Method;
    CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([
            Method::HEAD,
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
}

/// The hyper connection builder sextant's HTTP servers share (the service port, the gateway):
/// HTTP/1.1 and HTTP/2 told apart by the connection's preface; request heads must arrive within
/// `header_read_timeout` and hold at most `max_header_size` bytes; an HTTP/2 connection runs at
/// most `max_concurrent_streams` streams and resets a flood of them; header names are written in
/// lower case (Go title-cases them; names are case-insensitive, and title-casing cost a tenth of
/// a call).
pub fn connection_builder(
    header_read_timeout: std::time::Duration,
    max_header_size: usize,
    max_concurrent_streams: u32,
) -> hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor> {
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(max_header_size.max(8192))
        .title_case_headers(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(max_concurrent_streams)
        .max_header_list_size(max_header_size.min(u32::MAX as usize) as u32)
        .max_pending_accept_reset_streams(64)
        .max_local_error_reset_streams(64);
    builder
}

/// A body holding `b`.
pub fn full(b: impl Into<Bytes>) -> HttpBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// An empty body.
pub fn empty() -> HttpBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A plain-text response with `status`.
pub fn text_response(status: StatusCode, text: impl Into<String>) -> Response<HttpBody> {
    let mut text = text.into();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let mut res = Response::new(full(text));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests;
