//! Property tests: arbitrary messages survive encode → decode, in one piece or split anywhere;
//! arbitrary and damaged input never makes the decoder panic.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use sextant_protocol::compress::{self, should_compress, COMPRESS_THRESHOLD};
use sextant_protocol::{
    ByteStr, CompressType, Decoder, Header, Limits, Message, Metadata, ProtocolError,
    SerializeType, HEADER_LEN, MAGIC_NUMBER,
};

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// A header with any flags, any serialize/compress ids and any seq, built through the setters.
fn header_via_setters() -> impl Strategy<Value = Header> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u8..=7,
        any::<bool>(),
        0u8..=15,
        any::<u64>(),
        any::<u8>(),
    )
        .prop_map(
            |(response, heartbeat, oneway, compress, error, serialize, seq, version)| {
                use sextant_protocol::{MessageStatusType as S, MessageType as T};
                let mut h = Header::new();
                h.set_version(version);
                h.set_message_type(if response { T::Response } else { T::Request });
                h.set_heartbeat(heartbeat);
                h.set_oneway(oneway);
                h.set_compress_type(CompressType::new(compress).unwrap());
                h.set_status(if error { S::Error } else { S::Normal });
                h.set_serialize_type(SerializeType::new(serialize).unwrap());
                h.set_seq(seq);
                h
            },
        )
}

/// A header with every bit of bytes 1..12 arbitrary (including bits rpcx does not define).
fn header_raw() -> impl Strategy<Value = Header> {
    any::<[u8; 11]>().prop_map(|rest| {
        let mut b = [0u8; 12];
        b[0] = MAGIC_NUMBER;
        b[1..].copy_from_slice(&rest);
        Header::from_bytes(b)
    })
}

fn header() -> impl Strategy<Value = Header> {
    prop_oneof![header_via_setters(), header_raw()]
}

/// Short UTF-8 text, ASCII-heavy but with any code point possible.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9_.]{0,24}",
        1 => any::<String>().prop_map(|s| s.chars().take(24).collect()),
    ]
}

fn metadata() -> impl Strategy<Value = Metadata> {
    vec((text(), text()), 0..=8).prop_map(|pairs| pairs.into_iter().collect())
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..256),
        1 => vec(any::<u8>(), 0..4096),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (header(), text(), text(), metadata(), payload()).prop_map(
        |(header, path, method, metadata, payload)| Message {
            header,
            service_path: ByteStr::from(path),
            service_method: ByteStr::from(method),
            metadata,
            payload: Bytes::from(payload),
        },
    )
}

fn encode(m: &Message) -> Vec<u8> {
    let mut b = BytesMut::new();
    m.encode(&mut b).expect("encode");
    b.to_vec()
}

/// Offsets of the four u32 length fields of a frame (path, method, metadata, payload).
fn length_field_offsets(m: &Message) -> [usize; 4] {
    let path = HEADER_LEN;
    let method = path + 4 + m.service_path.len();
    let meta = method + 4 + m.service_method.len();
    let payload = meta + 4 + m.metadata.encoded_len();
    [path, method, meta, payload]
}

/// Feeds `bytes` to `dec` in chunks whose sizes cycle through `chunks`, collecting every message.
fn decode_in_chunks(
    dec: &mut Decoder,
    bytes: &[u8],
    chunks: &[usize],
) -> Result<Vec<Message>, ProtocolError> {
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < bytes.len() {
        let n = chunks[i % chunks.len()].clamp(1, bytes.len() - pos);
        i += 1;
        buf.extend_from_slice(&bytes[pos..pos + n]);
        pos += n;
        // At most one message per byte received: the loop is bounded.
        for _ in 0..=n {
            match dec.decode(&mut buf)? {
                Some(m) => out.push(m),
                None => break,
            }
        }
    }
    if let Some(m) = dec.decode_eof(&mut buf)? {
        out.push(m);
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn encode_then_decode_is_identity(m in message()) {
        let bytes = encode(&m);
        prop_assert_eq!(bytes.len(), m.encoded_len());
        prop_assert_eq!(&bytes[..], &m.to_bytes().unwrap()[..]);
        // The total length field counts everything after the 16-byte header.
        let total = u32::from_be_bytes(bytes[12..16].try_into().unwrap()) as usize;
        prop_assert_eq!(total, bytes.len() - HEADER_LEN);

        let mut buf = BytesMut::from(&bytes[..]);
        let decoded = Decoder::default().decode(&mut buf).unwrap().expect("one whole message");
        prop_assert!(buf.is_empty());
        prop_assert_eq!(&decoded, &m);
        prop_assert_eq!(decoded.header.as_bytes(), m.header.as_bytes());
        prop_assert_eq!(Message::parse(Bytes::from(bytes.clone())).unwrap(), m);
        // Re-encoding the decoded message gives the same bytes.
        prop_assert_eq!(encode(&decoded), bytes);
    }

    #[test]
    fn split_stream_yields_the_same_messages(
        msgs in vec(message(), 1..5),
        chunks in vec(1usize..200, 1..16),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend_from_slice(&encode(m));
        }
        let out = decode_in_chunks(&mut Decoder::default(), &stream, &chunks).unwrap();
        prop_assert_eq!(out, msgs);
    }

    #[test]
    fn split_at_arbitrary_points(
        msgs in vec(message(), 1..4),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend_from_slice(&encode(m));
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        points.dedup();
        let mut dec = Decoder::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for w in points.windows(2) {
            buf.extend_from_slice(&stream[w[0]..w[1]]);
            for _ in 0..=msgs.len() {
                match dec.decode(&mut buf).unwrap() {
                    Some(m) => out.push(m),
                    None => break,
                }
            }
        }
        prop_assert!(dec.decode_eof(&mut buf).unwrap().is_none());
        prop_assert_eq!(out, msgs);
    }

    #[test]
    fn message_size_limit_is_exact(m in message(), slack in 0usize..64) {
        let bytes = encode(&m);
        let n = bytes.len();
        // At the limit: accepted.
        let mut buf = BytesMut::from(&bytes[..]);
        let got = Decoder::new(Limits::new(n + slack, 1024)).decode(&mut buf).unwrap();
        prop_assert_eq!(got, Some(m.clone()));
        // One byte under: refused as soon as the header is in, whatever follows.
        for have in [HEADER_LEN, n] {
            let mut buf = BytesMut::from(&bytes[..have]);
            let err = Decoder::new(Limits::new(n - 1, 1024)).decode(&mut buf).unwrap_err();
            prop_assert!(
                matches!(err, ProtocolError::MessageTooLarge { size, limit }
                    if size == n as u64 && limit == n - 1),
                "{}", err
            );
            prop_assert!(err.closes_connection());
        }
    }

    #[test]
    fn random_bytes_never_panic(
        data in prop_oneof![
            vec(any::<u8>(), 0..512),
            // Mostly-valid starts, so that decoding gets past the magic and the header.
            (vec(any::<u8>(), 0..512)).prop_map(|mut v| { if !v.is_empty() { v[0] = MAGIC_NUMBER; } v }),
            (any::<[u8; 11]>(), 0u32..600, vec(any::<u8>(), 0..600)).prop_map(|(h, total, body)| {
                let mut v = vec![MAGIC_NUMBER];
                v.extend_from_slice(&h);
                v.extend_from_slice(&total.to_be_bytes());
                v.extend_from_slice(&body);
                v
            }),
        ],
        max in 16usize..1024,
    ) {
        let mut dec = Decoder::new(Limits::new(max, 1024));
        let mut buf = BytesMut::from(&data[..]);
        // Each successful step consumes at least a 16-byte header: bounded.
        for _ in 0..=data.len() / HEADER_LEN + 1 {
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(m)) => {
                    prop_assert!(buf.len() < before);
                    prop_assert!(m.encoded_len() <= max);
                    // Anything decoded re-encodes to exactly what was consumed.
                    let consumed = &data[data.len() - before..data.len() - buf.len()];
                    prop_assert_eq!(&encode(&m)[..], consumed);
                    let _ = compress::decompress(m.header.compress_type(), m.payload.clone(), 1024);
                }
                Ok(None) => {
                    // Either nothing is left or an incomplete frame: decode_eof says which.
                    let eof = dec.decode_eof(&mut buf);
                    prop_assert_eq!(eof.is_err(), !buf.is_empty());
                    break;
                }
                Err(e) => {
                    let _ = e.to_string();
                    let _ = e.closes_connection();
                    break;
                }
            }
        }
        let _ = Message::parse(Bytes::from(data));
    }

    #[test]
    fn cutting_a_frame_short_is_an_error(m in message(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&m);
        let body = bytes.len() - HEADER_LEN;
        // Remove 1..=body bytes from the end, and make the total length agree with what is left,
        // so that the frame is complete but its inner lengths overrun it.
        let remove = 1 + cut.index(body);
        let mut short = bytes[..bytes.len() - remove].to_vec();
        let total = (body - remove) as u32;
        short[12..16].copy_from_slice(&total.to_be_bytes());

        let err = Message::parse(Bytes::from(short.clone())).unwrap_err();
        prop_assert!(matches!(err, ProtocolError::Truncated { .. }), "{}", err);
        prop_assert!(err.closes_connection());

        let mut buf = BytesMut::from(&short[..]);
        let err = Decoder::default().decode(&mut buf).unwrap_err();
        prop_assert!(matches!(err, ProtocolError::Truncated { .. }), "{}", err);
    }

    #[test]
    fn overlong_payload_length_is_an_error(m in message(), extra in 1u32..=u32::MAX) {
        let mut bytes = encode(&m);
        let at = length_field_offsets(&m)[3];
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        let bigger = len.saturating_add(extra);
        prop_assume!(bigger != len);
        bytes[at..at + 4].copy_from_slice(&bigger.to_be_bytes());
        let mut buf = BytesMut::from(&bytes[..]);
        let err = Decoder::default().decode(&mut buf).unwrap_err();
        prop_assert!(
            matches!(err, ProtocolError::Truncated { field: "payload", .. }),
            "{}", err
        );
        prop_assert!(buf.is_empty(), "the bad frame is consumed");
    }

    #[test]
    fn mangled_inner_lengths_never_panic(
        m in message(),
        which in 0usize..4,
        value in prop_oneof![any::<u32>(), 0u32..64, (u32::MAX - 8)..=u32::MAX],
    ) {
        let mut bytes = encode(&m);
        let at = length_field_offsets(&m)[which];
        let old = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
        let mut buf = BytesMut::from(&bytes[..]);
        match Decoder::default().decode(&mut buf) {
            Ok(Some(d)) => {
                // Only possible when the bytes still make a consistent frame.
                prop_assert_eq!(&encode(&d)[..], &bytes[..]);
                if value == old {
                    prop_assert_eq!(d, m);
                }
            }
            Ok(None) => {
                return Err(TestCaseError::fail("a complete frame must not ask for more bytes"));
            }
            Err(e) => {
                prop_assert!(value != old, "{}", e);
                prop_assert!(buf.is_empty(), "the bad frame is consumed");
            }
        }
    }

    #[test]
    fn gzip_round_trip(data in prop_oneof![
        vec(any::<u8>(), 0..4096),
        (vec(any::<u8>(), 1..8), 0usize..2048).prop_map(|(unit, n)| unit.repeat(n)),
    ]) {
        let z = compress::compress(CompressType::GZIP, &data).unwrap();
        prop_assert_eq!(&z[..2], &[0x1f, 0x8b][..]);
        let back = compress::decompress(CompressType::GZIP, z.clone(), data.len()).unwrap();
        prop_assert_eq!(&back[..], &data[..]);
        if !data.is_empty() {
            let err = compress::decompress(CompressType::GZIP, z.clone(), data.len() - 1).unwrap_err();
            prop_assert!(matches!(err, ProtocolError::DecompressedTooLarge { .. }), "{}", err);
            prop_assert!(!err.closes_connection());
        }
        // compress_into appends after what is already in the buffer.
        let mut dst = BytesMut::from(&b"prefix"[..]);
        compress::compress_into(CompressType::GZIP, &data, &mut dst).unwrap();
        prop_assert_eq!(&dst[..6], b"prefix");
        let back = compress::decompress(CompressType::GZIP, dst.split_off(6).freeze(), data.len()).unwrap();
        prop_assert_eq!(&back[..], &data[..]);
        // No compression is the identity.
        let same = compress::compress(CompressType::NONE, &data).unwrap();
        prop_assert_eq!(&same[..], &data[..]);
        prop_assert_eq!(compress::decompress(CompressType::NONE, same, 0).unwrap(), Bytes::from(data.clone()));
        prop_assert_eq!(should_compress(CompressType::GZIP, data.len()), data.len() > COMPRESS_THRESHOLD);
    }

    #[test]
    fn compressed_message_round_trip(m in message(), data in vec(any::<u8>(), 0..3000)) {
        // A message whose payload went through gzip decodes to the same payload after
        // decompression.
        let mut m = m;
        m.header.set_compress_type(CompressType::GZIP);
        m.payload = compress::compress(CompressType::GZIP, &data).unwrap();
        let mut buf = BytesMut::from(&encode(&m)[..]);
        let d = Decoder::default().decode(&mut buf).unwrap().unwrap();
        prop_assert_eq!(d.header.compress_type(), CompressType::GZIP);
        let plain = compress::decompress(
            d.header.compress_type(),
            d.payload,
            Decoder::default().limits().max_decompressed_size,
        ).unwrap();
        prop_assert_eq!(&plain[..], &data[..]);
    }

    #[test]
    fn garbage_gzip_never_panics(data in vec(any::<u8>(), 0..512), limit in 0usize..4096) {
        let _ = compress::decompress(CompressType::GZIP, Bytes::from(data.clone()), limit);
        let mut gz = vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];
        gz.extend_from_slice(&data);
        if let Ok(out) = compress::decompress(CompressType::GZIP, Bytes::from(gz), limit) {
            prop_assert!(out.len() <= limit);
        }
    }
}
