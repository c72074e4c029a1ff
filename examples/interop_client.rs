//! Calls an rpcx server (a Go one, or `interop-server`) the way Go's rpcx client would: Arith.Mul
//! over msgpack and JSON, Hello.Say over protobuf, Echo with gzip.
//!
//! With `--bidirectional` it instead makes one call (Arith.Mul) on a client that accepts server
//! pushes (rpcx's bidirectional client), waits up to 5 s for pushes (less with `--pushes N`: until
//! `N` have come), and prints `pushes received: K` (and how many were not well-formed
//! `Push.Tick` messages) — facing `interop-server --push N` or a Go server that does the same.
//!
//! With `--upload FILE`, `--download NAME [--out FILE]` or `--stream` it instead uses rpcx's
//! `_filetransfer` / `_streamservice` of the server at `--addr` (a Go server with
//! `EnableFileTransfer` / `EnableStreamService`, or `interop-server --file-transfer/--stream`):
//! it uploads the file, downloads the name (to FILE, else it prints the byte count), or sends
//! 64 KiB on a stream and checks that the same bytes come back.
//!
//! `--addr` takes every network (`tcp@`, `unix@`, `http@`, `ws@`, `wss@`, `quic@`, `kcp@`).
//! `--ca FILE [--cert FILE --key FILE] [--server-name NAME]` (or `--insecure`) dial TLS on
//! `tcp@`/`http@` and set the trust of `wss@` and `quic@`; `kcp@` needs `--kcp-pass P
//! --kcp-salt S`, as the server.
//!
//! Run: `cargo run --example interop-client -- --addr 127.0.0.1:8972 [--auth TOKEN]
//! [--bidirectional [--pushes N]] [--upload FILE | --download NAME [--out FILE] | --stream]
//! [--ca FILE [--cert FILE --key FILE] [--server-name NAME] | --insecure]
//! [--kcp-pass P --kcp-salt S]`
//! Without `--addr` it starts its own interop server first (pushing 3 ticks with
//! `--bidirectional`).

use std::time::Duration;

use sextant::{CallOptions, Client, ClientOptions, CompressType, Proto, Raw, SerializeType};
use sextant_interop::{Args, BenchmarkMessage, Reply};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let mut addr = None;
    let mut auth = None;
    let mut bidirectional = false;
    let mut expect_pushes = None;
    let mut transfer = None;
    let mut out = None;
    let mut transport = sextant_interop::flags::ClientTransport::default();
    let mut args = std::env::args().skip(1);
    let usage = || -> ! {
        eprintln!(
            "usage: interop-client [--addr [NET@]HOST:PORT] [--auth TOKEN] \
             [--bidirectional [--pushes N]] [--upload FILE | --download NAME [--out FILE] | \
             --stream] {}",
            sextant_interop::flags::ClientTransport::USAGE
        );
        std::process::exit(2);
    };
    while let Some(a) = args.next() {
        match transport.parse(&a, &mut args) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                eprintln!("{e}");
                usage()
            }
        }
        match a.as_str() {
            "--addr" => addr = args.next(),
            "--auth" => auth = args.next(),
            "--bidirectional" => bidirectional = true,
            "--upload" => transfer = Some(Transfer::Upload(args.next().unwrap_or_else(|| usage()))),
            "--download" => {
                transfer = Some(Transfer::Download(args.next().unwrap_or_else(|| usage())))
            }
            "--out" => out = Some(args.next().unwrap_or_else(|| usage())),
            "--stream" => transfer = Some(Transfer::Stream),
            "--pushes" => {
                expect_pushes = Some(
                    args.next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or_else(|| usage()),
                )
            }
            _ => usage(),
        }
    }
    if let Some(t) = transfer {
        let Some(addr) = addr else { usage() };
        let options = transport.apply(ClientOptions::default())?;
        return side_transfer(&addr, auth, options, t, out).await;
    }
    let mut own = None;
    let addr = match addr {
        Some(a) => a,
        None => {
            let mut builder = sextant::Server::builder();
            if bidirectional {
                builder = builder.plugin(sextant_interop::PushTicks::new(3));
                expect_pushes = expect_pushes.or(Some(3));
            }
            let s = sextant_interop::interop_server_from(builder, auth.clone())?;
            let a = s.start("tcp@127.0.0.1:0").await?.to_string();
            own = Some(s);
            a
        }
    };
    let mut options = transport.apply(ClientOptions::default())?;
    if let Some(t) = auth {
        options = options.auth_token(t);
    }
    if bidirectional {
        options = options.server_message_capacity(1024);
    }
    let client = Client::connect(addr.as_str(), options).await?;

    if bidirectional {
        let mut pushes = client.server_messages().expect("enabled above");
        let r: Reply = client.call("Arith", "Mul", &Args { a: 10, b: 20 }).await?;
        println!("Arith.Mul: 10 * 20 = {}", r.c);
        let (mut received, mut malformed) = (0u64, 0u64);
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        while expect_pushes.is_none_or(|n| received < n) {
            match tokio::time::timeout_at(until, pushes.recv()).await {
                Ok(Some(m)) => {
                    received += 1;
                    if !sextant_interop::is_tick(&m) {
                        malformed += 1;
                        eprintln!("not a Push.Tick: {m:?}");
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        println!("pushes received: {received}");
        println!("pushes malformed: {malformed}");
        client.close();
        if let Some(s) = own {
            s.shutdown(Duration::from_secs(1)).await?;
        }
        if malformed > 0 || expect_pushes.is_some_and(|n| received != n) {
            std::process::exit(1);
        }
        return Ok(());
    }

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

/// What `--upload`, `--download` and `--stream` ask for.
enum Transfer {
    Upload(String),
    Download(String),
    Stream,
}

/// Uses the server's `_filetransfer` or `_streamservice`, as a Go client's `SendFile`,
/// `DownloadFile` and `Stream` do.
async fn side_transfer(
    addr: &str,
    auth: Option<String>,
    options: ClientOptions,
    transfer: Transfer,
    out: Option<String>,
) -> sextant::Result<()> {
    use std::collections::HashMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let service = match transfer {
        Transfer::Stream => sextant::transfer::STREAM_SERVICE_NAME,
        _ => sextant::transfer::SEND_FILE_SERVICE_NAME,
    };
    let mut builder = sextant::XClient::builder(service)
        .discovery(sextant::discovery::Peer2PeerDiscovery::new(addr, "")?)
        .client_options(options);
    if let Some(t) = auth {
        builder = builder.auth(t);
    }
    let xclient = builder.build()?;
    let io = |e: std::io::Error| sextant::Error::Config(e.to_string());
    match transfer {
        Transfer::Upload(path) => {
            xclient.send_file(&path, 0, HashMap::new()).await?;
            println!("uploaded {path}");
        }
        Transfer::Download(name) => {
            let n = match out {
                Some(f) => {
                    let mut file = tokio::fs::File::create(&f).await.map_err(io)?;
                    xclient
                        .download_file(&name, &mut file, HashMap::new())
                        .await?
                }
                None => {
                    let mut sink = tokio::io::sink();
                    xclient
                        .download_file(&name, &mut sink, HashMap::new())
                        .await?
                }
            };
            println!("downloaded {name}: {n} bytes");
        }
        Transfer::Stream => {
            let mut conn = xclient.stream(HashMap::new()).await?;
            let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
            let (mut rd, mut wr) = conn.split();
            let mut back = vec![0u8; data.len()];
            let (w, r) = tokio::join!(wr.write_all(&data), rd.read_exact(&mut back));
            w.map_err(io)?;
            r.map_err(io)?;
            println!(
                "stream: {} bytes echoed, identical: {}",
                back.len(),
                back == data
            );
            if back != data {
                std::process::exit(1);
            }
        }
    }
    xclient.close();
    Ok(())
}
