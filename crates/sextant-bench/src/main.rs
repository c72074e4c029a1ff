//! `sextant-bench server --addr 127.0.0.1:8972`,
//! `sextant-bench client --addr 127.0.0.1:8972 -c 100 -k 10 -n 100000 [--json] [--workload arith]`,
//! `sextant-bench http-client --url http://127.0.0.1:8972/Arith -c 100 -k 10 -n 100000 [--json]`,
//! `sextant-bench idle --addr 127.0.0.1:8972 -n 10000 --server-pid PID`.
//! The same subcommands are available as `sextant bench ...`.

use clap::Parser;
use sextant_bench::BenchCommand;

/// sextant's rpcx-benchmark server and client.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

fn main() -> anyhow::Result<()> {
    sextant_bench::run(Cli::parse().command)
}
