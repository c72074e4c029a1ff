//! Calls an rpcx server (a Go one, or `interop-server`) the way Go's rpcx client would: Arith.Mul
//! over msgpack and JSON, Hello.Say over protobuf, Echo with gzip.
//!
//! Run: `cargo run --example interop-client -- --addr 127.0.0.1:8972 [--auth TOKEN]`
//! Without `--addr` it starts its own interop server first.

use std::time::Duration;

use sextant::{CallOptions, Client, ClientOptions, CompressType, Proto, Raw, SerializeType};
use sextant_interop::{Args, BenchmarkMessage, Reply};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let mut addr = None;
    let mut auth = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next(),
            "--auth" => auth = args.next(),
            _ => {
                eprintln!("usage: interop-client [--addr HOST:PORT] [--auth TOKEN]");
                std::process::exit(2);
            }
        }
    }
    let mut own = None;
    let addr = match addr {
        Some(a) => a,
        None => {
            let s = sextant_interop::interop_server(auth.clone())?;
            let a = s.start("tcp@127.0.0.1:0").await?.to_string();
            own = Some(s);
            a
        }
    };
    let mut options = ClientOptions::default();
    if let Some(t) = auth {
        options = options.auth_token(t);
    }
    let client = Client::connect(addr.as_str(), options).await?;

    for st in [SerializeType::MSGPACK, SerializeType::JSON] {
        let r = client
            .call_with::<_, Reply>(
                "Arith",
                "Mul",
                &Args { a: 10, b: 20 },
                CallOptions::new().serialize_type(st),
            )
            .await?;
        println!("Arith.Mul over {st}: 10 * 20 = {}", r.reply.c);
    }
    let r = client
        .call_with::<_, Proto<BenchmarkMessage>>(
            "Hello",
            "Say",
            &Proto(sextant_interop::prepare_args()),
            CallOptions::new().serialize_type(SerializeType::PROTOBUF),
        )
        .await?;
    println!(
        "Hello.Say over protobuf: field1 = {:?}, field2 = {}",
        r.reply.0.field1, r.reply.0.field2
    );
    let big = Raw::from("rpcx".repeat(300).into_bytes());
    let r = client
        .call_with::<_, Raw>(
            "Echo",
            "Echo",
            &big,
            CallOptions::new()
                .serialize_type(SerializeType::NONE)
                .compress_type(CompressType::GZIP),
        )
        .await?;
    println!(
        "Echo.Echo with gzip: {} bytes back, identical: {}",
        r.reply.0.len(),
        r.reply == big
    );

    client.close();
    if let Some(s) = own {
        s.shutdown(Duration::from_secs(1)).await?;
    }
    Ok(())
}
