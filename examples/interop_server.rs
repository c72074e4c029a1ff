//! The server the Go captures in `testdata/wire` came from, in sextant: `Arith` (Mul, Add, Div),
//! `ArithFn`, `Echo.Echo` and `Hello.Say`, optionally with an auth token. A Go rpcx client can
//! call it; so can `cargo run --example interop-client`.
//!
//! The same port answers rpcx, HTTP invoke and JSON-RPC 2.0 as a Go rpcx server does; the
//! switches turn them off as Go's `DisableHTTPGateway` and `DisableJSONRPC` do, and `--cors`
//! sets rpcx's `AllowAllCORSOptions`. With `--push N`, after a client's first call on a
//! connection the server pushes it `N` messages `Push.Tick` (metadata `seq=i`, payload `tick-i`,
//! `i` from 1), as Go's `Server.SendMessage` does; `interop-client --bidirectional` counts them.
//!
//! With `--file-transfer HOST:PORT` it serves rpcx's `_filetransfer` with its side listener
//! there: uploads are stored in, and downloads served from, `--transfer-dir DIR` (default: a new
//! directory under the system's temporary directory). With `--stream HOST:PORT` it serves
//! `_streamservice`, echoing every byte back. A Go client's `SendFile`, `DownloadFile` and
//! `Stream` work against them (and so do `interop-client --upload/--download/--stream`).
//!
//! `--addr` takes every network (`tcp@`, `unix@`, `http@`, `ws@`, `wss@`, `quic@`, `kcp@`,
//! `reuseport@`). `--cert FILE --key FILE [--client-ca FILE]` serve TLS (mutual TLS with
//! `--client-ca`) on `tcp@`/`http@` and are required for `wss@` and `quic@`; `--self-signed DIR`
//! writes a fresh CA, server and client certificates to DIR and serves with them. `kcp@` needs
//! `--kcp-pass P --kcp-salt S` (rpcx-examples' pbkdf2 key, AES, FEC 10/3), as the Go peer.
//!
//! Run: `cargo run --example interop-server -- --addr 127.0.0.1:8972 [--auth TOKEN]
//! [--disable-http-gateway] [--disable-jsonrpc] [--cors] [--push N]
//! [--file-transfer HOST:PORT [--transfer-dir DIR]] [--stream HOST:PORT]
//! [--cert FILE --key FILE [--client-ca FILE] | --self-signed DIR] [--kcp-pass P --kcp-salt S]`

use std::time::Duration;

fn usage() -> ! {
    eprintln!(
        "usage: interop-server [--addr [NET@]HOST:PORT | --addr unix@/path] [--auth TOKEN] \
         [--disable-http-gateway] [--disable-jsonrpc] [--cors] [--push N] \
         [--file-transfer HOST:PORT [--transfer-dir DIR]] [--stream HOST:PORT] {}",
        sextant_interop::flags::ServerTransport::USAGE
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let mut addr = "127.0.0.1:8972".to_string();
    let mut auth = None;
    let mut push = None;
    let mut file_transfer = None;
    let mut transfer_dir = None;
    let mut stream = None;
    let mut builder = sextant::Server::builder();
    let mut transport = sextant_interop::flags::ServerTransport::default();
    let mut args = std::env::args().skip(1);
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
            "--addr" => addr = args.next().unwrap_or_else(|| usage()),
            "--auth" => auth = Some(args.next().unwrap_or_else(|| usage())),
            "--disable-http-gateway" => builder = builder.disable_http_gateway(),
            "--disable-jsonrpc" => builder = builder.disable_jsonrpc(),
            "--cors" => builder = builder.cors(sextant::http::cors_allow_all()),
            "--file-transfer" => file_transfer = Some(args.next().unwrap_or_else(|| usage())),
            "--transfer-dir" => transfer_dir = Some(args.next().unwrap_or_else(|| usage())),
            "--stream" => stream = Some(args.next().unwrap_or_else(|| usage())),
            "--push" => {
                let n = args.next().and_then(|n| n.parse::<u32>().ok());
                push = Some(n.unwrap_or_else(|| usage()));
            }
            _ => usage(),
        }
    }
    if let Some(n) = push {
        builder = builder.plugin(sextant_interop::PushTicks::new(n));
    }
    let builder = transport.apply(builder)?;
    let server = sextant_interop::interop_server_from(builder, auth)?;
    if let Some(side) = file_transfer {
        let dir = match transfer_dir {
            Some(d) => std::path::PathBuf::from(d),
            None => std::env::temp_dir().join(format!("sextant-interop-{}", std::process::id())),
        };
        std::fs::create_dir_all(&dir).map_err(|e| {
            sextant::Error::Config(format!("transfer directory {}: {e}", dir.display()))
        })?;
        let service = sextant::transfer::FileTransfer::new(side)
            .upload(sextant::transfer::SaveToDir::new(&dir))
            .download(sextant::transfer::ServeDir::new(&dir));
        let side = server.enable_file_transfer("", service).await?;
        println!(
            "file transfer on {} (files in {})",
            side.local_addr(),
            dir.display()
        );
    }
    if let Some(side) = stream {
        let service = sextant::transfer::StreamService::new(side).handler(
            |mut conn: tokio::net::TcpStream, _args| async move {
                let (mut rd, mut wr) = conn.split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
            },
        );
        let side = server.enable_stream_service("", service).await?;
        println!("streams (echo) on {}", side.local_addr());
    }
    let bound = server.start(addr.as_str()).await?;
    println!(
        "interop server on {bound}: services {:?}",
        server.service_names()
    );
    tokio::signal::ctrl_c().await.ok();
    println!("shutting down");
    server.shutdown(Duration::from_secs(5)).await
}
