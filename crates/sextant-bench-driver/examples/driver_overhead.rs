//! Measures the driver's own cost: the closed loop with a call that only clones the request,
//! runs the server's handler and checks the reply, without any I/O. Whatever rate this reaches
//! is the ceiling the driver puts on a real peer with the same flags.
//!
//! `cargo run --release -p sextant-bench-driver --example driver_overhead -- client -c 100 -k 10 -n 1000000`

use std::sync::Arc;

use clap::Parser;
use sextant_bench_driver::cli::{self, Cli, Command};
use sextant_bench_driver::{driver, message, BenchmarkMessage};

fn main() -> std::io::Result<()> {
    let Command::Client(args) = Cli::parse().command else {
        eprintln!("only `client` makes sense here");
        std::process::exit(2);
    };
    let rt = cli::runtime(args.threads)?;
    rt.block_on(async {
        let config = args.load_config();
        let request = Arc::new(message::prepare_args());
        let result = driver::run(&config, move |_connection| {
            let request = BenchmarkMessage::clone(&request);
            async move { message::check_reply(&message::say(request)) }
        })
        .await;
        args.print_report("no-op", &config, &result);
    });
    Ok(())
}
