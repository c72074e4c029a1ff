//! rpcx-benchmark's `Hello.Say` over tonic (gRPC over HTTP/2), server and closed-loop client.
//!
//! The service and the client stub are written by hand on top of `tonic::server::Grpc` and
//! `tonic::client::Grpc` with tonic-prost's codec, the same calls tonic-build would generate,
//! so no `protoc` is needed. Server and channel settings are tonic's defaults (TCP_NODELAY on).
//!
//! With `--cert FILE --key FILE` the server serves TLS (tonic's `tls-ring`: rustls with ring,
//! the same stack as sextant's), and with `--ca FILE` the client dials `https://` and verifies
//! the server against that CA (the PEM files `sextant-bench server --self-signed DIR` writes
//! will do: `DIR/server.crt`, `DIR/server.key`, `DIR/ca.crt`).
//!
//! ```text
//! tonic-bench server --addr 127.0.0.1:8972 [--cert DIR/server.crt --key DIR/server.key]
//! tonic-bench client --addr 127.0.0.1:8972 -c 100 -k 10 -n 100000 --json [--ca DIR/ca.crt]
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sextant_bench_driver::cli::{self, ClientArgs, ServerArgs};
use sextant_bench_driver::{driver, message, BenchmarkMessage};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{http, Body, BoxFuture, Service, StdError};
use tonic::transport::{Certificate, Channel, Endpoint, Identity};
use tonic_prost::ProstCodec;

/// Name of this peer in reports (`tonic-tls` over TLS).
const PEER: &str = "tonic";

/// The peers' command line, with TLS switches.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve `Hello.Say` until killed.
    Server {
        #[command(flatten)]
        args: ServerArgs,
        /// Serve TLS with this certificate chain, PEM (with `--key`).
        #[arg(long, value_name = "FILE", requires = "key")]
        cert: Option<PathBuf>,
        /// The certificate's private key, PEM.
        #[arg(long, value_name = "FILE", requires = "cert")]
        key: Option<PathBuf>,
    },
    /// Drive a closed-loop load against a server and report the figures.
    Client {
        #[command(flatten)]
        args: ClientArgs,
        /// Dial TLS and verify the server against this CA, PEM.
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// Name to verify the server's certificate against.
        #[arg(long, default_value = "localhost")]
        server_name: String,
    },
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Server { args, cert, key } => {
            let tls = match (cert, key) {
                (Some(c), Some(k)) => Some(
                    tonic::transport::ServerTlsConfig::new()
                        .identity(Identity::from_pem(read(&c)?, read(&k)?)),
                ),
                _ => None,
            };
            let rt = cli::runtime(args.threads)?;
            rt.block_on(serve(args, tls))
        }
        Command::Client {
            args,
            ca,
            server_name,
        } => {
            let tls = match ca {
                Some(ca) => Some(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(read(&ca)?))
                        .domain_name(server_name),
                ),
                None => None,
            };
            let rt = cli::runtime(args.threads)?;
            rt.block_on(client(args, tls))
        }
    }
}

/// `Hello.Say` as a unary gRPC method.
#[derive(Clone, Copy)]
struct Say;

impl tonic::server::UnaryService<BenchmarkMessage> for Say {
    type Response = BenchmarkMessage;
    type Future = std::future::Ready<Result<tonic::Response<BenchmarkMessage>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<BenchmarkMessage>) -> Self::Future {
        std::future::ready(Ok(tonic::Response::new(message::say(request.into_inner()))))
    }
}

/// The `proto.Hello` gRPC service: routes `/proto.Hello/Say`, answers anything else with
/// `UNIMPLEMENTED`.
#[derive(Clone, Copy)]
struct HelloServer;

impl tonic::server::NamedService for HelloServer {
    const NAME: &'static str = "proto.Hello";
}

impl<B> Service<http::Request<B>> for HelloServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() == message::GRPC_SAY_PATH {
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
                Ok(grpc.unary(Say, request).await)
            })
        } else {
            let path = request.uri().path().to_owned();
            Box::pin(async move {
                Ok(tonic::Status::unimplemented(format!("unknown method {path}")).into_http())
            })
        }
    }
}

/// Serves `proto.Hello` on `args.addr` (over TLS with `tls`) until Ctrl-C (or until killed).
async fn serve(
    args: ServerArgs,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> anyhow::Result<()> {
    let tls_on = tls.is_some();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).context("TLS configuration")?;
    }
    eprintln!(
        "tonic server listening on {}{}",
        args.addr,
        if tls_on { " (TLS)" } else { "" }
    );
    builder
        .add_service(HelloServer)
        .serve_with_shutdown(args.addr, async {
            // If the signal handler cannot be installed, serve until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
        .with_context(|| format!("serving on {}", args.addr))
}

/// One gRPC connection (an HTTP/2 `Channel`) with the call path preset.
#[derive(Clone)]
struct HelloClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl HelloClient {
    /// Opens one HTTP/2 connection to `addr` (over TLS with `tls`).
    async fn connect(
        addr: SocketAddr,
        tls: Option<&tonic::transport::ClientTlsConfig>,
    ) -> anyhow::Result<Self> {
        let endpoint = match tls {
            Some(tls) => Endpoint::from_shared(format!("https://{addr}"))?
                .tls_config(tls.clone())
                .context("TLS configuration")?,
            None => Endpoint::from_shared(format!("http://{addr}"))?,
        };
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        Ok(Self {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// Calls `Hello.Say`.
    async fn say(&mut self, args: BenchmarkMessage) -> Result<BenchmarkMessage, tonic::Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("channel not ready: {e}")))?;
        let path = PathAndQuery::from_static(message::GRPC_SAY_PATH);
        let reply = self
            .grpc
            .unary(tonic::Request::new(args), path, ProstCodec::default())
            .await?;
        Ok(reply.into_inner())
    }
}

/// Error of one benchmark call.
#[derive(Debug)]
enum CallError {
    Rpc(tonic::Status),
    Reply(message::BadReply),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rpc(status) => write!(f, "rpc failed: {}: {}", status.code(), status.message()),
            Self::Reply(bad) => bad.fmt(f),
        }
    }
}

/// Runs the closed-loop client described by `args` and prints its report.
async fn client(
    args: ClientArgs,
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> anyhow::Result<()> {
    let config = args.load_config();
    let mut connections = Vec::with_capacity(config.effective_connections());
    for _ in 0..config.effective_connections() {
        connections.push(HelloClient::connect(args.addr, tls.as_ref()).await?);
    }
    let peer = if tls.is_some() {
        format!("{PEER}-tls")
    } else {
        PEER.to_string()
    };
    let connections = Arc::new(connections);
    let request = Arc::new(message::prepare_args());

    let result = driver::run(&config, move |connection| {
        // Cloning a `Grpc<Channel>` is cheap: it is a handle to the connection's task.
        let mut client = connections[connection].clone();
        let request = BenchmarkMessage::clone(&request);
        async move {
            let reply = client.say(request).await.map_err(CallError::Rpc)?;
            message::check_reply(&reply).map_err(CallError::Reply)
        }
    })
    .await;
    args.print_report(&peer, &config, &result);
    Ok(())
}
