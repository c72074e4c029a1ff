//! A read-ahead buffer under TLS streams (see [`ReadAhead`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

super::impl_write_through!(ReadAhead<S> where S: AsyncWrite);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
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
