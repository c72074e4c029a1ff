//! sextant's client calls the interop server with each codec: msgpack (rpcx's default), JSON,
//! protobuf, raw bytes, Thrift and a custom codec registered on both ends, with and without gzip.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use sextant::protocol::codec::{Codec, CodecError, Codecs, DecodeVisitor};
use sextant::{
    CallOptions, Client, ClientOptions, CompressType, Context, Proto, Raw, SerializeType, Server,
    ServiceError, Thrift,
};
use sextant_interop::{Args, BenchmarkMessage, Reply};
use thrift::protocol::{
    TFieldIdentifier, TInputProtocol, TOutputProtocol, TSerializable, TStructIdentifier, TType,
};

async fn start(server: Server) -> (Server, Client, Client) {
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let mut codecs = Codecs::new();
    codecs.register(7, MsgpackArrays).unwrap();
    let client = Client::connect(&addr, ClientOptions::default().codecs(codecs))
        .await
        .unwrap();
    let plain = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    (server, client, plain)
}

fn interop() -> Server {
    sextant_interop::interop_server(None).unwrap()
}

#[tokio::test]
async fn msgpack_json_and_functions() {
    let (server, client, _) = start(interop()).await;
    for st in [SerializeType::MSGPACK, SerializeType::JSON] {
        for service in ["Arith", "ArithFn"] {
            let opts = CallOptions::new().serialize_type(st);
            let r = client
                .call_with::<_, Reply>(service, "Mul", &Args { a: 10, b: 20 }, opts)
                .await
                .unwrap();
            assert_eq!(r.reply.c, 200, "{service} over {st:?}");
            let opts = CallOptions::new().serialize_type(st);
            let e = client
                .call_with::<_, Reply>(service, "Div", &Args { a: 1, b: 0 }, opts)
                .await
                .unwrap_err();
            assert_eq!(e.as_service_error().unwrap().message(), "divide by zero");
        }
    }
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn protobuf_hello_say() {
    let (server, client, _) = start(interop()).await;
    let opts = CallOptions::new().serialize_type(SerializeType::PROTOBUF);
    let r = client
        .call_with::<_, Proto<BenchmarkMessage>>(
            "Hello",
            "Say",
            &Proto(sextant_interop::prepare_args()),
            opts,
        )
        .await
        .unwrap();
    assert_eq!(r.reply.0.field1, "OK");
    assert_eq!(r.reply.0.field2, 100);
    assert_eq!(r.reply.0.field3, 100000);
    // A serde type sent as protobuf is refused on the client, before anything is sent.
    let opts = CallOptions::new().serialize_type(SerializeType::PROTOBUF);
    let e = client
        .call_with::<_, Reply>("Arith", "Mul", &Args::default(), opts)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Proto"), "{e}");
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn raw_bytes_and_gzip_both_ways() {
    let (server, client, _) = start(interop()).await;
    let opts = CallOptions::new().serialize_type(SerializeType::NONE);
    let r = client
        .call_with::<_, Raw>("Echo", "Echo", &Raw::from(&b"hello"[..]), opts)
        .await
        .unwrap();
    assert_eq!(&r.reply.0[..], b"hello");

    // Large enough to be compressed (over 1024 bytes); the reply comes back compressed too.
    let big = Bytes::from("rpcx".repeat(3000));
    let opts = CallOptions::new()
        .serialize_type(SerializeType::NONE)
        .compress_type(CompressType::GZIP);
    let r = client
        .call_with::<_, Raw>("Echo", "Echo", &Raw(big.clone()), opts)
        .await
        .unwrap();
    assert_eq!(r.reply.0, big);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// rpcx-examples' Args/Reply as Thrift structs, written the way the Thrift compiler generates them.
#[derive(Debug, Default, PartialEq)]
struct ThriftArgs {
    a: i64,
    b: i64,
}

#[derive(Debug, Default, PartialEq)]
struct ThriftReply {
    c: i64,
}

fn read_i64_fields(i: &mut dyn TInputProtocol) -> thrift::Result<[i64; 2]> {
    let mut out = [0i64; 2];
    i.read_struct_begin()?;
    loop {
        let f = i.read_field_begin()?;
        if f.field_type == TType::Stop {
            break;
        }
        match (f.id, f.field_type) {
            (Some(id @ 1..=2), TType::I64) => out[id as usize - 1] = i.read_i64()?,
            _ => i.skip(f.field_type)?,
        }
        i.read_field_end()?;
    }
    i.read_struct_end()?;
    Ok(out)
}

fn write_i64_fields(
    o: &mut dyn TOutputProtocol,
    name: &str,
    fields: &[(&str, i64)],
) -> thrift::Result<()> {
    o.write_struct_begin(&TStructIdentifier::new(name))?;
    for (n, (fname, v)) in fields.iter().enumerate() {
        o.write_field_begin(&TFieldIdentifier::new(*fname, TType::I64, n as i16 + 1))?;
        o.write_i64(*v)?;
        o.write_field_end()?;
    }
    o.write_field_stop()?;
    o.write_struct_end()
}

impl TSerializable for ThriftArgs {
    fn read_from_in_protocol(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        let [a, b] = read_i64_fields(i)?;
        Ok(ThriftArgs { a, b })
    }
    fn write_to_out_protocol(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        write_i64_fields(o, "Args", &[("A", self.a), ("B", self.b)])
    }
}

impl TSerializable for ThriftReply {
    fn read_from_in_protocol(i: &mut dyn TInputProtocol) -> thrift::Result<Self> {
        let [c, _] = read_i64_fields(i)?;
        Ok(ThriftReply { c })
    }
    fn write_to_out_protocol(&self, o: &mut dyn TOutputProtocol) -> thrift::Result<()> {
        write_i64_fields(o, "Reply", &[("C", self.c)])
    }
}

#[tokio::test]
async fn thrift_struct() {
    let server = Server::new();
    server
        .register_fn(
            "ThriftArith",
            "Mul",
            |_cx: Context, a: Thrift<ThriftArgs>| async move {
                Ok::<_, ServiceError>(Thrift(ThriftReply { c: a.0.a * a.0.b }))
            },
        )
        .unwrap();
    let (server, client, _) = start(server).await;
    let opts = CallOptions::new().serialize_type(SerializeType::THRIFT);
    let r = client
        .call_with::<_, Thrift<ThriftReply>>(
            "ThriftArith",
            "Mul",
            &Thrift(ThriftArgs { a: 6, b: 7 }),
            opts,
        )
        .await
        .unwrap();
    assert_eq!(r.reply.0.c, 42);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// A custom codec: msgpack with structs as arrays, under id 7.
struct MsgpackArrays;

impl Codec for MsgpackArrays {
    fn name(&self) -> &'static str {
        "msgpack-arrays"
    }
    fn encode(
        &self,
        value: &dyn erased_serde::Serialize,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let mut ser = rmp_serde::Serializer::new(dst.writer());
        value
            .erased_serialize(&mut <dyn erased_serde::Serializer>::erase(&mut ser))
            .map_err(|e| CodecError::Encode {
                codec: "msgpack-arrays",
                message: e.to_string(),
            })
    }
    fn decode(&self, payload: &[u8], visit: &mut DecodeVisitor<'_>) -> Result<(), CodecError> {
        let mut de = rmp_serde::Deserializer::from_read_ref(payload);
        visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de)).map_err(|e| {
            CodecError::Decode {
                codec: "msgpack-arrays",
                message: e.to_string(),
            }
        })
    }
}

#[tokio::test]
async fn custom_codec_registered_per_instance() {
    let server = Server::builder().codec(7, MsgpackArrays).unwrap().build();
    sextant_interop::register_all(&server).unwrap();
    let (server, client, plain) = start(server).await;
    let st = SerializeType::new(7).unwrap();
    let r = client
        .call_with::<_, Reply>(
            "Arith",
            "Mul",
            &Args { a: 3, b: 5 },
            CallOptions::new().serialize_type(st),
        )
        .await
        .unwrap();
    assert_eq!(r.reply.c, 15);
    // A client without the codec cannot even encode the call.
    let e = plain
        .call_with::<_, Reply>(
            "Arith",
            "Mul",
            &Args { a: 3, b: 5 },
            CallOptions::new().serialize_type(st),
        )
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "codec error: can not find codec for 7");
    // A server without the codec answers with rpcx's error text.
    let (other, client2, _) = start(interop()).await;
    let e = client2
        .call_with::<_, Reply>(
            "Arith",
            "Mul",
            &Args { a: 3, b: 5 },
            CallOptions::new().serialize_type(st),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.as_service_error().unwrap().message(),
        "can not find codec for 7"
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
    other.shutdown(Duration::from_secs(2)).await.unwrap();
}
