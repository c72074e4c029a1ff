//! Hostile and broken input: every case ends in the documented error, never in a panic, a hang
//! or an allocation sized by a number the peer chose.
//!
//! A counting global allocator (per thread, so parallel tests do not disturb each other) checks
//! the "before allocating" claims: the peak heap growth of the code under test is measured.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use sextant_protocol::codec::encode_to_bytes;
use sextant_protocol::compress;
use sextant_protocol::{
    ByteStr, CodecError, Codecs, CompressType, Decode, Decoder, Header, Limits, Message,
    MessageStatusType, ProtocolError, SerializeType, HEADER_LEN,
};

// ---------------------------------------------------------------------------------------------
// Allocation accounting
// ---------------------------------------------------------------------------------------------

struct CountingAlloc;

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn record(delta: isize) {
    let _ = CURRENT.try_with(|c| {
        let now = c.get() + delta;
        c.set(now);
        let _ = PEAK.try_with(|p| {
            if now > p.get() {
                p.set(now)
            }
        });
    });
}

// SAFETY: forwards to the system allocator; the bookkeeping touches only const-initialized
// thread locals, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            record(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            record(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        record(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            record(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Runs `f` and returns its result with the peak number of bytes it held on the heap at once
/// (on this thread, above what was allocated before).
fn peak_heap<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = CURRENT.with(|c| c.get());
    PEAK.with(|p| p.set(start));
    let r = f();
    let peak = PEAK.with(|p| p.get());
    (r, (peak - start).max(0) as usize)
}

const MIB: usize = 1 << 20;

/// The accounting itself works, so that the bounds asserted below mean something.
#[test]
fn allocation_accounting_sees_allocations() {
    let (v, peak) = peak_heap(|| vec![1u8; 8 * MIB]);
    assert!(peak >= 8 * MIB, "{peak}");
    drop(v);
    let (_, peak) = peak_heap(|| {
        let mut v = Vec::new();
        for i in 0..MIB {
            v.push(i as u8);
        }
        v.len()
    });
    assert!((MIB..4 * MIB).contains(&peak), "{peak}");
    let (_, peak) = peak_heap(|| 1 + 1);
    assert_eq!(peak, 0);
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Args {
    a: i64,
    b: i64,
}

/// The Arith.Mul request of the README's walk-through (66 bytes).
fn sample() -> Message {
    let mut m = Message::new();
    m.header.set_seq(42);
    m.service_path = ByteStr::from_static("Arith");
    m.service_method = ByteStr::from_static("Mul");
    m.metadata.insert("trace", "abc123");
    m.payload = Bytes::from_static(&[0x82, 0xa1, 0x41, 0x0a, 0xa1, 0x42, 0x14]);
    m
}

fn sample_bytes() -> Vec<u8> {
    sample().to_bytes().unwrap().to_vec()
}

/// A frame with the given header and raw (unchecked) field bytes; the lengths are correct.
fn frame(header: Header, path: &[u8], method: &[u8], meta: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(header.as_bytes());
    let total = 16 + path.len() + method.len() + meta.len() + payload.len();
    b.extend_from_slice(&(total as u32).to_be_bytes());
    for f in [path, method, meta, payload] {
        b.extend_from_slice(&(f.len() as u32).to_be_bytes());
        b.extend_from_slice(f);
    }
    b
}

fn meta_pair(k: &[u8], v: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(k.len() as u32).to_be_bytes());
    b.extend_from_slice(k);
    b.extend_from_slice(&(v.len() as u32).to_be_bytes());
    b.extend_from_slice(v);
    b
}

fn decode_one(bytes: &[u8]) -> Result<Option<Message>, ProtocolError> {
    Decoder::default().decode(&mut BytesMut::from(bytes))
}

// ---------------------------------------------------------------------------------------------
// Magic
// ---------------------------------------------------------------------------------------------

#[test]
fn wrong_magic_byte() {
    let mut bytes = sample_bytes();
    bytes[0] = 0x09;
    let err = decode_one(&bytes).unwrap_err();
    assert!(matches!(err, ProtocolError::BadMagic(0x09)), "{err}");
    assert!(err.closes_connection());
    assert!(err.header().is_none());
    assert!(err.to_string().contains("0x09"), "{err}");

    // Reported from the very first byte, without waiting for a header.
    let err = decode_one(&[0x00]).unwrap_err();
    assert!(matches!(err, ProtocolError::BadMagic(0x00)), "{err}");

    // An HTTP request on the rpcx port.
    let err = decode_one(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
    assert!(matches!(err, ProtocolError::BadMagic(b'G')), "{err}");
    assert!(err.closes_connection());

    let err = Message::parse(Bytes::from(bytes)).unwrap_err();
    assert!(matches!(err, ProtocolError::BadMagic(0x09)), "{err}");

    // A bad message after a good one: the good one comes out first.
    let mut stream = BytesMut::from(&sample_bytes()[..]);
    stream.put_slice(&[0xff; 20]);
    let mut dec = Decoder::default();
    assert_eq!(dec.decode(&mut stream).unwrap(), Some(sample()));
    assert!(matches!(
        dec.decode(&mut stream),
        Err(ProtocolError::BadMagic(0xff))
    ));
}

// ---------------------------------------------------------------------------------------------
// Truncation and framing
// ---------------------------------------------------------------------------------------------

#[test]
fn truncated_frames_wait_then_fail_at_eof() {
    let bytes = sample_bytes();
    for n in 0..bytes.len() {
        let mut dec = Decoder::default();
        let mut buf = BytesMut::from(&bytes[..n]);
        assert!(
            dec.decode(&mut buf).unwrap().is_none(),
            "{n} bytes: no message yet"
        );
        assert_eq!(buf.len(), n, "{n} bytes: nothing consumed");
        match dec.decode_eof(&mut buf) {
            Ok(None) => assert_eq!(n, 0, "only an empty stream ends cleanly"),
            Err(ProtocolError::UnexpectedEof(got)) => {
                assert_eq!(got, n);
                assert!(ProtocolError::UnexpectedEof(got).closes_connection());
            }
            other => panic!("{n} bytes: {other:?}"),
        }
        // Completing the frame afterwards still works.
        buf.put_slice(&bytes[n..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(sample()));
    }
    // The whole frame at EOF is fine.
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(
        Decoder::default().decode_eof(&mut buf).unwrap(),
        Some(sample())
    );
}

#[test]
fn parse_of_an_incomplete_frame() {
    let bytes = sample_bytes();
    assert!(matches!(
        Message::parse(Bytes::new()),
        Err(ProtocolError::UnexpectedEof(0))
    ));
    for n in 1..HEADER_LEN {
        let err = Message::parse(Bytes::copy_from_slice(&bytes[..n])).unwrap_err();
        assert!(
            matches!(err, ProtocolError::UnexpectedEof(got) if got == n),
            "{n}: {err}"
        );
    }
    for n in HEADER_LEN..bytes.len() {
        let err = Message::parse(Bytes::copy_from_slice(&bytes[..n])).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Truncated {
                    field: "message",
                    ..
                }
            ),
            "{n}: {err}"
        );
        assert!(err.closes_connection());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let err = Message::parse(Bytes::from(longer)).unwrap_err();
    assert!(matches!(err, ProtocolError::TrailingBytes(1)), "{err}");
}

#[test]
fn inner_lengths_beyond_the_frame() {
    let m = sample();
    let bytes = sample_bytes();
    // Offsets of the four length fields.
    let path_at = HEADER_LEN;
    let method_at = path_at + 4 + m.service_path.len();
    let meta_at = method_at + 4 + m.service_method.len();
    let payload_at = meta_at + 4 + m.metadata.encoded_len();
    let first_key_at = meta_at + 4;
    let first_value_at = first_key_at + 4 + "trace".len();

    for (at, field) in [
        (path_at, "service path"),
        (method_at, "service method"),
        (meta_at, "metadata"),
        (payload_at, "payload"),
        (first_key_at, "metadata key"),
        (first_value_at, "metadata value"),
    ] {
        for len in [0x1000u32, 0x7fff_ffff, u32::MAX] {
            let mut bad = bytes.clone();
            bad[at..at + 4].copy_from_slice(&len.to_be_bytes());
            let mut buf = BytesMut::from(&bad[..]);
            let (res, peak) = peak_heap(|| Decoder::default().decode(&mut buf));
            let err = res.unwrap_err();
            match &err {
                ProtocolError::Truncated {
                    field: f, needed, ..
                } => {
                    assert_eq!(*f, field, "{err}");
                    assert_eq!(*needed, len as u64, "{err}");
                }
                other => panic!("{field} = {len:#x}: {other:?}"),
            }
            assert!(err.closes_connection());
            assert!(err.to_string().contains(field), "{err}");
            assert!(peak < MIB, "{field} = {len:#x}: {peak} bytes allocated");
        }
    }

    // A frame too short to hold even the length of the payload.
    let mut h = Header::new();
    h.set_seq(1);
    let mut short = Vec::new();
    short.extend_from_slice(h.as_bytes());
    short.extend_from_slice(&10u32.to_be_bytes());
    short.extend_from_slice(&[0; 10]);
    let err = decode_one(&short).unwrap_err();
    assert!(
        matches!(
            err,
            ProtocolError::Truncated {
                needed: 4,
                remaining: 2,
                ..
            }
        ),
        "{err}"
    );

    // Bytes inside the frame after the payload.
    let mut padded = bytes.clone();
    padded.extend_from_slice(&[0, 0, 0]);
    let total = (padded.len() - HEADER_LEN) as u32;
    padded[12..16].copy_from_slice(&total.to_be_bytes());
    let err = decode_one(&padded).unwrap_err();
    assert!(matches!(err, ProtocolError::TrailingBytes(3)), "{err}");
    assert!(err.closes_connection());
}

#[test]
fn declared_length_of_4_gib_is_refused_before_allocating() {
    let mut h = Header::new();
    h.set_seq(7);
    let mut raw = h.as_bytes().to_vec();
    raw.extend_from_slice(&u32::MAX.to_be_bytes());
    // Some body bytes as an attacker would send them.
    raw.extend_from_slice(&[0u8; 64]);

    for limits in [Limits::default(), Limits::new(1024, 1024)] {
        let mut buf = BytesMut::with_capacity(128);
        buf.put_slice(&raw);
        let mut dec = Decoder::new(limits);
        let (res, peak) = peak_heap(|| dec.decode(&mut buf));
        let err = res.unwrap_err();
        assert!(
            matches!(err, ProtocolError::MessageTooLarge { size, limit }
                if size == HEADER_LEN as u64 + u32::MAX as u64 && limit == limits.max_message_size),
            "{err}"
        );
        assert!(err.closes_connection());
        assert!(buf.capacity() < 4096, "buffer grew to {}", buf.capacity());
        assert!(peak < 64 << 10, "{peak} bytes allocated");
    }

    // Just the header is enough to refuse it.
    let mut buf = BytesMut::from(&raw[..HEADER_LEN]);
    let err = Decoder::default().decode(&mut buf).unwrap_err();
    assert!(matches!(err, ProtocolError::MessageTooLarge { .. }));
    assert!(buf.capacity() < 4096, "buffer grew to {}", buf.capacity());

    // Under the limit, the decoder reserves only what the frame needs, and waits.
    let mut under = h.as_bytes().to_vec();
    under.extend_from_slice(&(1000u32).to_be_bytes());
    let mut buf = BytesMut::from(&under[..]);
    assert!(Decoder::default().decode(&mut buf).unwrap().is_none());
    assert!(
        buf.capacity() < 64 << 10,
        "buffer grew to {}",
        buf.capacity()
    );
}

// ---------------------------------------------------------------------------------------------
// UTF-8
// ---------------------------------------------------------------------------------------------

#[test]
fn non_utf8_text_fields() {
    let mut h = Header::new();
    h.set_seq(99);
    h.set_serialize_type(SerializeType::JSON);
    let bad: &[u8] = &[b'A', 0xff, 0xfe];
    let cases: [(&str, Vec<u8>); 4] = [
        ("service path", frame(h, bad, b"Mul", b"", b"{}")),
        ("service method", frame(h, b"Arith", bad, b"", b"{}")),
        (
            "metadata key",
            frame(h, b"Arith", b"Mul", &meta_pair(bad, b"v"), b"{}"),
        ),
        (
            "metadata value",
            frame(h, b"Arith", b"Mul", &meta_pair(b"k", bad), b"{}"),
        ),
    ];
    for (field, bytes) in cases {
        // A good message follows on the same stream.
        let mut buf = BytesMut::from(&bytes[..]);
        buf.put_slice(&sample_bytes());
        let mut dec = Decoder::default();
        let err = dec.decode(&mut buf).unwrap_err();
        match &err {
            ProtocolError::InvalidUtf8 { field: f, .. } => assert_eq!(*f, field),
            other => panic!("{field}: {other:?}"),
        }
        assert!(!err.closes_connection(), "{field}");
        assert!(err.to_string().contains(field), "{err}");
        // The header is there so that the request can be answered.
        let header = err.header().expect("header of the bad message");
        assert_eq!(header.seq(), 99);
        assert_eq!(header.serialize_type(), SerializeType::JSON);
        assert_eq!(header, &h);
        // The bad frame was consumed; the stream goes on.
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(sample()), "{field}");
        assert!(buf.is_empty());
    }
    // UTF-8 in every field is fine, including multi-byte text.
    let ok = frame(
        h,
        "Dienst".as_bytes(),
        "Grüße".as_bytes(),
        &meta_pair("键".as_bytes(), "值".as_bytes()),
        b"{}",
    );
    let m = decode_one(&ok).unwrap().unwrap();
    assert_eq!(m.service_method, "Grüße");
    assert_eq!(m.metadata.get("键"), Some("值"));
}

// ---------------------------------------------------------------------------------------------
// Serialize and compress types
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_serialize_type() {
    let st = SerializeType::new(9).unwrap();
    let codecs = Codecs::new();
    assert!(!codecs.supports(st));
    let err = Args::decode(st, &codecs, &Bytes::from_static(b"\x80")).unwrap_err();
    assert_eq!(err, CodecError::UnknownSerializeType(st));
    assert_eq!(err.to_string(), "can not find codec for 9");
    let err = encode_to_bytes(&Args { a: 1, b: 2 }, st, &codecs).unwrap_err();
    assert!(matches!(err, CodecError::UnknownSerializeType(s) if s == st));
    assert_eq!(err.to_string(), "can not find codec for 9");

    // In a frame: the message itself is fine, the payload is what cannot be read.
    let mut h = Header::new();
    h.set_serialize_type(st);
    let bytes = frame(h, b"Arith", b"Mul", b"", &[0x80]);
    assert_eq!(bytes[3], 0x90);
    let m = decode_one(&bytes).unwrap().unwrap();
    assert_eq!(m.header.serialize_type(), st);
    assert_eq!(m.header.serialize_type().name(), "custom");
    assert!(matches!(
        Args::decode(m.header.serialize_type(), &codecs, &m.payload),
        Err(CodecError::UnknownSerializeType(_))
    ));
    assert!(SerializeType::new(16).is_none());
}

#[test]
fn unknown_compress_type_in_a_frame() {
    let mut h = Header::new();
    h.set_compress_type(CompressType::new(5).unwrap());
    let bytes = frame(h, b"Arith", b"Mul", b"", b"whatever");
    assert_eq!(bytes[2], 5 << 2);
    let m = decode_one(&bytes).unwrap().unwrap();
    let ct = m.header.compress_type();
    assert_eq!(ct.id(), 5);
    assert!(!ct.is_known());
    let err = compress::decompress(ct, m.payload.clone(), MIB).unwrap_err();
    assert!(
        matches!(err, ProtocolError::UnknownCompressType(5)),
        "{err}"
    );
    assert!(!err.closes_connection());
    assert!(err.to_string().contains('5'), "{err}");
    assert!(matches!(
        compress::compress(ct, b"x"),
        Err(ProtocolError::UnknownCompressType(5))
    ));
    // All three bits are read, up to 7.
    let mut h = Header::new();
    h.set_compress_type(CompressType::new(7).unwrap());
    assert_eq!(h.as_bytes()[2], 0x1c);
    assert_eq!(h.compress_type().id(), 7);
    assert!(CompressType::new(8).is_none());
}

#[test]
fn corrupt_gzip_payload() {
    let good = compress::compress(CompressType::GZIP, &b"rpcx".repeat(300)).unwrap();
    // Flip a byte in the deflate data, and cut the stream short.
    let mut flipped = good.to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let cut = good.slice(..good.len() - 6);
    for bad in [
        Bytes::from(flipped),
        cut,
        Bytes::from_static(b"not gzip"),
        Bytes::from_static(&[0x1f, 0x8b]),
    ] {
        match compress::decompress(CompressType::GZIP, bad, MIB) {
            Err(ProtocolError::Gzip(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    // An empty payload with the gzip flag is not valid gzip either... or is empty: both are
    // acceptable, a panic is not.
    let _ = compress::decompress(CompressType::GZIP, Bytes::new(), MIB);
}

#[test]
fn gzip_bomb_is_stopped_at_the_limit() {
    // 100 MiB of zeros, streamed into the encoder 1 MiB at a time (never held whole).
    let zeros = vec![0u8; MIB];
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    for _ in 0..100 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = Bytes::from(enc.finish().unwrap());
    assert!(
        bomb.len() < 1 << 20,
        "100 MiB of zeros compressed to {} bytes",
        bomb.len()
    );

    // Carried in a message, the bomb is a small, valid frame...
    let mut m = sample();
    m.header.set_compress_type(CompressType::GZIP);
    m.payload = bomb.clone();
    let mut buf = BytesMut::from(&m.to_bytes().unwrap()[..]);
    let limits = Limits::new(2 * MIB, MIB);
    let got = Decoder::new(limits).decode(&mut buf).unwrap().unwrap();
    assert_eq!(got.payload, bomb);

    // ...whose payload is refused once the limit is passed, holding about the limit at most.
    let (res, peak) = peak_heap(|| {
        compress::decompress(
            got.header.compress_type(),
            got.payload.clone(),
            limits.max_decompressed_size,
        )
    });
    let err = res.unwrap_err();
    assert!(
        matches!(err, ProtocolError::DecompressedTooLarge { limit } if limit == MIB),
        "{err}"
    );
    assert!(!err.closes_connection());
    assert!(peak < 4 * MIB, "decompressing held {peak} bytes");

    // The same bomb as several concatenated gzip members is stopped too.
    let mut members = BytesMut::new();
    for _ in 0..3 {
        members.put_slice(&bomb);
    }
    let (res, peak) = peak_heap(|| compress::decompress(CompressType::GZIP, members.freeze(), MIB));
    assert!(matches!(
        res,
        Err(ProtocolError::DecompressedTooLarge { .. })
    ));
    assert!(peak < 4 * MIB, "decompressing held {peak} bytes");
}

#[test]
fn payload_of_the_wrong_shape() {
    let codecs = Codecs::new();
    // {C:200}, a reply, where Args is expected.
    let reply = Bytes::from_static(&[0x81, 0xa1, 0x43, 0xcc, 0xc8]);
    let err = Args::decode(SerializeType::MSGPACK, &codecs, &reply).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::Decode {
                codec: "msgpack",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with("msgpack decode error"), "{err}");
    // Truncated msgpack.
    let err = Args::decode(
        SerializeType::MSGPACK,
        &codecs,
        &Bytes::from_static(&[0x82, 0xa1, 0x41]),
    )
    .unwrap_err();
    assert!(matches!(err, CodecError::Decode { .. }), "{err}");
    // A string where a number is expected.
    let err = Args::decode(
        SerializeType::JSON,
        &codecs,
        &Bytes::from_static(br#"{"A":"ten","B":20}"#),
    )
    .unwrap_err();
    assert!(
        matches!(err, CodecError::Decode { codec: "json", .. }),
        "{err}"
    );
    let err = Args::decode(SerializeType::JSON, &codecs, &Bytes::from_static(b"{")).unwrap_err();
    assert!(
        matches!(err, CodecError::Decode { codec: "json", .. }),
        "{err}"
    );
    // A msgpack payload claiming a 4 GiB array does not allocate it.
    let (res, peak) = peak_heap(|| {
        Vec::<u64>::decode(
            SerializeType::MSGPACK,
            &codecs,
            &Bytes::from_static(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]),
        )
    });
    assert!(matches!(res, Err(CodecError::Decode { .. })), "{res:?}");
    // serde's size-hint preallocation is capped at 1 MiB, far from the 32 GiB claimed.
    assert!(peak <= 2 * MIB, "{peak} bytes allocated");
}

// ---------------------------------------------------------------------------------------------
// Metadata with very many pairs
// ---------------------------------------------------------------------------------------------

#[test]
fn metadata_with_200k_tiny_pairs_decodes_linearly() {
    const PAIRS: usize = 200_000;
    // Built directly as bytes: Metadata::insert would check every key for duplicates.
    let mut meta = Vec::with_capacity(PAIRS * 10);
    for i in 0..PAIRS {
        let k = [b'a' + (i % 26) as u8];
        let v = [b'0' + (i % 10) as u8];
        meta.extend_from_slice(&meta_pair(&k, &v));
    }
    let mut h = Header::new();
    h.set_seq(3);
    let bytes = frame(h, b"Arith", b"Mul", &meta, b"");
    assert!(bytes.len() < Limits::default().max_message_size);

    let m = decode_one(&bytes).unwrap().unwrap();
    assert_eq!(m.metadata.len(), PAIRS);
    assert_eq!(m.metadata.encoded_len(), meta.len());
    // Like a Go map, the last value of a repeated key wins.
    let last = PAIRS - 1;
    let key = ((b'a' + (last % 26) as u8) as char).to_string();
    let value = ((b'0' + (last % 10) as u8) as char).to_string();
    assert_eq!(m.metadata.get(&key), Some(value.as_str()));
    // Re-encoding is linear too and gives back the same bytes.
    assert_eq!(m.to_bytes().unwrap(), Bytes::from(bytes));

    // Empty keys and values: the smallest pair is 8 bytes.
    let empty = meta_pair(b"", b"").repeat(PAIRS);
    let m = decode_one(&frame(h, b"", b"", &empty, b""))
        .unwrap()
        .unwrap();
    assert_eq!(m.metadata.len(), PAIRS);
    assert_eq!(m.metadata.get(""), Some(""));
}

// ---------------------------------------------------------------------------------------------
// Thrift
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "thrift")]
mod thrift_input {
    use super::*;
    use sextant_protocol::Thrift;
    use thrift::protocol::{
        TFieldIdentifier, TInputProtocol, TOutputProtocol, TSerializable, TStructIdentifier, TType,
    };

    /// `struct Named { 1: string name }`, written by hand as the Thrift compiler would.
    #[derive(Debug, Clone, PartialEq, Default)]
    struct Named {
        name: String,
    }

    impl TSerializable for Named {
        fn read_from_in_protocol(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
            i.read_struct_begin()?;
            let mut name = None;
            loop {
                let field = i.read_field_begin()?;
                if field.field_type == TType::Stop {
                    break;
                }
                match (field.id, field.field_type) {
                    (Some(1), TType::String) => name = Some(i.read_string()?),
                    (_, t) => i.skip(t)?,
                }
                i.read_field_end()?;
            }
            i.read_struct_end()?;
            Ok(Named {
                name: name.unwrap_or_default(),
            })
        }

        fn write_to_out_protocol(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
            o.write_struct_begin(&TStructIdentifier::new("Named"))?;
            o.write_field_begin(&TFieldIdentifier::new("name", TType::String, 1))?;
            o.write_string(&self.name)?;
            o.write_field_end()?;
            o.write_field_stop()?;
            o.write_struct_end()
        }
    }

    #[test]
    fn thrift_round_trip() {
        let codecs = Codecs::new();
        let v = Thrift(Named {
            name: "rpcx".into(),
        });
        let b = encode_to_bytes(&v, SerializeType::THRIFT, &codecs).unwrap();
        // Binary protocol: type 11 (string), id 1, length 4, "rpcx", stop.
        assert_eq!(&b[..], b"\x0b\x00\x01\x00\x00\x00\x04rpcx\x00");
        let back = Thrift::<Named>::decode(SerializeType::THRIFT, &codecs, &b).unwrap();
        assert_eq!(back, v);
        assert!(matches!(
            Thrift::<Named>::decode(SerializeType::MSGPACK, &codecs, &b),
            Err(CodecError::Unsupported { .. })
        ));
    }

    #[test]
    fn thrift_string_claiming_2_gib_is_an_error_not_an_allocation() {
        let codecs = Codecs::new();
        for len in [0x7fff_ffffu32, 0x8000_0000, 0xffff_ffff, 1000] {
            let mut p = vec![0x0b, 0x00, 0x01];
            p.extend_from_slice(&len.to_be_bytes());
            p.extend_from_slice(b"rpcx");
            p.push(0x00);
            let payload = Bytes::from(p);
            let (res, peak) =
                peak_heap(|| Thrift::<Named>::decode(SerializeType::THRIFT, &codecs, &payload));
            let err = res.unwrap_err();
            assert!(
                matches!(
                    err,
                    CodecError::Decode {
                        codec: "thrift",
                        ..
                    }
                ),
                "{len:#x}: {err}"
            );
            assert!(peak < MIB, "{len:#x}: {peak} bytes allocated");
        }
        // Truncated input and a skipped unknown field that claims too much.
        for bad in [
            &b"\x0b\x00\x01\x00\x00"[..],
            &b""[..],
            &b"\x0b\x00\x02\x7f\xff\xff\xff\x00"[..],
        ] {
            let (res, peak) = peak_heap(|| {
                Thrift::<Named>::decode(SerializeType::THRIFT, &codecs, &Bytes::from_static(bad))
            });
            assert!(matches!(res, Err(CodecError::Decode { .. })), "{res:?}");
            assert!(peak < MIB, "{peak} bytes allocated");
        }
    }
}

#[test]
fn status_bits_two_and_three_read_as_error() {
    for bits in [1u8, 2, 3] {
        let mut b = *Header::new().as_bytes();
        b[2] = 0x80 | bits;
        let h = Header::from_bytes(b);
        assert_eq!(h.status(), MessageStatusType::Error);
        // And survive a round trip untouched.
        let bytes = frame(h, b"", b"", b"", b"");
        let m = decode_one(&bytes).unwrap().unwrap();
        assert_eq!(m.header.as_bytes()[2], 0x80 | bits);
        assert_eq!(m.to_bytes().unwrap(), Bytes::from(bytes));
    }
}

/// `usize::MAX` means "no limit" and must not overflow the limit + 1 read bound (it used to
/// panic in debug builds and return an empty payload in release builds).
#[test]
fn unlimited_sizes_do_not_overflow() {
    let data = b"rpcx".repeat(300);
    let z = compress::compress(CompressType::GZIP, &data).unwrap();
    let out = compress::decompress(CompressType::GZIP, z.clone(), usize::MAX).unwrap();
    assert_eq!(&out[..], &data[..]);

    let mut m = sample();
    m.header.set_compress_type(CompressType::GZIP);
    m.payload = z;
    let limits = Limits::new(usize::MAX, usize::MAX);
    let mut buf = BytesMut::from(&m.to_bytes().unwrap()[..]);
    let got = Decoder::new(limits).decode(&mut buf).unwrap().unwrap();
    assert_eq!(got, m);
    let plain = compress::decompress(
        got.header.compress_type(),
        got.payload,
        limits.max_decompressed_size,
    )
    .unwrap();
    assert_eq!(&plain[..], &data[..]);
}
