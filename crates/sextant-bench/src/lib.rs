//! sextant's side of the rpcx-benchmark comparison (`bench/`): the `Hello.Say` server and the
//! closed-loop client, with the same flags, driver and report (crate `sextant-bench-driver`) as
//! the tonic and tarpc peers in `bench/peers`, so that all three are measured the same way.
//!
//! The client speaks plain rpcx, so it also loads a Go rpcx server (rpcx-benchmark's) or any
//! other rpcx server serving `Hello.Say` with protobuf.
//!
//! `http-client` ([`http`]) drives the same closed loop with HTTP/1.1 requests: rpcx's HTTP
//! invoke of `Arith.Mul` with a JSON body, on an rpcx server's port or through a gateway (the
//! server here registers `Arith` along with `Hello`).
//!
//! `server`, `client` and `idle` run on any of sextant's networks (`--network tcp|tls|ws|wss|quic|
//! kcp`, or `--addr NET@IP:PORT`), with certificates and KCP keys from the same switches as
//! `interop-server` and `interop-client` ([`transport`]).
//!
//! `push` ([`push`]) measures server pushes on one connection: the server registers
//! `Bench.Push` too. `transfer` ([`transfer`]) measures file upload and download against a plain
//! tokio TCP copy, in one process.

pub mod http;
pub mod push;
pub mod transfer;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sextant::{CallOptions, Client, ClientOptions, Proto, SerializeType, Server};
use sextant_bench_driver::cli::{ClientArgs, LoadArgs};
use sextant_bench_driver::{driver, message};
use sextant_interop::{Args, Reply};
use transport::{BenchAddr, ClientTransportArgs, Net, ServerTransportArgs};

/// Name of this peer in reports.
pub const PEER: &str = "sextant";

/// What each call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// rpcx-benchmark: `Hello.Say` with the 581-byte protobuf `BenchmarkMessage`.
    Hello,
    /// rpcx's quick start: `Arith.Mul` with msgpack `{A: 10, B: 20}`.
    Arith,
}

/// Flags of `server`: the peers' `--addr` and `--threads`, with `--addr` also taking
/// `NET@IP:PORT`, and the transport flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Loopback address to listen on, `IP:PORT` or `NET@IP:PORT` (tcp, tls, ws, wss, quic, kcp).
    #[arg(long, default_value = "127.0.0.1:8972", value_parser = transport::parse_addr)]
    pub addr: BenchAddr,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Network, certificates, KCP key.
    #[command(flatten)]
    pub transport: ServerTransportArgs,
    /// Plugins to install, to measure what they cost: `none`, `noop` (a plugin with every hook
    /// left at its default), `metrics` (sextant-plugins' MetricsPlugin), `tracing` (its
    /// ServerTracingPlugin with an OpenTelemetry SDK tracer that records every span and exports
    /// none), `metrics+tracing`; `tracing-off` and `metrics+tracing-off` use the global tracer
    /// with no SDK installed instead (OpenTelemetry's no-op, as before a service installs one);
    /// `tracing-sampled` and `metrics+tracing-sampled` an SDK tracer that samples 1% of the
    /// traces (`ParentBased(TraceIdRatioBased(0.01))`), records those and exports none.
    #[arg(long, default_value = "none", value_parser = ["none", "noop", "metrics", "tracing", "metrics+tracing", "tracing-off", "metrics+tracing-off", "tracing-sampled", "metrics+tracing-sampled"])]
    pub plugins: String,
}

/// A plugin with every hook left at its no-op default.
struct NoopPlugin;

impl sextant::ServerPlugin for NoopPlugin {}

/// Adds the plugins `--plugins` names.
fn with_plugins(
    mut builder: sextant::ServerBuilder,
    plugins: &str,
) -> anyhow::Result<sextant::ServerBuilder> {
    if plugins == "noop" {
        builder = builder.plugin(NoopPlugin);
    }
    if plugins.contains("metrics") {
        builder = builder.plugin(sextant_plugins::metrics::MetricsPlugin::new());
    }
    if plugins.ends_with("tracing-off") {
        builder = builder.plugin(sextant_plugins::otel::ServerTracingPlugin::global());
    } else if plugins.ends_with("tracing-sampled") {
        use opentelemetry_sdk::trace::Sampler;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                0.01,
            ))))
            .build();
        builder = builder.plugin(sextant_plugins::otel::ServerTracingPlugin::from_provider(
            &provider,
        ));
    } else if plugins.contains("tracing") {
        // Spans are sampled, recorded and ended; with no span processor none is exported.
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        builder = builder.plugin(sextant_plugins::otel::ServerTracingPlugin::from_provider(
            &provider,
        ));
    }
    Ok(builder)
}

/// Serves `Hello.Say` (and the other interop services) on `args.addr` until Ctrl-C.
pub async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let (addr, builder) = args.transport.apply(&args.addr, Server::builder())?;
    let server = with_plugins(builder, &args.plugins)?.build();
    sextant_interop::register_all(&server)?;
    push::register(&server)?;
    let addr = server
        .start(addr.as_str())
        .await
        .with_context(|| format!("binding {addr}"))?;
    eprintln!("sextant server listening on {addr}");
    tokio::signal::ctrl_c().await.ok();
    server.shutdown(Duration::from_secs(1)).await.ok();
    Ok(())
}

/// Flags of `client`: the load and report flags the peers take (`-c`, `-k`, `-n`, `--json`,
/// ...; [`LoadArgs`]), with `--addr` also taking `NET@IP:PORT`, and the transport flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchClientArgs {
    /// Loopback address of the server, `IP:PORT` or `NET@IP:PORT` (tcp, tls, ws, wss, quic,
    /// kcp).
    #[arg(long, default_value = "127.0.0.1:8972", value_parser = transport::parse_addr)]
    pub addr: BenchAddr,
    /// The peers' load and report flags.
    #[command(flatten)]
    pub load: LoadArgs,
    /// Network, CA, client certificate, KCP key.
    #[command(flatten)]
    pub transport: ClientTransportArgs,
}

impl std::ops::Deref for BenchClientArgs {
    type Target = LoadArgs;
    fn deref(&self) -> &LoadArgs {
        &self.load
    }
}

impl BenchClientArgs {
    /// The peers' client flags these stand for (the driver's configuration and report).
    pub fn driver_args(&self) -> ClientArgs {
        ClientArgs {
            addr: self.addr.addr,
            load: self.load.clone(),
        }
    }
}

/// The name of the sextant peer in reports on `net` (`sextant` on plain TCP, `sextant-tls`,
/// `sextant-ws`, ... otherwise).
pub fn peer_name(net: Option<Net>, options: &ClientOptions) -> String {
    match net {
        None | Some(Net::Tcp) if options.tls.is_none() => PEER.to_string(),
        None | Some(Net::Tcp) | Some(Net::Tls) => format!("{PEER}-tls"),
        Some(n) => format!("{PEER}-{}", n.scheme()),
    }
}

fn network_of(flag: Option<Net>, addr: &BenchAddr) -> Option<Net> {
    flag.or(addr.net)
}

/// Drives the closed loop described by `args` against the rpcx server at `args.addr` and prints
/// the report.
pub async fn client(bench: BenchClientArgs, workload: Workload) -> anyhow::Result<()> {
    let (addr, options) = bench.transport.apply(&bench.addr)?;
    let name = peer_name(network_of(bench.transport.network, &bench.addr), &options);
    let args = bench.driver_args();
    let config = args.load_config();
    let mut clients = Vec::with_capacity(config.effective_connections());
    for _ in 0..config.effective_connections() {
        let c = Client::connect(addr.as_str(), options.clone())
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        clients.push(c);
    }
    let clients: Arc<[Client]> = clients.into();
    let result = match workload {
        Workload::Hello => {
            let request = Arc::new(Proto(message::prepare_args()));
            let clients = clients.clone();
            driver::run(&config, move |i| {
                let client = clients[i].clone();
                let request = request.clone();
                async move {
                    let opts = CallOptions::new().serialize_type(SerializeType::PROTOBUF);
                    let reply = client
                        .call_with::<_, Proto<sextant_bench_driver::BenchmarkMessage>>(
                            "Hello", "Say", &*request, opts,
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                    message::check_reply(&reply.reply.0).map_err(|e| e.to_string())
                }
            })
            .await
        }
        Workload::Arith => {
            let clients = clients.clone();
            driver::run(&config, move |i| {
                let client = clients[i].clone();
                async move {
                    let r: Reply = client
                        .call("Arith", "Mul", &Args { a: 10, b: 20 })
                        .await
                        .map_err(|e| e.to_string())?;
                    if r.c == 200 {
                        Ok(())
                    } else {
                        Err(format!("Arith.Mul returned {}", r.c))
                    }
                }
            })
            .await
        }
    };
    let peer = match workload {
        Workload::Hello => name,
        Workload::Arith => format!("{name}-arith"),
    };
    args.print_report(&peer, &config, &result);
    for c in clients.iter() {
        c.close();
    }
    Ok(())
}

/// Reads a process' resident set size in KiB from `/proc/PID/status` (Linux).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS line")
}

/// Opens `connections` rpcx connections to `addr`, makes one heartbeat on each so the server has
/// really served them, lets them sit idle for `settle`, and reports the server's RSS (when
/// `server_pid` is given) before and after, as one JSON line.
pub async fn idle(
    addr: BenchAddr,
    transport: &ClientTransportArgs,
    connections: usize,
    server_pid: Option<u32>,
    settle: Duration,
) -> anyhow::Result<()> {
    let (target, mut options) = transport.apply(&addr)?;
    // Thousands of connections in a row on a busy machine: a slow accept is not a failure.
    options.connect_timeout = options.connect_timeout.max(Duration::from_secs(10));
    let name = peer_name(network_of(transport.network, &addr), &options);
    let before = server_pid.map(rss_kib).transpose()?;
    let mut clients = Vec::with_capacity(connections);
    for i in 0..connections {
        let c = Client::connect(target.as_str(), options.clone())
            .await
            .with_context(|| format!("connection {i} of {connections}"))?;
        clients.push(c);
    }
    for c in &clients {
        c.heartbeat()
            .await
            .context("heartbeat on an idle connection")?;
    }
    let busy = server_pid.map(rss_kib).transpose()?;
    tokio::time::sleep(settle).await;
    let idle = server_pid.map(rss_kib).transpose()?;
    let alive = clients.iter().filter(|c| !c.is_closed()).count();
    println!(
        "{{\"peer\":\"{name}\",\"idle_connections\":{alive},\"server_rss_kib_before\":{},\"server_rss_kib_connected\":{},\"server_rss_kib_idle\":{}}}",
        before.map_or("null".into(), |v| v.to_string()),
        busy.map_or("null".into(), |v| v.to_string()),
        idle.map_or("null".into(), |v| v.to_string()),
    );
    for c in &clients {
        c.close();
    }
    anyhow::ensure!(
        alive == connections,
        "only {alive} of {connections} connections stayed open"
    );
    Ok(())
}

/// The benchmark's subcommands (`sextant bench ...` and `sextant-bench ...`).
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Serve Hello.Say, Arith (Mul, Add, Div, any codec: JSON `{"A":7,"B":8}` ->
    /// `{"C":56}` for rpcx's HTTP invoke), ArithFn and Echo until interrupted.
    Server(ServerArgs),
    /// Drive a closed-loop load against an rpcx server and report TPS and latency percentiles.
    Client {
        /// Load and report flags (the same as the tonic and tarpc peers'), and the transport.
        #[command(flatten)]
        args: BenchClientArgs,
        /// What each call does.
        #[arg(long, value_enum, default_value_t = Workload::Hello)]
        workload: Workload,
    },
    /// Drive a closed-loop load of HTTP requests (rpcx's HTTP invoke, by default `Arith.Mul`
    /// with JSON) against an rpcx server's port, a gateway or any HTTP server, and report the
    /// same figures as `client`.
    HttpClient(http::HttpClientArgs),
    /// Ask a sextant bench server for `n` pushes on one connection and report pushes per
    /// second.
    Push {
        /// Loopback address of the server.
        #[arg(long, default_value = "127.0.0.1:8972", value_parser = sextant_bench_driver::cli::parse_loopback)]
        addr: std::net::SocketAddr,
        /// Pushes to receive.
        #[arg(short = 'n', long, default_value_t = 1_000_000)]
        pushes: u64,
        /// Payload bytes per push.
        #[arg(long, default_value_t = 64)]
        payload: usize,
    },
    /// Upload and download a file through `_filetransfer` and copy it with plain tokio TCP, in
    /// one process; report MB/s, the ratios and peak RSS.
    Transfer {
        /// File size in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Rounds; the medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Directory for the files (default: the system's temporary directory).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Hold many idle connections to a server and report its resident memory.
    Idle {
        /// Loopback address of the server, `IP:PORT` or `NET@IP:PORT`.
        #[arg(long, default_value = "127.0.0.1:8972", value_parser = transport::parse_addr)]
        addr: BenchAddr,
        /// Network, CA, client certificate, KCP key.
        #[command(flatten)]
        transport: ClientTransportArgs,
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

/// Runs a benchmark subcommand on its own tokio runtime (with `--threads` workers when given).
pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Server(args) => {
            sextant_bench_driver::cli::runtime(args.threads)?.block_on(serve(args))
        }
        BenchCommand::Client { args, workload } => {
            sextant_bench_driver::cli::runtime(args.threads)?.block_on(client(args, workload))
        }
        BenchCommand::HttpClient(args) => {
            sextant_bench_driver::cli::runtime(args.load.threads)?.block_on(http::http_client(args))
        }
        BenchCommand::Push {
            addr,
            pushes,
            payload,
        } => sextant_bench_driver::cli::runtime(None)?
            .block_on(push::push_client(addr, pushes, payload)),
        BenchCommand::Transfer {
            size_mib,
            rounds,
            dir,
        } => sextant_bench_driver::cli::runtime(None)?.block_on(transfer::transfer(
            size_mib << 20,
            rounds.max(1),
            dir,
        )),
        BenchCommand::Idle {
            addr,
            transport,
            connections,
            server_pid,
            settle_secs,
        } => sextant_bench_driver::cli::runtime(None)?.block_on(idle(
            addr,
            &transport,
            connections,
            server_pid,
            std::time::Duration::from_secs(settle_secs),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: BenchCommand,
    }

    #[test]
    fn client_flags_match_the_peers() {
        // The load flags are the peers' (sextant_bench_driver::cli::LoadArgs), so every peer
        // runs the same load from the same command line.
        let ours = match Cli::parse_from(["x", "client"]).command {
            BenchCommand::Client { args, .. } => args.driver_args(),
            other => panic!("client expected, got {other:?}"),
        };
        let peers = match sextant_bench_driver::cli::Cli::parse_from(["x", "client"]).command {
            sextant_bench_driver::cli::Command::Client(args) => args,
            other => panic!("client expected, got {other:?}"),
        };
        assert_eq!(format!("{ours:?}"), format!("{peers:?}"));
    }

    #[test]
    fn transport_flags_parse() {
        let cli = Cli::parse_from([
            "x",
            "client",
            "--addr",
            "quic@127.0.0.1:9",
            "--ca",
            "/tmp/ca.crt",
            "-c",
            "1000",
        ]);
        let BenchCommand::Client { args, .. } = cli.command else {
            panic!("client expected")
        };
        assert_eq!(args.addr.net, Some(Net::Quic));
        assert_eq!(args.concurrency, 1000);
        let cli = Cli::parse_from([
            "x",
            "server",
            "--network",
            "tls",
            "--self-signed",
            "/tmp/pki",
        ]);
        let BenchCommand::Server(args) = cli.command else {
            panic!("server expected")
        };
        assert_eq!(args.transport.network, Some(Net::Tls));
        assert!(Cli::try_parse_from(["x", "server", "--network", "udp"]).is_err());
    }

    #[test]
    fn peer_names() {
        let plain = ClientOptions::default();
        assert_eq!(peer_name(None, &plain), "sextant");
        assert_eq!(peer_name(Some(Net::Tls), &plain), "sextant-tls");
        assert_eq!(peer_name(Some(Net::Quic), &plain), "sextant-quic");
    }
}
