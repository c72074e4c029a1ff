//! rpcx-benchmark's proto2 `BenchmarkMessage` (testdata/benchmark.proto), written out for
//! `prost` by hand so that building needs no `protoc`.

/// rpcx-benchmark's message: 581 bytes when filled as its client fills it ([`BenchmarkMessage::filled`]).
#[derive(Clone, PartialEq, ::prost::Message, ::serde::Serialize, ::serde::Deserialize)]
pub struct BenchmarkMessage {
    /// Field 1 (required string).
    #[prost(string, required, tag = "1")]
    pub field1: String,
    /// Field 9 (optional string).
    #[prost(string, optional, tag = "9")]
    pub field9: ::core::option::Option<String>,
    /// Field 18 (optional string).
    #[prost(string, optional, tag = "18")]
    pub field18: ::core::option::Option<String>,
    /// Field 80 (optional bool).
    #[prost(bool, optional, tag = "80", default = "false")]
    pub field80: ::core::option::Option<bool>,
    /// Field 81 (optional bool).
    #[prost(bool, optional, tag = "81", default = "true")]
    pub field81: ::core::option::Option<bool>,
    /// Field 2 (required int32).
    #[prost(int32, required, tag = "2")]
    pub field2: i32,
    /// Field 3 (required int32).
    #[prost(int32, required, tag = "3")]
    pub field3: i32,
    /// Field 280 (optional int32).
    #[prost(int32, optional, tag = "280")]
    pub field280: ::core::option::Option<i32>,
    /// Field 6 (optional int32).
    #[prost(int32, optional, tag = "6", default = "0")]
    pub field6: ::core::option::Option<i32>,
    /// Field 22 (optional int64).
    #[prost(int64, optional, tag = "22")]
    pub field22: ::core::option::Option<i64>,
    /// Field 4 (optional string).
    #[prost(string, optional, tag = "4")]
    pub field4: ::core::option::Option<String>,
    /// Field 5 (repeated fixed64).
    #[prost(fixed64, repeated, packed = "false", tag = "5")]
    pub field5: ::prost::alloc::vec::Vec<u64>,
    /// Field 59 (optional bool).
    #[prost(bool, optional, tag = "59", default = "false")]
    pub field59: ::core::option::Option<bool>,
    /// Field 7 (optional string).
    #[prost(string, optional, tag = "7")]
    pub field7: ::core::option::Option<String>,
    /// Field 16 (optional int32).
    #[prost(int32, optional, tag = "16")]
    pub field16: ::core::option::Option<i32>,
    /// Field 130 (optional int32).
    #[prost(int32, optional, tag = "130", default = "0")]
    pub field130: ::core::option::Option<i32>,
    /// Field 12 (optional bool).
    #[prost(bool, optional, tag = "12", default = "true")]
    pub field12: ::core::option::Option<bool>,
    /// Field 17 (optional bool).
    #[prost(bool, optional, tag = "17", default = "true")]
    pub field17: ::core::option::Option<bool>,
    /// Field 13 (optional bool).
    #[prost(bool, optional, tag = "13", default = "true")]
    pub field13: ::core::option::Option<bool>,
    /// Field 14 (optional bool).
    #[prost(bool, optional, tag = "14", default = "true")]
    pub field14: ::core::option::Option<bool>,
    /// Field 104 (optional int32).
    #[prost(int32, optional, tag = "104", default = "0")]
    pub field104: ::core::option::Option<i32>,
    /// Field 100 (optional int32).
    #[prost(int32, optional, tag = "100", default = "0")]
    pub field100: ::core::option::Option<i32>,
    /// Field 101 (optional int32).
    #[prost(int32, optional, tag = "101", default = "0")]
    pub field101: ::core::option::Option<i32>,
    /// Field 102 (optional string).
    #[prost(string, optional, tag = "102")]
    pub field102: ::core::option::Option<String>,
    /// Field 103 (optional string).
    #[prost(string, optional, tag = "103")]
    pub field103: ::core::option::Option<String>,
    /// Field 29 (optional int32).
    #[prost(int32, optional, tag = "29", default = "0")]
    pub field29: ::core::option::Option<i32>,
    /// Field 30 (optional bool).
    #[prost(bool, optional, tag = "30", default = "false")]
    pub field30: ::core::option::Option<bool>,
    /// Field 60 (optional int32).
    #[prost(int32, optional, tag = "60", default = "-1")]
    pub field60: ::core::option::Option<i32>,
    /// Field 271 (optional int32).
    #[prost(int32, optional, tag = "271", default = "-1")]
    pub field271: ::core::option::Option<i32>,
    /// Field 272 (optional int32).
    #[prost(int32, optional, tag = "272", default = "-1")]
    pub field272: ::core::option::Option<i32>,
    /// Field 150 (optional int32).
    #[prost(int32, optional, tag = "150")]
    pub field150: ::core::option::Option<i32>,
    /// Field 23 (optional int32).
    #[prost(int32, optional, tag = "23", default = "0")]
    pub field23: ::core::option::Option<i32>,
    /// Field 24 (optional bool).
    #[prost(bool, optional, tag = "24", default = "false")]
    pub field24: ::core::option::Option<bool>,
    /// Field 25 (optional int32).
    #[prost(int32, optional, tag = "25", default = "0")]
    pub field25: ::core::option::Option<i32>,
    /// Field 78 (optional bool).
    #[prost(bool, optional, tag = "78")]
    pub field78: ::core::option::Option<bool>,
    /// Field 67 (optional int32).
    #[prost(int32, optional, tag = "67", default = "0")]
    pub field67: ::core::option::Option<i32>,
    /// Field 68 (optional int32).
    #[prost(int32, optional, tag = "68")]
    pub field68: ::core::option::Option<i32>,
    /// Field 128 (optional int32).
    #[prost(int32, optional, tag = "128", default = "0")]
    pub field128: ::core::option::Option<i32>,
    /// Field 129 (optional string).
    #[prost(string, optional, tag = "129", default = "xxxxxxxxxxxxxxxxxxxxx")]
    pub field129: ::core::option::Option<String>,
    /// Field 131 (optional int32).
    #[prost(int32, optional, tag = "131", default = "0")]
    pub field131: ::core::option::Option<i32>,
}

impl BenchmarkMessage {
    /// The text rpcx-benchmark's client puts in every string field.
    pub const TEXT: &'static str = "许多往事在眼前一幕一幕，变的那麼模糊";

    /// The message as rpcx-benchmark's client fills it: every string field [`Self::TEXT`], every
    /// integer 100000, every bool true, `field5` empty. Serialized, it is 581 bytes.
    pub fn filled() -> BenchmarkMessage {
        BenchmarkMessage {
            field1: Self::TEXT.to_string(),
            field9: Some(Self::TEXT.to_string()),
            field18: Some(Self::TEXT.to_string()),
            field80: Some(true),
            field81: Some(true),
            field2: 100000,
            field3: 100000,
            field280: Some(100000),
            field6: Some(100000),
            field22: Some(100000),
            field4: Some(Self::TEXT.to_string()),
            field5: Vec::new(),
            field59: Some(true),
            field7: Some(Self::TEXT.to_string()),
            field16: Some(100000),
            field130: Some(100000),
            field12: Some(true),
            field17: Some(true),
            field13: Some(true),
            field14: Some(true),
            field104: Some(100000),
            field100: Some(100000),
            field101: Some(100000),
            field102: Some(Self::TEXT.to_string()),
            field103: Some(Self::TEXT.to_string()),
            field29: Some(100000),
            field30: Some(true),
            field60: Some(100000),
            field271: Some(100000),
            field272: Some(100000),
            field150: Some(100000),
            field23: Some(100000),
            field24: Some(true),
            field25: Some(100000),
            field78: Some(true),
            field67: Some(100000),
            field68: Some(100000),
            field128: Some(100000),
            field129: Some(Self::TEXT.to_string()),
            field131: Some(100000),
        }
    }
}
