//! [`prepare_args`] encodes exactly like rpcx-benchmark's Go client: the payload of the `Hello.Say`
//! request Go rpcx put on the wire (`testdata/wire/go-req-hello-say-protobuf.hex` in the
//! repository).

use std::path::Path;

use prost::Message;
use sextant_bench_driver::message::{prepare_args, ENCODED_LEN};
use sextant_bench_driver::BenchmarkMessage;

/// The rpcx request `Hello.Say` that Go rpcx sent, protobuf-serialized.
fn captured_frame() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/wire/go-req-hello-say-protobuf.hex");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the Go rpcx captures belong in the repository's testdata/wire)",
            path.display()
        )
    });
    hex::decode(text.trim()).expect("valid hex")
}

/// Returns the payload, the last length-prefixed field of an rpcx frame (header: 16 bytes, then
/// service path, service method, metadata and payload, each after a big-endian u32 length).
fn rpcx_payload(frame: &[u8]) -> &[u8] {
    let mut rest = &frame[16..];
    let mut field = &rest[..0];
    for _ in 0..4 {
        let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        field = &rest[4..4 + len];
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty(), "payload must be the last field");
    field
}

#[test]
fn prepare_args_encodes_like_go_rpcx_benchmark() {
    let frame = captured_frame();
    let payload = rpcx_payload(&frame);
    assert_eq!(payload.len(), ENCODED_LEN);

    let args = prepare_args();
    assert_eq!(args.encoded_len(), ENCODED_LEN);
    assert_eq!(args.encode_to_vec(), payload, "byte-exact with Go");
    assert_eq!(BenchmarkMessage::decode(payload).expect("decodes"), args);
    assert_eq!(
        BenchmarkMessage::decode(payload)
            .expect("decodes")
            .encode_to_vec(),
        payload,
        "re-encodes byte-exact"
    );
}
