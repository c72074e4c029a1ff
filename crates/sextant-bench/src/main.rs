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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Server(args) => cli::runtime(args.threads)?.block_on(sextant_bench::serve(args)),
        Command::Client { args, workload } => {
            cli::runtime(args.threads)?.block_on(sextant_bench::client(args, workload))
        }
    }
}
