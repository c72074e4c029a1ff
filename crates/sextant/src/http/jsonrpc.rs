//! JSON-RPC 2.0 over HTTP, as Go rpcx's `server/jsonrpc2.go`: a request carrying the header
//! `X-JSONRPC-2.0: true` whose body is `{"jsonrpc":"2.0","method":"Arith.Mul","params":{...},"id":1}`
//! calls `Arith.Mul` with `params` as its JSON payload, and is answered
//! `{"jsonrpc":"2.0","result":{...},"id":1}` or
//! `{"jsonrpc":"2.0","error":{"code":-32603,"message":"...","data":null},"id":1}`.
//!
//! - `method` is split at its last `.` into service path and method; without a `.` the error is
//!   [`CODE_METHOD_NOT_FOUND`] with rpcx's text `must contains servicepath and method`.
//! - A service error, an unknown service or method and a failed auth are
//!   [`CODE_INTERNAL_ERROR`] with the error's text, as rpcx answers them.
//! - A body that is not JSON is [`CODE_PARSE_ERROR`]; JSON that is not a request object
//!   (another `jsonrpc` version, no `method`) is [`CODE_INVALID_REQUEST`] (rpcx answers
//!   [`CODE_PARSE_ERROR`] for both). A missing `params` is passed as `null`.
//! - A request without `id` is a notification: it runs, and nothing is answered (an empty
//!   `200`).
//! - `X-RPCX-Meta` and `Authorization` headers become request metadata, as in rpcx.
//! - Batches (a JSON array of requests, which rpcx does not accept) are answered with an array,
//!   their calls running concurrently; at most [`JsonRpcOptions::max_batch`] entries, a larger
//!   batch is refused as a whole with [`CODE_INVALID_REQUEST`] before any call runs.
//! - As in rpcx, an error for a request whose `id` is unknown (parse errors) has no `id` member.

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::Response;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sextant_protocol::{keys, Header, Message, MessageType, Metadata, SerializeType};

use super::{empty, full, HttpBody, X_META};
use crate::query::QueryValues;

/// The request header that marks a JSON-RPC 2.0 request, with the value `true`.
pub const JSONRPC_HEADER: &str = "X-JSONRPC-2.0";

/// An error without a more specific code (rpcx's `CodeUnknownJSONRPCError`).
pub const CODE_UNKNOWN_ERROR: i64 = -32001;
/// The body is not JSON.
pub const CODE_PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid request object.
pub const CODE_INVALID_REQUEST: i64 = -32600;
/// The method does not name a service and a method.
pub const CODE_METHOD_NOT_FOUND: i64 = -32601;
/// Invalid parameters.
pub const CODE_INVALID_PARAMS: i64 = -32602;
/// The call failed: rpcx answers every service error with this code.
pub const CODE_INTERNAL_ERROR: i64 = -32603;

/// Settings of the JSON-RPC side.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JsonRpcOptions {
    /// The most requests one batch may hold. Default: 100.
    pub max_batch: usize,
}

impl Default for JsonRpcOptions {
    fn default() -> Self {
        JsonRpcOptions { max_batch: 100 }
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonRpcError {
    /// The code, e.g. [`CODE_INTERNAL_ERROR`].
    pub code: i64,
    /// What went wrong.
    pub message: String,
    /// Always `null`, as rpcx sends it.
    data: Option<()>,
}

impl JsonRpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> JsonRpcError {
        JsonRpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
}

impl fmt::Display for JsonRpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    jsonrpc: Option<String>,
    method: String,
    #[serde(default)]
    params: Option<Box<RawValue>>,
    #[serde(default)]
    id: Option<Box<RawValue>>,
}

#[derive(Serialize)]
struct Reply<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a JsonRpcError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
}

/// What one entry came to: nothing (a notification) or a serialized reply object.
type Answer = Option<Box<RawValue>>;

fn reply(id: Option<&RawValue>, result: Result<&RawValue, &JsonRpcError>) -> Box<RawValue> {
    let (result, error) = match result {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    let r = Reply {
        jsonrpc: "2.0",
        result,
        error,
        id,
    };
    // Serializing these types cannot fail.
    serde_json::value::to_raw_value(&r).unwrap_or_else(|_| {
        RawValue::from_string(r#"{"jsonrpc":"2.0"}"#.to_string()).expect("valid JSON")
    })
}

fn error_reply(id: Option<&RawValue>, code: i64, message: impl Into<String>) -> Box<RawValue> {
    reply(id, Err(&JsonRpcError::new(code, message)))
}

/// Answers a JSON-RPC 2.0 request (one object or a batch) whose body is `body`. `call` runs one
/// rpcx call, given as a request message (JSON serialize type, `params` as payload, oneway for a
/// notification), and returns the reply payload (JSON) or an error; for a notification its reply
/// is ignored, so it may return at once and run the call in the background.
pub async fn serve_jsonrpc<F, Fut>(
    headers: &HeaderMap,
    body: &[u8],
    options: &JsonRpcOptions,
    call: F,
) -> Response<HttpBody>
where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Result<Bytes, JsonRpcError>>,
{
    let meta = request_metadata(headers);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let out: Option<Vec<u8>> = if first == Some(&b'[') {
        let mut de = serde_json::Deserializer::from_slice(body);
        let entries = BoundedBatch(options.max_batch).deserialize(&mut de);
        let entries = entries.and_then(|e| de.end().map(|()| e));
        match entries {
            Err(e) if e.is_data() && e.to_string().starts_with(TOO_MANY) => Some(
                error_reply(
                    None,
                    CODE_INVALID_REQUEST,
                    format!(
                        "batch has more than {} requests: refused",
                        options.max_batch
                    ),
                )
                .get()
                .as_bytes()
                .to_vec(),
            ),
            Err(e) => Some(
                error_reply(None, CODE_PARSE_ERROR, e.to_string())
                    .get()
                    .as_bytes()
                    .to_vec(),
            ),
            Ok(entries) if entries.is_empty() => Some(
                error_reply(None, CODE_INVALID_REQUEST, "empty batch")
                    .get()
                    .as_bytes()
                    .to_vec(),
            ),
            Ok(entries) => {
                let answers = futures::future::join_all(
                    entries
                        .iter()
                        .map(|e| one(e.get().as_bytes(), &meta, &call)),
                )
                .await;
                let answers: Vec<Box<RawValue>> = answers.into_iter().flatten().collect();
                if answers.is_empty() {
                    None
                } else {
                    Some(serde_json::to_vec(&answers).unwrap_or_default())
                }
            }
        }
    } else {
        one(body, &meta, &call)
            .await
            .map(|a| a.get().as_bytes().to_vec())
    };
    match out {
        None => Response::new(empty()),
        Some(json) => {
            let mut res = Response::new(full(json));
            let h = res.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            // rpcx sets this misspelt header too; some clients may look for it.
            h.insert(
                HeaderName::from_static("context-type"),
                HeaderValue::from_static("application/json"),
            );
            res
        }
    }
}

fn request_metadata(headers: &HeaderMap) -> Metadata {
    let mut m = Metadata::new();
    if let Some(meta) = headers
        .get(super::hname(X_META))
        .and_then(|v| v.to_str().ok())
    {
        for (k, vs) in QueryValues::parse_lenient(meta).iter() {
            if let Some(v) = vs.first() {
                m.insert(k.to_string(), v.clone());
            }
        }
    }
    if let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        m.insert(keys::AUTH, auth.to_string());
    }
    m
}

async fn one<F, Fut>(entry: &[u8], meta: &Metadata, call: &F) -> Answer
where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Result<Bytes, JsonRpcError>>,
{
    let req: Request = match serde_json::from_slice(entry) {
        Ok(r) => r,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Some(error_reply(None, CODE_PARSE_ERROR, e.to_string()))
        }
        Err(e) => return Some(error_reply(None, CODE_INVALID_REQUEST, e.to_string())),
    };
    let id = req.id.as_deref();
    if let Some(id) = id {
        let s = id.get().as_bytes();
        if !(s
            .first()
            .is_some_and(|b| *b == b'"' || *b == b'-' || b.is_ascii_digit()))
        {
            return Some(error_reply(
                None,
                CODE_INVALID_REQUEST,
                "id must be a number or a string",
            ));
        }
    }
    if let Some(v) = req.jsonrpc.as_deref() {
        if v != "2.0" {
            return Some(error_reply(
                id,
                CODE_INVALID_REQUEST,
                format!("invalid RPC version {v}"),
            ));
        }
    }
    let Some(dot) = req.method.rfind('.').filter(|&i| i > 0) else {
        return Some(error_reply(
            id,
            CODE_METHOD_NOT_FOUND,
            "must contains servicepath and method",
        ));
    };
    let mut header = Header::new();
    header.set_message_type(MessageType::Request);
    header.set_serialize_type(SerializeType::JSON);
    header.set_oneway(id.is_none());
    let payload = match &req.params {
        Some(p) => Bytes::copy_from_slice(p.get().as_bytes()),
        None => Bytes::from_static(b"null"),
    };
    let message = Message {
        header,
        service_path: req.method[..dot].to_string().into(),
        service_method: req.method[dot + 1..].to_string().into(),
        metadata: meta.clone(),
        payload,
    };
    let result = call(message).await;
    let id = id?;
    Some(match result {
        Ok(payload) => match std::str::from_utf8(&payload)
            .ok()
            .and_then(|s| RawValue::from_string(s.to_string()).ok())
        {
            Some(raw) => reply(Some(id), Ok(&raw)),
            None => error_reply(Some(id), CODE_INTERNAL_ERROR, "rpcx: the reply is not JSON"),
        },
        Err(e) => reply(Some(id), Err(&e)),
    })
}

const TOO_MANY: &str = "sextant: batch over the limit";

/// Deserializes a JSON array of at most `.0` raw entries; one more is an error starting with
/// [`TOO_MANY`], raised before the rest of the array is looked at.
struct BoundedBatch(usize);

impl<'de> DeserializeSeed<'de> for BoundedBatch {
    type Value = Vec<Box<RawValue>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BoundedBatch {
    type Value = Vec<Box<RawValue>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of JSON-RPC requests")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::new();
        while let Some(e) = seq.next_element::<Box<RawValue>>()? {
            if v.len() == self.0 {
                return Err(serde::de::Error::custom(TOO_MANY));
            }
            v.push(e);
        }
        Ok(v)
    }
}
