//! The `http@` network, client side: rpcx's `newDirectHTTPConn`. The client writes
//! `CONNECT /_rpcx_ HTTP/1.0` and two newlines, reads the answer, and talks rpcx on the same
//! connection once it is `200 Connected to rpcx`. The server side is the service port's HTTP
//! side (see [`crate::server`]), which answers that `CONNECT` (and geerpc's `/_geerpc_`).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Stream;

/// The path rpcx serves `CONNECT` and WebSocket on (rpcx's `share.DefaultRPCPath`).
pub const RPCX_PATH: &str = "/_rpcx_";

/// The status rpcx's server answers a `CONNECT` with, and its client requires.
pub const RPCX_CONNECTED: &str = "200 Connected to rpcx";

/// The longest answer head read before giving up.
const MAX_HEAD: usize = 8 * 1024;

/// Sends the `CONNECT` on `s` and checks the answer; the stream is then rpcx's.
pub(super) async fn connect(mut s: Stream, path: &str) -> io::Result<Stream> {
    let path = if path.is_empty() { RPCX_PATH } else { path };
    s.write_all(format!("CONNECT {path} HTTP/1.0\n\n").as_bytes())
        .await?;
    s.flush().await?;
    // Read one byte at a time: nothing after the head may be taken from the stream, and the
    // server sends nothing after it until the first request.
    let mut head = Vec::with_capacity(64);
    loop {
        let b = s.read_u8().await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("HTTP CONNECT: the server closed before answering ({e})"),
            )
        })?;
        head.push(b);
        if head.ends_with(b"\n\n") || head.ends_with(b"\r\n\r\n") {
            break;
        }
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "HTTP CONNECT: the answer's head is over 8 KiB",
            ));
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("").trim_end();
    // Go compares resp.Status ("200 Connected to rpcx") with the whole reason phrase.
    let status = status_line.split_once(' ').map(|(_, s)| s).unwrap_or("");
    if status_line.starts_with("HTTP/1.") && status == RPCX_CONNECTED {
        Ok(s)
    } else {
        Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("HTTP CONNECT {path}: unexpected HTTP response: {status_line:?}"),
        ))
    }
}
