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

/// Standard base64 with padding (Go's `base64.StdEncoding`).
pub(crate) fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes standard base64 with padding; `None` if it is not.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
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
