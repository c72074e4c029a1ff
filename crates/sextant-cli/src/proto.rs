//! Protocol Buffers for `sextant call --codec protobuf`: the .proto file compiled at run time by
//! protox (a pure-Rust compiler, no `protoc`), messages built from JSON and printed as JSON with
//! prost-reflect, as grpcurl does with descriptors. The JSON is protobuf's canonical JSON
//! mapping (field names in lowerCamelCase or as declared, 64-bit integers as strings or
//! numbers, enums by name).

use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use crate::CliError;

/// The request and reply message types of a call.
#[derive(Debug)]
pub struct ProtoCodec {
    request: MessageDescriptor,
    reply: MessageDescriptor,
}

impl ProtoCodec {
    /// Compiles `file` (imports looked up in `includes`, else in its own directory) and finds
    /// the messages named `request` and `reply` (default: `request`), by full name
    /// (`pkg.Message`) or by their own name when that is unique.
    pub fn compile(
        file: &Path,
        includes: &[PathBuf],
        request: &str,
        reply: Option<&str>,
    ) -> Result<ProtoCodec, CliError> {
        let mut includes = includes.to_vec();
        if includes.is_empty() {
            includes.push(
                file.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf(),
            );
        }
        let fds = protox::compile([file], &includes)
            .map_err(|e| CliError::usage(format!("cannot compile {}: {e}", file.display())))?;
        let pool = DescriptorPool::from_file_descriptor_set(fds)
            .map_err(|e| CliError::usage(format!("{}: {e}", file.display())))?;
        let request = find(&pool, request, file)?;
        let reply = match reply {
            Some(r) => find(&pool, r, file)?,
            None => request.clone(),
        };
        Ok(ProtoCodec { request, reply })
    }

    /// The request message from JSON, encoded.
    pub fn encode_json(&self, json: &[u8]) -> Result<Vec<u8>, CliError> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let msg = DynamicMessage::deserialize(self.request.clone(), &mut de)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|e| {
                CliError::usage(format!(
                    "the arguments do not fit {}: {e}",
                    self.request.full_name()
                ))
            })?;
        Ok(msg.encode_to_vec())
    }

    /// The reply message decoded, as JSON (fields at their defaults left out, as protobuf's
    /// JSON mapping does).
    pub fn decode_json(&self, payload: &[u8]) -> Result<serde_json::Value, String> {
        let msg = DynamicMessage::decode(self.reply.clone(), payload)
            .map_err(|e| format!("not a {}: {e}", self.reply.full_name()))?;
        msg.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
            .map_err(|e| e.to_string())
    }
}

fn find(pool: &DescriptorPool, name: &str, file: &Path) -> Result<MessageDescriptor, CliError> {
    if let Some(m) = pool.get_message_by_name(name.trim_start_matches('.')) {
        return Ok(m);
    }
    let by_name: Vec<MessageDescriptor> =
        pool.all_messages().filter(|m| m.name() == name).collect();
    match by_name.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            let known: Vec<String> = pool
                .all_messages()
                .map(|m| m.full_name().to_string())
                .take(20)
                .collect();
            Err(CliError::usage(format!(
                "{} declares no message {name:?}; it has {}",
                file.display(),
                known.join(", ")
            )))
        }
        many => Err(CliError::usage(format!(
            "{name:?} is ambiguous in {}: {}",
            file.display(),
            many.iter()
                .map(|m| m.full_name().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_encode_decode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("arith.proto");
        std::fs::write(
            &file,
            "syntax = \"proto3\";\npackage demo;\nmessage Args { int64 a = 1; int64 b = 2; \
             string note = 3; }\nmessage Reply { int64 c = 1; }\n",
        )
        .unwrap();
        let codec = ProtoCodec::compile(&file, &[], "Args", Some("demo.Reply")).unwrap();
        let bytes = codec.encode_json(br#"{"a": 7, "b": "6"}"#).unwrap();
        assert_eq!(bytes, [0x08, 7, 0x10, 6]);
        assert_eq!(
            codec.decode_json(&[0x08, 42]).unwrap(),
            serde_json::json!({"c": "42"})
        );
        // JSON that does not fit, a missing type, a file that does not compile.
        let e = codec.encode_json(br#"{"a": "x"}"#).unwrap_err();
        assert!(e.message.contains("do not fit demo.Args"), "{}", e.message);
        let e = codec.encode_json(br#"{"nope": 1}"#).unwrap_err();
        assert_eq!(e.code, 2);
        let e = ProtoCodec::compile(&file, &[], "Missing", None).unwrap_err();
        assert!(e.message.contains("demo.Args"), "{}", e.message);
        std::fs::write(&file, "syntax = \"proto3\"; message {").unwrap();
        let e = ProtoCodec::compile(&file, &[], "Args", None).unwrap_err();
        assert!(e.message.contains("cannot compile"), "{}", e.message);
    }
}
