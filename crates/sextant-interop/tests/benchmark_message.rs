//! The hand-written BenchmarkMessage matches what Go's rpcx-benchmark puts on the wire.

use prost::Message;
use sextant_interop::BenchmarkMessage;

fn captured_payload() -> bytes::Bytes {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/wire/go-req-hello-say-protobuf.hex"
    );
    let hex = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (the Go rpcx captures belong in the repository's testdata/wire)"));
    let frame = hex::decode(hex.trim()).unwrap();
    sextant::protocol::Message::parse(frame.into())
        .unwrap()
        .payload
}

#[test]
fn filled_message_is_the_captured_one() {
    let payload = captured_payload();
    assert_eq!(payload.len(), 581);
    let filled = BenchmarkMessage::filled().encode_to_vec();
    assert_eq!(filled, payload[..]);
    let decoded = BenchmarkMessage::decode(payload.clone()).unwrap();
    assert_eq!(decoded, BenchmarkMessage::filled());
    assert_eq!(decoded.encode_to_vec(), payload[..]);
}
