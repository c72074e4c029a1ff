//! `sextant`: the command-line tool of the sextant RPC framework.
//!
//! ```text
//! sextant registry --addr 127.0.0.1:9980    run the embedded registry
//! sextant gateway --listen 127.0.0.1:9981 --registry etcd://127.0.0.1:2379/rpcx
//!                                              an HTTP gateway (or --agent) for a registry's services
//! sextant bench server --addr 127.0.0.1:8972 serve rpcx-benchmark's Hello.Say
//! sextant bench client --addr 127.0.0.1:8972 -c 100 -k 10 -n 100000
//!                                              load any rpcx server, report TPS and latencies
//! sextant bench idle --addr 127.0.0.1:8972 -n 10000 --server-pid PID
//!                                              a server's memory with many idle connections
//! ```
//!
//! `registry` is the module `registry` (its clap `Args` struct and a `run` function), `gateway`
//! the module `gateway` (over `registry_url`, which turns `--registry` URLs into discoveries);
//! `bench` is the `sextant-bench` crate's `BenchCommand` and `run`, which the `sextant-bench`
//! binary shares.
//! A new subcommand is a module (or a crate) of the same shape, a variant of [`Command`] and a
//! match arm in `main`.

mod duration;
mod gateway;
mod registry;
mod registry_url;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// sextant: a distributed RPC framework wire-compatible with Go's rpcx.
#[derive(Debug, Parser)]
#[command(
    name = "sextant",
    version,
    about = "sextant: an RPC framework wire-compatible with Go's rpcx"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the embedded registry: an in-memory service registry over HTTP with heartbeats and
    /// TTLs, for one machine and first contact (no external service).
    Registry(registry::RegistryArgs),
    /// Run an HTTP gateway for rpcx services (rpcx-gateway): HTTP invoke and JSON-RPC 2.0 in,
    /// rpcx calls out to the servers a registry lists; `--agent` for a sidecar on loopback.
    Gateway(gateway::GatewayArgs),
    /// rpcx-benchmark: serve `Hello.Say`, or load any rpcx server with a closed loop of callers
    /// and report TPS and latency percentiles (see docs/BENCHMARKS.md).
    Bench {
        /// What to run.
        #[command(subcommand)]
        command: sextant_bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        // The benchmark sizes its own runtime (`--threads`) and prints its own report.
        Command::Bench { command } => {
            return match sextant_bench::run(command) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sextant bench: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        other => other,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sextant: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Registry(args) => registry::run(args).await,
            Command::Gateway(args) => gateway::run(args).await,
            Command::Bench { .. } => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sextant: {e}");
            ExitCode::FAILURE
        }
    }
}
