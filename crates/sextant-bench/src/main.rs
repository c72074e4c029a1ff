//! `sextant-bench server --addr 127.0.0.1:8972` and
//! `sextant-bench client --addr 127.0.0.1:8972 -c 100 -k 10 -n 100000 [--json] [--workload arith]`.

use bench_common::cli::{self, ClientArgs, ServerArgs};
use clap::{Parser, Subcommand};
use sextant_bench::Workload;

/// sextant's rpcx-benchmark server and client.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve Hello.Say (and Arith) until interrupted.
    Server(ServerArgs),
    /// Drive a closed-loop load against an rpcx server and report TPS and latency percentiles.
    Client {
        #[command(flatten)]
        args: ClientArgs,
        /// What each call does.
        #[arg(long, value_enum, default_value_t = Workload::Hello)]
        workload: Workload,
    },
    /// Hold many idle connections to a server and report its resident memory.
    Idle {
        /// Loopback address of the server.
        #[arg(long, default_value = "127.0.0.1:8972", value_parser = cli::parse_loopback)]
        addr: std::net::SocketAddr,
        /// Connections to open.
        #[arg(short = 'n', long, default_value_t = 10_000)]
        connections: usize,
        /// The server's process id, to read its RSS from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Seconds to let the connections sit idle before the last reading.
        #[arg(long, default_value_t = 3)]
        settle_secs: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Server(args) => cli::runtime(args.threads)?.block_on(sextant_bench::serve(args)),
        Command::Client { args, workload } => {
            cli::runtime(args.threads)?.block_on(sextant_bench::client(args, workload))
        }
        Command::Idle {
            addr,
            connections,
            server_pid,
            settle_secs,
        } => cli::runtime(None)?.block_on(sextant_bench::idle(
            addr,
            connections,
            server_pid,
            std::time::Duration::from_secs(settle_secs),
        )),
    }
}
