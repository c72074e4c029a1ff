//! `sextant`: the command-line tool of the sextant RPC framework.
//!
//! ```text
//! sextant registry --addr 127.0.0.1:9980    run the embedded registry
//! ```
//!
//! Each subcommand lives in its own module with its clap `Args` struct and a `run` function;
//! adding one (e.g. `sextant bench`) means a new module, a variant of [`Command`] and a line in
//! `main`.

mod duration;
mod registry;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        match cli.command {
            Command::Registry(args) => registry::run(args).await,
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
