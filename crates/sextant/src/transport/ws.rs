//! The `ws@` and `wss@` networks: rpcx's byte stream carried in WebSocket messages on path
//! `/_rpcx_`, as rpcx's `serveByWS` (golang.org/x/net/websocket) does.
//!
//! The byte stream is cut into messages wherever the writer flushed, so rpcx message boundaries
//! need not match WebSocket message boundaries: the reader reads the messages' payloads one after
//! another as one stream. Go's client sends text frames and Go's server binary frames; sextant
//! sends binary frames and takes both. Go's server refuses an upgrade without an `Origin` header,
//! so sextant's client sends one (`http://host:port`, or `https://` for `wss`, as Go's client).
//! sextant's server does not require it.
//!
//! A message or frame over the server's message size limit closes the connection.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures::{Sink, Stream as _};
use sextant_protocol::Limits;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::{Address, Io, Network};
use crate::client::ClientOptions;

/// What a WebSocket endpoint accepts.
#[derive(Clone, Debug)]
pub(super) struct WsConfig {
    config: WebSocketConfig,
    path: String,
}

impl WsConfig {
    /// Messages and frames up to the largest rpcx message (plus its header), on `path`.
    pub(super) fn from_limits(limits: &Limits, path: &str) -> WsConfig {
        let max = limits.max_message_size.saturating_add(1024);
        let config = WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        WsConfig {
            config,
            path: if path.is_empty() {
                super::RPCX_PATH.to_string()
            } else {
                path.to_string()
            },
        }
    }
}

fn to_io(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket closed")
        }
        tungstenite::Error::Capacity(c) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WebSocket message too large: {c}"),
        ),
        other => io::Error::new(io::ErrorKind::InvalidData, format!("WebSocket: {other}")),
    }
}

/// Accepts a WebSocket upgrade on `path` over `s`. Other paths get `404`, as Go's mux answers.
pub(super) async fn accept<S: Io>(s: S, config: &WsConfig) -> io::Result<WsIo<S>> {
    let path = config.path.clone();
    let check = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == path {
            Ok(resp)
        } else {
            let mut e = ErrorResponse::new(Some("404 page not found\n".into()));
            *e.status_mut() = http_status(404);
            Err(e)
        }
    };
    let ws = tokio_tungstenite::accept_hdr_async_with_config(s, check, Some(config.config))
        .await
        .map_err(to_io)?;
    Ok(WsIo::new(ws))
}

fn http_status(code: u16) -> tungstenite::http::StatusCode {
    tungstenite::http::StatusCode::from_u16(code)
        .unwrap_or(tungstenite::http::StatusCode::BAD_REQUEST)
}

/// Dials `ws@host:port` or `wss@host:port` (TLS from the client's options, required for
/// `wss`) and upgrades on the client's RPC path.
pub(super) async fn dial(addr: &Address, options: &ClientOptions) -> io::Result<super::Stream> {
    let secure = addr.network() == Network::Wss;
    let host = addr.addr();
    let path = if options.rpc_path.is_empty() {
        super::RPCX_PATH
    } else {
        &options.rpc_path
    };
    let (scheme, origin) = if secure {
        ("wss", format!("https://{host}"))
    } else {
        ("ws", format!("http://{host}"))
    };
    let url = format!("{scheme}://{host}{path}");
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).map_err(to_io)?;
    request.headers_mut().insert(
        "Origin",
        origin
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad Origin"))?,
    );
    let config = WsConfig::from_limits(&options.limits, path).config;
    let tcp = super::tcp::dial(host, options.tcp_keepalive).await?;
    if secure {
        #[cfg(feature = "tls")]
        {
            let Some(tls) = &options.tls else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "wss@ needs ClientOptions::tls (the CA to trust)",
                ));
            };
            let s = super::tls_connect(addr, tcp, tls).await?;
            let (ws, _) = tokio_tungstenite::client_async_with_config(request, s, Some(config))
                .await
                .map_err(to_io)?;
            return Ok(super::Stream::from_io(WsIo::new(ws)));
        }
        #[cfg(not(feature = "tls"))]
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "wss@ needs sextant's `tls` cargo feature",
        ));
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .map_err(to_io)?;
    Ok(super::Stream::from_io(WsIo::new(ws)))
}

/// A WebSocket connection as a byte stream.
pub(super) struct WsIo<S> {
    ws: WebSocketStream<S>,
    /// What is left of the message being read.
    pending: Bytes,
    closed: bool,
}

impl<S> WsIo<S> {
    fn new(ws: WebSocketStream<S>) -> Self {
        WsIo {
            ws,
            pending: Bytes::new(),
            closed: false,
        }
    }
}

impl<S: Io> AsyncRead for WsIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.closed {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(b))) => this.pending = b,
                Some(Ok(Message::Text(t))) => this.pending = Bytes::from(t),
                Some(Ok(Message::Close(_))) | None => {
                    this.closed = true;
                }
                // Pings are answered by tungstenite; pongs and raw frames carry no data.
                Some(Ok(_)) => {}
                Some(Err(tungstenite::Error::ConnectionClosed)) => this.closed = true,
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
            }
        }
    }
}

impl<S: Io> AsyncWrite for WsIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(to_io)?;
        Pin::new(&mut this.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_flush(cx)
            .map_err(to_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.get_mut().ws).poll_close(cx)) {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }
}
