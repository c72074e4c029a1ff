//! The value format of rpcx's Redis store (libkv's `store/redis`): every Redis value is the JSON
//! of libkv's `KVPair`, `{"Key":"/rpcx_test/Arith/tcp@127.0.0.1:8972","Value":"<base64>",
//! "LastIndex":123}`, where `Value` holds the bytes of the metadata string (Go's JSON encodes
//! `[]byte` as standard base64 with padding) and `LastIndex` is a sequence number.

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KvPair {
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    last_index: u64,
}

/// Encodes `value` stored at `key` as libkv does: what to `SET` at `key` (for example to mark a
/// server `state=inactive` by hand).
pub fn encode(key: &str, value: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or_default();
    let pair = KvPair {
        key: key.to_string(),
        value: Some(base64_encode(value.as_bytes())),
        last_index: nanos,
    };
    serde_json::to_string(&pair).expect("a KVPair always encodes")
}

/// Decodes a libkv value: the metadata string, or why the bytes are not one.
pub fn decode(raw: &[u8]) -> Result<String, String> {
    let pair: KvPair =
        serde_json::from_slice(raw).map_err(|e| format!("not a libkv JSON KVPair ({e})"))?;
    let bytes = match pair.value {
        None => Vec::new(),
        Some(v) => base64_decode(&v).ok_or("Value is not base64")?,
    };
    String::from_utf8(bytes).map_err(|_| "Value is not UTF-8".to_string())
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (Go's `base64.StdEncoding`).
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 with padding; `None` if it is not.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| ALPHABET.iter().position(|&a| a == c).map(|p| p as u32);
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, q) in s.chunks(4).enumerate() {
        let last = i == s.len() / 4 - 1;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_go() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("weight=10&group=test", "d2VpZ2h0PTEwJmdyb3VwPXRlc3Q="),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("Zg=").is_none());
        assert!(base64_decode("Zg==Zg==").is_none());
        assert!(base64_decode("Z!==").is_none());
    }

    #[test]
    fn kvpair_round_trip_and_go_shape() {
        let raw = encode("/rpcx_test/Arith/tcp@127.0.0.1:8972", "weight=10");
        assert!(raw.starts_with(
            r#"{"Key":"/rpcx_test/Arith/tcp@127.0.0.1:8972","Value":"d2VpZ2h0PTEw","LastIndex":"#
        ));
        assert_eq!(decode(raw.as_bytes()).unwrap(), "weight=10");
        // As Go writes an empty value.
        assert_eq!(
            decode(br#"{"Key":"/a","Value":null,"LastIndex":0}"#).unwrap(),
            ""
        );
        assert!(decode(b"weight=10").is_err());
        assert!(decode(br#"{"Key":"/a","Value":"!!","LastIndex":0}"#).is_err());
        assert!(decode(br#"{"Key":"/a","Value":"//79","LastIndex":0}"#).is_err());
    }
}
