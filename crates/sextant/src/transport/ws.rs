//! The `ws@` and `wss@` networks: rpcx's byte stream carried in WebSocket messages on path
//! `/_rpcx_`, as rpcx's `serveByWS` (golang.org/x/net/websocket) does.
//!
//! The byte stream is cut into messages wherever the writer flushed, so rpcx message boundaries
//! need not match WebSocket message boundaries: the reader reads the messages' payloads one after
//! another as one stream. Go's client sends text frames (rpcx's bytes, not UTF-8) and Go's server
//! binary frames; sextant sends binary frames and its server takes both (text frames are read
//! as binary: see [`TextAsBinary`]). Go's server refuses an upgrade without an `Origin` header,
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
/// The client's text frames are read as binary ones (see [`TextAsBinary`]).
#[allow(clippy::result_large_err)] // tungstenite's callback type: the Err is its ErrorResponse
pub(super) async fn accept<S: Io>(s: S, config: &WsConfig) -> io::Result<WsIo<TextAsBinary<S>>> {
    let s = TextAsBinary::new(s);
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
            let s = super::tls_connect(addr, super::read_ahead::ReadAhead::new(tcp), tls).await?;
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

/// Go's rpcx client (golang.org/x/net/websocket) sends rpcx's binary bytes in *text* frames,
/// which are not valid UTF-8, and tungstenite refuses a text message that is not UTF-8. So the
/// server reads its socket through this: past the HTTP upgrade request, it follows the frames
/// (header, then a payload it skips by length) and turns each text opcode into the binary one
/// before tungstenite parses the frame. Only that header byte changes; masking covers payloads
/// alone, so nothing else is touched. Writes pass through.
pub(super) struct TextAsBinary<S> {
    inner: S,
    scan: Scan,
}

#[derive(Clone, Copy)]
enum Scan {
    /// In the HTTP request: how much of `\r\n\r\n` was just seen.
    Http(u8),
    /// In a frame header: its bytes so far.
    Header([u8; 14], usize),
    /// In a frame payload: the bytes left.
    Payload(u64),
}

impl<S> TextAsBinary<S> {
    fn new(inner: S) -> Self {
        TextAsBinary {
            inner,
            scan: Scan::Http(0),
        }
    }

    /// Follows the frames through `data`, bytes just read, rewriting text opcodes.
    fn scan(&mut self, data: &mut [u8]) {
        const END: &[u8; 4] = b"\r\n\r\n";
        let mut i = 0;
        while i < data.len() {
            match &mut self.scan {
                Scan::Http(m) => {
                    let b = data[i];
                    *m = if b == END[*m as usize] {
                        *m + 1
                    } else if b == b'\r' {
                        1
                    } else {
                        0
                    };
                    i += 1;
                    if *m == 4 {
                        self.scan = Scan::Header([0; 14], 0);
                    }
                }
                Scan::Header(h, n) => {
                    if *n == 0 && data[i] & 0x0f == 0x1 {
                        data[i] = (data[i] & 0xf0) | 0x2;
                    }
                    h[*n] = data[i];
                    *n += 1;
                    i += 1;
                    if let Some(payload) = frame_payload_len(&h[..*n]) {
                        self.scan = if payload == 0 {
                            Scan::Header([0; 14], 0)
                        } else {
                            Scan::Payload(payload)
                        };
                    }
                }
                Scan::Payload(left) => {
                    let k = (*left).min((data.len() - i) as u64);
                    *left -= k;
                    i += k as usize;
                    if *left == 0 {
                        self.scan = Scan::Header([0; 14], 0);
                    }
                }
            }
        }
    }
}

/// The payload length of a frame once `h` holds its whole header (RFC 6455 5.2), else `None`.
fn frame_payload_len(h: &[u8]) -> Option<u64> {
    if h.len() < 2 {
        return None;
    }
    let (ext, masked) = match h[1] & 0x7f {
        126 => (2, h[1] & 0x80 != 0),
        127 => (8, h[1] & 0x80 != 0),
        _ => (0, h[1] & 0x80 != 0),
    };
    let total = 2 + ext + if masked { 4 } else { 0 };
    if h.len() < total {
        return None;
    }
    Some(match ext {
        2 => u16::from_be_bytes([h[2], h[3]]) as u64,
        8 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
        _ => (h[1] & 0x7f) as u64,
    })
}

impl<S: Io> AsyncRead for TextAsBinary<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.scan(&mut buf.filled_mut()[before..]);
        Poll::Ready(Ok(()))
    }
}

super::impl_write_through!(TextAsBinary<S> where S: AsyncWrite);

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame: FIN, `opcode`, the mask and the masked payload.
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[test]
    fn text_opcodes_become_binary_whatever_the_reads() {
        let mut stream = b"GET /_rpcx_ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        let head = stream.len();
        let payloads: [&[u8]; 4] = [&[0x08, 0xff, 0x82], &[], &[7u8; 300], &[9u8; 70_000]];
        let mut starts = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            starts.push(stream.len());
            // Text, binary, a ping (control frames are left alone), text.
            let op = [0x1, 0x2, 0x9, 0x1][i];
            stream.extend(frame(op, p));
        }
        // Fed in every chunk size, the result is the same.
        for chunk in [1, 2, 3, 7, 64, 100_000] {
            let mut t = TextAsBinary::new(());
            let mut out = stream.clone();
            for c in out.chunks_mut(chunk) {
                t.scan(c);
            }
            assert_eq!(&out[..head], &stream[..head], "the request is untouched");
            let ops: Vec<u8> = starts.iter().map(|&s| out[s] & 0x0f).collect();
            assert_eq!(ops, [0x2, 0x2, 0x9, 0x2], "chunk {chunk}");
            for (i, &s) in starts.iter().enumerate() {
                assert_eq!(out[s] & 0xf0, 0x80);
                let end = starts.get(i + 1).copied().unwrap_or(out.len());
                assert_eq!(
                    out[s + 1..end],
                    stream[s + 1..end],
                    "only the opcode changes"
                );
            }
        }
    }
}
