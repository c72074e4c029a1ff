//! The transport flags of `server`, `client` and `idle`: which network (`--network tcp|tls|ws|wss|
//! quic|kcp`, or a full `NET@127.0.0.1:PORT` address), and the certificate and KCP switches of
//! `sextant_interop::flags` (the same as `interop-server` / `interop-client`).
//!
//! ```text
//! sextant-bench server --network tls --addr 127.0.0.1:8972 --self-signed /tmp/pki
//! sextant-bench client --network tls --addr 127.0.0.1:8972 --ca /tmp/pki/ca.crt -c 100 -n 100000
//! sextant-bench server --addr quic@127.0.0.1:8972 --self-signed /tmp/pki
//! sextant-bench server --network kcp --addr 127.0.0.1:8972   # KCP with the default pass and salt
//! ```
//!
//! `tls`, `wss` and `quic` need a certificate on the server (`--self-signed DIR` writes a fresh
//! CA, server and client certificate to DIR and serves with them; or `--cert FILE --key FILE`)
//! and a trust anchor on the client (`--ca DIR/ca.crt`, or `--insecure`). `kcp` uses
//! rpcx-examples' key derivation from `--kcp-pass` and `--kcp-salt`, which default to
//! [`DEFAULT_KCP_PASS`] and [`DEFAULT_KCP_SALT`] on both sides. Only loopback addresses are
//! accepted: benchmarks never leave the machine.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use sextant::{ClientOptions, ServerBuilder};
use sextant_interop::flags::{ClientTransport, ServerTransport};

/// KCP pass used when `--network kcp` is given without `--kcp-pass`.
pub const DEFAULT_KCP_PASS: &str = "sextant-bench";
/// KCP salt used when `--network kcp` is given without `--kcp-salt`.
pub const DEFAULT_KCP_SALT: &str = "sextant-bench";

/// The networks the benchmark runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Net {
    /// Plain TCP (TLS if certificate flags are given, as sextant's `tcp@` does).
    Tcp,
    /// TCP with TLS (rustls): `tcp@` with a TLS configuration; certificates required.
    Tls,
    /// WebSocket on `/_rpcx_`.
    Ws,
    /// WebSocket over TLS; certificates required.
    Wss,
    /// QUIC (quinn), one stream per connection; certificates required.
    Quic,
    /// kcp-go sessions over UDP (AES from the KCP pass and salt, FEC 10/3).
    Kcp,
}

impl Net {
    /// The rpcx network name in addresses.
    pub fn scheme(self) -> &'static str {
        match self {
            Net::Tcp | Net::Tls => "tcp",
            Net::Ws => "ws",
            Net::Wss => "wss",
            Net::Quic => "quic",
            Net::Kcp => "kcp",
        }
    }

    /// Whether this network cannot run without TLS.
    pub fn needs_tls(self) -> bool {
        matches!(self, Net::Tls | Net::Wss | Net::Quic)
    }

    fn from_scheme(s: &str) -> Option<Net> {
        Some(match s {
            "tcp" | "tcp4" | "tcp6" => Net::Tcp,
            "tls" => Net::Tls,
            "ws" => Net::Ws,
            "wss" => Net::Wss,
            "quic" => Net::Quic,
            "kcp" => Net::Kcp,
            _ => return None,
        })
    }
}

/// A `--addr` value: a loopback `IP:PORT`, optionally prefixed with `NET@`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchAddr {
    /// The network named in the address, if any.
    pub net: Option<Net>,
    /// The loopback socket address.
    pub addr: SocketAddr,
}

/// Parses `[NET@]IP:PORT`, loopback only.
pub fn parse_addr(s: &str) -> Result<BenchAddr, String> {
    let (net, rest) = match s.split_once('@') {
        Some((n, rest)) => (
            Some(Net::from_scheme(n).ok_or_else(|| {
                format!("{s:?}: unknown network {n:?} (tcp, tls, ws, wss, quic, kcp)")
            })?),
            rest,
        ),
        None => (None, s),
    };
    let addr = sextant_bench_driver::cli::parse_loopback(rest)?;
    Ok(BenchAddr { net, addr })
}

/// Resolves `--network` against the network named in `--addr`.
fn resolve(flag: Option<Net>, addr: &BenchAddr) -> anyhow::Result<Net> {
    match (flag, addr.net) {
        (Some(a), Some(b)) if a != b => {
            bail!(
                "--network {} contradicts --addr {}@{}",
                a.scheme(),
                b.scheme(),
                addr.addr
            )
        }
        (Some(n), _) | (None, Some(n)) => Ok(n),
        (None, None) => Ok(Net::Tcp),
    }
}

/// Feeds `flags` (switch, value pairs; a `None` value for a bare switch) to a
/// `sextant_interop::flags` parser.
fn feed(
    flags: Vec<(&str, Option<String>)>,
    mut parse: impl FnMut(&str, &mut dyn Iterator<Item = String>) -> sextant::Result<bool>,
) -> anyhow::Result<()> {
    for (flag, value) in flags {
        let mut rest = value.into_iter();
        anyhow::ensure!(parse(flag, &mut rest)?, "{flag} is not a transport switch");
    }
    Ok(())
}

fn path_flag(flag: &'static str, p: &Option<PathBuf>) -> Option<(&'static str, Option<String>)> {
    p.as_ref()
        .map(|p| (flag, Some(p.to_string_lossy().into_owned())))
}

fn kcp_flags<'a>(
    net: Net,
    pass: &Option<String>,
    salt: &Option<String>,
) -> Vec<(&'a str, Option<String>)> {
    let default = |v: &Option<String>, d: &str| match (v, net) {
        (Some(v), _) => Some(v.clone()),
        (None, Net::Kcp) => Some(d.to_string()),
        (None, _) => None,
    };
    let mut out = Vec::new();
    if let Some(p) = default(pass, DEFAULT_KCP_PASS) {
        out.push(("--kcp-pass", Some(p)));
    }
    if let Some(s) = default(salt, DEFAULT_KCP_SALT) {
        out.push(("--kcp-salt", Some(s)));
    }
    out
}

/// The transport flags of `server`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerTransportArgs {
    /// Network to serve on (default: the one in `--addr`, else tcp).
    #[arg(long, value_enum)]
    pub network: Option<Net>,
    /// Server certificate chain, PEM (with `--key`).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Server private key, PEM.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mutual TLS).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Make a CA, a server certificate for localhost/127.0.0.1/::1 and a client certificate,
    /// write them to DIR (`ca.crt`, `server.crt`, `server.key`, `client.crt`, `client.key`) and
    /// serve with them.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["cert", "key"])]
    pub self_signed: Option<PathBuf>,
    /// KCP pass (default with `kcp`: "sextant-bench").
    #[arg(long)]
    pub kcp_pass: Option<String>,
    /// KCP salt (default with `kcp`: "sextant-bench").
    #[arg(long)]
    pub kcp_salt: Option<String>,
}

impl ServerTransportArgs {
    /// Whether a certificate is configured.
    fn has_tls(&self) -> bool {
        self.self_signed.is_some() || self.cert.is_some()
    }

    /// The address to listen on and the builder with TLS and KCP set.
    pub fn apply(
        &self,
        addr: &BenchAddr,
        builder: ServerBuilder,
    ) -> anyhow::Result<(String, ServerBuilder)> {
        let net = resolve(self.network, addr)?;
        if net.needs_tls() && !self.has_tls() {
            bail!(
                "--network {net:?} needs a certificate: --self-signed DIR, or --cert FILE --key FILE"
            );
        }
        let mut t = ServerTransport::default();
        let mut flags: Vec<_> = [
            path_flag("--cert", &self.cert),
            path_flag("--key", &self.key),
            path_flag("--client-ca", &self.client_ca),
            path_flag("--self-signed", &self.self_signed),
        ]
        .into_iter()
        .flatten()
        .collect();
        flags.extend(kcp_flags(net, &self.kcp_pass, &self.kcp_salt));
        feed(flags, |f, a| t.parse(f, a))?;
        let builder = t.apply(builder).context("transport flags")?;
        Ok((format!("{}@{}", net.scheme(), addr.addr), builder))
    }
}

/// The transport flags of `client` and `idle`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientTransportArgs {
    /// Network to dial (default: the one in `--addr`, else tcp).
    #[arg(long, value_enum)]
    pub network: Option<Net>,
    /// CA that signed the server's certificate, PEM (e.g. DIR/ca.crt of the server's
    /// `--self-signed DIR`).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate chain for mutual TLS, PEM (with `--key`).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client private key, PEM.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Name to verify the server's certificate against (default: the host of the address).
    #[arg(long)]
    pub server_name: Option<String>,
    /// Do not verify the server's certificate.
    #[arg(long)]
    pub insecure: bool,
    /// KCP pass (default with `kcp`: "sextant-bench").
    #[arg(long)]
    pub kcp_pass: Option<String>,
    /// KCP salt (default with `kcp`: "sextant-bench").
    #[arg(long)]
    pub kcp_salt: Option<String>,
}

impl ClientTransportArgs {
    /// The address to dial and the client options with TLS and KCP set.
    pub fn apply(&self, addr: &BenchAddr) -> anyhow::Result<(String, ClientOptions)> {
        let net = resolve(self.network, addr)?;
        if net.needs_tls() && self.ca.is_none() && !self.insecure {
            bail!("--network {net:?} needs --ca FILE (the server's CA) or --insecure");
        }
        let mut t = ClientTransport::default();
        let mut flags: Vec<_> = [
            path_flag("--ca", &self.ca),
            path_flag("--cert", &self.cert),
            path_flag("--key", &self.key),
            self.server_name
                .as_ref()
                .map(|n| ("--server-name", Some(n.clone()))),
            self.insecure.then_some(("--insecure", None)),
        ]
        .into_iter()
        .flatten()
        .collect();
        flags.extend(kcp_flags(net, &self.kcp_pass, &self.kcp_salt));
        feed(flags, |f, a| t.parse(f, a))?;
        let options = t
            .apply(ClientOptions::default())
            .context("transport flags")?;
        Ok((format!("{}@{}", net.scheme(), addr.addr), options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let a = parse_addr("127.0.0.1:9").unwrap();
        assert_eq!((a.net, a.addr.port()), (None, 9));
        assert_eq!(parse_addr("quic@127.0.0.1:9").unwrap().net, Some(Net::Quic));
        assert_eq!(parse_addr("tls@[::1]:9").unwrap().net, Some(Net::Tls));
        assert!(parse_addr("ws@10.0.0.1:9").is_err());
        assert!(parse_addr("udp@127.0.0.1:9").is_err());
    }

    #[test]
    fn network_flag_and_address_agree() {
        let a = parse_addr("ws@127.0.0.1:9").unwrap();
        assert_eq!(resolve(None, &a).unwrap(), Net::Ws);
        assert_eq!(resolve(Some(Net::Ws), &a).unwrap(), Net::Ws);
        assert!(resolve(Some(Net::Quic), &a).is_err());
        let b = parse_addr("127.0.0.1:9").unwrap();
        assert_eq!(resolve(None, &b).unwrap(), Net::Tcp);
    }

    #[test]
    fn tls_networks_need_certificates() {
        let addr = parse_addr("127.0.0.1:9").unwrap();
        let server = ServerTransportArgs {
            network: Some(Net::Tls),
            ..Default::default()
        };
        assert!(server.apply(&addr, sextant::Server::builder()).is_err());
        let client = ClientTransportArgs {
            network: Some(Net::Quic),
            ..Default::default()
        };
        assert!(client.apply(&addr).is_err());
        let client = ClientTransportArgs {
            network: Some(Net::Kcp),
            ..Default::default()
        };
        let (a, o) = client.apply(&addr).unwrap();
        assert_eq!(a, "kcp@127.0.0.1:9");
        assert!(o.kcp.is_some());
    }

    #[test]
    fn self_signed_serves_tls() {
        let dir = tempfile::tempdir().unwrap();
        let addr = parse_addr("127.0.0.1:9").unwrap();
        let server = ServerTransportArgs {
            network: Some(Net::Tls),
            self_signed: Some(dir.path().to_owned()),
            ..Default::default()
        };
        let (a, _) = server.apply(&addr, sextant::Server::builder()).unwrap();
        assert_eq!(a, "tcp@127.0.0.1:9");
        let client = ClientTransportArgs {
            network: Some(Net::Tls),
            ca: Some(dir.path().join("ca.crt")),
            ..Default::default()
        };
        let (_, o) = client.apply(&addr).unwrap();
        assert!(o.tls.is_some());
    }
}
