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
//! sextant call 127.0.0.1:8972 Arith.Mul '{"A":7,"B":6}'
//!                                              one call, the reply as JSON (grpcurl for rpcx)
//! sextant list [--registry URL] [--json]       a registry's services and server counts
//! sextant describe SERVICE                     its servers: address, group, weight, state, rates
//! sextant set SERVICE SERVER state=inactive    edit a server's metadata as rpcx-ui does
//! sextant watch [SERVICE]                      the servers, then every change as it happens
//! sextant ui [--registry URL] [--listen 127.0.0.1:8080]
//!                                              a web UI for the registry's services (docs/UI.md)
//! ```
//!
//! Exit status: 0 done; 1 a service error or nothing found; 2 usage; 3 the registry or server
//! could not be reached.
//!
//! `registry` is the module `registry` (its clap `Args` struct and a `run` function), `gateway`
//! the module `gateway` (over `registry_url`, which turns `--registry` URLs into discoveries);
//! `bench` is the `sextant-bench` crate's `BenchCommand` and `run`, which the `sextant-bench`
//! binary shares.
//! A new subcommand is a module (or a crate) of the same shape, a variant of [`Command`] and a
//! match arm in `main`.

mod admin;
mod call;
mod duration;
mod gateway;
mod proto;
mod registry;
mod registry_url;
mod ui;

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
    /// Call a method (grpcurl for rpcx): JSON arguments converted to msgpack, JSON, protobuf
    /// (a .proto compiled at run time) or raw; the reply printed as JSON; `-n`/`-c` to repeat.
    Call(call::CallArgs),
    /// List a registry's services with their server counts (etcd, ZooKeeper, Redis, Consul or
    /// the embedded registry, as rpcx lays them out).
    List(admin::ListArgs),
    /// Show a service's servers: address, group, weight, state, the rates the registry plugin
    /// publishes, and the whole metadata.
    Describe(admin::DescribeArgs),
    /// Edit a server's metadata in the registry as rpcx-ui does: `state=inactive` takes it out
    /// of rotation, `state=active` brings it back, `weight=5`...; the entry stays the server's.
    Set(admin::SetArgs),
    /// Print a registry's servers, then every change as it happens (until --count, --for or
    /// Ctrl-C).
    Watch(admin::WatchArgs),
    /// Serve a web UI for a registry's services (rpcx-ui): services, servers, metadata,
    /// activate / deactivate, edits, health probes and calls, refreshed by the registry's watch
    /// (see docs/UI.md); `--hash-password` makes the login's password hash.
    Ui(ui::UiArgs),
}

/// A failure of a subcommand, with the exit status it ends with.
#[derive(Debug)]
pub struct CliError {
    /// 1 service error or not found, 2 usage, 3 registry or transport.
    pub code: u8,
    /// What to tell the user.
    pub message: String,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl CliError {
    /// A service error, or nothing found (exit status 1).
    pub fn not_found(message: impl Into<String>) -> CliError {
        CliError {
            code: 1,
            message: message.into(),
        }
    }

    /// A usage error (exit status 2, as clap's own).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            code: 2,
            message: message.into(),
        }
    }

    /// The registry or server could not be reached (exit status 3).
    pub fn transport(message: impl Into<String>) -> CliError {
        CliError {
            code: 3,
            message: message.into(),
        }
    }
}

impl From<String> for CliError {
    fn from(message: String) -> CliError {
        CliError { code: 1, message }
    }
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
    // Long-running services log what they do; one-shot commands only what goes wrong.
    let default_filter = match command {
        Command::Registry(_) | Command::Gateway(_) | Command::Ui(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
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
            Command::Registry(args) => registry::run(args).await.map_err(CliError::from),
            Command::Gateway(args) => gateway::run(args).await.map_err(CliError::from),
            Command::Call(args) => call::call(args).await,
            Command::List(args) => admin::list(args).await,
            Command::Describe(args) => admin::describe(args).await,
            Command::Set(args) => admin::set(args).await,
            Command::Watch(args) => admin::watch(args).await,
            Command::Ui(args) => ui::run(args).await,
            Command::Bench { .. } => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sextant: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
