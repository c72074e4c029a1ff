//! rpcx-benchmark's `Hello.Say` over tarpc, server and closed-loop client.
//!
//! Transport: tarpc's serde transport over TCP (length-delimited frames) with the Bincode
//! format, the fastest format tarpc ships; TCP_NODELAY is set on both ends, as tonic does by
//! default, so neither peer pays for Nagle's algorithm. Everything else is tarpc's defaults.
//!
//! ```text
//! tarpc-bench server --addr 127.0.0.1:8972
//! tarpc-bench client --addr 127.0.0.1:8972 -c 100 -k 10 -n 100000 --json
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use sextant_bench_driver::cli::{self, Cli, ClientArgs, Command, ServerArgs};
use sextant_bench_driver::{driver, message, BenchmarkMessage};
use tarpc::serde_transport;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio::net::{TcpListener, TcpStream};

/// Name of this peer in reports.
const PEER: &str = "tarpc";

/// The rpcx-benchmark service.
#[tarpc::service]
trait Hello {
    /// Sets `field1 = "OK"`, `field2 = 100` and returns the message.
    async fn say(args: BenchmarkMessage) -> BenchmarkMessage;
}

/// The server's implementation of [`Hello`].
#[derive(Clone, Copy)]
struct HelloServer;

impl Hello for HelloServer {
    async fn say(self, _: tarpc::context::Context, args: BenchmarkMessage) -> BenchmarkMessage {
        message::say(args)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => {
            let rt = cli::runtime(args.threads)?;
            rt.block_on(serve(args))
        }
        Command::Client(args) => {
            let rt = cli::runtime(args.threads)?;
            rt.block_on(client(args))
        }
    }
}

/// Wraps a TCP stream in tarpc's length-delimited Bincode transport.
fn transport<Item, SinkItem>(
    stream: TcpStream,
) -> serde_transport::Transport<TcpStream, Item, SinkItem, Bincode<Item, SinkItem>>
where
    Item: for<'de> serde::Deserialize<'de>,
    SinkItem: serde::Serialize,
{
    serde_transport::new(
        Framed::new(stream, LengthDelimitedCodec::new()),
        Bincode::default(),
    )
}

/// Serves [`Hello`] on `args.addr` until Ctrl-C (or until killed). Every connection runs in its
/// own task and every request in its own task, as tarpc's examples do.
async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    eprintln!("tarpc server listening on {}", args.addr);
    let accept = async {
        // Runs until the process ends; a failed accept (e.g. out of descriptors) is reported
        // and the loop goes on with the next connection.
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            if let Err(e) = stream.set_nodelay(true) {
                eprintln!("set_nodelay failed: {e}");
            }
            let channel = BaseChannel::with_defaults(transport(stream));
            tokio::spawn(
                channel
                    .execute(HelloServer.serve())
                    .for_each(|request| async {
                        tokio::spawn(request);
                    }),
            );
        }
    };
    tokio::select! {
        () = accept => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Opens one tarpc connection to `addr`.
async fn connect(addr: SocketAddr) -> anyhow::Result<HelloClient> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(HelloClient::new(tarpc::client::Config::default(), transport(stream)).spawn())
}

/// Error of one benchmark call.
#[derive(Debug)]
enum CallError {
    Rpc(tarpc::client::RpcError),
    Reply(message::BadReply),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rpc(e) => write!(f, "rpc failed: {e}"),
            Self::Reply(bad) => bad.fmt(f),
        }
    }
}

/// Runs the closed-loop client described by `args` and prints its report.
async fn client(args: ClientArgs) -> anyhow::Result<()> {
    let config = args.load_config();
    let mut connections = Vec::with_capacity(config.effective_connections());
    for _ in 0..config.effective_connections() {
        connections.push(connect(args.addr).await?);
    }
    let connections = Arc::new(connections);
    let request = Arc::new(message::prepare_args());

    let result = driver::run(&config, move |connection| {
        let connections = Arc::clone(&connections);
        let request = BenchmarkMessage::clone(&request);
        async move {
            let reply = connections[connection]
                .say(tarpc::context::current(), request)
                .await
                .map_err(CallError::Rpc)?;
            message::check_reply(&reply).map_err(CallError::Reply)
        }
    })
    .await;
    args.print_report(PEER, &config, &result);
    Ok(())
}
