//! TCP details shared by every TCP-based network: no-delay, keepalive (rpcx's
//! `TCPKeepAlivePeriod`: 3 minutes on the server, 1 minute on the client) and `SO_REUSEPORT`
//! listeners (`reuseport@`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::net::{TcpListener, TcpStream};

/// No-delay on, and keepalive probes after `keepalive` of silence (and every `keepalive`
/// after that) when set. Errors are ignored: a socket that refuses an option still works.
pub(super) fn configure(s: &TcpStream, keepalive: Option<Duration>) {
    let _ = s.set_nodelay(true);
    if let Some(period) = keepalive {
        let ka = TcpKeepalive::new().with_time(period).with_interval(period);
        if let Err(e) = SockRef::from(s).set_tcp_keepalive(&ka) {
            tracing::debug!(error = %e, "cannot set TCP keepalive");
        }
    }
}

/// Connects to `host:port` (the first address it resolves to that answers).
pub(super) async fn dial(addr: &str, keepalive: Option<Duration>) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    configure(&s, keepalive);
    Ok(s)
}

/// A listener with `SO_REUSEPORT` (and `SO_REUSEADDR`) set before binding, so that several
/// processes (or listeners) can bind the same port and the kernel spreads connections over
/// them, as rpcx's `reuseport` network (kavu/go_reuseport) does.
pub(super) async fn bind_reuseport(addr: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        match reuseport_socket(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

fn reuseport_socket(a: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&a.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// How much [`ReadAhead`] reads from the socket at once.
const READ_AHEAD: usize = 16 * 1024;

/// Reads the socket in 16 KiB gulps for a TLS stream above it: rustls asks for at most 4 KiB a
/// time, which would be one system call per 4 KiB under load. The buffer is given back whenever
/// the socket has nothing more to read, so an idle connection holds none. Writes pass through.
pub(super) struct ReadAhead<S> {
    inner: S,
    buf: BytesMut,
}

impl<S> ReadAhead<S> {
    pub(super) fn new(inner: S) -> Self {
        ReadAhead {
            inner,
            buf: BytesMut::new(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buf.is_empty() {
            if out.remaining() >= READ_AHEAD {
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            this.buf.reserve(READ_AHEAD);
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.buf) {
                Poll::Pending => {
                    // Nothing to read: an idle connection keeps no buffer.
                    this.buf = BytesMut::new();
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(_)) => {}
            }
        }
        let n = this.buf.len().min(out.remaining());
        out.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn read_ahead_serves_small_reads_and_keeps_no_buffer_when_idle() {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let mut r = ReadAhead::new(b);
        let data: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        a.write_all(&data).await.unwrap();
        let mut got = Vec::new();
        let mut small = [0u8; 4096];
        while got.len() < data.len() {
            let n = r.read(&mut small).await.unwrap();
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, data);
        // Nothing more to read: the next read is pending, and the buffer is given back.
        let pending = tokio::time::timeout(Duration::from_millis(50), r.read(&mut small)).await;
        assert!(pending.is_err());
        assert_eq!(r.buf.capacity(), 0);
        // A large read goes straight through; the end of the stream is passed on.
        a.write_all(b"tail").await.unwrap();
        drop(a);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"tail");
    }
}
