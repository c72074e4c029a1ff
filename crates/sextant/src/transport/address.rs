//! Addresses as rpcx writes them: `network@address`.
//!
//! [`Address::parse`] is the one parser of server addresses in sextant: the server binds with it,
//! the client and the XClient dial with it, and the registry crates check registry keys with it
//! (plus [`Address::check_dialable`]), so they all agree on what an address is. The table of
//! what parses is on [`Address`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::error::{Error, Result};

/// Every network name rpcx writes in addresses, with the [`Network`] sextant serves and dials it
/// with (`None`: rpcx has it, sextant does not speak it yet).
pub const RPCX_NETWORKS: &[(&str, Option<Network>)] = &[
    ("tcp", Some(Network::Tcp)),
    ("tcp4", Some(Network::Tcp)),
    ("tcp6", Some(Network::Tcp)),
    ("unix", Some(Network::Unix)),
    ("inprocess", Some(Network::InProcess)),
    ("reuseport", Some(Network::Reuseport)),
    ("http", Some(Network::Http)),
    ("ws", Some(Network::Ws)),
    ("wss", Some(Network::Wss)),
    ("quic", Some(Network::Quic)),
    ("kcp", Some(Network::Kcp)),
    ("utp", None),
    ("rdma", None),
    ("memu", None),
];

/// The transport part of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Network {
    /// TCP (`tcp`, `tcp4`, `tcp6`).
    Tcp,
    /// Unix domain socket (`unix`).
    Unix,
    /// An in-memory pipe to a server in the same process (`inprocess`); see
    /// [`InProcess`](super::InProcess).
    InProcess,
    /// TCP, with `SO_REUSEPORT` on the listening socket so that several processes can serve one
    /// port (`reuseport`); dialled as TCP.
    Reuseport,
    /// rpcx frames after an HTTP `CONNECT /_rpcx_` (`http`), as rpcx's `newDirectHTTPConn`.
    Http,
    /// rpcx frames in WebSocket messages on path `/_rpcx_` (`ws`), as rpcx's `serveByWS`.
    Ws,
    /// WebSocket over TLS (`wss`).
    Wss,
    /// QUIC (`quic`): TLS 1.3, ALPN `rpcx`, one bidirectional stream per connection, as rpcx's
    /// `smallnest/quick`.
    Quic,
    /// KCP over UDP (`kcp`), kcp-go's sessions (block cipher, FEC), as rpcx's `kcp` build tag.
    Kcp,
}

impl Network {
    /// The name used in addresses.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Tcp => "tcp",
            Network::Unix => "unix",
            Network::InProcess => "inprocess",
            Network::Reuseport => "reuseport",
            Network::Http => "http",
            Network::Ws => "ws",
            Network::Wss => "wss",
            Network::Quic => "quic",
            Network::Kcp => "kcp",
        }
    }

    /// Whether addresses of this network are `host:port` (every network but `unix` and
    /// `inprocess`).
    pub fn has_host_port(self) -> bool {
        !matches!(self, Network::Unix | Network::InProcess)
    }

    /// Whether this network runs over a TCP connection (`tcp`, `reuseport`, `http`, `ws`,
    /// `wss`), so TCP options (keepalive, no-delay) and a TCP connect probe apply.
    pub fn is_tcp_based(self) -> bool {
        matches!(
            self,
            Network::Tcp | Network::Reuseport | Network::Http | Network::Ws | Network::Wss
        )
    }

    /// The network an rpcx network name stands for. `Err` says why not: a network of rpcx that
    /// sextant does not speak yet, or an unknown name.
    pub fn from_name(name: &str) -> std::result::Result<Network, String> {
        match RPCX_NETWORKS.iter().find(|(n, _)| *n == name) {
            Some((_, Some(network))) => Ok(*network),
            Some((_, None)) => Err(format!(
                "network {name:?} is an rpcx network sextant does not speak; use tcp, unix, \
                 inprocess, reuseport, http, ws, wss, quic or kcp"
            )),
            None => Err(format!(
                "unknown network {name:?}; expected tcp, tcp4, tcp6, unix, inprocess, reuseport, \
                 http, ws, wss, quic or kcp"
            )),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A server address: `network@address`.
///
/// | written | network | accepted by `parse` | dialable |
/// |---|---|---|---|
/// | `tcp@127.0.0.1:8972`, `tcp4@…`, `tcp6@[::1]:8972` | TCP | yes | yes |
/// | `127.0.0.1:8972` (no network) | TCP | yes | yes |
/// | `tcp@127.0.0.1:0` | TCP | yes (bind to any free port) | no |
/// | `tcp@:8972` | TCP | yes (bind on every interface) | no |
/// | `tcp@h:99999`, `tcp@h`, `tcp@bad host:1` | | no: not a port, no port, not a host | |
/// | `unix@/tmp/rpcx.sock` | unix socket | yes | yes |
/// | `inprocess@arith` | in-process ([`InProcess`](super::InProcess)) | yes | yes |
/// | `reuseport@…`, `http@…`, `ws@…`, `wss@…`, `quic@…`, `kcp@…` | the other transports, `host:port` as TCP | yes | yes (`quic` and `kcp` with their cargo features) |
/// | `utp@…`, `rdma@…`, `memu@…` | rpcx networks sextant does not speak | no, with an error saying so | |
/// | `carrier-pigeon@…` | | no: unknown network | |
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    network: Network,
    addr: String,
}

impl Address {
    /// A TCP address (`host:port`), not checked.
    pub fn tcp(addr: impl Into<String>) -> Address {
        Address {
            network: Network::Tcp,
            addr: addr.into(),
        }
    }

    /// A unix socket address, not checked.
    pub fn unix(path: impl Into<String>) -> Address {
        Address {
            network: Network::Unix,
            addr: path.into(),
        }
    }

    /// An in-process address: `inprocess@name`, not checked.
    pub fn in_process(name: impl Into<String>) -> Address {
        Address {
            network: Network::InProcess,
            addr: name.into(),
        }
    }

    /// Parses `network@address`, or a bare `host:port` as TCP. A TCP address needs a port
    /// (0 to 65535) and, when a host is given, an IP address (IPv6 in brackets) or a host name;
    /// unix paths and in-process names must not be empty.
    pub fn parse(s: &str) -> Result<Address> {
        let invalid = |reason: String| Error::InvalidAddress {
            address: s.to_string(),
            reason,
        };
        let (network, addr) = s.split_once('@').unwrap_or(("tcp", s));
        let network = Network::from_name(network).map_err(invalid)?;
        if addr.is_empty() {
            return Err(invalid("the address after '@' is empty".into()));
        }
        if network.has_host_port() {
            check_host_port(addr).map_err(invalid)?;
        }
        Ok(Address {
            network,
            addr: addr.to_string(),
        })
    }

    /// Checks that a client can dial this address, i.e. that it names one server: a TCP
    /// address needs a host and a port other than 0 (those only make sense for binding).
    pub fn check_dialable(&self) -> Result<()> {
        if !self.network.has_host_port() {
            return Ok(());
        }
        let invalid = |reason: &str| Error::InvalidAddress {
            address: self.to_string(),
            reason: reason.to_string(),
        };
        let (host, port) = self.addr.rsplit_once(':').unwrap_or(("", "0"));
        if host.is_empty() {
            return Err(invalid("a server address needs a host"));
        }
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(invalid("port 0 can be bound but not dialled"));
        }
        Ok(())
    }

    /// Host and port of a `host:port` address (every network but `unix` and `inprocess`), the
    /// host without IPv6 brackets (`tcp@[::1]:8972` → `("::1", 8972)`); `None` for the others.
    /// What a registry that stores host and port apart (Consul's agent services, mDNS)
    /// publishes.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        if !self.network.has_host_port() {
            return None;
        }
        let (host, port) = self.addr.rsplit_once(':')?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Some((host, port.parse().ok()?))
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The part after `@`: `host:port`, a socket path or an in-process name.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The same `host:port` on another network (`tcp@h:p` → `ws@h:p`).
    pub fn with_network(&self, network: Network) -> Address {
        Address {
            network,
            addr: self.addr.clone(),
        }
    }
}

/// `host:port` with a valid port and a host that is empty, an IP address or a host name.
fn check_host_port(addr: &str) -> std::result::Result<(), String> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("a tcp address needs host:port".into());
    };
    if port.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("{port:?} is not a port number (0 to 65535)"));
    }
    if host.is_empty() {
        return Ok(());
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let is_ip = match bare.parse::<IpAddr>() {
        // An IPv6 address must be written in brackets, or its colons read as the port's.
        Ok(IpAddr::V6(_)) => host.starts_with('['),
        Ok(IpAddr::V4(_)) => bare == host,
        Err(_) => false,
    };
    if is_ip || (bare == host && is_hostname(host)) {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is neither an IP address (IPv6 in brackets) nor a host name"
        ))
    }
}

fn is_hostname(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.network.as_str(), self.addr)
    }
}

impl FromStr for Address {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Address::parse(s)
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Self {
        Address::tcp(a.to_string())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Anything sextant takes an address as: `&str` and `String` (parsed with [`Address::parse`]),
/// an [`Address`], or a [`SocketAddr`] (TCP). Sealed: sextant alone implements it.
pub trait ToAddress: sealed::Sealed {
    /// The address, or why it is not one.
    fn to_address(self) -> Result<Address>;
}

macro_rules! to_address {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl ToAddress for $t {
            fn to_address(self) -> Result<Address> {
                let $v = self;
                $e
            }
        }
    )*};
}

to_address! {
    &str => |s| Address::parse(s),
    String => |s| Address::parse(&s),
    &String => |s| Address::parse(s),
    Address => |a| Ok(a),
    &Address => |a| Ok(a.clone()),
    SocketAddr => |a| Ok(Address::from(a)),
    &SocketAddr => |a| Ok(Address::from(*a)),
}

/// The remote end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A unix socket peer (usually unnamed).
    Unix(Option<String>),
    /// A client in the same process: the in-process name and a connection number.
    InProcess(String),
    /// A QUIC peer.
    Quic(SocketAddr),
    /// A KCP peer.
    Kcp(SocketAddr),
    /// A peer on a connection the user accepted (see
    /// [`Server::start_incoming`](crate::Server::start_incoming)), as the user named it.
    Other(String),
}

impl PeerAddr {
    /// The peer's IP address and port, for the networks that have one.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            PeerAddr::Tcp(a) | PeerAddr::Quic(a) | PeerAddr::Kcp(a) => Some(*a),
            _ => None,
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(a) => write!(f, "tcp@{a}"),
            PeerAddr::Unix(Some(p)) => write!(f, "unix@{p}"),
            PeerAddr::Unix(None) => f.write_str("unix@(unnamed)"),
            PeerAddr::InProcess(n) => write!(f, "inprocess@{n}"),
            PeerAddr::Quic(a) => write!(f, "quic@{a}"),
            PeerAddr::Kcp(a) => write!(f, "kcp@{a}"),
            PeerAddr::Other(n) => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rpcx_addresses() {
        let a = Address::parse("tcp@127.0.0.1:8972").unwrap();
        assert_eq!(a.network(), Network::Tcp);
        assert_eq!(a.addr(), "127.0.0.1:8972");
        assert_eq!(a.to_string(), "tcp@127.0.0.1:8972");
        for ok in [
            "127.0.0.1:1",
            "tcp@localhost:1",
            "tcp4@127.0.0.1:8972",
            "tcp6@[::1]:8972",
            "tcp@my-host.example.com:80",
            "tcp@:8972",
            "tcp@127.0.0.1:0",
            "tcp@127.0.0.1:65535",
        ] {
            let a = Address::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(a.network(), Network::Tcp, "{ok}");
        }
        assert_eq!(
            Address::parse("unix@/tmp/x.sock").unwrap().network(),
            Network::Unix
        );
        let a = Address::parse("inprocess@arith").unwrap();
        assert_eq!(a.network(), Network::InProcess);
        assert_eq!(a.to_string(), "inprocess@arith");
    }

    #[test]
    fn rejects_bad_addresses_clearly() {
        for (s, needle) in [
            ("carrier-pigeon@1.2.3.4:5", "unknown network"),
            ("inprocess@", "empty"),
            ("utp@127.0.0.1:5", "sextant does not speak"),
            ("rdma@127.0.0.1:5", "sextant does not speak"),
            ("quic@127.0.0.1", "host:port"),
            ("ws@bad host:1", "neither"),
            ("tcp@", "empty"),
            ("unix@", "empty"),
            ("tcp@localhost", "host:port"),
            ("tcp@127.0.0.1:99999", "not a port"),
            ("tcp@127.0.0.1:", "not a port"),
            ("tcp@127.0.0.1:x", "not a port"),
            ("tcp@bad host:80", "neither"),
            ("tcp@::1:80", "neither"),
            ("tcp@[127.0.0.1]:80", "neither"),
        ] {
            let e = Address::parse(s).unwrap_err().to_string();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn dialable_addresses_name_one_server() {
        for ok in [
            "tcp@127.0.0.1:8972",
            "tcp6@[::1]:1",
            "unix@/tmp/x.sock",
            "inprocess@a",
        ] {
            Address::parse(ok).unwrap().check_dialable().unwrap();
        }
        for bad in ["tcp@127.0.0.1:0", "tcp@:8972"] {
            assert!(
                Address::parse(bad).unwrap().check_dialable().is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn host_and_port() {
        let hp = |s: &str| {
            Address::parse(s)
                .unwrap()
                .host_port()
                .map(|(h, p)| (h.to_string(), p))
        };
        assert_eq!(hp("tcp@10.0.0.5:8972"), Some(("10.0.0.5".into(), 8972)));
        assert_eq!(hp("tcp6@[::1]:1"), Some(("::1".into(), 1)));
        assert_eq!(hp("tcp@:80"), Some(("".into(), 80)));
        assert_eq!(hp("unix@/tmp/x.sock"), None);
        assert_eq!(hp("inprocess@x"), None);
        assert_eq!(hp("quic@127.0.0.1:9"), Some(("127.0.0.1".into(), 9)));
        assert_eq!(hp("ws@[::1]:80"), Some(("::1".into(), 80)));
    }

    #[test]
    fn every_rpcx_network_is_named_once() {
        for (i, (n, _)) in RPCX_NETWORKS.iter().enumerate() {
            assert!(!RPCX_NETWORKS[i + 1..].iter().any(|(m, _)| m == n), "{n}");
        }
        assert_eq!(Network::from_name("tcp6"), Ok(Network::Tcp));
        assert_eq!(Network::from_name("ws"), Ok(Network::Ws));
        assert!(Network::from_name("memu").is_err());
        for (name, network) in RPCX_NETWORKS {
            if let Some(n) = network {
                if !name.starts_with("tcp") {
                    assert_eq!(n.as_str(), *name);
                }
            }
        }
    }

    #[test]
    fn to_address_takes_every_form() {
        let sa: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let want = Address::tcp("127.0.0.1:1");
        assert_eq!("tcp@127.0.0.1:1".to_address().unwrap(), want);
        assert_eq!(String::from("127.0.0.1:1").to_address().unwrap(), want);
        assert_eq!((&String::from("127.0.0.1:1")).to_address().unwrap(), want);
        assert_eq!(want.clone().to_address().unwrap(), want);
        assert_eq!((&want).to_address().unwrap(), want);
        assert_eq!(sa.to_address().unwrap(), want);
        assert_eq!((&sa).to_address().unwrap(), want);
        assert!("nope@x".to_address().is_err());
    }
}
