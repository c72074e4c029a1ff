//! The 12 bytes that open every rpcx message and the enums packed into them.
//!
//! The layout is rpcx's `protocol.Header`: byte 0 magic (`0x08`), byte 1 version, byte 2 flags
//! (message type, heartbeat, oneway, compress type, status), byte 3 serialize type in the high
//! nibble, bytes 4..12 the message id. The four-byte total length that follows on the wire is not
//! part of the header; the encoder computes it.
//!
//! The header is kept as the raw bytes rather than as decoded fields, so that a message decoded and
//! encoded again is byte-for-byte what arrived, including bits this version does not interpret.

use std::fmt;

/// The first byte of every rpcx message.
pub const MAGIC_NUMBER: u8 = 0x08;

/// Length of the fixed header on the wire: the 12 header bytes plus the u32 total length.
pub const HEADER_LEN: usize = 16;

/// Whether a message is a request or a response (bit 7 of the flags byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// A request. Server pushes are requests too, sent by the server with `oneway` set.
    Request,
    /// A response to a request with the same message id.
    Response,
}

/// Whether a response reports success or an error (bits 1..0 of the flags byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatusType {
    /// The call succeeded.
    Normal,
    /// The call failed; the metadata key `__rpcx_error__` holds the error text.
    Error,
}

/// How the payload is serialized (high nibble of byte 3).
///
/// Ids 0 to 4 are rpcx's built-in codecs; 5 to 15 are free for custom codecs registered on a
/// server or client (see [`Codecs`](crate::Codecs)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerializeType(u8);

impl SerializeType {
    /// Raw bytes, no codec (`SerializeNone` in rpcx).
    pub const NONE: SerializeType = SerializeType(0);
    /// JSON (`encoding/json` in Go, `serde_json` here).
    pub const JSON: SerializeType = SerializeType(1);
    /// Protocol Buffers (`prost` here).
    pub const PROTOBUF: SerializeType = SerializeType(2);
    /// MessagePack with structs as maps keyed by field name: rpcx's default.
    pub const MSGPACK: SerializeType = SerializeType(3);
    /// Thrift binary protocol.
    pub const THRIFT: SerializeType = SerializeType(4);

    /// A serialize type from its id. Returns `None` when `id` does not fit the 4-bit field.
    pub const fn new(id: u8) -> Option<SerializeType> {
        if id <= 0x0f {
            Some(SerializeType(id))
        } else {
            None
        }
    }

    /// The numeric id as it travels on the wire (0 to 15).
    pub const fn id(self) -> u8 {
        self.0
    }

    /// The conventional name of a built-in type, or `"custom"`.
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "raw",
            1 => "json",
            2 => "protobuf",
            3 => "msgpack",
            4 => "thrift",
            _ => "custom",
        }
    }
}

impl Default for SerializeType {
    /// MsgPack, as rpcx clients default to.
    fn default() -> Self {
        SerializeType::MSGPACK
    }
}

impl fmt::Debug for SerializeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SerializeType({} {})", self.0, self.name())
    }
}

impl fmt::Display for SerializeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}

/// How the payload is compressed (bits 4..2 of the flags byte).
///
/// rpcx defines 0 (none) and 1 (gzip); the field has 3 bits, so values up to 7 can arrive and are
/// reported as unknown when the payload is read.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompressType(u8);

impl CompressType {
    /// No compression.
    pub const NONE: CompressType = CompressType(0);
    /// gzip (RFC 1952).
    pub const GZIP: CompressType = CompressType(1);

    /// A compress type from its id. Returns `None` when `id` does not fit the 3-bit field.
    pub const fn new(id: u8) -> Option<CompressType> {
        if id <= 0x07 {
            Some(CompressType(id))
        } else {
            None
        }
    }

    /// The numeric id (0 to 7).
    pub const fn id(self) -> u8 {
        self.0
    }

    /// Whether this is a compression sextant knows (none or gzip).
    pub const fn is_known(self) -> bool {
        self.0 <= 1
    }
}

impl Default for CompressType {
    fn default() -> Self {
        CompressType::NONE
    }
}

impl fmt::Debug for CompressType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("CompressType(none)"),
            1 => f.write_str("CompressType(gzip)"),
            n => write!(f, "CompressType({n} unknown)"),
        }
    }
}

const FLAG_RESPONSE: u8 = 0x80;
const FLAG_HEARTBEAT: u8 = 0x40;
const FLAG_ONEWAY: u8 = 0x20;
const COMPRESS_MASK: u8 = 0x1c;
const STATUS_MASK: u8 = 0x03;

/// The 12-byte rpcx header: magic, version, flags, serialize type and message id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header([u8; 12]);

impl Default for Header {
    fn default() -> Self {
        Header::new()
    }
}

impl Header {
    /// A request header: magic set, version 0, normal status, no compression, msgpack, id 0.
    pub const fn new() -> Header {
        let mut b = [0u8; 12];
        b[0] = MAGIC_NUMBER;
        b[3] = SerializeType::MSGPACK.0 << 4;
        Header(b)
    }

    /// The header from its raw bytes, as read off the wire. The magic byte is not checked here.
    pub const fn from_bytes(bytes: [u8; 12]) -> Header {
        Header(bytes)
    }

    /// The raw 12 bytes.
    pub const fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }

    /// Byte 0: the magic number (`0x08` in a valid message).
    pub const fn magic(&self) -> u8 {
        self.0[0]
    }

    /// Byte 1: the protocol version (0).
    pub const fn version(&self) -> u8 {
        self.0[1]
    }

    /// Sets the protocol version byte.
    pub fn set_version(&mut self, v: u8) {
        self.0[1] = v;
    }

    /// Request or response.
    pub const fn message_type(&self) -> MessageType {
        if self.0[2] & FLAG_RESPONSE != 0 {
            MessageType::Response
        } else {
            MessageType::Request
        }
    }

    /// Sets request or response.
    pub fn set_message_type(&mut self, t: MessageType) {
        match t {
            MessageType::Request => self.0[2] &= !FLAG_RESPONSE,
            MessageType::Response => self.0[2] |= FLAG_RESPONSE,
        }
    }

    /// Whether this is a heartbeat.
    pub const fn is_heartbeat(&self) -> bool {
        self.0[2] & FLAG_HEARTBEAT != 0
    }

    /// Marks the message as a heartbeat or not.
    pub fn set_heartbeat(&mut self, hb: bool) {
        if hb {
            self.0[2] |= FLAG_HEARTBEAT;
        } else {
            self.0[2] &= !FLAG_HEARTBEAT;
        }
    }

    /// Whether the sender expects no response.
    pub const fn is_oneway(&self) -> bool {
        self.0[2] & FLAG_ONEWAY != 0
    }

    /// Marks the message as oneway or not.
    pub fn set_oneway(&mut self, oneway: bool) {
        if oneway {
            self.0[2] |= FLAG_ONEWAY;
        } else {
            self.0[2] &= !FLAG_ONEWAY;
        }
    }

    /// The payload's compression.
    pub const fn compress_type(&self) -> CompressType {
        CompressType((self.0[2] & COMPRESS_MASK) >> 2)
    }

    /// Sets the payload's compression.
    pub fn set_compress_type(&mut self, c: CompressType) {
        self.0[2] = (self.0[2] & !COMPRESS_MASK) | ((c.0 << 2) & COMPRESS_MASK);
    }

    /// Normal or error. The two status bits value 2 and 3, unused by rpcx, read as error.
    pub const fn status(&self) -> MessageStatusType {
        if self.0[2] & STATUS_MASK == 0 {
            MessageStatusType::Normal
        } else {
            MessageStatusType::Error
        }
    }

    /// Sets normal or error.
    pub fn set_status(&mut self, s: MessageStatusType) {
        let bits = match s {
            MessageStatusType::Normal => 0,
            MessageStatusType::Error => 1,
        };
        self.0[2] = (self.0[2] & !STATUS_MASK) | bits;
    }

    /// The payload's serialize type.
    pub const fn serialize_type(&self) -> SerializeType {
        SerializeType(self.0[3] >> 4)
    }

    /// Sets the payload's serialize type.
    pub fn set_serialize_type(&mut self, s: SerializeType) {
        self.0[3] = (self.0[3] & 0x0f) | (s.0 << 4);
    }

    /// The message id (rpcx's `seq`).
    pub const fn seq(&self) -> u64 {
        u64::from_be_bytes([
            self.0[4], self.0[5], self.0[6], self.0[7], self.0[8], self.0[9], self.0[10],
            self.0[11],
        ])
    }

    /// Sets the message id.
    pub fn set_seq(&mut self, seq: u64) {
        self.0[4..12].copy_from_slice(&seq.to_be_bytes());
    }

    /// The header of the response to this request, as rpcx's server builds it (`Message.Clone`
    /// then `SetMessageType(Response)`): same version, serialize type, id and oneway bit;
    /// response bit set; heartbeat kept; compression reset to none; status normal.
    pub fn response_header(&self) -> Header {
        let mut h = *self;
        h.set_message_type(MessageType::Response);
        h.set_compress_type(CompressType::NONE);
        h.set_status(MessageStatusType::Normal);
        h
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("version", &self.version())
            .field("message_type", &self.message_type())
            .field("heartbeat", &self.is_heartbeat())
            .field("oneway", &self.is_oneway())
            .field("compress_type", &self.compress_type())
            .field("status", &self.status())
            .field("serialize_type", &self.serialize_type())
            .field("seq", &self.seq())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_independently() {
        let mut h = Header::new();
        h.set_message_type(MessageType::Response);
        h.set_heartbeat(true);
        h.set_oneway(true);
        h.set_compress_type(CompressType::GZIP);
        h.set_status(MessageStatusType::Error);
        h.set_serialize_type(SerializeType::JSON);
        h.set_seq(0x0102030405060708);
        assert_eq!(h.as_bytes()[2], 0x80 | 0x40 | 0x20 | 0x04 | 0x01);
        assert_eq!(h.as_bytes()[3], 0x10);
        assert_eq!(h.seq(), 0x0102030405060708);
        h.set_heartbeat(false);
        h.set_compress_type(CompressType::NONE);
        assert_eq!(h.as_bytes()[2], 0x80 | 0x20 | 0x01);
        assert_eq!(h.message_type(), MessageType::Response);
        assert_eq!(h.status(), MessageStatusType::Error);
    }

    #[test]
    fn response_header_matches_rpcx_clone() {
        let mut req = Header::new();
        req.set_compress_type(CompressType::GZIP);
        req.set_oneway(true);
        req.set_seq(7);
        let res = req.response_header();
        assert_eq!(res.as_bytes()[2], 0x80 | 0x20);
        assert_eq!(res.seq(), 7);
        assert_eq!(res.serialize_type(), SerializeType::MSGPACK);
    }

    #[test]
    fn out_of_range_ids_are_rejected() {
        assert!(SerializeType::new(16).is_none());
        assert!(CompressType::new(8).is_none());
        assert_eq!(SerializeType::new(15).unwrap().name(), "custom");
    }
}
