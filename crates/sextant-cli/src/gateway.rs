//! `sextant gateway`: an HTTP gateway (or agent) for the rpcx services of a registry, until
//! Ctrl-C or SIGTERM (crate `sextant-gateway`).

use std::time::Duration;

use clap::{Args, ValueEnum};
use sextant::{FailMode, SelectMode, XClientOptions};
use sextant_gateway::{Gateway, GatewayMode};

use crate::{duration, registry_url};

/// Options of `sextant gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The address to listen on, `host:port` (port 0 picks a free port; the URL is printed).
    /// Use 0.0.0.0:9981 to serve other hosts (not with --agent).
    #[arg(long, default_value = "127.0.0.1:9981")]
    pub listen: String,
    /// Where the services are: peer2peer://host:port, multiple://h1:p1,h2:p2,
    /// etcd://h1:p1,h2:p2/base, zookeeper://h:p/base, redis://h:p/base, consul://h:p/base,
    /// mdns://, or http://h:p (the embedded registry of `sextant registry`).
    #[arg(long)]
    pub registry: String,
    /// The registry's base path, when the --registry URL has none.
    #[arg(long, default_value = "/rpcx")]
    pub base_path: String,
    /// What a call does when its server fails.
    #[arg(long, value_enum, default_value_t = FailModeArg::Failover)]
    pub fail_mode: FailModeArg,
    /// How a server is picked for each call.
    #[arg(long, value_enum, default_value_t = SelectModeArg::Roundrobin)]
    pub select_mode: SelectModeArg,
    /// Run as an agent, a sidecar next to the clients: loopback only (see --allow-non-loopback),
    /// and the servers' addresses are shown to callers.
    #[arg(long)]
    pub agent: bool,
    /// Let an agent listen on an address other hosts can reach.
    #[arg(long, requires = "agent")]
    pub allow_non_loopback: bool,
    /// The longest a call may take, failover attempts included (then 504).
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub timeout: Duration,
    /// The largest request body (then 413): bytes, or with a unit: 512KiB, 16MiB, 1GiB, 10MB.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    pub max_body: usize,
    /// The most services with a client at once (then 503 for a new one).
    #[arg(long, default_value_t = 1024)]
    pub max_services: usize,
    /// Extra attempts after the first for failover and failtry.
    #[arg(long, default_value_t = 3)]
    pub retries: usize,
    /// Answer CORS requests from any origin (rpcx's AllowAllCORSOptions).
    #[arg(long)]
    pub cors: bool,
    /// How long calls in progress may take to finish when stopping.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub grace: Duration,
}

/// `--fail-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailModeArg {
    /// Try another server (rpcx-gateway's default).
    Failover,
    /// Return the first error.
    Failfast,
    /// Try the same server again.
    Failtry,
    /// Ask a second server when the first is slow.
    Failbackup,
}

impl From<FailModeArg> for FailMode {
    fn from(m: FailModeArg) -> FailMode {
        match m {
            FailModeArg::Failover => FailMode::Failover,
            FailModeArg::Failfast => FailMode::Failfast,
            FailModeArg::Failtry => FailMode::Failtry,
            FailModeArg::Failbackup => FailMode::Failbackup,
        }
    }
}

/// `--select-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SelectModeArg {
    /// Each server in turn (rpcx-gateway's default).
    Roundrobin,
    /// At random.
    Random,
    /// Smooth weighted round robin over the servers' `weight` metadata.
    Weighted,
    /// Weighted by measured round-trip time (rpcx's WeightedICMP).
    Icmp,
    /// Consistent hash of service, method and payload.
    Hash,
}

impl From<SelectModeArg> for SelectMode {
    fn from(m: SelectModeArg) -> SelectMode {
        match m {
            SelectModeArg::Roundrobin => SelectMode::RoundRobin,
            SelectModeArg::Random => SelectMode::Random,
            SelectModeArg::Weighted => SelectMode::WeightedRoundRobin,
            SelectModeArg::Icmp => SelectMode::WeightedIcmp,
            SelectModeArg::Hash => SelectMode::ConsistentHash,
        }
    }
}

/// Parses a size: `1048576`, `512KiB`, `16MiB`, `1GiB`, `10MB`, `64KB`, `100B`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size; write e.g. 16MiB, 512KiB or 1048576"))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}; use B, KiB, MiB, GiB, KB, MB or GB"
            ))
        }
    };
    let bytes = n
        .checked_mul(mul)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if bytes == 0 {
        return Err(format!("{s:?}: the size must be at least 1 byte"));
    }
    Ok(bytes)
}

/// Runs the gateway until interrupted.
pub async fn run(args: GatewayArgs) -> Result<(), String> {
    let template = registry_url::template(&args.registry, &args.base_path).await?;
    let mode = if args.agent {
        GatewayMode::Agent
    } else {
        GatewayMode::Gateway
    };
    let mut builder = Gateway::builder_shared(template)
        .mode(mode)
        .listen(args.listen.clone())
        .allow_non_loopback(args.allow_non_loopback)
        .fail_mode(args.fail_mode.into())
        .select_mode(args.select_mode.into())
        .xclient_options(XClientOptions::default().retries(args.retries))
        .call_timeout(args.timeout)
        .max_body_size(args.max_body)
        .max_services(args.max_services);
    if args.cors {
        builder = builder.cors(sextant::http::cors_allow_all());
    }
    let gateway = builder.start().await.map_err(|e| match e {
        sextant_gateway::GatewayError::Bind { .. } => {
            format!("{e} (is another process using the port? pick another with --listen)")
        }
        other => other.to_string(),
    })?;
    // The first line of stdout is the URL, for scripts and tests.
    println!("{}", gateway.url());
    eprintln!(
        "sextant {mode} at {} for the services of {}: Ctrl-C stops it",
        gateway.url(),
        args.registry
    );
    tokio::select! {
        _ = crate::registry::shutdown_signal() => {}
        _ = gateway.stopped() => {}
    }
    gateway
        .shutdown(args.grace)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("100B").unwrap(), 100);
        assert!(parse_size("0").is_err());
        assert!(parse_size("16XB").is_err());
        assert!(parse_size("lots").is_err());
    }
}
