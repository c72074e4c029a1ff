//! The rpcx-benchmark `BenchmarkMessage` (proto2) and the `Hello.Say` handler.
//!
//! The struct is written by hand with `#[derive(prost::Message)]` so that no `protoc` is needed;
//! it mirrors rpcx-benchmark's `benchmark.proto` (a copy is in the repository's
//! `testdata/benchmark.proto`) field for field (tags, proto2 labels and
//! declared defaults). It also derives serde so that serde-based peers (tarpc) carry the very
//! same value.

use serde::{Deserialize, Serialize};

/// The gRPC path of `Hello.Say` (`package proto; service Hello { rpc Say ... }`).
pub const GRPC_SAY_PATH: &str = "/proto.Hello/Say";

/// The rpcx service path of the benchmark service.
pub const SERVICE_PATH: &str = "Hello";

/// The rpcx service method of the benchmark service.
pub const SERVICE_METHOD: &str = "Say";

/// Size in bytes of [`prepare_args`] encoded as protobuf; the same as the payload Go rpcx put on
/// the wire in `testdata/wire/go-req-hello-say-protobuf.hex` (checked by `tests/go_capture.rs`).
pub const ENCODED_LEN: usize = 581;

/// The string rpcx-benchmark's client puts in every string field.
pub const FILL_STRING: &str = "许多往事在眼前一幕一幕，变的那麼模糊";

/// The value rpcx-benchmark's client puts in every integer field.
pub const FILL_INT: i32 = 100_000;

/// `field1` of a reply, as set by the server.
pub const REPLY_FIELD1: &str = "OK";

/// `field2` of a reply, as set by the server.
pub const REPLY_FIELD2: i32 = 100;

/// `message BenchmarkMessage` of rpcx-benchmark's `proto/benchmark.proto` (proto2).
///
/// Required fields are plain values, optional ones are `Option`s; the declared proto2 defaults
/// are kept so that prost's getters return what protoc-generated code would.
#[allow(missing_docs)] // the fields are named after their tags, as in the .proto
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct BenchmarkMessage {
    #[prost(string, required, tag = "1")]
    pub field1: String,
    #[prost(string, optional, tag = "9")]
    pub field9: Option<String>,
    #[prost(string, optional, tag = "18")]
    pub field18: Option<String>,
    #[prost(bool, optional, tag = "80", default = "false")]
    pub field80: Option<bool>,
    #[prost(bool, optional, tag = "81", default = "true")]
    pub field81: Option<bool>,
    #[prost(int32, required, tag = "2")]
    pub field2: i32,
    #[prost(int32, required, tag = "3")]
    pub field3: i32,
    #[prost(int32, optional, tag = "280")]
    pub field280: Option<i32>,
    #[prost(int32, optional, tag = "6", default = "0")]
    pub field6: Option<i32>,
    #[prost(int64, optional, tag = "22")]
    pub field22: Option<i64>,
    #[prost(string, optional, tag = "4")]
    pub field4: Option<String>,
    #[prost(fixed64, repeated, packed = "false", tag = "5")]
    pub field5: Vec<u64>,
    #[prost(bool, optional, tag = "59", default = "false")]
    pub field59: Option<bool>,
    #[prost(string, optional, tag = "7")]
    pub field7: Option<String>,
    #[prost(int32, optional, tag = "16")]
    pub field16: Option<i32>,
    #[prost(int32, optional, tag = "130", default = "0")]
    pub field130: Option<i32>,
    #[prost(bool, optional, tag = "12", default = "true")]
    pub field12: Option<bool>,
    #[prost(bool, optional, tag = "17", default = "true")]
    pub field17: Option<bool>,
    #[prost(bool, optional, tag = "13", default = "true")]
    pub field13: Option<bool>,
    #[prost(bool, optional, tag = "14", default = "true")]
    pub field14: Option<bool>,
    #[prost(int32, optional, tag = "104", default = "0")]
    pub field104: Option<i32>,
    #[prost(int32, optional, tag = "100", default = "0")]
    pub field100: Option<i32>,
    #[prost(int32, optional, tag = "101", default = "0")]
    pub field101: Option<i32>,
    #[prost(string, optional, tag = "102")]
    pub field102: Option<String>,
    #[prost(string, optional, tag = "103")]
    pub field103: Option<String>,
    #[prost(int32, optional, tag = "29", default = "0")]
    pub field29: Option<i32>,
    #[prost(bool, optional, tag = "30", default = "false")]
    pub field30: Option<bool>,
    #[prost(int32, optional, tag = "60", default = "-1")]
    pub field60: Option<i32>,
    #[prost(int32, optional, tag = "271", default = "-1")]
    pub field271: Option<i32>,
    #[prost(int32, optional, tag = "272", default = "-1")]
    pub field272: Option<i32>,
    #[prost(int32, optional, tag = "150")]
    pub field150: Option<i32>,
    #[prost(int32, optional, tag = "23", default = "0")]
    pub field23: Option<i32>,
    #[prost(bool, optional, tag = "24", default = "false")]
    pub field24: Option<bool>,
    #[prost(int32, optional, tag = "25", default = "0")]
    pub field25: Option<i32>,
    #[prost(bool, optional, tag = "78")]
    pub field78: Option<bool>,
    #[prost(int32, optional, tag = "67", default = "0")]
    pub field67: Option<i32>,
    #[prost(int32, optional, tag = "68")]
    pub field68: Option<i32>,
    #[prost(int32, optional, tag = "128", default = "0")]
    pub field128: Option<i32>,
    #[prost(string, optional, tag = "129", default = "xxxxxxxxxxxxxxxxxxxxx")]
    pub field129: Option<String>,
    #[prost(int32, optional, tag = "131", default = "0")]
    pub field131: Option<i32>,
}

/// The request every benchmark client sends, filled the way rpcx-benchmark's Go client fills
/// it (`prepareArgs`): every integer field 100000, every bool `true`, every string
/// [`FILL_STRING`], the repeated `field5` left empty. Encodes to [`ENCODED_LEN`] bytes, equal
/// to the payload of the captured Go rpcx request.
pub fn prepare_args() -> BenchmarkMessage {
    let s = || Some(FILL_STRING.to_owned());
    let i = Some(FILL_INT);
    let b = Some(true);
    BenchmarkMessage {
        field1: FILL_STRING.to_owned(),
        field9: s(),
        field18: s(),
        field80: b,
        field81: b,
        field2: FILL_INT,
        field3: FILL_INT,
        field280: i,
        field6: i,
        field22: Some(i64::from(FILL_INT)),
        field4: s(),
        field5: Vec::new(),
        field59: b,
        field7: s(),
        field16: i,
        field130: i,
        field12: b,
        field17: b,
        field13: b,
        field14: b,
        field104: i,
        field100: i,
        field101: i,
        field102: s(),
        field103: s(),
        field29: i,
        field30: b,
        field60: i,
        field271: i,
        field272: i,
        field150: i,
        field23: i,
        field24: b,
        field25: i,
        field78: b,
        field67: i,
        field68: i,
        field128: i,
        field129: s(),
        field131: i,
    }
}

/// The server side of `Hello.Say`: sets `field1 = "OK"` and `field2 = 100` and returns the
/// message, as rpcx-benchmark's servers do.
pub fn say(mut message: BenchmarkMessage) -> BenchmarkMessage {
    message.field1.clear();
    message.field1.push_str(REPLY_FIELD1);
    message.field2 = REPLY_FIELD2;
    message
}

/// A reply that is not what [`say`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadReply {
    /// The `field1` that came back.
    pub field1: String,
    /// The `field2` that came back.
    pub field2: i32,
}

impl std::fmt::Display for BadReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unexpected reply: field1 = {:?}, field2 = {} (want {:?}, {})",
            self.field1, self.field2, REPLY_FIELD1, REPLY_FIELD2
        )
    }
}

impl std::error::Error for BadReply {}

/// Checks that `reply` is what the server's [`say`] produces (rpcx-benchmark counts a call as
/// OK only when `field1 == "OK"`; this also checks `field2`).
pub fn check_reply(reply: &BenchmarkMessage) -> Result<(), BadReply> {
    if reply.field1 == REPLY_FIELD1 && reply.field2 == REPLY_FIELD2 {
        Ok(())
    } else {
        Err(BadReply {
            field1: reply.field1.clone(),
            field2: reply.field2,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn say_sets_ok_and_100() {
        let reply = say(prepare_args());
        assert_eq!(check_reply(&reply), Ok(()));
        assert_eq!(reply.field3, FILL_INT);
        assert!(check_reply(&prepare_args()).is_err());
    }

    #[test]
    fn proto2_defaults_are_kept() {
        let empty = BenchmarkMessage::default();
        assert!(empty.field81());
        assert_eq!(empty.field60(), -1);
        assert_eq!(empty.field129(), "xxxxxxxxxxxxxxxxxxxxx");
    }
}
