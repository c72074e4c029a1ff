//! Payload compression with rpcx's rules and a hard bound on decompressed size.
//!
//! rpcx compresses a payload only when it is longer than [`COMPRESS_THRESHOLD`] bytes, even when
//! the caller asked for gzip; a server compresses a reply only when the request was compressed.
//! Decompression is always bounded by a limit, so a small "gzip bomb" cannot make the receiver
//! allocate more than that limit.

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::error::ProtocolError;
use crate::header::CompressType;

/// Payloads of at most this many bytes are sent uncompressed whatever the compress type.
pub const COMPRESS_THRESHOLD: usize = 1024;

/// Whether rpcx's rule says a payload of `len` bytes is compressed with `ct`.
pub fn should_compress(ct: CompressType, len: usize) -> bool {
    ct != CompressType::NONE && len > COMPRESS_THRESHOLD
}

/// Compresses `data` with `ct`, appending to `dst`.
pub fn compress_into(
    ct: CompressType,
    data: &[u8],
    dst: &mut BytesMut,
) -> Result<(), ProtocolError> {
    match ct.id() {
        0 => {
            dst.extend_from_slice(data);
            Ok(())
        }
        1 => {
            let mut enc = GzEncoder::new(dst.writer(), Compression::default());
            enc.write_all(data).map_err(ProtocolError::Gzip)?;
            enc.finish().map_err(ProtocolError::Gzip)?;
            Ok(())
        }
        n => Err(ProtocolError::UnknownCompressType(n)),
    }
}

/// Compresses `data` with `ct`.
pub fn compress(ct: CompressType, data: &[u8]) -> Result<Bytes, ProtocolError> {
    if ct == CompressType::NONE {
        return Ok(Bytes::copy_from_slice(data));
    }
    let mut out = BytesMut::with_capacity(data.len() / 2 + 64);
    compress_into(ct, data, &mut out)?;
    Ok(out.freeze())
}

/// Decompresses a payload sent with `ct`, failing with
/// [`ProtocolError::DecompressedTooLarge`] as soon as more than `limit` bytes come out.
///
/// With [`CompressType::NONE`] the payload is returned as is (no copy).
pub fn decompress(ct: CompressType, data: Bytes, limit: usize) -> Result<Bytes, ProtocolError> {
    match ct.id() {
        0 => Ok(data),
        1 => {
            // Never trust a size from the stream for the allocation: grow as bytes come out.
            let mut out = Vec::with_capacity((data.len() * 4).min(limit).min(1 << 20));
            let mut dec = MultiGzDecoder::new(&data[..]).take((limit as u64).saturating_add(1));
            dec.read_to_end(&mut out).map_err(ProtocolError::Gzip)?;
            if out.len() > limit {
                return Err(ProtocolError::DecompressedTooLarge { limit });
            }
            Ok(Bytes::from(out))
        }
        n => Err(ProtocolError::UnknownCompressType(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data = b"rpcx".repeat(300);
        let z = compress(CompressType::GZIP, &data).unwrap();
        assert!(z.len() < data.len());
        assert_eq!(
            decompress(CompressType::GZIP, z, 1 << 20).unwrap(),
            &data[..]
        );
    }

    #[test]
    fn bomb_is_stopped_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        let z = compress(CompressType::GZIP, &zeros).unwrap();
        assert!(z.len() < 64 << 10);
        let err = decompress(CompressType::GZIP, z, 1 << 20).unwrap_err();
        assert!(matches!(err, ProtocolError::DecompressedTooLarge { limit } if limit == 1 << 20));
    }

    #[test]
    fn garbage_and_unknown_types_are_errors() {
        assert!(matches!(
            decompress(CompressType::GZIP, Bytes::from_static(b"not gzip"), 1024),
            Err(ProtocolError::Gzip(_))
        ));
        assert!(matches!(
            decompress(CompressType::new(5).unwrap(), Bytes::new(), 1024),
            Err(ProtocolError::UnknownCompressType(5))
        ));
    }

    #[test]
    fn threshold_follows_rpcx() {
        assert!(!should_compress(CompressType::GZIP, 1024));
        assert!(should_compress(CompressType::GZIP, 1025));
        assert!(!should_compress(CompressType::NONE, 1 << 20));
    }
}
