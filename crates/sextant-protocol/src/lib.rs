//! # sextant-protocol
//!
//! The rpcx wire format, byte for byte, with no async runtime: what a message looks like, how to
//! encode it, how to read it back out of a byte stream safely, and how payloads are serialized and
//! compressed. The `sextant` crate builds its server and client on this; it is also usable on its
//! own (a proxy, a capture decoder, a fuzz target).
//!
//! ## A message
//!
//! ```text
//! | magic 0x08 | version | flags | serialize<<4 | seq u64 | total u32 |
//! | u32 len + service path | u32 len + service method |
//! | u32 len + metadata: (u32 len + key, u32 len + value)* | u32 len + payload |
//! ```
//!
//! ```
//! use bytes::BytesMut;
//! use sextant_protocol::{Decoder, Message, SerializeType, ByteStr};
//!
//! let mut m = Message::new();
//! m.header.set_seq(1);
//! m.header.set_serialize_type(SerializeType::JSON);
//! m.service_path = ByteStr::from_static("Arith");
//! m.service_method = ByteStr::from_static("Mul");
//! m.payload = bytes::Bytes::from_static(br#"{"A":10,"B":20}"#);
//!
//! let mut stream = BytesMut::new();
//! m.encode(&mut stream).unwrap();
//! let decoded = Decoder::default().decode(&mut stream).unwrap().unwrap();
//! assert_eq!(decoded, m);
//! ```
//!
//! ## Safety against bad input
//!
//! rpcx's own decoder trusts every length it reads. This one checks each inner length against the
//! bytes present, refuses messages over [`Limits::max_message_size`] before buffering them, and
//! stops gzip output at [`Limits::max_decompressed_size`]. Errors say whether the connection can go
//! on ([`ProtocolError::closes_connection`]).
//!
//! ## Features
//!
//! - `thrift` (default): the Thrift codec, [`codec::Thrift`].
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codec;
pub mod compress;
mod error;
pub mod frame;
pub mod header;
pub mod message;

#[cfg(feature = "thrift")]
#[cfg_attr(docsrs, doc(cfg(feature = "thrift")))]
pub use codec::Thrift;
pub use codec::{Codec, CodecError, Codecs, Decode, Encode, Proto, Raw};
pub use error::ProtocolError;
pub use frame::{encode_error_reply, heartbeat_payload, parse_heartbeat_payload, FrameHead};
pub use header::{
    CompressType, Header, MessageStatusType, MessageType, SerializeType, HEADER_LEN, MAGIC_NUMBER,
};
pub use message::{ByteStr, Decoder, Limits, Message, Metadata};

/// Metadata keys and service names reserved by rpcx.
pub mod keys {
    /// Error text of a failed call; the response's status is also set to error.
    pub const SERVICE_ERROR: &str = "__rpcx_error__";
    /// Auth token sent by a client; checked by the server's auth function.
    pub const AUTH: &str = "__AUTH";
    /// The client's remaining deadline in milliseconds.
    pub const SERVER_TIMEOUT: &str = "__ServerTimeout";
    /// Which server answered: set by the client on the response metadata it returns.
    pub const SERVER_ADDRESS: &str = "__ServerAddress";
    /// Default path for HTTP CONNECT and websocket transports.
    pub const DEFAULT_RPC_PATH: &str = "/_rpcx_";
    /// Service name rpcx uses for file transfer.
    pub const FILE_TRANSFER_SERVICE: &str = "_filetransfer";
    /// Service name rpcx uses for side-channel streams.
    pub const STREAM_SERVICE: &str = "_streamservice";
}
