//! The framework-agnostic half of sextant's benchmark, reproducing rpcx-benchmark
//! (github.com/rpcx-ecosystem/rpcx-benchmark), shared by `sextant bench` / the `sextant-bench`
//! binary (crate `sextant-bench`) and the tonic and tarpc peers (`bench/peers` in the sextant
//! repository), so that all of them are measured by the same code:
//!
//! * [`message`]: the proto2 `BenchmarkMessage`, filled exactly as rpcx-benchmark's Go client
//!   fills it (581 bytes of protobuf), and the server's `Hello.Say` (`field1 = "OK"`,
//!   `field2 = 100`).
//! * [`driver`]: the closed-loop load generator: `c` callers over `k` connections making `n`
//!   calls, latencies in hdrhistograms. It only sees a closure "make one call on connection
//!   `i`", so any RPC framework plugs in.
//! * [`report`]: the human summary and the one-line JSON record.
//! * [`cli`]: the `server` / `client` flags every peer binary takes, and the tokio runtime.
//!
//! Nothing here depends on sextant or any other RPC framework: each framework's client reuses the
//! very same driver and output format:
//!
//! ```no_run
//! use sextant_bench_driver::{cli::ClientArgs, driver, message};
//!
//! async fn bench(args: ClientArgs) {
//!     let config = args.load_config();
//!     // Open `config.effective_connections()` connections here, then:
//!     let result = driver::run(&config, |connection| async move {
//!         let reply = message::say(message::prepare_args()); // replace with a real call
//!         let _ = connection;
//!         message::check_reply(&reply)
//!     })
//!     .await;
//!     args.print_report("sextant", &config, &result);
//! }
//! ```
pub mod cli;
pub mod driver;
pub mod message;
pub mod report;

pub use message::BenchmarkMessage;
