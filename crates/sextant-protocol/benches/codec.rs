//! Benchmarks of the wire format on messages captured from Go rpcx.
//!
//! Run with `cargo bench -p sextant-protocol`. The captures are read from the repository's
//! `testdata/wire` (`../../testdata/wire` from this crate).

use std::hint::black_box;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde::{Deserialize, Serialize};
use sextant_protocol::compress;
use sextant_protocol::{Codecs, CompressType, Decode, Decoder, Encode, Message, SerializeType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Args {
    a: i64,
    b: i64,
}

fn capture(name: &str) -> Bytes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/wire")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the Go rpcx capture {} ({e}); the benches need testdata/wire",
            path.display()
        )
    });
    Bytes::from(hex::decode(text.trim()).expect("hex capture"))
}

/// Encoding into a reused buffer, decoding with the incremental decoder and with `parse`.
fn bench_frame(c: &mut Criterion, group_name: &str, file: &str) {
    let wire = capture(file);
    let msg = Message::parse(wire.clone()).expect("capture parses");
    let mut g = c.benchmark_group(group_name);
    g.throughput(Throughput::Bytes(wire.len() as u64));
    let mut buf = BytesMut::with_capacity(wire.len() * 2);
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&msg).encode(&mut buf).unwrap();
            black_box(buf.len())
        })
    });
    g.bench_function("decode", |b| {
        let mut dec = Decoder::default();
        b.iter_batched_ref(
            || BytesMut::from(&wire[..]),
            |src| dec.decode(black_box(src)).unwrap().unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("parse", |b| {
        b.iter(|| Message::parse(black_box(wire.clone())).unwrap())
    });
    g.finish();
}

fn arith_mul(c: &mut Criterion) {
    bench_frame(
        c,
        "arith_mul_msgpack_request",
        "go-req-arith-mul-msgpack-meta.hex",
    );
}

fn hello_say(c: &mut Criterion) {
    bench_frame(
        c,
        "hello_say_protobuf_581B_request",
        "go-req-hello-say-protobuf.hex",
    );
}

fn msgpack_args(c: &mut Criterion) {
    let codecs = Codecs::new();
    let args = Args { a: 10, b: 20 };
    let payload = Message::parse(capture("go-req-arith-mul-msgpack-meta.hex"))
        .unwrap()
        .payload;
    let mut g = c.benchmark_group("msgpack_args");
    let mut buf = BytesMut::with_capacity(64);
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&args)
                .encode(SerializeType::MSGPACK, &codecs, &mut buf)
                .unwrap();
            black_box(buf.len())
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| Args::decode(SerializeType::MSGPACK, &codecs, black_box(&payload)).unwrap())
    });
    g.finish();
}

/// 2 KiB of text-like data: words from a small vocabulary picked by a fixed LCG.
fn text_2k() -> Vec<u8> {
    const WORDS: &[&str] = &[
        "rpcx",
        "sextant",
        "Arith",
        "Mul",
        "service",
        "method",
        "payload",
        "metadata",
        "gzip",
        "request",
        "response",
        "heartbeat",
        "{\"A\":",
        "10,",
        "\"B\":",
        "20}",
        "trace",
        "abc123",
    ];
    let mut out = Vec::with_capacity(2048 + 16);
    let mut x: u32 = 0x2545_f491;
    while out.len() < 2048 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        out.extend_from_slice(WORDS[(x >> 16) as usize % WORDS.len()].as_bytes());
        out.push(b' ');
    }
    out.truncate(2048);
    out
}

fn gzip_2k(c: &mut Criterion) {
    let data = text_2k();
    let z = compress::compress(CompressType::GZIP, &data).unwrap();
    let mut g = c.benchmark_group("gzip_2KiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    let mut buf = BytesMut::with_capacity(4096);
    g.bench_function("compress", |b| {
        b.iter(|| {
            buf.clear();
            compress::compress_into(CompressType::GZIP, black_box(&data), &mut buf).unwrap();
            black_box(buf.len())
        })
    });
    g.bench_function("decompress", |b| {
        b.iter(|| compress::decompress(CompressType::GZIP, black_box(z.clone()), 1 << 20).unwrap())
    });
    g.finish();
}

criterion_group!(benches, arith_mul, hello_say, msgpack_args, gzip_2k);
criterion_main!(benches);
