//! Errors raised while framing, parsing or decompressing rpcx messages.

use crate::header::Header;

/// A message could not be read or written.
///
/// [`ProtocolError::closes_connection`] tells whether the byte stream can still be trusted after
/// the error: framing errors (bad magic, oversized or malformed frame) leave the reader out of step
/// and the connection must be closed; the others concern one complete frame whose header is known,
/// so a server answers that one request with an error and carries on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The first byte of a message is not rpcx's magic number.
    #[error(
        "bad magic number {0:#04x}: expected 0x08, this peer does not speak the rpcx protocol"
    )]
    BadMagic(u8),
    /// The declared length of a message is over the configured maximum.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes (raise max_message_size if this is expected)")]
    MessageTooLarge {
        /// Declared size in bytes, header included.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A length inside the frame points past its end.
    #[error(
        "malformed message: {field} needs {needed} bytes but only {remaining} remain in the frame"
    )]
    Truncated {
        /// Which field was being read.
        field: &'static str,
        /// Bytes the field claims.
        needed: u64,
        /// Bytes left in the frame.
        remaining: usize,
    },
    /// Bytes are left in the frame after the payload.
    #[error("malformed message: {0} unexpected bytes after the payload")]
    TrailingBytes(usize),
    /// The stream ended inside a message.
    #[error("connection closed in the middle of a message ({0} bytes of it received)")]
    UnexpectedEof(usize),
    /// A text field is not valid UTF-8. The frame itself was sound.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which field.
        field: &'static str,
        /// The header of the offending message, so that the request can be answered.
        header: Header,
    },
    /// A field is too long to be written with a u32 length.
    #[error("{field} of {len} bytes cannot be encoded: rpcx lengths are u32")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The compress type is not one sextant knows.
    #[error("unknown compress type {0}: rpcx defines 0 (none) and 1 (gzip)")]
    UnknownCompressType(u8),
    /// The payload would decompress to more than the configured maximum.
    #[error("decompressed payload exceeds the limit of {limit} bytes (raise max_decompressed_size if this is expected)")]
    DecompressedTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The compressed payload is corrupt.
    #[error("corrupt gzip payload: {0}")]
    Gzip(#[source] std::io::Error),
}

impl ProtocolError {
    /// Whether the connection must be closed because the stream can no longer be framed.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            ProtocolError::BadMagic(_)
                | ProtocolError::MessageTooLarge { .. }
                | ProtocolError::Truncated { .. }
                | ProtocolError::TrailingBytes(_)
                | ProtocolError::UnexpectedEof(_)
        )
    }

    /// The header of the message the error concerns, when the frame was sound enough to know it.
    pub fn header(&self) -> Option<&Header> {
        match self {
            ProtocolError::InvalidUtf8 { header, .. } => Some(header),
            _ => None,
        }
    }
}
