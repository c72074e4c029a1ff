//! Addresses and transports.
//!
//! rpcx writes a server address as `network@address`; the network picks the transport, with
//! rpcx's names:
//!
//! | network | server | client | module |
//! |---|---|---|---|
//! | `tcp`, `tcp4`, `tcp6` (or a bare `host:port`) | TCP, TLS when [`ServerOptions::tls`](crate::ServerOptions::tls) is set | TCP, TLS when [`ClientOptions::tls`](crate::ClientOptions::tls) is set | `tcp`, `tls` |
//! | `reuseport` | TCP with `SO_REUSEPORT`: several processes serve one port | as `tcp` | `tcp` |
//! | `http` | as `tcp`: the service port answers `CONNECT /_rpcx_` | `CONNECT /_rpcx_ HTTP/1.0`, then rpcx | `http_connect` |
//! | `ws`, `wss` | WebSocket on `/_rpcx_` (TLS required for `wss`) | WebSocket, with an `Origin` header | `ws` |
//! | `quic` | QUIC, TLS required, ALPN `rpcx`, one stream per connection | the same | `quic` (feature `quic`) |
//! | `kcp` | kcp-go sessions over UDP ([`KcpConfig`]) | the same | `kcp` (feature `kcp`) |
//! | `unix` | unix socket | unix socket | here |
//! | `inprocess` | in-process pipe ([`InProcess`]) | the same | `memory` |
//!
//! The layer is open at both ends, as tonic's:
//! - **Serving.** A [`Listener`] yields [`Incoming`] connections. Their handshakes (TLS, WebSocket,
//!   QUIC) run in each connection's own task, bounded by
//!   [`ServerOptions::handshake_timeout`](crate::ServerOptions::handshake_timeout), never in the
//!   accept loop. [`Listener::from_accept`] serves any [`Accept`] implementation, and
//!   [`Server::start_incoming`](crate::Server::start_incoming) any stream of byte streams.
//! - **Dialling.** [`ClientOptions::connector`](crate::ClientOptions::connector) takes a
//!   [`Connector`] that dials every address itself, returning any [`Io`].

/// `AsyncWrite` for a read-side wrapper: every write call goes to its `inner` field as it is.
/// `impl_write_through!(Wrapper<S> where S: Bound)` or `impl_write_through!(Wrapper)`. Unused
/// when no feature that has such a wrapper (`http`, `tls`, `websocket`) is on.
#[allow(unused_macros)]
macro_rules! impl_write_through {
    ($ty:ident $(<$g:ident>)? $(where $b:ident: $($bound:path)+)?) => {
        impl$(<$g>)? tokio::io::AsyncWrite for $ty$(<$g>)?
        $(where $b: $($bound +)+ Unpin)?
        {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use impl_write_through;

mod address;
mod http_connect;
#[cfg(feature = "kcp")]
mod kcp;
mod memory;
#[cfg(feature = "quic")]
mod quic;
#[cfg(feature = "tls")]
mod read_ahead;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "websocket")]
mod ws;

pub use address::{Address, Network, PeerAddr, ToAddress, RPCX_NETWORKS};
pub use http_connect::{RPCX_CONNECTED, RPCX_PATH};
pub use memory::{InProcess, MemoryListener};
#[cfg(feature = "kcp")]
pub use sextant_kcp::KcpConfig;
#[cfg(feature = "tls")]
pub use tls::{
    ClientTlsConfig, ClientTlsConfigBuilder, PeerIdentity, ServerTlsConfig, ServerTlsConfigBuilder,
    RPCX_ALPN,
};

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::client::ClientOptions;
use crate::error::Error;
use crate::server::ServerOptions;

/// Who is at the other end of a TLS or QUIC connection (without the `tls` feature: nothing,
/// as no connection has a handshake).
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerIdentity {}

/// A connection accepted and ready for rpcx: the byte stream, the peer, and what its TLS or
/// QUIC handshake said about the peer.
#[derive(Debug)]
#[non_exhaustive]
pub struct Connection {
    /// The byte stream, after every handshake.
    pub stream: Stream,
    /// The remote end.
    pub peer: PeerAddr,
    /// The peer's certificates, SNI and ALPN, when a handshake showed any.
    pub identity: Option<Arc<PeerIdentity>>,
}

type Handshake = BoxFuture<'static, io::Result<(Stream, Option<Arc<PeerIdentity>>)>>;

/// A connection as a [`Listener`] yields it: maybe still in its handshake.
pub struct Incoming {
    peer: PeerAddr,
    ready: Ready,
}

enum Ready {
    Now(Stream),
    Later(Handshake),
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("peer", &self.peer)
            .field("ready", &matches!(self.ready, Ready::Now(_)))
            .finish()
    }
}

impl Incoming {
    /// A connection with nothing left to do.
    pub fn ready(stream: Stream, peer: PeerAddr) -> Incoming {
        Incoming {
            peer,
            ready: Ready::Now(stream),
        }
    }

    /// A connection whose handshake `handshake` finishes; the server runs it in the
    /// connection's own task, under its handshake timeout.
    pub fn handshake<F>(peer: PeerAddr, handshake: F) -> Incoming
    where
        F: std::future::Future<Output = io::Result<(Stream, Option<Arc<PeerIdentity>>)>>
            + Send
            + 'static,
    {
        Incoming {
            peer,
            ready: Ready::Later(Box::pin(handshake)),
        }
    }

    /// The remote end.
    pub fn peer(&self) -> &PeerAddr {
        &self.peer
    }

    /// Runs the handshake, failing with `TimedOut` after `timeout`.
    pub async fn finish(self, timeout: Duration) -> io::Result<Connection> {
        let (stream, identity) = match self.ready {
            Ready::Now(s) => (s, None),
            Ready::Later(h) => match tokio::time::timeout(timeout, h).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("handshake not finished within {timeout:?}"),
                    ))
                }
            },
        };
        Ok(Connection {
            stream,
            peer: self.peer,
            identity,
        })
    }
}

/// Something that accepts connections: what [`Listener::from_accept`] serves. Implement it to
/// serve rpcx on a transport sextant does not have.
pub trait Accept: Send + Sync + 'static {
    /// The next connection. Must be cancel-safe: the server drops the future at shutdown.
    fn accept(&self) -> BoxFuture<'_, io::Result<Incoming>>;
    /// The address to publish for this listener.
    fn local_addr(&self) -> io::Result<Address>;
}

/// Dials addresses itself: what [`ClientOptions::connector`](crate::ClientOptions::connector)
/// takes, for proxies, tunnels or transports sextant does not have. The client's connect
/// timeout bounds the returned future.
pub trait Connector: Send + Sync + 'static {
    /// A byte stream connected to `address`, ready for rpcx frames.
    fn connect(&self, address: &Address) -> BoxFuture<'static, io::Result<Stream>>;
}

impl<F> Connector for F
where
    F: Fn(&Address) -> BoxFuture<'static, io::Result<Stream>> + Send + Sync + 'static,
{
    fn connect(&self, address: &Address) -> BoxFuture<'static, io::Result<Stream>> {
        self(address)
    }
}

/// What a TCP listener does with each accepted socket before rpcx starts.
#[derive(Clone)]
enum Upgrade {
    None,
    #[cfg(feature = "tls")]
    Tls(tokio_rustls::TlsAcceptor),
    #[cfg(feature = "websocket")]
    Ws {
        #[cfg(feature = "tls")]
        tls: Option<tokio_rustls::TlsAcceptor>,
        config: ws::WsConfig,
    },
}

enum Kind {
    Tcp {
        listener: TcpListener,
        upgrade: Upgrade,
        keepalive: Option<Duration>,
        network: Network,
    },
    Unix(UnixListener, String),
    Memory(MemoryListener),
    #[cfg(feature = "quic")]
    Quic(quic::QuicListener),
    #[cfg(feature = "kcp")]
    Kcp(sextant_kcp::KcpListener),
    Custom(Box<dyn Accept>),
}

/// A listening socket (or any [`Accept`]).
pub struct Listener {
    kind: Kind,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Listener")
            .field(&self.local_addr().ok())
            .finish()
    }
}

impl Listener {
    pub(crate) fn memory(m: MemoryListener) -> Listener {
        Listener {
            kind: Kind::Memory(m),
        }
    }

    /// Serves connections from any [`Accept`].
    pub fn from_accept(accept: impl Accept) -> Listener {
        Listener {
            kind: Kind::Custom(Box::new(accept)),
        }
    }

    /// Binds `addr` with default server options (no TLS: `wss@` and `quic@` fail). A stale
    /// unix socket file at the path is replaced. An `inprocess@name` address listens in the
    /// process-wide hub, [`InProcess::global`].
    pub async fn bind(addr: &Address) -> Result<Listener, Error> {
        Listener::bind_with(addr, &ServerOptions::default()).await
    }

    /// Binds `addr` for a server with `options`: its TLS configuration, TCP keepalive, KCP
    /// settings and size limits.
    pub async fn bind_with(addr: &Address, options: &ServerOptions) -> Result<Listener, Error> {
        let err = |e: io::Error| Error::Bind {
            address: addr.to_string(),
            source: e.into(),
        };
        let path = addr.addr();
        let network = addr.network();
        let kind = match network {
            Network::Tcp | Network::Http | Network::Reuseport | Network::Ws | Network::Wss => {
                let listener = if network == Network::Reuseport {
                    tcp::bind_reuseport(path).await.map_err(err)?
                } else {
                    TcpListener::bind(path).await.map_err(err)?
                };
                Kind::Tcp {
                    listener,
                    upgrade: tcp_upgrade(addr, options)?,
                    keepalive: options.tcp_keepalive,
                    network,
                }
            }
            Network::Unix => {
                if std::fs::metadata(path).is_ok() && UnixStream::connect(path).await.is_err() {
                    // Nobody is listening there: a leftover from a crashed process.
                    let _ = std::fs::remove_file(path);
                }
                Kind::Unix(UnixListener::bind(path).map_err(err)?, path.to_string())
            }
            Network::InProcess => return InProcess::global().listen(path),
            Network::Quic => {
                #[cfg(feature = "quic")]
                {
                    Kind::Quic(quic::QuicListener::bind(addr, options).await?)
                }
                #[cfg(not(feature = "quic"))]
                return Err(feature_missing(addr, "quic"));
            }
            Network::Kcp => {
                #[cfg(feature = "kcp")]
                {
                    Kind::Kcp(kcp::bind(addr, options).await?)
                }
                #[cfg(not(feature = "kcp"))]
                return Err(feature_missing(addr, "kcp"));
            }
        };
        Ok(Listener { kind })
    }

    /// The bound address (with the real port when 0 was asked for), on the listener's network.
    pub fn local_addr(&self) -> io::Result<Address> {
        match &self.kind {
            Kind::Tcp {
                listener, network, ..
            } => Ok(Address::from(listener.local_addr()?).with_network(*network)),
            Kind::Unix(_, p) => Ok(Address::unix(p.clone())),
            Kind::Memory(m) => Ok(Address::in_process(m.name())),
            #[cfg(feature = "quic")]
            Kind::Quic(q) => Ok(Address::from(q.local_addr()?).with_network(Network::Quic)),
            #[cfg(feature = "kcp")]
            Kind::Kcp(k) => Ok(Address::from(k.local_addr()?).with_network(Network::Kcp)),
            Kind::Custom(c) => c.local_addr(),
        }
    }

    /// Accepts one connection; its handshake, if any, is left to [`Incoming::finish`].
    pub async fn accept(&self) -> io::Result<Incoming> {
        match &self.kind {
            Kind::Tcp {
                listener,
                upgrade,
                keepalive,
                ..
            } => {
                let (s, a) = listener.accept().await?;
                tcp::configure(&s, *keepalive);
                let peer = PeerAddr::Tcp(a);
                Ok(upgrade_tcp(s, peer, upgrade))
            }
            Kind::Unix(l, _) => {
                let (s, a) = l.accept().await?;
                let p = a.as_pathname().map(|p| p.display().to_string());
                Ok(Incoming::ready(Stream::Unix(s), PeerAddr::Unix(p)))
            }
            Kind::Memory(m) => {
                let (s, peer) = m.accept().await?;
                Ok(Incoming::ready(s, peer))
            }
            #[cfg(feature = "quic")]
            Kind::Quic(q) => q.accept().await,
            #[cfg(feature = "kcp")]
            Kind::Kcp(k) => {
                let (s, a) = k.accept().await?;
                Ok(Incoming::ready(Stream::from_io(s), PeerAddr::Kcp(a)))
            }
            Kind::Custom(c) => c.accept().await,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Kind::Unix(_, path) = &self.kind {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[allow(dead_code)] // unused when every transport feature is on
fn feature_missing(addr: &Address, feature: &str) -> Error {
    Error::Config(format!(
        "{addr}: the {feature}@ transport needs sextant's `{feature}` cargo feature"
    ))
}

/// The upgrade a TCP-based listener applies, from its network and the server's TLS setting.
fn tcp_upgrade(addr: &Address, options: &ServerOptions) -> Result<Upgrade, Error> {
    #[cfg(feature = "tls")]
    let tls = options.tls.as_ref().map(|t| t.acceptor());
    match addr.network() {
        Network::Ws | Network::Wss => {
            #[cfg(feature = "websocket")]
            {
                #[cfg(feature = "tls")]
                if addr.network() == Network::Wss && tls.is_none() {
                    return Err(Error::Config(format!(
                        "{addr}: wss@ needs ServerOptions::tls (rpcx: \"must set tlsconfig for wss\")"
                    )));
                }
                #[cfg(not(feature = "tls"))]
                if addr.network() == Network::Wss {
                    return Err(feature_missing(addr, "tls"));
                }
                Ok(Upgrade::Ws {
                    #[cfg(feature = "tls")]
                    tls: if addr.network() == Network::Wss {
                        tls
                    } else {
                        None
                    },
                    config: ws::WsConfig::from_limits(&options.limits, &options.rpc_path),
                })
            }
            #[cfg(not(feature = "websocket"))]
            {
                let _ = options;
                Err(feature_missing(addr, "websocket"))
            }
        }
        _ => {
            #[cfg(feature = "tls")]
            if let Some(t) = tls {
                return Ok(Upgrade::Tls(t));
            }
            let _ = options;
            Ok(Upgrade::None)
        }
    }
}

fn upgrade_tcp(s: TcpStream, peer: PeerAddr, upgrade: &Upgrade) -> Incoming {
    match upgrade {
        Upgrade::None => Incoming::ready(Stream::Tcp(s), peer),
        #[cfg(feature = "tls")]
        Upgrade::Tls(acceptor) => {
            let acceptor = acceptor.clone();
            Incoming::handshake(peer, async move {
                let (s, id) = tls_accept(&acceptor, s).await?;
                Ok((Stream::from_io(s), id))
            })
        }
        #[cfg(feature = "websocket")]
        Upgrade::Ws {
            #[cfg(feature = "tls")]
            tls,
            config,
        } => {
            #[cfg(feature = "tls")]
            let tls = tls.clone();
            let config = config.clone();
            Incoming::handshake(peer, async move {
                #[cfg(feature = "tls")]
                if let Some(acceptor) = tls {
                    let (s, id) = tls_accept(&acceptor, s).await?;
                    let ws = ws::accept(s, &config).await?;
                    return Ok((Stream::from_io(ws), id));
                }
                let ws = ws::accept(s, &config).await?;
                Ok((Stream::from_io(ws), None))
            })
        }
    }
}

#[cfg(feature = "tls")]
async fn tls_accept(
    acceptor: &tokio_rustls::TlsAcceptor,
    s: TcpStream,
) -> io::Result<(
    tokio_rustls::server::TlsStream<read_ahead::ReadAhead<TcpStream>>,
    Option<Arc<PeerIdentity>>,
)> {
    let s = acceptor
        .accept(read_ahead::ReadAhead::new(s))
        .await
        .map_err(|e| io::Error::new(e.kind(), tls::describe_tls_error(&e)))?;
    let id = PeerIdentity::from_server_conn(s.get_ref().1).map(Arc::new);
    Ok((s, id))
}

/// An I/O error on an established connection as a person can act on it: TLS alerts (a refused
/// client certificate, say) named as such.
pub(crate) fn describe_io_error(e: &io::Error) -> String {
    #[cfg(feature = "tls")]
    if e.get_ref()
        .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some())
    {
        return tls::describe_tls_error(e);
    }
    e.to_string()
}

/// Any byte stream sextant can speak rpcx over: what [`Stream::from_io`] takes.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`], as held by [`Stream::Io`].
pub struct BoxIo(Box<dyn Io>);

impl std::fmt::Debug for BoxIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxIo")
    }
}

impl AsyncRead for BoxIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for BoxIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().0).poll_shutdown(cx)
    }
}

/// A connected byte stream.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix socket.
    Unix(UnixStream),
    /// An in-process pipe (see [`InProcess`]).
    Memory(tokio::io::DuplexStream),
    /// Any other byte stream (see [`Stream::from_io`]): TLS, WebSocket, QUIC and KCP
    /// connections, a connection upgraded by HTTP `CONNECT`, or one a user dialled or accepted
    /// themselves.
    Io(BoxIo),
}

impl Stream {
    /// Wraps any byte stream, so that a [`Client`](crate::Client) can talk rpcx over a
    /// connection the caller set up (a proxy, a tunnel, a test pipe).
    pub fn from_io(io: impl Io) -> Stream {
        Stream::Io(BoxIo(Box::new(io)))
    }

    /// Dials `addr` with default client options, failing after `timeout`. An `inprocess@name`
    /// address is dialled in the process-wide hub, [`InProcess::global`].
    pub async fn connect(addr: &Address, timeout: Duration) -> Result<Stream, Error> {
        let options = ClientOptions {
            connect_timeout: timeout,
            ..ClientOptions::default()
        };
        Stream::connect_with(addr, &options).await
    }

    /// Like [`connect`](Stream::connect), dialling `inprocess@` names in `hub` (the process-wide
    /// hub when `None`).
    pub async fn connect_in(
        addr: &Address,
        timeout: Duration,
        hub: Option<&InProcess>,
    ) -> Result<Stream, Error> {
        let options = ClientOptions {
            connect_timeout: timeout,
            in_process: hub.cloned(),
            ..ClientOptions::default()
        };
        Stream::connect_with(addr, &options).await
    }

    /// Dials `addr` as a client with `options` would: its connector, TLS, keepalive, KCP and
    /// in-process hub, the whole dial (handshakes included) bounded by its connect timeout.
    pub async fn connect_with(addr: &Address, options: &ClientOptions) -> Result<Stream, Error> {
        let timeout = options.connect_timeout;
        let io_err = |e: io::Error| Error::Connect {
            address: addr.to_string(),
            source: Arc::new(e),
        };
        let fut = async {
            if let Some(c) = &options.connector {
                return c.connect(addr).await.map_err(io_err);
            }
            match addr.network() {
                // No handshake: connecting only queues the pipe for the server's accept loop.
                Network::InProcess => {
                    options
                        .in_process
                        .as_ref()
                        .unwrap_or(InProcess::global())
                        .connect(addr.addr())
                        .await
                }
                Network::Unix => Ok(Stream::Unix(
                    UnixStream::connect(addr.addr()).await.map_err(io_err)?,
                )),
                Network::Tcp | Network::Reuseport => {
                    let s = tcp::dial(addr.addr(), options.tcp_keepalive)
                        .await
                        .map_err(io_err)?;
                    maybe_tls(addr, s, options).await.map_err(io_err)
                }
                Network::Http => {
                    let s = tcp::dial(addr.addr(), options.tcp_keepalive)
                        .await
                        .map_err(io_err)?;
                    let s = maybe_tls(addr, s, options).await.map_err(io_err)?;
                    http_connect::connect(s, &options.rpc_path)
                        .await
                        .map_err(io_err)
                }
                Network::Ws | Network::Wss => {
                    #[cfg(feature = "websocket")]
                    {
                        ws::dial(addr, options).await.map_err(io_err)
                    }
                    #[cfg(not(feature = "websocket"))]
                    Err(feature_missing(addr, "websocket"))
                }
                Network::Quic => {
                    #[cfg(feature = "quic")]
                    {
                        quic::dial(addr, options).await.map_err(io_err)
                    }
                    #[cfg(not(feature = "quic"))]
                    Err(feature_missing(addr, "quic"))
                }
                Network::Kcp => {
                    #[cfg(feature = "kcp")]
                    {
                        kcp::dial(addr, options).await.map_err(io_err)
                    }
                    #[cfg(not(feature = "kcp"))]
                    Err(feature_missing(addr, "kcp"))
                }
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
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
            Stream::Io(s) => {
                let (r, w) = tokio::io::split(s);
                (ReadHalf::Io(r), WriteHalf::Io(w))
            }
        }
    }
}

/// TLS on a dialled TCP stream when the client has a TLS configuration.
async fn maybe_tls(addr: &Address, s: TcpStream, options: &ClientOptions) -> io::Result<Stream> {
    #[cfg(feature = "tls")]
    if let Some(tls) = &options.tls {
        let s = read_ahead::ReadAhead::new(s);
        return Ok(Stream::from_io(tls_connect(addr, s, tls).await?));
    }
    let _ = (addr, options);
    Ok(Stream::Tcp(s))
}

#[cfg(feature = "tls")]
async fn tls_connect<S: Io>(
    addr: &Address,
    s: S,
    tls: &ClientTlsConfig,
) -> io::Result<tokio_rustls::client::TlsStream<S>> {
    let host = addr.host_port().map(|(h, _)| h).unwrap_or(addr.addr());
    let name = tls.name_for(host)?;
    tls.connector()
        .connect(name, s)
        .await
        .map_err(|e| io::Error::new(e.kind(), tls::describe_tls_error(&e)))
}

/// The reading half of a [`Stream`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadHalf {
    /// TCP.
    Tcp(tokio::net::tcp::OwnedReadHalf),
    /// Unix socket.
    Unix(tokio::net::unix::OwnedReadHalf),
    /// In-process pipe.
    Memory(tokio::io::ReadHalf<tokio::io::DuplexStream>),
    /// Any other byte stream.
    Io(tokio::io::ReadHalf<BoxIo>),
}

/// The writing half of a [`Stream`].
#[derive(Debug)]
#[non_exhaustive]
pub enum WriteHalf {
    /// TCP.
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    /// Unix socket.
    Unix(tokio::net::unix::OwnedWriteHalf),
    /// In-process pipe.
    Memory(tokio::io::WriteHalf<tokio::io::DuplexStream>),
    /// Any other byte stream.
    Io(tokio::io::WriteHalf<BoxIo>),
}

impl WriteHalf {
    /// Whether writes may wait in a buffer until flushed: true for the wrapped streams (TLS,
    /// WebSocket, QUIC, KCP, a user's), false for sockets and pipes, which send at once.
    #[inline]
    pub fn buffers_writes(&self) -> bool {
        matches!(self, WriteHalf::Io(_))
    }
}

/// Runs `$e` with `$s` bound to the inner stream of whichever variant `$v` is.
macro_rules! each_variant {
    ($ty:ident, $v:expr, $s:ident => $e:expr) => {
        match $v {
            $ty::Tcp($s) => $e,
            $ty::Unix($s) => $e,
            $ty::Memory($s) => $e,
            $ty::Io($s) => $e,
        }
    };
}

/// `AsyncRead` for an enum of streams, by delegating to the variant's stream.
macro_rules! delegate_read {
    ($ty:ident) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                each_variant!($ty, self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
            }
        }
    };
}

/// `AsyncWrite` for an enum of streams, by delegating to the variant's stream.
macro_rules! delegate_write {
    ($ty:ident) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                each_variant!($ty, self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                each_variant!($ty, self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
            }

            fn is_write_vectored(&self) -> bool {
                each_variant!($ty, self, s => s.is_write_vectored())
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each_variant!($ty, self.get_mut(), s => Pin::new(s).poll_flush(cx))
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each_variant!($ty, self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
            }
        }
    };
}

delegate_read!(ReadHalf);
delegate_write!(WriteHalf);
delegate_read!(Stream);
delegate_write!(Stream);
