//! rpcx's `share.FileTransferArgs`, `FileTransferReply`, `DownloadFileArgs`,
//! `StreamServiceArgs` and `StreamServiceReply`, encoded as Go encodes them.
//!
//! Go's msgpack codec (vmihailenco/msgpack without `UseJSONTag`) keys a struct by its Go field
//! names and writes every field; its JSON codec uses the json tags (`file_name`, ...) and leaves
//! empty fields out (`omitempty`), with `[]byte` as base64. serde tells the two apart with
//! `is_human_readable` (true for serde_json, false for rmp-serde), so one type speaks both.
//! Decoding accepts either spelling, a nil or absent map, and a token as bytes, an array of
//! numbers or base64 text. One difference in bytes: Go's msgpack writes the `int64` `FileSize` as
//! 9 bytes (`d3` ...), rmp-serde as the smallest int; Go's decoder reads both.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

/// The arguments of an upload (rpcx's `share.FileTransferArgs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FileTransferArgs {
    /// The file's name (its last path component when the client is Go's or sextant's).
    #[serde(rename = "FileName", alias = "file_name", default)]
    pub file_name: String,
    /// The file's size in bytes.
    #[serde(rename = "FileSize", alias = "file_size", default)]
    pub file_size: i64,
    /// The caller's metadata.
    #[serde(
        rename = "Meta",
        alias = "meta",
        default,
        deserialize_with = "nullable_map"
    )]
    pub meta: HashMap<String, String>,
}

/// The arguments of a download (rpcx's `share.DownloadFileArgs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DownloadFileArgs {
    /// The name of the file asked for.
    #[serde(rename = "FileName", alias = "file_name", default)]
    pub file_name: String,
    /// The caller's metadata.
    #[serde(
        rename = "Meta",
        alias = "meta",
        default,
        deserialize_with = "nullable_map"
    )]
    pub meta: HashMap<String, String>,
}

/// The reply to `TransferFile` and `DownloadFile` (rpcx's `share.FileTransferReply`): the token
/// to send first on the side connection, and the side listener's address (`host:port`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FileTransferReply {
    /// The token (32 bytes).
    #[serde(rename = "Token", alias = "token", default, deserialize_with = "token")]
    pub token: Vec<u8>,
    /// Where to dial the side connection.
    #[serde(rename = "Addr", alias = "addr", default)]
    pub addr: String,
}

/// The arguments of a stream (rpcx's `share.StreamServiceArgs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StreamServiceArgs {
    /// The caller's metadata.
    #[serde(
        rename = "Meta",
        alias = "meta",
        default,
        deserialize_with = "nullable_map"
    )]
    pub meta: HashMap<String, String>,
}

/// The reply to `Stream` (rpcx's `share.StreamServiceReply`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StreamServiceReply {
    /// The token (32 bytes).
    #[serde(rename = "Token", alias = "token", default, deserialize_with = "token")]
    pub token: Vec<u8>,
    /// Where to dial the side connection.
    #[serde(rename = "Addr", alias = "addr", default)]
    pub addr: String,
}

/// One field of a Go struct: its Go name (msgpack), its json tag (JSON), and whether it is
/// empty (left out of JSON by `omitempty`).
enum Field<'a> {
    Str(&'static str, &'static str, &'a str),
    Int(&'static str, &'static str, &'a i64),
    Map(&'static str, &'static str, &'a HashMap<String, String>),
    Bytes(&'static str, &'static str, &'a [u8]),
}

impl Field<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Field::Str(_, _, v) => v.is_empty(),
            Field::Int(_, _, v) => **v == 0,
            Field::Map(_, _, v) => v.is_empty(),
            Field::Bytes(_, _, v) => v.is_empty(),
        }
    }
}

/// Writes a Go struct as Go's codecs do: every field under its Go name for binary formats, the
/// non-empty ones under their json tags for human-readable ones.
fn go_struct<S: Serializer>(
    s: S,
    name: &'static str,
    fields: &[Field<'_>],
) -> Result<S::Ok, S::Error> {
    let json = s.is_human_readable();
    let n = if json {
        fields.iter().filter(|f| !f.is_empty()).count()
    } else {
        fields.len()
    };
    let mut st = s.serialize_struct(name, n)?;
    for f in fields {
        if json && f.is_empty() {
            continue;
        }
        match f {
            Field::Str(go, tag, v) => st.serialize_field(if json { tag } else { go }, v)?,
            Field::Int(go, tag, v) => st.serialize_field(if json { tag } else { go }, v)?,
            // Go's nil map is msgpack nil; a sextant caller's empty map is sent the same way.
            Field::Map(go, _, v) if v.is_empty() => st.serialize_field(go, &None::<()>)?,
            Field::Map(go, tag, v) => st.serialize_field(if json { tag } else { go }, v)?,
            Field::Bytes(_, tag, v) if json => {
                st.serialize_field(tag, &base64::engine::general_purpose::STANDARD.encode(v))?
            }
            Field::Bytes(go, _, []) => st.serialize_field(go, &None::<()>)?,
            Field::Bytes(go, _, v) => st.serialize_field(go, &Bin(v))?,
        }
    }
    st.end()
}

/// Bytes written as msgpack bin (Go's `[]byte`), not as an array of numbers.
struct Bin<'a>(&'a [u8]);

impl Serialize for Bin<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// `impl Serialize` for a Go struct: its fields as `Kind("GoName", "json_tag", field)`.
macro_rules! go_serialize {
    ($ty:ident { $($kind:ident($go:literal, $tag:literal, $field:ident)),* $(,)? }) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                go_struct(s, stringify!($ty), &[$(Field::$kind($go, $tag, &self.$field)),*])
            }
        }
    };
}

go_serialize!(FileTransferArgs {
    Str("FileName", "file_name", file_name),
    Int("FileSize", "file_size", file_size),
    Map("Meta", "meta", meta),
});
go_serialize!(DownloadFileArgs {
    Str("FileName", "file_name", file_name),
    Map("Meta", "meta", meta),
});
go_serialize!(FileTransferReply {
    Bytes("Token", "token", token),
    Str("Addr", "addr", addr),
});
go_serialize!(StreamServiceArgs {
    Map("Meta", "meta", meta)
});
go_serialize!(StreamServiceReply {
    Bytes("Token", "token", token),
    Str("Addr", "addr", addr),
});

/// A map that may be nil (Go's nil map).
fn nullable_map<'de, D: Deserializer<'de>>(d: D) -> Result<HashMap<String, String>, D::Error> {
    Ok(Option::<HashMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

/// A token: msgpack bin, an array of numbers, base64 text (Go's JSON), or nil.
fn token<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct TokenVisitor;
    impl<'de> Visitor<'de> for TokenVisitor {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes, an array of bytes or base64 text")
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_err(|e| E::custom(format!("token is not base64: {e}")))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(b) = seq.next_element::<u8>()? {
                if v.len() >= 4096 {
                    return Err(de::Error::custom("token too long"));
                }
                v.push(b);
            }
            Ok(v)
        }
        fn visit_none<E: de::Error>(self) -> Result<Vec<u8>, E> {
            Ok(Vec::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<u8>, E> {
            Ok(Vec::new())
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Vec<u8>, D2::Error> {
            d.deserialize_any(TokenVisitor)
        }
    }
    d.deserialize_any(TokenVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> HashMap<String, String> {
        HashMap::from([("k".to_string(), "v".to_string())])
    }

    /// `FileTransferArgs{FileName: "a.txt", FileSize: 5, Meta: map[string]string{"k": "v"}}` as
    /// Go's vmihailenco/msgpack v5 writes it: a 3-entry map keyed by field name. One byte
    /// sequence differs: Go writes an `int64` field as `d3` and 8 bytes, rmp-serde as the
    /// smallest int (`05`); both decoders read either.
    #[test]
    fn file_transfer_args_msgpack_is_gos() {
        let args = FileTransferArgs {
            file_name: "a.txt".into(),
            file_size: 5,
            meta: meta(),
        };
        let got = rmp_serde::to_vec_named(&args).unwrap();
        let mut want = vec![0x83];
        want.extend_from_slice(b"\xa8FileName\xa5a.txt");
        want.extend_from_slice(b"\xa8FileSize\x05");
        want.extend_from_slice(b"\xa4Meta\x81\xa1k\xa1v");
        assert_eq!(got, want);
        let back: FileTransferArgs = rmp_serde::from_slice(&got).unwrap();
        assert_eq!(back, args);
    }

    #[test]
    fn a_nil_meta_is_msgpack_nil_and_decodes_empty() {
        let args = DownloadFileArgs {
            file_name: "x".into(),
            meta: HashMap::new(),
        };
        let got = rmp_serde::to_vec_named(&args).unwrap();
        assert_eq!(got, b"\x82\xa8FileName\xa1x\xa4Meta\xc0");
        let back: DownloadFileArgs = rmp_serde::from_slice(&got).unwrap();
        assert_eq!(back, args);
    }

    #[test]
    fn the_token_is_msgpack_bin() {
        let reply = FileTransferReply {
            token: vec![1, 2, 3],
            addr: "127.0.0.1:9000".into(),
        };
        let got = rmp_serde::to_vec_named(&reply).unwrap();
        let mut want = b"\x82\xa5Token\xc4\x03\x01\x02\x03\xa4Addr\xae".to_vec();
        want.extend_from_slice(b"127.0.0.1:9000");
        assert_eq!(got, want);
        let back: FileTransferReply = rmp_serde::from_slice(&got).unwrap();
        assert_eq!(back, reply);
        let stream: StreamServiceReply = rmp_serde::from_slice(&got).unwrap();
        assert_eq!(stream.token, reply.token);
    }

    /// Go's encoding/json with the json tags and omitempty; `[]byte` as base64.
    #[test]
    fn json_uses_gos_tags_and_omits_empty_fields() {
        let args = FileTransferArgs {
            file_name: "a.txt".into(),
            file_size: 5,
            meta: meta(),
        };
        assert_eq!(
            serde_json::to_string(&args).unwrap(),
            r#"{"file_name":"a.txt","file_size":5,"meta":{"k":"v"}}"#
        );
        let empty = StreamServiceArgs::default();
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
        let reply = StreamServiceReply {
            token: vec![0xff, 0x00, 0x10],
            addr: "127.0.0.1:9000".into(),
        };
        let json = serde_json::to_string(&reply).unwrap();
        assert_eq!(json, r#"{"token":"/wAQ","addr":"127.0.0.1:9000"}"#);
        assert_eq!(
            serde_json::from_str::<StreamServiceReply>(&json).unwrap(),
            reply
        );
        let back: FileTransferArgs =
            serde_json::from_str(r#"{"file_name":"a.txt","file_size":5,"meta":null}"#).unwrap();
        assert_eq!(back.file_name, "a.txt");
        assert!(back.meta.is_empty());
    }

    #[test]
    fn a_token_that_is_not_base64_is_refused() {
        let e = serde_json::from_str::<FileTransferReply>(r#"{"token":"***"}"#).unwrap_err();
        assert!(e.to_string().contains("base64"), "{e}");
    }
}
