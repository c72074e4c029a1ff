//! The client side: `send_file`, `download_file` and `stream` on [`XClient`] (rpcx's
//! `client/xclient_transfer.go`) and on a plain [`Client`].

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::server::COPY_BUFFER;
use super::wire::{
    DownloadFileArgs, FileTransferArgs, FileTransferReply, StreamServiceArgs, StreamServiceReply,
};
use super::TOKEN_LEN;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::xclient::XClient;

/// How long `send_file` waits, after the last byte, for the server to close the side connection
/// (its sign that the file is stored).
const UPLOAD_ACK_WAIT: Duration = Duration::from_secs(30);

impl XClient {
    /// Uploads the local file `path` (rpcx's `SendFile`), on an XClient for the service path
    /// `_filetransfer` (or the name the server gave it): calls `TransferFile` with the file's
    /// name (its last path component) and size and `meta`, dials the side address the reply
    /// gives (within the client options' connect timeout), sends the token and then the file.
    /// `rate_bytes_per_sec` caps the bandwidth (0: no cap).
    ///
    /// Returns once the server has closed the side connection after the last byte (sextant's
    /// and Go's handlers close it when they have the file), or 30 s after the last byte.
    pub async fn send_file(
        &self,
        path: impl AsRef<Path>,
        rate_bytes_per_sec: u64,
        meta: HashMap<String, String>,
    ) -> Result<()> {
        let timeout = self.options().client.connect_timeout;
        upload(
            path.as_ref(),
            rate_bytes_per_sec,
            meta,
            timeout,
            |args| async move { self.call("TransferFile", &args).await },
        )
        .await
    }

    /// Downloads `file_name` into `save_to` (rpcx's `DownloadFile`), on an XClient for the
    /// service path `_filetransfer`: calls `DownloadFile`, dials the side address, sends the
    /// token and copies what comes until the server closes. Returns the bytes received.
    ///
    /// The protocol announces no size: a download the server cuts short looks complete here,
    /// as in Go.
    pub async fn download_file<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        file_name: &str,
        save_to: &mut W,
        meta: HashMap<String, String>,
    ) -> Result<u64> {
        let timeout = self.options().client.connect_timeout;
        let args = DownloadFileArgs {
            file_name: file_name.to_string(),
            meta,
        };
        let reply: FileTransferReply = self.call("DownloadFile", &args).await?;
        download(file_name, &reply, save_to, timeout).await
    }

    /// Opens a stream (rpcx's `Stream`), on an XClient for the service path `_streamservice`:
    /// calls `Stream` with `meta`, dials the side address and sends the token. What follows is
    /// raw bytes both ways, for the server's stream handler.
    pub async fn stream(&self, meta: HashMap<String, String>) -> Result<TcpStream> {
        let timeout = self.options().client.connect_timeout;
        let reply: StreamServiceReply = self.call("Stream", &StreamServiceArgs { meta }).await?;
        dial_side(&reply.addr, &reply.token, timeout).await
    }
}

impl Client {
    /// Uploads the local file `path` to the server of this connection, calling
    /// `service_path.TransferFile` (`service_path` is usually `_filetransfer`); otherwise as
    /// [`XClient::send_file`].
    pub async fn send_file(
        &self,
        service_path: &str,
        path: impl AsRef<Path>,
        rate_bytes_per_sec: u64,
        meta: HashMap<String, String>,
    ) -> Result<()> {
        let timeout = self.options().connect_timeout;
        upload(
            path.as_ref(),
            rate_bytes_per_sec,
            meta,
            timeout,
            |args| async move { self.call(service_path, "TransferFile", &args).await },
        )
        .await
    }

    /// Downloads `file_name` into `save_to`, calling `service_path.DownloadFile`
    /// (`service_path` is usually `_filetransfer`); otherwise as [`XClient::download_file`].
    pub async fn download_file<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        service_path: &str,
        file_name: &str,
        save_to: &mut W,
        meta: HashMap<String, String>,
    ) -> Result<u64> {
        let args = DownloadFileArgs {
            file_name: file_name.to_string(),
            meta,
        };
        let reply: FileTransferReply = self.call(service_path, "DownloadFile", &args).await?;
        download(file_name, &reply, save_to, self.options().connect_timeout).await
    }

    /// Opens a stream, calling `service_path.Stream` (`service_path` is usually
    /// `_streamservice`); otherwise as [`XClient::stream`].
    pub async fn stream(
        &self,
        service_path: &str,
        meta: HashMap<String, String>,
    ) -> Result<TcpStream> {
        let reply: StreamServiceReply = self
            .call(service_path, "Stream", &StreamServiceArgs { meta })
            .await?;
        dial_side(&reply.addr, &reply.token, self.options().connect_timeout).await
    }
}

/// An upload: the `TransferFile` call (`call`), then the file's bytes on the side connection,
/// then the wait for the server's close.
async fn upload<F, Fut>(
    path: &Path,
    rate: u64,
    meta: HashMap<String, String>,
    connect_timeout: Duration,
    call: F,
) -> Result<()>
where
    F: FnOnce(FileTransferArgs) -> Fut,
    Fut: Future<Output = Result<FileTransferReply>>,
{
    let mut file = tokio::fs::File::open(path).await.map_err(Error::io)?;
    let size = file.metadata().await.map_err(Error::io)?.len();
    let args = FileTransferArgs {
        file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file_size: i64::try_from(size).map_err(|_| Error::Config("file too large".into()))?,
        meta,
    };
    let reply = call(args).await?;
    let mut conn = dial_side(&reply.addr, &reply.token, connect_timeout).await?;
    let sent = copy_paced(&mut file, &mut conn, rate)
        .await
        .map_err(|e| Error::lost(format!("sending {}: {e}", path.display())))?;
    if sent != size {
        return Err(Error::lost(format!(
            "{} changed while it was sent: {sent} of {size} bytes",
            path.display()
        )));
    }
    conn.shutdown()
        .await
        .map_err(|e| Error::lost(format!("sending {}: {e}", path.display())))?;
    // Wait for the server's close: then the file is stored. Anything it sends is ignored.
    let mut sink = [0u8; 512];
    let _ = tokio::time::timeout(UPLOAD_ACK_WAIT, async {
        loop {
            match conn.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    Ok(())
}

/// A download after its `DownloadFile` call: the side connection's bytes into `save_to` until
/// the server closes.
async fn download<W: AsyncWrite + Unpin + ?Sized>(
    file_name: &str,
    reply: &FileTransferReply,
    save_to: &mut W,
    connect_timeout: Duration,
) -> Result<u64> {
    let conn = dial_side(&reply.addr, &reply.token, connect_timeout).await?;
    let mut conn = tokio::io::BufReader::with_capacity(COPY_BUFFER, conn);
    let n = tokio::io::copy_buf(&mut conn, save_to)
        .await
        .map_err(|e| Error::lost(format!("downloading {file_name}: {e}")))?;
    save_to.flush().await.map_err(Error::io)?;
    Ok(n)
}

/// Dials a side address and sends the token.
async fn dial_side(addr: &str, token: &[u8], timeout: Duration) -> Result<TcpStream> {
    if token.len() != TOKEN_LEN {
        return Err(Error::lost(format!(
            "the server sent a token of {} bytes, not {TOKEN_LEN}",
            token.len()
        )));
    }
    let connect_err = |e: std::io::Error| Error::Connect {
        address: addr.to_string(),
        source: Arc::new(e),
    };
    let mut conn = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(c) => c.map_err(connect_err)?,
        Err(_) => {
            return Err(Error::ConnectTimeout {
                address: addr.to_string(),
                timeout,
            })
        }
    };
    let _ = conn.set_nodelay(true);
    conn.write_all(token)
        .await
        .map_err(|e| Error::lost(format!("sending the token to {addr}: {e}")))?;
    Ok(conn)
}

/// Copies `src` to `dst`, at most `rate` bytes per second when `rate` is not 0.
async fn copy_paced<R, W>(src: &mut R, dst: &mut W, rate: u64) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let chunk = if rate == 0 {
        COPY_BUFFER
    } else {
        // About ten writes a second, so the pace is smooth.
        (rate / 10).clamp(1024, COPY_BUFFER as u64) as usize
    };
    let mut buf = vec![0u8; chunk];
    let started = Instant::now();
    let mut sent = 0u64;
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            return Ok(sent);
        }
        dst.write_all(&buf[..n]).await?;
        sent += n as u64;
        if rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            let elapsed = started.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
}
