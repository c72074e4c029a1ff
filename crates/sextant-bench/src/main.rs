//! `sextant-bench server --addr 127.0.0.1:8972`,
//! `sextant-bench client --addr 127.0.0.1:8972 -c 100 -k 10 -n 100000 [--json] [--workload arith]`,
//! `sextant-bench http-client --url http://127.0.0.1:8972/Arith -c 100 -k 10 -n 100000 [--json]`,
//! `sextant-bench idle --addr 127.0.0.1:8972 -n 10000 --server-pid PID`.
//! `server`, `client` and `idle` take `--network tcp|tls|ws|wss|quic|kcp` (or `--addr
//! NET@127.0.0.1:PORT`) and the TLS and KCP switches (`--self-signed DIR`, `--cert`, `--key`,
//! `--client-ca` on the server; `--ca`, `--cert`, `--key`, `--server-name`, `--insecure` on the
//! client; `--kcp-pass`, `--kcp-salt`): see `sextant_bench::transport`.
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
