//! Arbitrary bytes into the incremental decoder, with small limits.
//!
//! For every message that comes out: encoding it and parsing it again gives the same message and
//! exactly the bytes consumed, and its payload goes through `decompress` under a small limit.
//! The same input fed in chunks (size taken from the first byte) gives the same outcomes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sextant_protocol::{compress, Decoder, Limits, Message, ProtocolError};

const MAX_MESSAGE: usize = 64 << 10;
const MAX_DECOMPRESSED: usize = 64 << 10;

/// What the decoder produced, in order: messages and errors (as their debug text).
#[derive(Debug, PartialEq)]
enum Event {
    Message(Message),
    Error(String),
    EofError(String),
}

fn check_message(m: &Message, consumed: &[u8]) {
    let bytes = m.to_bytes().expect("a decoded message re-encodes");
    assert_eq!(&bytes[..], consumed, "re-encoding differs from the input");
    let again = Message::parse(bytes.clone()).expect("a re-encoded message parses");
    assert_eq!(&again, m);
    assert_eq!(again.to_bytes().unwrap(), bytes);
    assert!(bytes.len() <= MAX_MESSAGE);
    match compress::decompress(
        m.header.compress_type(),
        m.payload.clone(),
        MAX_DECOMPRESSED,
    ) {
        Ok(plain) => assert!(plain.len() <= MAX_DECOMPRESSED.max(m.payload.len())),
        Err(e) => assert!(!e.closes_connection(), "{e:?}"),
    }
}

/// Drains every whole message out of `buf`. Returns false once the stream is unusable.
fn drain(dec: &mut Decoder, buf: &mut BytesMut, events: &mut Vec<Event>) -> bool {
    // Each step that does not stop consumes at least one 16-byte header.
    for _ in 0..=buf.len() / 16 + 1 {
        let before = buf.clone();
        match dec.decode(buf) {
            Ok(Some(m)) => {
                check_message(&m, &before[..before.len() - buf.len()]);
                events.push(Event::Message(m));
            }
            Ok(None) => return true,
            Err(e) => {
                let closes = e.closes_connection();
                if !closes {
                    // The bad frame was consumed and its header is known.
                    assert!(buf.len() < before.len());
                    assert!(matches!(e, ProtocolError::InvalidUtf8 { .. }) == e.header().is_some());
                }
                events.push(Event::Error(format!("{e:?}")));
                if closes {
                    return false;
                }
            }
        }
    }
    true
}

fn run(data: &[u8], chunk: usize) -> Vec<Event> {
    let mut dec = Decoder::new(Limits::new(MAX_MESSAGE, MAX_DECOMPRESSED));
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        if !drain(&mut dec, &mut buf, &mut events) {
            return events;
        }
    }
    match dec.decode_eof(&mut buf) {
        Ok(None) => assert!(buf.is_empty()),
        Ok(Some(_)) => unreachable!("drain took every whole message"),
        Err(e) => events.push(Event::EofError(format!("{e:?}"))),
    }
    events
}

fuzz_target!(|data: &[u8]| {
    let whole = run(data, data.len());
    let chunk = data.first().map_or(1, |b| (*b as usize % 61) + 1);
    let pieces = run(data, chunk);
    assert_eq!(whole, pieces, "decoding in chunks of {chunk} differs");
    // Parsing the input directly as one frame never panics either.
    let _ = Message::parse(bytes::Bytes::copy_from_slice(data));
});
