//! The `quic@` network (quinn): rpcx's `smallnest/quick` mapping. TLS is required and the ALPN
//! protocol is `rpcx` unless the configuration names others (rpcx sets `NextProtos` to `rpcx`
//! when empty). Each QUIC connection carries one bidirectional stream, opened by the client
//! (`OpenStreamSync`) and accepted by the server (`AcceptStream`), and rpcx frames flow on it
//! as on TCP. The client keeps an idle connection alive with QUIC pings.
//!
//! Differences from Go: the server accepts the stream in the connection's own task, not in the
//! accept loop (Go's listener blocks every later connection until the stream arrives), and a
//! client without a TLS configuration is refused instead of skipping verification (Go's
//! `InsecureSkipVerify` default); say
//! [`insecure_skip_verify`](super::ClientTlsConfigBuilder::insecure_skip_verify) to get that.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Address, Incoming, PeerAddr, PeerIdentity, Stream, RPCX_ALPN};
use crate::client::ClientOptions;
use crate::error::Error;
use crate::server::ServerOptions;

/// How often an idle client pings, and how long a silent connection lives.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
const MAX_IDLE: Duration = Duration::from_secs(30);

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    if let Ok(idle) = quinn::IdleTimeout::try_from(MAX_IDLE) {
        t.max_idle_timeout(Some(idle));
    }
    Arc::new(t)
}

async fn resolve(addr: &Address) -> io::Result<SocketAddr> {
    tokio::net::lookup_host(addr.addr())
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "resolves to no address"))
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("QUIC: {e}"))
}

/// A QUIC endpoint accepting rpcx connections.
pub(super) struct QuicListener {
    endpoint: quinn::Endpoint,
}

impl QuicListener {
    pub(super) async fn bind(addr: &Address, options: &ServerOptions) -> Result<Self, Error> {
        let bind_err = |e: io::Error| Error::Bind {
            address: addr.to_string(),
            source: Arc::new(e),
        };
        let tls = options.tls.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "{addr}: quic@ needs ServerOptions::tls (rpcx: \"TLSConfig must be configured\")"
            ))
        })?;
        let crypto =
            quinn::crypto::rustls::QuicServerConfig::try_from(tls.with_default_alpn(RPCX_ALPN))
                .map_err(|e| {
                    Error::Config(format!("{addr}: TLS configuration unfit for QUIC: {e}"))
                })?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(transport());
        let local = resolve(addr).await.map_err(bind_err)?;
        let endpoint = quinn::Endpoint::server(config, local).map_err(bind_err)?;
        Ok(QuicListener { endpoint })
    }

    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    pub(super) async fn accept(&self) -> io::Result<Incoming> {
        let incoming = self.endpoint.accept().await.ok_or_else(|| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the QUIC endpoint is closed")
        })?;
        let peer = PeerAddr::Quic(incoming.remote_address());
        Ok(Incoming::handshake(peer, async move {
            let conn = incoming.await.map_err(other)?;
            let identity = identity(&conn).map(Arc::new);
            let c = conn.clone();
            let io = QuicIo {
                state: State::Accepting(Box::pin(async move { c.accept_bi().await })),
                conn,
                _endpoint: None,
            };
            Ok((Stream::from_io(io), identity))
        }))
    }
}

impl Drop for QuicListener {
    fn drop(&mut self) {
        // Connections already accepted keep the endpoint's driver running until they close.
        self.endpoint.set_server_config(None);
    }
}

fn identity(conn: &quinn::Connection) -> Option<PeerIdentity> {
    let certs: Vec<rustls::pki_types::CertificateDer<'static>> = conn
        .peer_identity()
        .and_then(|i| {
            i.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .map(|b| *b)
        .unwrap_or_default();
    let hd = conn
        .handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok());
    let (alpn, sni) = match hd {
        Some(h) => (h.protocol, h.server_name),
        None => (None, None),
    };
    Some(PeerIdentity::new(certs, sni, alpn))
}

/// Dials `quic@host:port` with the client's TLS configuration (ALPN `rpcx` unless it names
/// others) and opens the connection's stream.
pub(super) async fn dial(addr: &Address, options: &ClientOptions) -> io::Result<Stream> {
    let tls = options.tls.as_ref().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "quic@ needs ClientOptions::tls (the CA to trust, or insecure_skip_verify)",
        )
    })?;
    let remote = resolve(addr).await?;
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls.with_default_alpn(RPCX_ALPN))
            .map_err(other)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport());
    let local: SocketAddr = if remote.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let endpoint = quinn::Endpoint::client(local)?;
    let host = addr.host_port().map(|(h, _)| h).unwrap_or(addr.addr());
    let name = tls.server_name().unwrap_or(host).to_string();
    let conn = endpoint
        .connect_with(config, remote, &name)
        .map_err(other)?
        .await
        .map_err(|e| match e {
            quinn::ConnectionError::TransportError(t) => other(format!(
                "handshake failed: {t} (a certificate, name or ALPN the peer refused?)"
            )),
            quinn::ConnectionError::ConnectionClosed(c) => other(format!(
                "the server closed the connection in the handshake: {c} (ALPN mismatch, or \
                 our certificate was refused?)"
            )),
            other_err => other(other_err),
        })?;
    let (send, recv) = conn.open_bi().await.map_err(other)?;
    Ok(Stream::from_io(QuicIo {
        state: State::Open(send, recv),
        conn,
        _endpoint: Some(endpoint),
    }))
}

type AcceptBi =
    BoxFuture<'static, Result<(quinn::SendStream, quinn::RecvStream), quinn::ConnectionError>>;

enum State {
    /// Server side, until the client's stream arrives (with its first bytes).
    Accepting(AcceptBi),
    Open(quinn::SendStream, quinn::RecvStream),
    Failed,
}

/// One QUIC connection's rpcx stream as a byte stream.
struct QuicIo {
    state: State,
    conn: quinn::Connection,
    /// The client's own endpoint, kept for as long as the connection.
    _endpoint: Option<quinn::Endpoint>,
}

impl QuicIo {
    fn poll_open(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(&mut quinn::SendStream, &mut quinn::RecvStream)>> {
        if let State::Accepting(f) = &mut self.state {
            match ready!(f.as_mut().poll(cx)) {
                Ok((s, r)) => self.state = State::Open(s, r),
                Err(e) => {
                    self.state = State::Failed;
                    return Poll::Ready(Err(other(e)));
                }
            }
        }
        match &mut self.state {
            State::Open(s, r) => Poll::Ready(Ok((s, r))),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "QUIC: the connection's stream was never opened",
            ))),
        }
    }
}

impl AsyncRead for QuicIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (_, recv) = ready!(this.poll_open(cx))?;
        Pin::new(recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let (send, _) = ready!(this.poll_open(cx))?;
        Pin::new(send).poll_write(cx, buf).map_err(io::Error::from)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::Open(send, _) => Pin::new(send).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            // Finishes the stream: the peer reads the end after the last bytes.
            State::Open(send, _) => Pin::new(send).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}

impl Drop for QuicIo {
    fn drop(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let conn = self.conn.clone();
        let endpoint = self._endpoint.take();
        // Closing at once would drop bytes not yet acknowledged: give the peer a moment to
        // take the stream's end, then close the connection.
        if let (State::Open(mut send, _), Ok(rt)) = (state, tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                let _ = send.finish();
                let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
                conn.close(0u32.into(), b"");
                drop(endpoint);
            });
        } else {
            conn.close(0u32.into(), b"");
        }
    }
}
