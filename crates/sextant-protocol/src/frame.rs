//! Building frames: the one place where the bytes of an outgoing rpcx message are laid out.
//!
//! Client requests, server replies, error replies and heartbeats are all written through
//! [`FrameHead::encode`]: the header, the names and the metadata go into the buffer, then the
//! caller serializes the payload straight after them (no intermediate buffer), then the payload
//! is compressed when rpcx's rule says so ([`should_compress`]) and the two length fields are
//! patched. Nothing outside this crate needs to know an offset or a flag bit.
//!
//! ```
//! use bytes::{BufMut, BytesMut};
//! use sextant_protocol::{CompressType, FrameHead, Header, Message, Metadata, ProtocolError};
//!
//! let mut header = Header::new();
//! header.set_seq(7);
//! let metadata = Metadata::new();
//! let head = FrameHead::new(&header, "Arith", "Mul", &metadata);
//! let mut buf = BytesMut::new();
//! head.encode(&mut buf, CompressType::NONE, 8, |b| {
//!     b.put_slice(b"\x81\xa1C\xcc\xc8");
//!     Ok::<_, ProtocolError>(())
//! })?;
//! let m = Message::parse(buf.freeze())?;
//! assert_eq!(m.header.seq(), 7);
//! assert_eq!(&m.payload[..], b"\x81\xa1C\xcc\xc8");
//! # Ok::<_, ProtocolError>(())
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::compress::{compress_into, should_compress};
use crate::error::ProtocolError;
use crate::header::{
    CompressType, Header, MessageStatusType, MessageType, SerializeType, HEADER_LEN,
};
use crate::keys;
use crate::message::{Message, Metadata};

/// Bytes of a frame besides the header, names, metadata and payload: the four u32 lengths of
/// service path, method, metadata and payload.
const LENGTH_FIELDS: usize = 16;

/// Everything of a frame that precedes the payload.
#[derive(Debug, Clone, Copy)]
pub struct FrameHead<'a> {
    /// The header as it should go out; its compress bits are set by [`FrameHead::encode`] when
    /// the payload ends up compressed.
    pub header: &'a Header,
    /// The service path.
    pub service_path: &'a str,
    /// The method.
    pub service_method: &'a str,
    /// The metadata pairs.
    pub metadata: &'a Metadata,
}

impl<'a> FrameHead<'a> {
    /// The head of a frame.
    pub fn new(
        header: &'a Header,
        service_path: &'a str,
        service_method: &'a str,
        metadata: &'a Metadata,
    ) -> FrameHead<'a> {
        FrameHead {
            header,
            service_path,
            service_method,
            metadata,
        }
    }

    /// Bytes of the frame before the payload.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + LENGTH_FIELDS
            + self.service_path.len()
            + self.service_method.len()
            + self.metadata.encoded_len()
    }

    /// Appends the whole frame to `dst`: the head, then the payload that `write_payload` appends
    /// to the buffer it is given, compressed with `compress` when rpcx's rule says so (over
    /// [`COMPRESS_THRESHOLD`](crate::compress::COMPRESS_THRESHOLD) bytes; the header's compress
    /// bits then say so), then the lengths.
    ///
    /// `payload_hint` is the expected payload size, used to reserve the buffer once. On error
    /// `dst` is left as it was, so a caller can write another frame in its place.
    pub fn encode<E, F>(
        &self,
        dst: &mut BytesMut,
        compress: CompressType,
        payload_hint: usize,
        write_payload: F,
    ) -> Result<(), E>
    where
        E: From<ProtocolError>,
        F: FnOnce(&mut BytesMut) -> Result<(), E>,
    {
        // Only the payload writer is generic: the head and the lengths are written by two plain
        // functions, so that this stays small enough for the payload's encoder (and the tiny
        // `BufMut` calls it makes) to be inlined into the caller.
        let start = dst.len();
        let result = self
            .begin(dst, payload_hint)
            .map_err(E::from)
            .and_then(|payload_at| {
                write_payload(dst)?;
                finish(dst, self.header, start, payload_at, compress).map_err(E::from)
            });
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    /// Writes the head with zeroed lengths; returns where the payload starts.
    fn begin(&self, dst: &mut BytesMut, payload_hint: usize) -> Result<usize, ProtocolError> {
        let meta_len = self.metadata.encoded_len();
        u32_len("service path", self.service_path.len())?;
        u32_len("service method", self.service_method.len())?;
        u32_len("metadata", meta_len)?;
        let need = self.encoded_len() + payload_hint;
        if dst.capacity() == 0 {
            // A fresh buffer: one exact allocation, without `reserve`'s slower path.
            *dst = BytesMut::with_capacity(need);
        } else {
            dst.reserve(need);
        }
        dst.put_slice(self.header.as_bytes());
        dst.put_u32(0); // total length, patched by `finish`
        put_field(dst, self.service_path.as_bytes());
        put_field(dst, self.service_method.as_bytes());
        dst.put_u32(meta_len as u32);
        for (k, v) in self.metadata.iter() {
            u32_len("metadata key", k.len())?;
            u32_len("metadata value", v.len())?;
            put_field(dst, k.as_bytes());
            put_field(dst, v.as_bytes());
        }
        dst.put_u32(0); // payload length, patched by `finish`
        Ok(dst.len())
    }
}

/// Compresses the payload (from `payload_at` to the end) when rpcx's rule says so, then patches
/// the two lengths of the frame that starts at `start`.
fn finish(
    dst: &mut BytesMut,
    header: &Header,
    start: usize,
    payload_at: usize,
    compress: CompressType,
) -> Result<(), ProtocolError> {
    if should_compress(compress, dst.len() - payload_at) {
        let plain = dst.split_off(payload_at);
        compress_into(compress, &plain, dst)?;
        let mut header = *header;
        header.set_compress_type(compress);
        dst[start..start + 12].copy_from_slice(header.as_bytes());
    }
    let payload_len = u32_len("payload", dst.len() - payload_at)?;
    let total = u32_len("message", dst.len() - start - HEADER_LEN)?;
    dst[payload_at - 4..payload_at].copy_from_slice(&payload_len.to_be_bytes());
    dst[start + 12..start + 16].copy_from_slice(&total.to_be_bytes());
    Ok(())
}

fn put_field(dst: &mut BytesMut, b: &[u8]) {
    dst.put_u32(b.len() as u32);
    dst.put_slice(b);
}

pub(crate) fn u32_len(field: &'static str, len: usize) -> Result<u32, ProtocolError> {
    u32::try_from(len).map_err(|_| ProtocolError::FieldTooLong { field, len })
}

/// Appends rpcx's error reply to a request: the request's header turned into a response
/// ([`Header::response_header`]) with status error, path and method echoed, `__rpcx_error__` set
/// to `text` followed by the pairs of `extra` whose key is not set yet (how rpcx merges a
/// handler's response metadata into an error reply), and an empty payload.
///
/// The caller decides whether to answer at all (rpcx answers no oneway request).
pub fn encode_error_reply(
    dst: &mut BytesMut,
    request: &Header,
    service_path: &str,
    service_method: &str,
    text: &str,
    extra: &Metadata,
) -> Result<(), ProtocolError> {
    let mut header = request.response_header();
    header.set_status(MessageStatusType::Error);
    let mut metadata = Metadata::new();
    metadata.insert(keys::SERVICE_ERROR, text.to_string());
    metadata.merge_missing(extra);
    FrameHead::new(&header, service_path, service_method, &metadata).encode(
        dst,
        CompressType::NONE,
        0,
        |_| Ok::<_, ProtocolError>(()),
    )
}

/// The payload of a heartbeat as Go's rpcx client sends it: the send time in nanoseconds since
/// the Unix epoch, as a msgpack int64 (`0xd3` and 8 big-endian bytes).
pub fn heartbeat_payload(unix_nanos: i64) -> [u8; 9] {
    let mut p = [0u8; 9];
    p[0] = 0xd3;
    p[1..].copy_from_slice(&unix_nanos.to_be_bytes());
    p
}

/// The time a heartbeat payload carries (see [`heartbeat_payload`]), if it is one.
pub fn parse_heartbeat_payload(payload: &[u8]) -> Option<i64> {
    match payload {
        [0xd3, rest @ ..] if rest.len() == 8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(rest);
            Some(i64::from_be_bytes(b))
        }
        _ => None,
    }
}

impl Message {
    /// A heartbeat request as Go's rpcx client sends one: heartbeat bit, msgpack, and
    /// [`heartbeat_payload`] of `unix_nanos`.
    pub fn heartbeat(seq: u64, unix_nanos: i64) -> Message {
        let mut m = Message::new();
        m.header.set_seq(seq);
        m.header.set_heartbeat(true);
        m.header.set_serialize_type(SerializeType::MSGPACK);
        m.payload = Bytes::copy_from_slice(&heartbeat_payload(unix_nanos));
        m
    }

    /// The answer rpcx's server gives a heartbeat: the same message with only the response bit
    /// set.
    pub fn into_heartbeat_reply(mut self) -> Message {
        self.header.set_message_type(MessageType::Response);
        self
    }

    /// Whether this message is an error response (status error).
    pub fn is_error(&self) -> bool {
        self.header.status() == MessageStatusType::Error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::{decompress, COMPRESS_THRESHOLD};

    fn head_parts() -> (Header, Metadata) {
        let mut h = Header::new();
        h.set_seq(9);
        let mut m = Metadata::new();
        m.insert("k", "v");
        (h, m)
    }

    #[test]
    fn small_payloads_are_never_compressed() {
        let (h, m) = head_parts();
        let mut buf = BytesMut::new();
        FrameHead::new(&h, "S", "M", &m)
            .encode(&mut buf, CompressType::GZIP, 3, |b| {
                b.put_slice(b"abc");
                Ok::<_, ProtocolError>(())
            })
            .unwrap();
        let msg = Message::parse(buf.freeze()).unwrap();
        assert_eq!(msg.header.compress_type(), CompressType::NONE);
        assert_eq!(&msg.payload[..], b"abc");
        assert_eq!(msg.metadata.get("k"), Some("v"));
    }

    #[test]
    fn large_payloads_are_compressed_and_flagged() {
        let (h, m) = head_parts();
        let plain = vec![b'x'; COMPRESS_THRESHOLD + 1];
        let mut buf = BytesMut::from(&b"previous frame"[..]);
        FrameHead::new(&h, "S", "M", &m)
            .encode(&mut buf, CompressType::GZIP, plain.len(), |b| {
                b.put_slice(&plain);
                Ok::<_, ProtocolError>(())
            })
            .unwrap();
        assert_eq!(&buf[..14], b"previous frame");
        let msg = Message::parse(buf.freeze().slice(14..)).unwrap();
        assert_eq!(msg.header.compress_type(), CompressType::GZIP);
        assert_eq!(msg.header.seq(), 9);
        let out = decompress(CompressType::GZIP, msg.payload, 1 << 20).unwrap();
        assert_eq!(&out[..], &plain[..]);
    }

    #[test]
    fn a_failed_payload_leaves_the_buffer_as_it_was() {
        let (h, m) = head_parts();
        let mut buf = BytesMut::from(&b"keep"[..]);
        let r = FrameHead::new(&h, "S", "M", &m).encode(&mut buf, CompressType::NONE, 0, |b| {
            b.put_slice(b"half");
            Err(ProtocolError::TrailingBytes(1))
        });
        assert!(r.is_err());
        assert_eq!(&buf[..], b"keep");
    }

    #[test]
    fn error_reply_is_rpcx_shaped() {
        let mut req = Header::new();
        req.set_seq(5);
        req.set_compress_type(CompressType::GZIP);
        let mut extra = Metadata::new();
        extra.insert(keys::SERVICE_ERROR, "ignored");
        extra.insert("x", "1");
        let mut buf = BytesMut::new();
        encode_error_reply(&mut buf, &req, "Arith", "Div", "divide by zero", &extra).unwrap();
        let m = Message::parse(buf.freeze()).unwrap();
        assert!(m.is_error());
        assert_eq!(m.header.message_type(), MessageType::Response);
        assert_eq!(m.header.compress_type(), CompressType::NONE);
        assert_eq!(m.header.seq(), 5);
        assert_eq!(m.metadata.get(keys::SERVICE_ERROR), Some("divide by zero"));
        assert_eq!(m.metadata.get("x"), Some("1"));
        assert_eq!(m.metadata.len(), 2);
        assert!(m.payload.is_empty());
    }

    #[test]
    fn heartbeat_payload_round_trips() {
        let p = heartbeat_payload(1_234_567_890);
        assert_eq!(p[0], 0xd3);
        assert_eq!(parse_heartbeat_payload(&p), Some(1_234_567_890));
        assert_eq!(parse_heartbeat_payload(&p[..8]), None);
        let hb = Message::heartbeat(3, 42);
        assert!(hb.header.is_heartbeat());
        assert_eq!(parse_heartbeat_payload(&hb.payload), Some(42));
        let reply = hb.clone().into_heartbeat_reply();
        assert_eq!(reply.header.message_type(), MessageType::Response);
        assert_eq!(reply.payload, hb.payload);
        assert!(reply.header.is_heartbeat());
    }
}
