//! Addresses and transports.
//!
//! rpcx writes a server address as `network@address`: `tcp@127.0.0.1:8972`, `unix@/tmp/rpcx.sock`.
//! [`Address`] parses that form (a bare `host:port` means TCP); [`Listener`] and [`Stream`] are the
//! transports sextant can serve and dial today: TCP, unix sockets, and in-process pipes
//! (`inprocess@name`, see [`InProcess`]).

mod memory;

pub use memory::{InProcess, MemoryListener};

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::error::Error;

/// The transport part of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Network {
    /// TCP (`tcp`, `tcp4`, `tcp6`).
    Tcp,
    /// Unix domain socket (`unix`).
    Unix,
    /// An in-memory pipe to a server in the same process (`inprocess`); see [`InProcess`].
    InProcess,
}

impl Network {
    /// The name used in addresses.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Tcp => "tcp",
            Network::Unix => "unix",
            Network::InProcess => "inprocess",
        }
    }
}

/// A server address: `network@address`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    network: Network,
    addr: String,
}

/// Networks rpcx knows that sextant cannot dial or serve (yet).
const RPCX_ONLY_NETWORKS: &[&str] = &[
    "quic",
    "kcp",
    "http",
    "ws",
    "wss",
    "reuseport",
    "rdma",
    "utp",
    "memu",
];

impl Address {
    /// A TCP address.
    pub fn tcp(addr: impl Into<String>) -> Address {
        Address {
            network: Network::Tcp,
            addr: addr.into(),
        }
    }

    /// A unix socket address.
    pub fn unix(path: impl Into<String>) -> Address {
        Address {
            network: Network::Unix,
            addr: path.into(),
        }
    }

    /// An in-process address: `inprocess@name`.
    pub fn in_process(name: impl Into<String>) -> Address {
        Address {
            network: Network::InProcess,
            addr: name.into(),
        }
    }

    /// Parses `network@address`, or a bare `host:port` as TCP.
    pub fn parse(s: &str) -> Result<Address, Error> {
        let invalid = |reason: String| Error::InvalidAddress {
            address: s.to_string(),
            reason,
        };
        let (network, addr) = match s.split_once('@') {
            Some((n, a)) => (n, a),
            None => ("tcp", s),
        };
        if addr.is_empty() {
            return Err(invalid("the address after '@' is empty".into()));
        }
        let network = match network {
            "tcp" | "tcp4" | "tcp6" => Network::Tcp,
            "unix" => Network::Unix,
            "inprocess" => Network::InProcess,
            n if RPCX_ONLY_NETWORKS.contains(&n) => {
                return Err(invalid(format!(
                    "network {n:?} is not supported by sextant yet; use tcp or unix"
                )))
            }
            n => {
                return Err(invalid(format!(
                    "unknown network {n:?}; expected tcp, unix or inprocess"
                )))
            }
        };
        if network == Network::Tcp && !addr.contains(':') {
            return Err(invalid("a tcp address needs host:port".into()));
        }
        Ok(Address {
            network,
            addr: addr.to_string(),
        })
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The part after `@`: `host:port` or a socket path.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.network.as_str(), self.addr)
    }
}

impl FromStr for Address {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl TryFrom<&str> for Address {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Address::parse(s)
    }
}

impl TryFrom<String> for Address {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Address::parse(&s)
    }
}

impl TryFrom<&String> for Address {
    type Error = Error;
    fn try_from(s: &String) -> Result<Self, Self::Error> {
        Address::parse(s)
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Self {
        Address::tcp(a.to_string())
    }
}

impl TryFrom<&Address> for Address {
    type Error = Error;
    fn try_from(a: &Address) -> Result<Self, Self::Error> {
        Ok(a.clone())
    }
}

/// The remote end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A unix socket peer (usually unnamed).
    Unix(Option<String>),
    /// A client in the same process: the in-process name and a connection number.
    InProcess(String),
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(a) => write!(f, "tcp@{a}"),
            PeerAddr::Unix(Some(p)) => write!(f, "unix@{p}"),
            PeerAddr::Unix(None) => f.write_str("unix@(unnamed)"),
            PeerAddr::InProcess(n) => write!(f, "inprocess@{n}"),
        }
    }
}

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix socket; the path is removed when the listener is dropped.
    Unix(UnixListener, String),
    /// An in-process name (from [`InProcess::listen`]); the name is freed when it is dropped.
    Memory(MemoryListener),
}

impl Listener {
    /// Binds `addr`. A stale unix socket file at the path is replaced. An `inprocess@name`
    /// address listens in the process-wide hub, [`InProcess::global`].
    pub async fn bind(addr: &Address) -> Result<Listener, Error> {
        let err = |e: io::Error| Error::Connect {
            address: addr.to_string(),
            source: e.into(),
        };
        match addr.network {
            Network::Tcp => Ok(Listener::Tcp(
                TcpListener::bind(&addr.addr).await.map_err(err)?,
            )),
            Network::Unix => {
                if std::fs::metadata(&addr.addr).is_ok()
                    && UnixStream::connect(&addr.addr).await.is_err()
                {
                    // Nobody is listening there: a leftover from a crashed process.
                    let _ = std::fs::remove_file(&addr.addr);
                }
                Ok(Listener::Unix(
                    UnixListener::bind(&addr.addr).map_err(err)?,
                    addr.addr.clone(),
                ))
            }
            Network::InProcess => InProcess::global().listen(&addr.addr),
        }
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<Address> {
        match self {
            Listener::Tcp(l) => Ok(Address::from(l.local_addr()?)),
            Listener::Unix(_, p) => Ok(Address::unix(p.clone())),
            Listener::Memory(m) => Ok(Address::in_process(m.name())),
        }
    }

    /// Accepts one connection.
    pub async fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match self {
            Listener::Tcp(l) => {
                let (s, a) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok((Stream::Tcp(s), PeerAddr::Tcp(a)))
            }
            Listener::Unix(l, _) => {
                let (s, a) = l.accept().await?;
                let p = a.as_pathname().map(|p| p.display().to_string());
                Ok((Stream::Unix(s), PeerAddr::Unix(p)))
            }
            Listener::Memory(m) => m.accept().await,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A connected byte stream.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix socket.
    Unix(UnixStream),
    /// An in-process pipe (see [`InProcess`]).
    Memory(tokio::io::DuplexStream),
}

impl Stream {
    /// Dials `addr`, failing after `timeout`. An `inprocess@name` address is dialled in the
    /// process-wide hub, [`InProcess::global`].
    pub async fn connect(addr: &Address, timeout: Duration) -> Result<Stream, Error> {
        if addr.network == Network::InProcess {
            // No handshake: connecting only queues the pipe for the server's accept loop.
            return InProcess::global().connect(&addr.addr).await;
        }
        let fut = async {
            match addr.network {
                Network::Unix => Ok(Stream::Unix(UnixStream::connect(&addr.addr).await?)),
                _ => {
                    let s = TcpStream::connect(&addr.addr).await?;
                    s.set_nodelay(true)?;
                    Ok(Stream::Tcp(s))
                }
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(Error::Connect {
                address: addr.to_string(),
                source: std::sync::Arc::new(e),
            }),
            Err(_) => Err(Error::ConnectTimeout {
                address: addr.to_string(),
                timeout,
            }),
        }
    }

    /// Splits into halves that can be used from two tasks without a lock.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            Stream::Unix(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Unix(r), WriteHalf::Unix(w))
            }
            Stream::Memory(s) => {
                let (r, w) = tokio::io::split(s);
                (ReadHalf::Memory(r), WriteHalf::Memory(w))
            }
        }
    }
}

/// The reading half of a [`Stream`].
#[derive(Debug)]
pub enum ReadHalf {
    /// TCP.
    Tcp(tokio::net::tcp::OwnedReadHalf),
    /// Unix socket.
    Unix(tokio::net::unix::OwnedReadHalf),
    /// In-process pipe.
    Memory(tokio::io::ReadHalf<tokio::io::DuplexStream>),
}

/// The writing half of a [`Stream`].
#[derive(Debug)]
pub enum WriteHalf {
    /// TCP.
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    /// Unix socket.
    Unix(tokio::net::unix::OwnedWriteHalf),
    /// In-process pipe.
    Memory(tokio::io::WriteHalf<tokio::io::DuplexStream>),
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ReadHalf::Unix(s) => Pin::new(s).poll_read(cx, buf),
            ReadHalf::Memory(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            WriteHalf::Unix(s) => Pin::new(s).poll_write(cx, buf),
            WriteHalf::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            WriteHalf::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            WriteHalf::Memory(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        !matches!(self, WriteHalf::Memory(_))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => Pin::new(s).poll_flush(cx),
            WriteHalf::Unix(s) => Pin::new(s).poll_flush(cx),
            WriteHalf::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            WriteHalf::Unix(s) => Pin::new(s).poll_shutdown(cx),
            WriteHalf::Memory(s) => Pin::new(s).poll_shutdown(cx),
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
        assert_eq!(
            Address::parse("127.0.0.1:1").unwrap().network(),
            Network::Tcp
        );
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
            ("quic@127.0.0.1:5", "not supported by sextant yet"),
            ("tcp@", "empty"),
            ("tcp@localhost", "host:port"),
        ] {
            let e = Address::parse(s).unwrap_err().to_string();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }
}
