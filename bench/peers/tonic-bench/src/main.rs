//! rpcx-benchmark's `Hello.Say` over tonic (gRPC over HTTP/2), server and closed-loop client.
//!
//! The service and the client stub are written by hand on top of `tonic::server::Grpc` and
//! `tonic::client::Grpc` with tonic-prost's codec, the same calls tonic-build would generate,
//! so no `protoc` is needed. Server and channel settings are tonic's defaults (TCP_NODELAY on).
//!
//! ```text
//! tonic-bench server --addr 127.0.0.1:8972
//! tonic-bench client --addr 127.0.0.1:8972 -c 100 -k 10 -n 100000 --json
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use clap::Parser;
use sextant_bench_driver::cli::{self, Cli, ClientArgs, Command, ServerArgs};
use sextant_bench_driver::{driver, message, BenchmarkMessage};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{http, Body, BoxFuture, Service, StdError};
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

/// Name of this peer in reports.
const PEER: &str = "tonic";

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

/// Serves `proto.Hello` on `args.addr` until Ctrl-C (or until killed).
async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    eprintln!("tonic server listening on {}", args.addr);
    tonic::transport::Server::builder()
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
    /// Opens one HTTP/2 connection to `addr`.
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
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
async fn client(args: ClientArgs) -> anyhow::Result<()> {
    let config = args.load_config();
    let mut connections = Vec::with_capacity(config.effective_connections());
    for _ in 0..config.effective_connections() {
        connections.push(HelloClient::connect(args.addr).await?);
    }
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
    args.print_report(PEER, &config, &result);
    Ok(())
}
