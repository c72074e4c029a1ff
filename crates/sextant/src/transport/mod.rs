//! Addresses and transports.
//!
//! rpcx writes a server address as `network@address`: `tcp@127.0.0.1:8972`, `unix@/tmp/rpcx.sock`.
//! [`Address`] parses that form (a bare `host:port` means TCP); [`Listener`] and [`Stream`] are the
//! transports sextant can serve and dial today: TCP, unix sockets, and in-process pipes
//! (`inprocess@name`, see [`InProcess`]).

mod address;
mod memory;

pub use address::{Address, Network, PeerAddr, ToAddress, RPCX_NETWORKS};
pub use memory::{InProcess, MemoryListener};

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::error::Error;

/// A listening socket.
#[derive(Debug)]
#[non_exhaustive]
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
        let err = |e: io::Error| Error::Bind {
            address: addr.to_string(),
            source: e.into(),
        };
        let path = addr.addr();
        match addr.network() {
            Network::Tcp => Ok(Listener::Tcp(TcpListener::bind(path).await.map_err(err)?)),
            Network::Unix => {
                if std::fs::metadata(path).is_ok() && UnixStream::connect(path).await.is_err() {
                    // Nobody is listening there: a leftover from a crashed process.
                    let _ = std::fs::remove_file(path);
                }
                Ok(Listener::Unix(
                    UnixListener::bind(path).map_err(err)?,
                    path.to_string(),
                ))
            }
            Network::InProcess => InProcess::global().listen(path),
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
    /// Any other byte stream (see [`Stream::from_io`]): e.g. a connection upgraded by HTTP
    /// `CONNECT`, or one a user dialled or accepted themselves.
    Io(BoxIo),
}

impl Stream {
    /// Wraps any byte stream, so that a [`Client`](crate::Client) can talk rpcx over a
    /// connection the caller set up (a proxy, a tunnel, a test pipe).
    pub fn from_io(io: impl Io) -> Stream {
        Stream::Io(BoxIo(Box::new(io)))
    }

    /// Dials `addr`, failing after `timeout`. An `inprocess@name` address is dialled in the
    /// process-wide hub, [`InProcess::global`].
    pub async fn connect(addr: &Address, timeout: Duration) -> Result<Stream, Error> {
        Stream::connect_in(addr, timeout, None).await
    }

    /// Like [`connect`](Stream::connect), dialling `inprocess@` names in `hub` (the process-wide
    /// hub when `None`).
    pub async fn connect_in(
        addr: &Address,
        timeout: Duration,
        hub: Option<&InProcess>,
    ) -> Result<Stream, Error> {
        let io_err = |e: io::Error| Error::Connect {
            address: addr.to_string(),
            source: std::sync::Arc::new(e),
        };
        let fut = async {
            match addr.network() {
                // No handshake: connecting only queues the pipe for the server's accept loop.
                Network::InProcess => {
                    hub.unwrap_or(InProcess::global())
                        .connect(addr.addr())
                        .await
                }
                Network::Unix => Ok(Stream::Unix(
                    UnixStream::connect(addr.addr()).await.map_err(io_err)?,
                )),
                Network::Tcp => {
                    let s = TcpStream::connect(addr.addr()).await.map_err(io_err)?;
                    s.set_nodelay(true).map_err(io_err)?;
                    Ok(Stream::Tcp(s))
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
