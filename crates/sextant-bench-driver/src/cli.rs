//! Command-line arguments and runtime set-up shared by every peer binary, so that all of them
//! take the same flags: `server --addr 127.0.0.1:PORT [--threads N]` and
//! `client --addr 127.0.0.1:PORT -c 100 -k 10 -n 100000 [--json] [--no-progress] [--threads N]`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::driver::{LoadConfig, RunResult};
use crate::report::Report;

/// The top-level command line of a peer binary.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Which side to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The two sides of a benchmark; they run as separate processes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve `Hello.Say` until killed.
    Server(ServerArgs),
    /// Drive a closed-loop load against a server and report the figures.
    Client(ClientArgs),
}

/// Flags of `server`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8972", value_parser = parse_loopback)]
    pub addr: SocketAddr,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Flags of `client`: the server's address and the [`LoadArgs`] (reachable through `Deref`, so
/// `args.threads` and `args.load_config()` work on a `ClientArgs`).
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Loopback address of the server.
    #[arg(long, default_value = "127.0.0.1:8972", value_parser = parse_loopback)]
    pub addr: SocketAddr,
    /// The load and report flags.
    #[command(flatten)]
    pub load: LoadArgs,
}

impl std::ops::Deref for ClientArgs {
    type Target = LoadArgs;
    fn deref(&self) -> &LoadArgs {
        &self.load
    }
}

/// The load and report flags every peer's `client` takes, whatever it dials.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent callers.
    #[arg(short = 'c', long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Connections shared by the callers (clamped to at most `-c`).
    #[arg(short = 'k', long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// Total measured calls.
    #[arg(short = 'n', long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub total: u64,
    /// Unmeasured warm-up calls per connection.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Per-call timeout in milliseconds; a slower call counts as an error.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON line on stdout (the human summary then goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Do not draw the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl LoadArgs {
    /// The driver configuration these flags describe.
    pub fn load_config(&self) -> LoadConfig {
        let mut config = LoadConfig::new(
            self.concurrency as usize,
            self.connections as usize,
            self.total,
        );
        config.warmup_per_connection = self.warmup;
        config.call_timeout = Duration::from_millis(self.timeout_ms);
        config.progress = !self.no_progress;
        config
    }

    /// Prints the report of `result` the way these flags ask: the human summary on stdout, or,
    /// with `--json`, the JSON line on stdout and the summary on stderr.
    pub fn print_report(&self, peer: &str, config: &LoadConfig, result: &RunResult) -> Report {
        let report = Report::new(peer, config, result);
        if self.json {
            eprint!("{report}");
            println!("{}", report.json_line());
        } else {
            print!("{report}");
        }
        report
    }
}

/// Parses a socket address and accepts only loopback ones: benchmarks never leave the machine.
pub fn parse_loopback(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!("{addr} is not a loopback address"))
    }
}

/// Builds the multi-thread tokio runtime, with `threads` workers when given.
pub fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads.max(1));
    }
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_accepted() {
        assert!(parse_loopback("127.0.0.1:1").is_ok());
        assert!(parse_loopback("[::1]:1").is_ok());
        assert!(parse_loopback("0.0.0.0:1").is_err());
        assert!(parse_loopback("10.0.0.1:1").is_err());
        assert!(parse_loopback("localhost:1").is_err());
    }

    #[test]
    fn client_flags_parse() {
        let cli = Cli::try_parse_from([
            "x",
            "client",
            "--addr",
            "127.0.0.1:9",
            "-c",
            "5000",
            "-k",
            "10",
            "-n",
            "7",
            "--json",
        ])
        .expect("parses");
        let Command::Client(args) = cli.command else {
            panic!("client expected")
        };
        let config = args.load_config();
        assert_eq!(
            (config.concurrency, config.connections, config.total),
            (5000, 10, 7)
        );
        assert!(args.json && config.progress);
        assert!(Cli::try_parse_from(["x", "client", "-c", "0"]).is_err());
    }
}
