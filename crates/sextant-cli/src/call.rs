//! `sextant call`: grpcurl for rpcx. One call (or `-n` of them) to a service on a server or on
//! the servers a registry lists, with the argument written as JSON and converted to the codec
//! the service speaks, and the reply printed as JSON.
//!
//! ```text
//! sextant call 127.0.0.1:8972 Arith.Mul '{"A":7,"B":6}'            msgpack, as rpcx's default
//! sextant call --registry etcd://127.0.0.1:2379/rpcx_test Arith.Mul '{"A":7,"B":6}'
//! sextant call ADDR Hello.Say @msg.json --codec protobuf --proto bench.proto --message BenchmarkMessage
//! sextant call ADDR Arith.Mul '{"A":1,"B":2}' -n 10000 -c 50       repeat, latency summary
//! ```
//!
//! The request goes out as it would from a Go client: the payload encoded by the chosen codec
//! (msgpack maps keep JSON's key names, so Go structs decode them), gzip-compressed past rpcx's
//! 1 KiB threshold with `--gzip`, the metadata given with `--meta`, the auth token under
//! `__AUTH`, the deadline under `__ServerTimeout`.
//!
//! Exit status: 0 the call succeeded; 1 the service answered an error; 2 usage (bad flags, JSON
//! that does not parse or fit the codec); 3 the server or registry could not be reached, or the
//! call timed out.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use sextant::client::RawReply;
use sextant::discovery::Peer2PeerDiscovery;
use sextant::protocol::compress::{compress, decompress, should_compress};
use sextant::protocol::{Header, Message, MessageType};
use sextant::{
    CallOptions, ClientOptions, CompressType, Error, SerializeType, ServiceDiscovery, XClient,
};

use crate::duration::parse as parse_duration;
use crate::proto::ProtoCodec;
use crate::{registry_url, CliError};

/// The codecs `sextant call` converts JSON to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodecName {
    /// MessagePack, structs as maps keyed by field name (rpcx's default).
    Msgpack,
    /// JSON, sent as given (checked to parse).
    Json,
    /// Protocol Buffers: needs `--proto FILE --message TYPE`.
    Protobuf,
    /// No codec: the argument's bytes as they are (`@file` for binary).
    Raw,
}

impl CodecName {
    fn serialize_type(self) -> SerializeType {
        match self {
            CodecName::Msgpack => SerializeType::MSGPACK,
            CodecName::Json => SerializeType::JSON,
            CodecName::Protobuf => SerializeType::PROTOBUF,
            CodecName::Raw => SerializeType::NONE,
        }
    }
}

/// `sextant call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// `ADDR SERVICE.METHOD [ARGS]`, or `SERVICE.METHOD [ARGS]` with `--registry`. ADDR is
    /// `host:port` (TCP) or `network@address` (`tcp@`, `quic@`, `kcp@`, `ws@`, `unix@`...);
    /// ARGS is JSON (default `{}`), `@FILE` to read it from a file, `@-` from stdin.
    #[arg(required = true, num_args = 1..=3, value_name = "ADDR SERVICE.METHOD ARGS")]
    positional: Vec<String>,
    /// Call the servers a registry lists (etcd://…, zookeeper://…, redis://…, consul://…,
    /// http://… for the embedded registry, peer2peer://, multiple://) instead of one address.
    #[arg(long)]
    registry: Option<String>,
    /// The base path services are under, when the registry URL has none.
    #[arg(long, default_value = "/rpcx")]
    base_path: String,
    /// The codec the service speaks.
    #[arg(long, value_enum, default_value_t = CodecName::Msgpack)]
    codec: CodecName,
    /// The .proto file declaring the messages (with `--codec protobuf`), compiled at run time.
    #[arg(long)]
    proto: Option<PathBuf>,
    /// Directories imports are looked up in (default: the .proto file's directory).
    #[arg(long = "proto-path", value_name = "DIR")]
    proto_path: Vec<PathBuf>,
    /// The request's message type (`BenchmarkMessage` or `main.BenchmarkMessage`).
    #[arg(long)]
    message: Option<String>,
    /// The reply's message type (default: the request's).
    #[arg(long)]
    reply_message: Option<String>,
    /// Request metadata `key=value` (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    meta: Vec<String>,
    /// The call's deadline (also sent as `__ServerTimeout`).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
    /// How long connecting may take.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    connect_timeout: Duration,
    /// An auth token, sent as rpcx's `__AUTH` metadata.
    #[arg(long)]
    auth: Option<String>,
    /// gzip the request (past rpcx's 1 KiB threshold) and ask for nothing else.
    #[arg(long)]
    gzip: bool,
    /// Send a oneway call: the server runs it and answers nothing.
    #[arg(long)]
    oneway: bool,
    /// Calls to make (with `-c` callers at once); prints a latency summary instead of the reply.
    #[arg(short = 'n', long = "count", default_value_t = 1)]
    count: u64,
    /// Callers at once, with `-n`.
    #[arg(short = 'c', long = "concurrency", default_value_t = 1)]
    concurrency: u64,
    /// Write a raw (or any) reply payload to this file instead of printing it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the response metadata and header on stderr.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// TLS: the CA certificate (PEM) that signed the server's certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// TLS: this client's certificate (PEM), for mutual TLS.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// TLS: this client's key (PEM), for mutual TLS.
    #[arg(long)]
    key: Option<PathBuf>,
    /// TLS: the name to check the server's certificate against.
    #[arg(long)]
    server_name: Option<String>,
    /// TLS without checking the server's certificate (tests only).
    #[arg(long)]
    insecure: bool,
    /// KCP: the pass of rpcx-examples' key derivation (with `--kcp-salt`).
    #[arg(long)]
    kcp_pass: Option<String>,
    /// KCP: the salt.
    #[arg(long)]
    kcp_salt: Option<String>,
}

/// The largest argument read from a file or stdin.
const MAX_ARGS: u64 = 64 << 20;

/// What a call sends, made once.
struct Request {
    message: Message,
    options: CallOptions,
}

fn map_call_error(e: Error) -> CliError {
    match e {
        Error::Service(s) => CliError::not_found(format!("the service answered an error: {s}")),
        Error::Config(text) => CliError::usage(text),
        Error::InvalidAddress { .. } => CliError::usage(e.to_string()),
        Error::Codec(_) => CliError::usage(e.to_string()),
        other => CliError::transport(other.to_string()),
    }
}

/// Reads ARGS: JSON as given, `@FILE`, or `@-` (stdin), at most 64 MiB.
fn read_args(arg: &str) -> Result<Vec<u8>, CliError> {
    let Some(source) = arg.strip_prefix('@') else {
        return Ok(arg.as_bytes().to_vec());
    };
    let mut buf = Vec::new();
    let read = if source == "-" {
        std::io::stdin().take(MAX_ARGS + 1).read_to_end(&mut buf)
    } else {
        std::fs::File::open(source).and_then(|f| f.take(MAX_ARGS + 1).read_to_end(&mut buf))
    };
    read.map_err(|e| CliError::usage(format!("cannot read the arguments from {source}: {e}")))?;
    if buf.len() as u64 > MAX_ARGS {
        return Err(CliError::usage(format!(
            "the arguments in {source} exceed {} MiB",
            MAX_ARGS >> 20
        )));
    }
    Ok(buf)
}

fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, CliError> {
    serde_json::from_slice(bytes).map_err(|e| {
        CliError::usage(format!(
            "the arguments are not JSON: {e} (write e.g. '{{\"A\":7,\"B\":6}}', or @FILE)"
        ))
    })
}

/// Encodes the JSON arguments with the codec.
fn encode(codec: CodecName, proto: Option<&ProtoCodec>, args: &[u8]) -> Result<Bytes, CliError> {
    match codec {
        CodecName::Raw => Ok(Bytes::copy_from_slice(args)),
        CodecName::Json => {
            parse_json(args)?;
            Ok(Bytes::copy_from_slice(args))
        }
        CodecName::Msgpack => {
            let v = parse_json(args)?;
            rmp_serde::to_vec_named(&v)
                .map(Bytes::from)
                .map_err(|e| CliError::usage(format!("the arguments do not fit msgpack: {e}")))
        }
        CodecName::Protobuf => {
            let proto = proto.expect("checked: protobuf has a ProtoCodec");
            proto.encode_json(args).map(Bytes::from)
        }
    }
}

/// The reply payload as JSON text.
fn decode(codec: SerializeType, proto: Option<&ProtoCodec>, payload: &[u8]) -> String {
    let base64 = || {
        serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(payload))
            .to_string()
    };
    let pretty =
        |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    if payload.is_empty() {
        return "null".to_string();
    }
    match codec {
        SerializeType::JSON => match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(v) => pretty(&v),
            Err(_) => String::from_utf8_lossy(payload).into_owned(),
        },
        SerializeType::MSGPACK => {
            // One whole value, or not msgpack: 0xc1 (a marker msgpack never uses) and trailing
            // bytes are shown as base64, not guessed at.
            let mut rest = payload;
            match rmpv::decode::read_value(&mut rest) {
                Ok(v) if rest.is_empty() && payload[0] != 0xc1 => pretty(&msgpack_to_json(v)),
                _ => base64(),
            }
        }
        SerializeType::PROTOBUF => match proto.map(|p| p.decode_json(payload)) {
            Some(Ok(v)) => pretty(&v),
            _ => base64(),
        },
        _ => base64(),
    }
}

/// A msgpack value as JSON: maps with keys that are not strings get them as text, binaries
/// become base64 strings, extensions `{"ext": type, "data": base64}`.
fn msgpack_to_json(v: rmpv::Value) -> serde_json::Value {
    use rmpv::Value as M;
    use serde_json::Value as J;
    match v {
        M::Nil => J::Null,
        M::Boolean(b) => J::Bool(b),
        M::Integer(i) => i
            .as_i64()
            .map(J::from)
            .or_else(|| i.as_u64().map(J::from))
            .unwrap_or(J::Null),
        M::F32(f) => serde_json::Number::from_f64(f64::from(f)).map_or(J::Null, J::Number),
        M::F64(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        M::String(s) => J::String(s.into_str().unwrap_or_default()),
        M::Binary(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        M::Array(a) => J::Array(a.into_iter().map(msgpack_to_json).collect()),
        M::Map(m) => J::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        M::String(s) => s.into_str().unwrap_or_default(),
                        other => other.to_string(),
                    };
                    (key, msgpack_to_json(v))
                })
                .collect(),
        ),
        M::Ext(t, data) => serde_json::json!({
            "ext": t,
            "data": base64::engine::general_purpose::STANDARD.encode(data),
        }),
    }
}

/// `sextant call`.
pub async fn call(args: CallArgs) -> Result<(), CliError> {
    let (address, target, json_args) = match (&args.registry, args.positional.as_slice()) {
        (Some(_), [t]) => (None, t.clone(), "{}".to_string()),
        (Some(_), [t, a]) => (None, t.clone(), a.clone()),
        (Some(_), _) => {
            return Err(CliError::usage(
                "with --registry, give SERVICE.METHOD [ARGS] (no address)",
            ))
        }
        (None, [a, t]) => (Some(a.clone()), t.clone(), "{}".to_string()),
        (None, [a, t, j]) => (Some(a.clone()), t.clone(), j.clone()),
        (None, _) => {
            return Err(CliError::usage(
                "give ADDR SERVICE.METHOD [ARGS], or --registry URL SERVICE.METHOD [ARGS]",
            ))
        }
    };
    let Some((service, method)) = target.rsplit_once('.') else {
        return Err(CliError::usage(format!(
            "{target:?} is not SERVICE.METHOD (e.g. Arith.Mul)"
        )));
    };
    if service.is_empty() || method.is_empty() {
        return Err(CliError::usage(format!(
            "{target:?} is not SERVICE.METHOD (e.g. Arith.Mul)"
        )));
    }
    if args.count == 0 || args.concurrency == 0 {
        return Err(CliError::usage("-n and -c must be at least 1"));
    }
    let proto = match (args.codec, &args.proto, &args.message) {
        (CodecName::Protobuf, Some(file), Some(message)) => Some(ProtoCodec::compile(
            file,
            &args.proto_path,
            message,
            args.reply_message.as_deref(),
        )?),
        (CodecName::Protobuf, _, _) => {
            return Err(CliError::usage(
                "--codec protobuf needs --proto FILE and --message TYPE",
            ))
        }
        (_, None, None) => None,
        _ => {
            return Err(CliError::usage(
                "--proto and --message go with --codec protobuf",
            ))
        }
    };
    let raw_args = read_args(&json_args)?;
    let payload = encode(args.codec, proto.as_ref(), &raw_args)?;
    let request = build_request(&args, service, method, payload)?;

    let xclient = connect(&args, address.as_deref(), service).await?;
    let result = if args.count == 1 {
        one_call(&args, &xclient, request, proto.as_ref()).await
    } else {
        repeat(&args, &xclient, request).await
    };
    xclient.close();
    result
}

fn build_request(
    args: &CallArgs,
    service: &str,
    method: &str,
    payload: Bytes,
) -> Result<Request, CliError> {
    let mut header = Header::new();
    header.set_message_type(MessageType::Request);
    header.set_serialize_type(args.codec.serialize_type());
    header.set_oneway(args.oneway);
    let payload = if args.gzip && should_compress(CompressType::GZIP, payload.len()) {
        header.set_compress_type(CompressType::GZIP);
        compress(CompressType::GZIP, &payload).map_err(|e| CliError::usage(format!("gzip: {e}")))?
    } else {
        payload
    };
    let mut message = Message::new();
    message.header = header;
    message.service_path = service.to_string().into();
    message.service_method = method.to_string().into();
    message.payload = payload;
    for pair in &args.meta {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(CliError::usage(format!("--meta {pair:?} is not key=value")));
        };
        if k.is_empty() {
            return Err(CliError::usage(format!("--meta {pair:?} has no key")));
        }
        message.metadata.insert(k.to_string(), v.to_string());
    }
    Ok(Request {
        message,
        options: CallOptions::new().timeout(args.timeout),
    })
}

fn client_options(args: &CallArgs) -> Result<ClientOptions, CliError> {
    let transport = sextant_interop::flags::ClientTransport {
        ca: args.ca.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
        server_name: args.server_name.clone(),
        insecure: args.insecure,
        kcp_pass: args.kcp_pass.clone(),
        kcp_salt: args.kcp_salt.clone(),
    };
    let mut options = ClientOptions::default()
        .connect_timeout(args.connect_timeout)
        .default_timeout(args.timeout);
    if let Some(token) = &args.auth {
        options = options.auth_token(token.clone());
    }
    transport.apply(options).map_err(map_call_error)
}

async fn connect(
    args: &CallArgs,
    address: Option<&str>,
    service: &str,
) -> Result<XClient, CliError> {
    let options = client_options(args)?;
    let discovery: Arc<dyn ServiceDiscovery> = match (address, &args.registry) {
        (Some(a), _) => {
            let a = if a.contains('@') {
                a.to_string()
            } else {
                format!("tcp@{a}")
            };
            Arc::new(Peer2PeerDiscovery::new(a, "").map_err(map_call_error)?)
        }
        (None, Some(url)) => {
            registry_url::parse(url).map_err(CliError::usage)?;
            let template = registry_url::template(url, &args.base_path)
                .await
                .map_err(CliError::transport)?;
            let d = template.clone_for(service).await.map_err(map_call_error)?;
            if d.get_services().is_empty() {
                // The discovery lists once when it starts: nothing means no server.
                d.close();
                return Err(CliError::transport(format!(
                    "no server of {service:?} is listed in {}",
                    registry_url::redacted(url)
                )));
            }
            d
        }
        (None, None) => unreachable!("checked by the caller"),
    };
    XClient::builder(service)
        .discovery(discovery)
        .client_options(options)
        .build()
        .map_err(map_call_error)
}

async fn one_call(
    args: &CallArgs,
    xclient: &XClient,
    request: Request,
    proto: Option<&ProtoCodec>,
) -> Result<(), CliError> {
    let reply = xclient
        .send_raw(request.message, request.options)
        .await
        .map_err(map_call_error)?;
    if args.oneway {
        return Ok(());
    }
    print_reply(args, reply, proto)
}

fn print_reply(
    args: &CallArgs,
    reply: RawReply,
    proto: Option<&ProtoCodec>,
) -> Result<(), CliError> {
    let header = reply.header;
    if args.verbose {
        eprintln!(
            "reply: serialize type {}, compress type {}, {} bytes",
            header.serialize_type().id(),
            header.compress_type().id(),
            reply.payload.len()
        );
        for (k, v) in reply.metadata.iter() {
            eprintln!(
                "  {}: {}",
                crate::admin::printable(k),
                crate::admin::printable(v)
            );
        }
    }
    let payload = if header.compress_type() == CompressType::NONE {
        reply.payload
    } else {
        decompress(header.compress_type(), reply.payload, 256 << 20)
            .map_err(|e| CliError::transport(format!("the reply cannot be decompressed: {e}")))?
    };
    if let Some(path) = &args.out {
        std::fs::write(path, &payload)
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display())))?;
        return Ok(());
    }
    let text = decode(header.serialize_type(), proto, &payload);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    Ok(())
}

/// `-n N -c C`: N calls by C callers, a progress bar on a terminal, a latency summary.
async fn repeat(args: &CallArgs, xclient: &XClient, request: Request) -> Result<(), CliError> {
    let total = args.count;
    let next = Arc::new(AtomicU64::new(0));
    let progress = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let request = Arc::new(request);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.min(total) {
        let (xclient, next, request, progress) = (
            xclient.clone(),
            next.clone(),
            request.clone(),
            progress.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors: Vec<Error> = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let t = Instant::now();
                match xclient
                    .send_raw(request.message.clone(), request.options.clone())
                    .await
                {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(e) => {
                        if errors.len() < 3 {
                            errors.push(e);
                        } else {
                            errors.truncate(3);
                        }
                        latencies.push(Duration::MAX);
                    }
                }
                progress.inc(1);
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(total as usize);
    let mut first_errors = Vec::new();
    for t in tasks {
        let (l, e) = t.await.map_err(|e| CliError::transport(e.to_string()))?;
        latencies.extend(l);
        first_errors.extend(e);
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    let failed = latencies.iter().filter(|d| **d == Duration::MAX).count();
    latencies.retain(|d| *d != Duration::MAX);
    latencies.sort_unstable();
    let pct = |p: f64| -> String {
        if latencies.is_empty() {
            return "-".into();
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        format!("{:.3}ms", latencies[i].as_secs_f64() * 1e3)
    };
    println!(
        "{total} calls, {} ok, {failed} failed in {:.3}s: {:.0} calls/s",
        latencies.len(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    println!(
        "latency: p50 {} p90 {} p99 {} max {}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    if let Some(e) = first_errors.into_iter().next() {
        let e = map_call_error(e);
        return Err(CliError {
            code: e.code,
            message: format!("{failed} calls failed; the first: {}", e.message),
        });
    }
    Ok(())
}

/// One call for `sextant ui`'s call form: `json_args` (JSON text) encoded with `codec`
/// (msgpack or JSON), sent to `address` (`tcp@host:port`, or `host:port` for TCP) as
/// `service.method`, the reply as pretty JSON text; the errors as `sextant call` maps them.
pub async fn call_once(
    address: &str,
    service: &str,
    method: &str,
    json_args: &str,
    codec: CodecName,
    timeout: Duration,
) -> Result<String, CliError> {
    if matches!(codec, CodecName::Protobuf | CodecName::Raw) {
        return Err(CliError::usage(
            "only the msgpack and json codecs are offered here",
        ));
    }
    if service.is_empty() || method.is_empty() {
        return Err(CliError::usage(
            "give a service and a method (e.g. Arith and Mul)",
        ));
    }
    let payload = encode(codec, None, json_args.as_bytes())?;
    let address = if address.contains('@') {
        address.to_string()
    } else {
        format!("tcp@{address}")
    };
    let options = ClientOptions::default()
        .connect_timeout(timeout)
        .default_timeout(timeout);
    let client = tokio::time::timeout(timeout, sextant::Client::connect(address.as_str(), options))
        .await
        .map_err(|_| CliError::transport(format!("connecting to {address} timed out")))?
        .map_err(map_call_error)?;
    let mut message = Message::new();
    message.header.set_message_type(MessageType::Request);
    message.header.set_serialize_type(codec.serialize_type());
    message.service_path = service.to_string().into();
    message.service_method = method.to_string().into();
    message.payload = payload;
    let reply = tokio::time::timeout(
        timeout,
        client.send_raw(message, CallOptions::new().timeout(timeout)),
    )
    .await;
    client.close();
    let reply = reply
        .map_err(|_| CliError::transport(format!("the call timed out after {timeout:?}")))?
        .map_err(map_call_error)?;
    let header = reply.header;
    let payload = if header.compress_type() == CompressType::NONE {
        reply.payload
    } else {
        decompress(header.compress_type(), reply.payload, 16 << 20)
            .map_err(|e| CliError::transport(format!("the reply cannot be decompressed: {e}")))?
    };
    Ok(decode(header.serialize_type(), None, &payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgpack_keeps_json_key_names() {
        let b = encode(CodecName::Msgpack, None, br#"{"A":7,"B":-6}"#).unwrap();
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Args {
            a: i64,
            b: i64,
        }
        let a: Args = rmp_serde::from_slice(&b).unwrap();
        assert_eq!((a.a, a.b), (7, -6));
        assert_eq!(
            decode(SerializeType::MSGPACK, None, &b),
            "{\n  \"A\": 7,\n  \"B\": -6\n}"
        );
    }

    #[test]
    fn bad_json_is_a_usage_error() {
        for codec in [CodecName::Msgpack, CodecName::Json] {
            let e = encode(codec, None, b"{\"A\":").unwrap_err();
            assert_eq!(e.code, 2);
            assert!(e.message.contains("not JSON"), "{}", e.message);
        }
        // Raw takes any bytes.
        assert_eq!(
            &encode(CodecName::Raw, None, b"\x00\xff").unwrap()[..],
            b"\x00\xff"
        );
    }

    #[test]
    fn replies_decode_or_fall_back_to_base64() {
        assert_eq!(decode(SerializeType::NONE, None, b"\x01\x02"), "\"AQI=\"");
        assert_eq!(
            decode(SerializeType::JSON, None, b"{\"C\":42}"),
            "{\n  \"C\": 42\n}"
        );
        assert_eq!(decode(SerializeType::MSGPACK, None, b"\xc1"), "\"wQ==\"");
        // Truncated (an array of two holding one) and trailing bytes.
        assert_eq!(
            decode(SerializeType::MSGPACK, None, b"\x92\x01"),
            "\"kgE=\""
        );
        assert_eq!(
            decode(SerializeType::MSGPACK, None, b"\x01\x02"),
            "\"AQI=\""
        );
        assert_eq!(decode(SerializeType::MSGPACK, None, b""), "null");
        // Non-string keys and binaries.
        let v = rmpv::Value::Map(vec![(
            rmpv::Value::from(1),
            rmpv::Value::Binary(vec![1, 2]),
        )]);
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &v).unwrap();
        assert_eq!(
            decode(SerializeType::MSGPACK, None, &buf),
            "{\n  \"1\": \"AQI=\"\n}"
        );
    }
}
