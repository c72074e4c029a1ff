//! Wire compatibility with real Go rpcx (v1.9.1).
//!
//! Every `*.hex` file in the repository's `testdata/wire` (`../../testdata/wire` from this crate)
//! is one message captured between Go's own rpcx client and server. This suite decodes each of them
//! with the default [`Decoder`], checks the fields the captures' README documents, and checks that
//! the encoder reproduces them byte for byte.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sextant_protocol::codec::encode_to_bytes;
use sextant_protocol::compress::{self, COMPRESS_THRESHOLD};
use sextant_protocol::{
    keys, Codecs, CompressType, Decode, Decoder, Header, MessageStatusType, MessageType, Proto,
    SerializeType,
};
use sextant_protocol::{Message, MAGIC_NUMBER};

// ---------------------------------------------------------------------------------------------
// Loading the captures
// ---------------------------------------------------------------------------------------------

fn wire_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/wire");
    assert!(
        dir.is_dir(),
        "the Go rpcx captures are missing: expected a directory of *.hex files at {} \
         (testdata/wire in the repository); these tests cannot check wire compatibility without them",
        dir.display()
    );
    dir
}

/// Every capture as (file name, raw bytes), sorted by name.
fn all_captures() -> Vec<(String, Vec<u8>)> {
    let dir = wire_dir();
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("hex") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, read_hex(&path)));
    }
    out.sort();
    assert!(
        !out.is_empty(),
        "no *.hex capture found in {}",
        dir.display()
    );
    out
}

fn read_hex(path: &Path) -> Vec<u8> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::decode(text.trim()).unwrap_or_else(|e| panic!("{} is not hex: {e}", path.display()))
}

fn raw(name: &str) -> Vec<u8> {
    let path = wire_dir().join(name);
    assert!(path.is_file(), "capture {} is missing", path.display());
    read_hex(&path)
}

/// Decodes one capture with `Decoder::default()`, checking that it is exactly one message.
fn decode_bytes(name: &str, bytes: &[u8]) -> Message {
    let mut buf = BytesMut::from(bytes);
    let mut dec = Decoder::default();
    let msg = dec
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("{name}: decode error: {e}"))
        .unwrap_or_else(|| panic!("{name}: decoder wants more bytes than the file holds"));
    assert!(
        buf.is_empty(),
        "{name}: {} bytes left after the message",
        buf.len()
    );
    assert!(
        dec.decode_eof(&mut buf).unwrap().is_none(),
        "{name}: decode_eof after a whole message"
    );
    msg
}

fn decode(name: &str) -> Message {
    decode_bytes(name, &raw(name))
}

// ---------------------------------------------------------------------------------------------
// Expected values
// ---------------------------------------------------------------------------------------------

/// The canonical rpcx example argument type `Args{A int; B int}` (no struct tags: keys "A", "B").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Args {
    a: i64,
    b: i64,
}

/// `Reply{C int}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    c: i64,
}

/// `Echo.Echo`'s argument and reply: `{S string}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EchoArgs {
    s: String,
}

/// The first fields of rpcx-benchmark's `BenchmarkMessage`; prost skips the others.
#[derive(Clone, PartialEq, prost::Message)]
struct BenchmarkMessageHead {
    #[prost(string, tag = "1")]
    field1: String,
    #[prost(int32, tag = "2")]
    field2: i32,
}

const MUL_ARGS_MSGPACK: &[u8] = &[0x82, 0xa1, 0x41, 0x0a, 0xa1, 0x42, 0x14];
const MUL_REPLY_MSGPACK: &[u8] = &[0x81, 0xa1, 0x43, 0xcc, 0xc8];
const MUL_ARGS_JSON: &[u8] = br#"{"A":10,"B":20}"#;
const MUL_REPLY_JSON: &[u8] = br#"{"C":200}"#;
const HEARTBEAT_PAYLOAD: &[u8] = &[0xd3, 0x00, 0x00, 0x00, 0x00, 0x49, 0x96, 0x02, 0xd2];

/// What a capture must decode to. `None` fields are checked elsewhere (or not at all).
struct Expect {
    file: &'static str,
    flags: u8,
    serialize: SerializeType,
    seq: u64,
    path: &'static str,
    method: &'static str,
    metadata: &'static [(&'static str, &'static str)],
    /// The payload as on the wire (before decompression), when it is known exactly.
    payload: Option<&'static [u8]>,
    /// Payload length on the wire.
    payload_len: usize,
}

#[allow(clippy::too_many_arguments)]
const fn exp(
    file: &'static str,
    flags: u8,
    serialize: SerializeType,
    seq: u64,
    path: &'static str,
    method: &'static str,
    metadata: &'static [(&'static str, &'static str)],
    payload: Option<&'static [u8]>,
    payload_len: usize,
) -> Expect {
    Expect {
        file,
        flags,
        serialize,
        seq,
        path,
        method,
        metadata,
        payload,
        payload_len,
    }
}

const MSGPACK: SerializeType = SerializeType::MSGPACK;
const JSON: SerializeType = SerializeType::JSON;
const PROTOBUF: SerializeType = SerializeType::PROTOBUF;
const ERR: &str = keys::SERVICE_ERROR;

const UNKNOWN_SERVICE_ARGS: &[u8] = &[
    0x82, 0xa1, 0x41, 0xd3, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0xa1, 0x42, 0xd3, 0, 0, 0, 0, 0, 0, 0, 0x14,
];
const DIV0_ARGS: &[u8] = &[0x82, 0xa1, 0x41, 0x0a, 0xa1, 0x42, 0x00];
const DIV0_REPLY: &[u8] = &[0x81, 0xa1, 0x43, 0x00];

#[rustfmt::skip]
fn expectations() -> Vec<Expect> {
    vec![
        exp("go-req-arith-mul-msgpack-meta.hex", 0x00, MSGPACK, 0, "Arith", "Mul",
            &[("trace", "abc123")], Some(MUL_ARGS_MSGPACK), 7),
        exp("go-resp-arith-mul-msgpack.hex", 0x80, MSGPACK, 0, "Arith", "Mul",
            &[], Some(MUL_REPLY_MSGPACK), 5),
        exp("go-req-unknown-method.hex", 0x00, MSGPACK, 0, "Arith", "Foo",
            &[], Some(MUL_ARGS_MSGPACK), 7),
        exp("go-resp-error-unknown-method.hex", 0x81, MSGPACK, 0, "Arith", "Foo",
            &[(ERR, "rpcx: can't find method Foo")], Some(b""), 0),
        exp("go-heartbeat-req.hex", 0x40, MSGPACK, 0, "", "",
            &[], Some(HEARTBEAT_PAYLOAD), 9),
        exp("go-heartbeat-resp.hex", 0xc0, MSGPACK, 0, "", "",
            &[], Some(HEARTBEAT_PAYLOAD), 9),
        exp("go-heartbeat-ticker-req.hex", 0x40, MSGPACK, 0, "", "",
            &[], None, 9),
        exp("go-heartbeat-ticker-resp.hex", 0xc0, MSGPACK, 0, "", "",
            &[], None, 9),
        exp("go-oneway-req.hex", 0x20, MSGPACK, 0, "Arith", "Mul",
            &[], Some(MUL_ARGS_MSGPACK), 7),
        exp("go-gzip-req-echo.hex", 0x04, MSGPACK, 0, "Echo", "Echo",
            &[], None, 0x30),
        exp("go-gzip-resp-echo.hex", 0x84, MSGPACK, 0, "Echo", "Echo",
            &[], None, 0x30),
        exp("go-req-arith-mul-msgpack-seq1.hex", 0x00, MSGPACK, 1, "Arith", "Mul",
            &[], Some(MUL_ARGS_MSGPACK), 7),
        exp("go-resp-arith-mul-msgpack-seq1.hex", 0x80, MSGPACK, 1, "Arith", "Mul",
            &[], Some(MUL_REPLY_MSGPACK), 5),
        exp("go-req-arith-mul-json.hex", 0x00, JSON, 0, "Arith", "Mul",
            &[], Some(MUL_ARGS_JSON), 15),
        exp("go-resp-arith-mul-json.hex", 0x80, JSON, 0, "Arith", "Mul",
            &[], Some(MUL_REPLY_JSON), 9),
        exp("go-req-func-mul.hex", 0x00, MSGPACK, 0, "ArithFn", "Mul",
            &[], Some(MUL_ARGS_MSGPACK), 7),
        exp("go-resp-func-mul.hex", 0x80, MSGPACK, 0, "ArithFn", "Mul",
            &[], Some(MUL_REPLY_MSGPACK), 5),
        exp("go-req-unknown-service.hex", 0x00, MSGPACK, 0, "Nope", "Mul",
            &[], Some(UNKNOWN_SERVICE_ARGS), 23),
        exp("go-resp-error-unknown-service.hex", 0x81, MSGPACK, 0, "Nope", "Mul",
            &[(ERR, "rpcx: can't find service Nope")], Some(b""), 0),
        exp("go-req-service-error-div0.hex", 0x00, MSGPACK, 0, "Arith", "Div",
            &[], Some(DIV0_ARGS), 7),
        exp("go-resp-service-error-div0.hex", 0x81, MSGPACK, 0, "Arith", "Div",
            &[(ERR, "divide by zero")], Some(DIV0_REPLY), 4),
        exp("go-req-auth-ok.hex", 0x00, MSGPACK, 0, "Arith", "Mul",
            &[(keys::AUTH, "s3cr3t")], Some(MUL_ARGS_MSGPACK), 7),
        exp("go-resp-auth-ok.hex", 0x80, MSGPACK, 0, "Arith", "Mul",
            &[], Some(MUL_REPLY_MSGPACK), 5),
        exp("go-req-auth-bad.hex", 0x00, MSGPACK, 0, "Arith", "Mul",
            &[(keys::AUTH, "wrong")], Some(MUL_ARGS_MSGPACK), 7),
        exp("go-resp-error-auth-bad.hex", 0x81, MSGPACK, 0, "Arith", "Mul",
            &[(ERR, "invalid token")], Some(b""), 0),
        exp("go-req-hello-say-protobuf.hex", 0x00, PROTOBUF, 0, "Hello", "Say",
            &[], None, 581),
        exp("go-resp-hello-say-protobuf.hex", 0x80, PROTOBUF, 0, "Hello", "Say",
            &[], None, 527),
    ]
}

/// Request/response pairs captured on the same connection.
const PAIRS: &[(&str, &str)] = &[
    (
        "go-req-arith-mul-msgpack-meta.hex",
        "go-resp-arith-mul-msgpack.hex",
    ),
    (
        "go-req-unknown-method.hex",
        "go-resp-error-unknown-method.hex",
    ),
    ("go-heartbeat-req.hex", "go-heartbeat-resp.hex"),
    (
        "go-heartbeat-ticker-req.hex",
        "go-heartbeat-ticker-resp.hex",
    ),
    ("go-gzip-req-echo.hex", "go-gzip-resp-echo.hex"),
    (
        "go-req-arith-mul-msgpack-seq1.hex",
        "go-resp-arith-mul-msgpack-seq1.hex",
    ),
    ("go-req-arith-mul-json.hex", "go-resp-arith-mul-json.hex"),
    ("go-req-func-mul.hex", "go-resp-func-mul.hex"),
    (
        "go-req-unknown-service.hex",
        "go-resp-error-unknown-service.hex",
    ),
    (
        "go-req-service-error-div0.hex",
        "go-resp-service-error-div0.hex",
    ),
    ("go-req-auth-ok.hex", "go-resp-auth-ok.hex"),
    ("go-req-auth-bad.hex", "go-resp-error-auth-bad.hex"),
    (
        "go-req-hello-say-protobuf.hex",
        "go-resp-hello-say-protobuf.hex",
    ),
];

fn metadata_map(m: &Message) -> BTreeMap<String, String> {
    m.metadata
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Every file, generically
// ---------------------------------------------------------------------------------------------

/// Every capture in the directory decodes, whatever its name: a new file is covered as soon as
/// it is added. Each re-encodes byte for byte (payloads are carried as they are on the wire, so
/// this holds for the gzip ones too; the uncompressed ones are the ones the README requires).
#[test]
fn every_capture_decodes_and_reencodes_byte_for_byte() {
    let captures = all_captures();
    let mut uncompressed = 0;
    for (name, bytes) in &captures {
        let m = decode_bytes(name, bytes);
        let h = m.header;
        assert_eq!(h.magic(), MAGIC_NUMBER, "{name}");
        assert_eq!(h.version(), 0, "{name}: version");
        assert_eq!(h.as_bytes()[3] & 0x0f, 0, "{name}: low nibble of byte 3");
        assert!(
            h.compress_type().is_known(),
            "{name}: compress type {:?}",
            h.compress_type()
        );
        assert_eq!(m.encoded_len(), bytes.len(), "{name}: encoded_len");

        // A response reporting an error carries the error text, and only then.
        assert_eq!(
            h.status() == MessageStatusType::Error,
            m.metadata.contains_key(keys::SERVICE_ERROR),
            "{name}: status vs {}",
            keys::SERVICE_ERROR
        );
        // Heartbeats carry neither path nor method and are always msgpack.
        if h.is_heartbeat() {
            assert!(
                m.service_path.is_empty() && m.service_method.is_empty(),
                "{name}"
            );
            assert_eq!(h.serialize_type(), SerializeType::MSGPACK, "{name}");
        }

        let mut out = BytesMut::new();
        m.encode(&mut out)
            .unwrap_or_else(|e| panic!("{name}: encode: {e}"));
        if h.compress_type() == CompressType::NONE {
            uncompressed += 1;
        }
        assert_eq!(
            hex::encode(&out),
            hex::encode(bytes),
            "{name}: re-encoding differs from the Go capture"
        );
        assert_eq!(m.to_bytes().unwrap(), Bytes::from(bytes.clone()), "{name}");

        // And parsing the frame directly agrees with the incremental decoder.
        assert_eq!(
            Message::parse(Bytes::from(bytes.clone())).unwrap(),
            m,
            "{name}: Message::parse"
        );
    }
    assert!(uncompressed > 0);
}

/// Every capture, fed one byte at a time, is reported as incomplete until its last byte.
#[test]
fn every_capture_decodes_one_byte_at_a_time() {
    for (name, bytes) in all_captures() {
        let mut dec = Decoder::default();
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            assert!(
                dec.decode(&mut buf).unwrap().is_none(),
                "{name}: a message came out after only {i} bytes"
            );
            buf.extend_from_slice(&[*b]);
        }
        let m = dec.decode(&mut buf).unwrap().expect("whole message");
        assert_eq!(m, decode_bytes(&name, &bytes), "{name}");
        assert!(buf.is_empty());
    }
}

/// All captures back to back on one stream come out in order.
#[test]
fn all_captures_on_one_stream() {
    let captures = all_captures();
    let mut stream = BytesMut::new();
    for (_, bytes) in &captures {
        stream.extend_from_slice(bytes);
    }
    let mut dec = Decoder::default();
    for (name, bytes) in &captures {
        let m = dec
            .decode(&mut stream)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: missing from the stream"));
        assert_eq!(m, decode_bytes(name, bytes), "{name}");
    }
    assert!(stream.is_empty());
    assert!(dec.decode_eof(&mut stream).unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Field by field, as the README documents them
// ---------------------------------------------------------------------------------------------

#[test]
fn documented_fields_of_every_known_capture() {
    let present: Vec<String> = all_captures().into_iter().map(|(n, _)| n).collect();
    for e in expectations() {
        assert!(
            present.iter().any(|n| n == e.file),
            "{}: documented in the README but missing from the directory",
            e.file
        );
        let m = decode(e.file);
        let h = m.header;
        let f = e.file;
        assert_eq!(h.as_bytes()[2], e.flags, "{f}: flags byte");
        // The flag bits, through the accessors.
        let expected_type = if e.flags & 0x80 != 0 {
            MessageType::Response
        } else {
            MessageType::Request
        };
        assert_eq!(h.message_type(), expected_type, "{f}: message type");
        assert_eq!(h.is_heartbeat(), e.flags & 0x40 != 0, "{f}: heartbeat");
        assert_eq!(h.is_oneway(), e.flags & 0x20 != 0, "{f}: oneway");
        assert_eq!(
            h.compress_type().id(),
            (e.flags >> 2) & 0x07,
            "{f}: compress type"
        );
        let expected_status = if e.flags & 0x03 != 0 {
            MessageStatusType::Error
        } else {
            MessageStatusType::Normal
        };
        assert_eq!(h.status(), expected_status, "{f}: status");
        assert_eq!(h.serialize_type(), e.serialize, "{f}: serialize type");
        assert_eq!(h.seq(), e.seq, "{f}: seq");
        assert_eq!(m.service_path, e.path, "{f}: service path");
        assert_eq!(m.service_method, e.method, "{f}: service method");
        let pairs: Vec<(&str, &str)> = m.metadata.iter().collect();
        assert_eq!(pairs, e.metadata, "{f}: metadata");
        for (k, v) in e.metadata {
            assert_eq!(m.metadata.get(k), Some(*v), "{f}: metadata {k}");
        }
        assert_eq!(m.payload.len(), e.payload_len, "{f}: payload length");
        if let Some(p) = e.payload {
            assert_eq!(
                hex::encode(&m.payload),
                hex::encode(p),
                "{f}: payload bytes"
            );
        }
    }
}

#[test]
fn readme_walkthrough_request_arith_mul() {
    let bytes = raw("go-req-arith-mul-msgpack-meta.hex");
    assert_eq!(bytes.len(), 66);
    assert_eq!(
        hex::encode(&bytes),
        concat!(
            "0800003000000000000000000000003200000005417269746800000003",
            "4d756c0000001300000005747261636500000006616263313233",
            "0000000782a1410aa14214"
        )
    );
    let m = decode_bytes("go-req-arith-mul-msgpack-meta.hex", &bytes);
    assert_eq!(m.metadata.encoded_len(), 19);
    assert_eq!(m.metadata.len(), 1);
    assert_eq!(m.metadata.get("trace"), Some("abc123"));

    // The same message built from scratch encodes to the same bytes.
    let mut built = Message::new();
    built.header.set_seq(0);
    built.header.set_serialize_type(SerializeType::MSGPACK);
    built.service_path = "Arith".into();
    built.service_method = "Mul".into();
    built.metadata.insert("trace", "abc123");
    built.payload = encode_to_bytes(&Args { a: 10, b: 20 }, MSGPACK, &Codecs::new()).unwrap();
    assert_eq!(built.to_bytes().unwrap(), Bytes::from(bytes));
    assert_eq!(built, m);
}

#[test]
fn readme_walkthrough_response_and_error() {
    let resp = raw("go-resp-arith-mul-msgpack.hex");
    assert_eq!(resp.len(), 45);
    let m = decode_bytes("go-resp-arith-mul-msgpack.hex", &resp);
    assert!(m.metadata.is_empty());

    let err = raw("go-resp-error-unknown-method.hex");
    assert_eq!(err.len(), 89);
    let m = decode_bytes("go-resp-error-unknown-method.hex", &err);
    assert_eq!(m.metadata.encoded_len(), 49);
    assert!(m.payload.is_empty());

    // Built from the request the way an rpcx server does it.
    let req = decode("go-req-unknown-method.hex");
    let mut built = Message::new();
    built.header = req.header.response_header();
    built.header.set_status(MessageStatusType::Error);
    built.service_path = req.service_path.clone();
    built.service_method = req.service_method.clone();
    built
        .metadata
        .insert(keys::SERVICE_ERROR, "rpcx: can't find method Foo");
    assert_eq!(hex::encode(built.to_bytes().unwrap()), hex::encode(&err));
}

#[test]
fn error_texts() {
    for (file, text) in [
        (
            "go-resp-error-unknown-service.hex",
            "rpcx: can't find service Nope",
        ),
        (
            "go-resp-error-unknown-method.hex",
            "rpcx: can't find method Foo",
        ),
        ("go-resp-error-auth-bad.hex", "invalid token"),
        ("go-resp-service-error-div0.hex", "divide by zero"),
    ] {
        let m = decode(file);
        assert_eq!(m.header.message_type(), MessageType::Response, "{file}");
        assert_eq!(m.header.status(), MessageStatusType::Error, "{file}");
        assert_eq!(m.metadata.get(keys::SERVICE_ERROR), Some(text), "{file}");
        assert_eq!(m.metadata.len(), 1, "{file}");
    }
    // Routing errors carry no payload; a handler error still carries the encoded reply {C:0}.
    for file in [
        "go-resp-error-unknown-service.hex",
        "go-resp-error-unknown-method.hex",
        "go-resp-error-auth-bad.hex",
    ] {
        assert!(decode(file).payload.is_empty(), "{file}");
    }
    let div0 = decode("go-resp-service-error-div0.hex");
    assert_eq!(&div0.payload[..], &[0x81, 0xa1, 0x43, 0x00]);
    let reply = Reply::decode(MSGPACK, &Codecs::new(), &div0.payload).unwrap();
    assert_eq!(reply, Reply { c: 0 });
    assert_eq!(
        encode_to_bytes(&reply, MSGPACK, &Codecs::new()).unwrap(),
        div0.payload
    );
    let args = Args::decode(
        MSGPACK,
        &Codecs::new(),
        &decode("go-req-service-error-div0.hex").payload,
    )
    .unwrap();
    assert_eq!(args, Args { a: 10, b: 0 });
}

#[test]
fn heartbeats() {
    for file in ["go-heartbeat-req.hex", "go-heartbeat-resp.hex"] {
        let bytes = raw(file);
        assert_eq!(bytes.len(), 41, "{file}");
        let m = decode_bytes(file, &bytes);
        assert!(m.header.is_heartbeat(), "{file}");
        assert!(!m.header.is_oneway(), "{file}");
        assert_eq!(&m.payload[..], HEARTBEAT_PAYLOAD, "{file}");
        let n = i64::decode(MSGPACK, &Codecs::new(), &m.payload).unwrap();
        assert_eq!(n, 1_234_567_890, "{file}");
    }
    assert_eq!(
        hex::encode(raw("go-heartbeat-req.hex")),
        "0800403000000000000000000000001900000000000000000000000000000009d300000000499602d2"
    );
    assert_eq!(
        hex::encode(raw("go-heartbeat-resp.hex")),
        "0800c03000000000000000000000001900000000000000000000000000000009d300000000499602d2"
    );
    // The ticker's heartbeat carries a nanosecond timestamp as a 9-byte int64.
    for file in [
        "go-heartbeat-ticker-req.hex",
        "go-heartbeat-ticker-resp.hex",
    ] {
        let m = decode(file);
        assert_eq!(m.payload.len(), 9, "{file}");
        assert_eq!(m.payload[0], 0xd3, "{file}");
        let n = i64::decode(MSGPACK, &Codecs::new(), &m.payload).unwrap();
        assert!(
            n > 1_500_000_000_000_000_000,
            "{file}: {n} is not a recent UnixNano"
        );
    }
    // The response is the same message with only bit 7 set, same payload.
    for (req, resp) in [
        ("go-heartbeat-req.hex", "go-heartbeat-resp.hex"),
        (
            "go-heartbeat-ticker-req.hex",
            "go-heartbeat-ticker-resp.hex",
        ),
    ] {
        let mut req_bytes = raw(req);
        req_bytes[2] |= 0x80;
        assert_eq!(req_bytes, raw(resp));
        let q = decode(req);
        let mut echoed = q.clone();
        echoed.header.set_message_type(MessageType::Response);
        assert_eq!(echoed, decode(resp));
    }
}

#[test]
fn oneway_request() {
    let bytes = raw("go-oneway-req.hex");
    assert_eq!(bytes.len(), 47);
    let m = decode_bytes("go-oneway-req.hex", &bytes);
    assert!(m.header.is_oneway());
    assert_eq!(m.header.message_type(), MessageType::Request);
    assert_eq!(
        Args::decode(MSGPACK, &Codecs::new(), &m.payload).unwrap(),
        Args { a: 10, b: 20 }
    );
}

fn echo_payload() -> Vec<u8> {
    let mut v = vec![0x81, 0xa1, 0x53, 0xda, 0x04, 0xb0];
    v.extend_from_slice(&b"rpcx".repeat(300));
    v
}

#[test]
fn gzip_captures_decompress_to_the_echo_payload() {
    let expected = echo_payload();
    assert_eq!(expected.len(), 1206);
    for file in ["go-gzip-req-echo.hex", "go-gzip-resp-echo.hex"] {
        let bytes = raw(file);
        assert_eq!(bytes.len(), 88, "{file}");
        let m = decode_bytes(file, &bytes);
        assert_eq!(m.header.compress_type(), CompressType::GZIP, "{file}");
        // Go's gzip header: mtime 0, OS byte 0xff.
        assert_eq!(
            &m.payload[..10],
            &hex::decode("1f8b08000000000000ff").unwrap()[..]
        );
        let plain = compress::decompress(
            m.header.compress_type(),
            m.payload.clone(),
            Decoder::default().limits().max_decompressed_size,
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(plain.len(), 1206, "{file}");
        assert_eq!(&plain[..6], &[0x81, 0xa1, 0x53, 0xda, 0x04, 0xb0], "{file}");
        assert_eq!(hex::encode(&plain), hex::encode(&expected), "{file}");
        let echo = EchoArgs::decode(MSGPACK, &Codecs::new(), &plain).unwrap();
        assert_eq!(echo.s, "rpcx".repeat(300));

        // Our encoder produces the same msgpack, and our gzip of it is read back the same
        // (the compressed bytes differ from Go's; any valid gzip is accepted).
        assert_eq!(
            encode_to_bytes(&echo, MSGPACK, &Codecs::new()).unwrap(),
            plain
        );
        assert!(compress::should_compress(CompressType::GZIP, plain.len()));
        assert!(plain.len() > COMPRESS_THRESHOLD);
        let ours = compress::compress(CompressType::GZIP, &plain).unwrap();
        assert_eq!(
            compress::decompress(CompressType::GZIP, ours.clone(), 1206).unwrap(),
            plain
        );
        // A message carrying our gzip decodes to the same payload.
        let mut rebuilt = m.clone();
        rebuilt.payload = ours;
        let again = decode_bytes(file, &rebuilt.to_bytes().unwrap());
        assert_eq!(
            compress::decompress(again.header.compress_type(), again.payload, 1 << 20).unwrap(),
            plain
        );
        // Exactly 1206 bytes fit a 1206-byte limit, not a 1205-byte one.
        assert!(matches!(
            compress::decompress(CompressType::GZIP, m.payload.clone(), 1205),
            Err(sextant_protocol::ProtocolError::DecompressedTooLarge { limit: 1205 })
        ));
    }
    // The response differs only in the response bit.
    let mut req = raw("go-gzip-req-echo.hex");
    req[2] |= 0x80;
    assert_eq!(req, raw("go-gzip-resp-echo.hex"));
}

#[test]
fn arith_mul_msgpack_payload_through_serde() {
    let codecs = Codecs::new();
    let req = decode("go-req-arith-mul-msgpack-meta.hex");
    assert_eq!(req.header.serialize_type(), SerializeType::MSGPACK);
    let args = Args::decode(req.header.serialize_type(), &codecs, &req.payload).unwrap();
    assert_eq!(args, Args { a: 10, b: 20 });
    let encoded = encode_to_bytes(&Args { a: 10, b: 20 }, SerializeType::MSGPACK, &codecs).unwrap();
    assert_eq!(hex::encode(&encoded), hex::encode(&req.payload));
    assert_eq!(&encoded[..], MUL_ARGS_MSGPACK);

    let resp = decode("go-resp-arith-mul-msgpack.hex");
    let reply = Reply::decode(SerializeType::MSGPACK, &codecs, &resp.payload).unwrap();
    assert_eq!(reply, Reply { c: 200 });
    assert_eq!(
        encode_to_bytes(&reply, SerializeType::MSGPACK, &codecs).unwrap(),
        resp.payload
    );

    // The untyped numbers the Go test client sent to an unknown service (int64, `d3`) decode too.
    let nope = decode("go-req-unknown-service.hex");
    assert_eq!(
        Args::decode(SerializeType::MSGPACK, &codecs, &nope.payload).unwrap(),
        Args { a: 10, b: 20 }
    );
}

#[test]
fn arith_mul_json_payload_through_serde() {
    let codecs = Codecs::new();
    let req = decode("go-req-arith-mul-json.hex");
    assert_eq!(req.header.serialize_type(), SerializeType::JSON);
    assert_eq!(req.header.as_bytes()[3], 0x10);
    let args = Args::decode(req.header.serialize_type(), &codecs, &req.payload).unwrap();
    assert_eq!(args, Args { a: 10, b: 20 });
    let encoded = encode_to_bytes(&Args { a: 10, b: 20 }, SerializeType::JSON, &codecs).unwrap();
    assert_eq!(&encoded[..], &req.payload[..]);
    assert_eq!(&encoded[..], MUL_ARGS_JSON);

    let resp = decode("go-resp-arith-mul-json.hex");
    let reply = Reply::decode(SerializeType::JSON, &codecs, &resp.payload).unwrap();
    assert_eq!(reply, Reply { c: 200 });
    assert_eq!(
        encode_to_bytes(&reply, SerializeType::JSON, &codecs).unwrap(),
        resp.payload
    );
}

#[test]
fn hello_say_protobuf() {
    let codecs = Codecs::new();
    let req = decode("go-req-hello-say-protobuf.hex");
    assert_eq!(req.header.serialize_type(), SerializeType::PROTOBUF);
    assert_eq!(req.header.as_bytes()[3], 0x20);
    assert_eq!(req.payload.len(), 581);
    let head =
        Proto::<BenchmarkMessageHead>::decode(SerializeType::PROTOBUF, &codecs, &req.payload)
            .unwrap()
            .0;
    // (rpcx-benchmark's text, with a traditional 麼.)
    assert_eq!(head.field1, "许多往事在眼前一幕一幕，变的那麼模糊");
    assert_eq!(head.field1.len(), 0x36);
    assert_eq!(head.field2, 100_000);

    // The service sets field1 = "OK" and field2 = 100.
    let resp = decode("go-resp-hello-say-protobuf.hex");
    assert_eq!(&resp.payload[..6], &[0x0a, 0x02, b'O', b'K', 0x10, 0x64]);
    let head =
        Proto::<BenchmarkMessageHead>::decode(SerializeType::PROTOBUF, &codecs, &resp.payload)
            .unwrap()
            .0;
    assert_eq!(head.field1, "OK");
    assert_eq!(head.field2, 100);
}

/// Each response's header is the request's header as rpcx's server clones it: same version,
/// serialize type, seq and oneway bit, the response bit set, compression reset unless the server
/// compressed the reply, status as the call went. Path and method are echoed; request metadata
/// is not.
#[test]
fn responses_are_clones_of_their_requests() {
    for (req_file, resp_file) in PAIRS {
        let req = decode(req_file);
        let resp = decode(resp_file);
        assert_eq!(
            req.header.message_type(),
            MessageType::Request,
            "{req_file}"
        );
        assert_eq!(
            resp.header.message_type(),
            MessageType::Response,
            "{resp_file}"
        );

        let mut expected: Header = req.header.response_header();
        expected.set_status(resp.header.status());
        // rpcx compresses the reply only when the request was compressed and the reply is big.
        if req.header.compress_type() != CompressType::NONE {
            assert_eq!(resp.header.compress_type(), req.header.compress_type());
            expected.set_compress_type(resp.header.compress_type());
        } else {
            assert_eq!(
                resp.header.compress_type(),
                CompressType::NONE,
                "{resp_file}"
            );
        }
        assert_eq!(resp.header, expected, "{req_file} -> {resp_file}");
        assert_eq!(resp.service_path, req.service_path, "{resp_file}");
        assert_eq!(resp.service_method, req.service_method, "{resp_file}");

        let resp_meta = metadata_map(&resp);
        for (k, _) in req.metadata.iter() {
            assert!(
                !resp_meta.contains_key(k),
                "{resp_file}: request metadata {k} echoed"
            );
        }
        if resp.header.status() == MessageStatusType::Normal {
            assert!(resp.metadata.is_empty(), "{resp_file}: {resp_meta:?}");
        }
    }
}
