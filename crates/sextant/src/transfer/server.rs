//! The server side: the file transfer and stream services, their side listener and token
//! handshake, the handler traits, and the ready-made directory handlers.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::tokens::{new_token, Token, Tokens};
use super::wire::{
    DownloadFileArgs, FileTransferArgs, FileTransferReply, StreamServiceArgs, StreamServiceReply,
};
use super::{ERR_NOT_ACCEPT, SEND_FILE_SERVICE_NAME, STREAM_SERVICE_NAME, TOKEN_LEN};
use crate::context::Context;
use crate::error::{Error, Result, ServiceError};
use crate::server::Server;
use crate::util::lock;

/// Buffer size for moving file bytes: large, so a transfer costs few system calls.
pub(crate) const COPY_BUFFER: usize = 256 * 1024;

/// Bounds of a side service. Every field states its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransferOptions {
    /// Tokens issued and not yet used that are kept; past that the oldest is dropped (Go's
    /// `waitNum`). Default: 1024.
    pub max_tokens: usize,
    /// How long a token stays valid (Go's never expire). Default: 60 s.
    pub token_ttl: Duration,
    /// A side connection that has not sent its 32-byte token within this time is closed (Go
    /// waits forever). Default: 10 s.
    pub token_read_timeout: Duration,
    /// Side connections that may wait for their token, or for a transfer slot, at once; more are
    /// closed at once. Default: 1024.
    pub max_handshakes: usize,
    /// Handlers (uploads, downloads, streams) that may run at once. A side connection with a
    /// valid token beyond that waits for a slot (counted in
    /// [`max_handshakes`](TransferOptions::max_handshakes)); TCP flow control holds its client
    /// meanwhile. Default: 256.
    pub max_transfers: usize,
    /// The address put in replies (Go's `AdvertiseAddr`), when clients must dial another address
    /// than the one bound (NAT, containers). Default: the bound address.
    pub advertise_addr: Option<String>,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            max_tokens: 1024,
            token_ttl: Duration::from_secs(60),
            token_read_timeout: Duration::from_secs(10),
            max_handshakes: 1024,
            max_transfers: 256,
            advertise_addr: None,
        }
    }
}

impl TransferOptions {
    /// Sets [`max_tokens`](TransferOptions::max_tokens) (at least 1).
    pub fn max_tokens(mut self, n: usize) -> Self {
        self.max_tokens = n.max(1);
        self
    }

    /// Sets [`token_ttl`](TransferOptions::token_ttl).
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Sets [`token_read_timeout`](TransferOptions::token_read_timeout).
    pub fn token_read_timeout(mut self, t: Duration) -> Self {
        self.token_read_timeout = t;
        self
    }

    /// Sets [`max_handshakes`](TransferOptions::max_handshakes) (at least 1).
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.max_handshakes = n.max(1);
        self
    }

    /// Sets [`max_transfers`](TransferOptions::max_transfers) (at least 1).
    pub fn max_transfers(mut self, n: usize) -> Self {
        self.max_transfers = n.max(1);
        self
    }

    /// Sets [`advertise_addr`](TransferOptions::advertise_addr).
    pub fn advertise_addr(mut self, addr: impl Into<String>) -> Self {
        self.advertise_addr = Some(addr.into());
        self
    }
}

/// Why an upload or download did not complete.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransferError {
    /// The client closed the side connection before sending all the bytes it announced.
    Incomplete {
        /// Bytes received.
        received: u64,
        /// Bytes announced (`FileSize`).
        expected: u64,
    },
    /// Reading, writing or storing failed.
    Io(io::Error),
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::Incomplete { received, expected } => write!(
                f,
                "the client closed the connection after {received} of {expected} bytes"
            ),
            TransferError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TransferError {}

impl From<io::Error> for TransferError {
    fn from(e: io::Error) -> Self {
        TransferError::Io(e)
    }
}

/// An upload whose token was presented: the call's arguments and the side connection, from
/// which the file's bytes come.
#[derive(Debug)]
pub struct Upload {
    args: FileTransferArgs,
    conn: TcpStream,
}

impl Upload {
    /// The arguments of the `TransferFile` call.
    pub fn args(&self) -> &FileTransferArgs {
        &self.args
    }

    /// The side connection.
    pub fn conn(&mut self) -> &mut TcpStream {
        &mut self.conn
    }

    /// The arguments and the side connection.
    pub fn into_parts(self) -> (FileTransferArgs, TcpStream) {
        (self.args, self.conn)
    }

    /// Copies the announced `FileSize` bytes into `dst` (and no more); fails with
    /// [`TransferError::Incomplete`] when the client closes the connection before. Returns
    /// the bytes copied.
    pub async fn copy_to<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        dst: &mut W,
    ) -> std::result::Result<u64, TransferError> {
        let expected = u64::try_from(self.args.file_size).unwrap_or(0);
        let mut buf = vec![0u8; COPY_BUFFER.min(expected.max(1) as usize)];
        let mut received = 0u64;
        while received < expected {
            let want = buf.len().min((expected - received) as usize);
            let n = self.conn.read(&mut buf[..want]).await?;
            if n == 0 {
                return Err(TransferError::Incomplete { received, expected });
            }
            dst.write_all(&buf[..n]).await?;
            received += n as u64;
        }
        dst.flush().await?;
        Ok(received)
    }
}

/// A download whose token was presented: the call's arguments and the side connection, to
/// which the file's bytes go.
#[derive(Debug)]
pub struct Download {
    args: DownloadFileArgs,
    conn: TcpStream,
}

impl Download {
    /// The arguments of the `DownloadFile` call.
    pub fn args(&self) -> &DownloadFileArgs {
        &self.args
    }

    /// The side connection.
    pub fn conn(&mut self) -> &mut TcpStream {
        &mut self.conn
    }

    /// The arguments and the side connection.
    pub fn into_parts(self) -> (DownloadFileArgs, TcpStream) {
        (self.args, self.conn)
    }

    /// Copies `src` to the client until its end, then closes the side connection (the client
    /// reads until then). Returns the bytes sent.
    pub async fn send_from<R: tokio::io::AsyncRead + Unpin>(mut self, src: R) -> io::Result<u64> {
        let mut src = BufReader::with_capacity(COPY_BUFFER, src);
        let n = tokio::io::copy_buf(&mut src, &mut self.conn).await?;
        self.conn.shutdown().await?;
        Ok(n)
    }
}

/// Handles uploads (Go's `FileTransferHandler`). A closure `Fn(Upload) -> impl Future<Output =
/// ()>` is one.
pub trait UploadHandler: Send + Sync + 'static {
    /// Checks the arguments while the `TransferFile` call runs: an error is the call's error,
    /// and no token is issued. Default: accepts everything.
    fn check(&self, args: &FileTransferArgs) -> std::result::Result<(), ServiceError> {
        let _ = args;
        Ok(())
    }

    /// Receives the file. The side connection closes when `upload` is dropped.
    fn handle(&self, upload: Upload) -> BoxFuture<'static, ()>;
}

impl<F, Fut> UploadHandler for F
where
    F: Fn(Upload) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn handle(&self, upload: Upload) -> BoxFuture<'static, ()> {
        Box::pin(self(upload))
    }
}

/// Handles downloads (Go's `DownloadFileHandler`). A closure `Fn(Download) -> impl
/// Future<Output = ()>` is one.
pub trait DownloadHandler: Send + Sync + 'static {
    /// Checks the arguments while the `DownloadFile` call runs: an error (say, no such file) is
    /// the call's error, and no token is issued. Default: accepts everything.
    fn check(&self, args: &DownloadFileArgs) -> std::result::Result<(), ServiceError> {
        let _ = args;
        Ok(())
    }

    /// Sends the file. The side connection closes when `download` is dropped.
    fn handle(&self, download: Download) -> BoxFuture<'static, ()>;
}

impl<F, Fut> DownloadHandler for F
where
    F: Fn(Download) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn handle(&self, download: Download) -> BoxFuture<'static, ()> {
        Box::pin(self(download))
    }
}

/// Handles streams (Go's `StreamHandler`): the side connection, raw bytes both ways, and the
/// call's arguments. A closure `Fn(TcpStream, StreamServiceArgs) -> impl Future<Output = ()>` is
/// one.
pub trait StreamHandler: Send + Sync + 'static {
    /// Serves one stream; it closes when `conn` is dropped.
    fn handle(&self, conn: TcpStream, args: StreamServiceArgs) -> BoxFuture<'static, ()>;
}

impl<F, Fut> StreamHandler for F
where
    F: Fn(TcpStream, StreamServiceArgs) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn handle(&self, conn: TcpStream, args: StreamServiceArgs) -> BoxFuture<'static, ()> {
        Box::pin(self(conn, args))
    }
}

/// Decides whether a stream may open (Go's `StreamAcceptor`): `false` fails the `Stream` call
/// with Go's text `server refused the connection`.
pub type StreamAcceptor = Arc<dyn Fn(&Context, &StreamServiceArgs) -> bool + Send + Sync>;

/// rpcx's `FileTransfer`: a side listener address, an upload and a download handler, and the
/// bounds. Served by [`Server::enable_file_transfer`].
pub struct FileTransfer {
    addr: String,
    upload: Option<Arc<dyn UploadHandler>>,
    download: Option<Arc<dyn DownloadHandler>>,
    options: TransferOptions,
}

impl FileTransfer {
    /// File transfer with its side listener on `addr` (`host:port`; port 0 picks one, and the
    /// replies give the real one).
    pub fn new(addr: impl Into<String>) -> FileTransfer {
        FileTransfer {
            addr: addr.into(),
            upload: None,
            download: None,
            options: TransferOptions::default(),
        }
    }

    /// Handles uploads with `handler` (without one, `TransferFile` fails).
    pub fn upload(mut self, handler: impl UploadHandler) -> Self {
        self.upload = Some(Arc::new(handler));
        self
    }

    /// Handles downloads with `handler` (without one, `DownloadFile` fails).
    pub fn download(mut self, handler: impl DownloadHandler) -> Self {
        self.download = Some(Arc::new(handler));
        self
    }

    /// Replaces the bounds.
    pub fn options(mut self, options: TransferOptions) -> Self {
        self.options = options;
        self
    }
}

/// rpcx's `StreamService`: a side listener address, a handler, an optional acceptor, and the
/// bounds. Served by [`Server::enable_stream_service`].
pub struct StreamService {
    addr: String,
    handler: Option<Arc<dyn StreamHandler>>,
    acceptor: Option<StreamAcceptor>,
    options: TransferOptions,
}

impl StreamService {
    /// Streams with their side listener on `addr` (`host:port`; port 0 picks one).
    pub fn new(addr: impl Into<String>) -> StreamService {
        StreamService {
            addr: addr.into(),
            handler: None,
            acceptor: None,
            options: TransferOptions::default(),
        }
    }

    /// Serves streams with `handler` (without one, `Stream` fails).
    pub fn handler(mut self, handler: impl StreamHandler) -> Self {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// Lets `acceptor` refuse streams during the `Stream` call.
    pub fn acceptor(
        mut self,
        acceptor: impl Fn(&Context, &StreamServiceArgs) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.acceptor = Some(Arc::new(acceptor));
        self
    }

    /// Replaces the bounds.
    pub fn options(mut self, options: TransferOptions) -> Self {
        self.options = options;
        self
    }
}

/// What a token was issued for.
enum Ticket {
    Upload(FileTransferArgs),
    Download(DownloadFileArgs),
    Stream(StreamServiceArgs),
}

struct Side {
    local: SocketAddr,
    advertised: String,
    options: TransferOptions,
    tokens: Mutex<Tokens<Ticket>>,
    upload: Option<Arc<dyn UploadHandler>>,
    download: Option<Arc<dyn DownloadHandler>>,
    stream: Option<Arc<dyn StreamHandler>>,
    /// Slots for handlers running at once (`max_transfers`).
    transfers: Arc<Semaphore>,
    stop: CancellationToken,
}

impl Side {
    /// Issues a token for `ticket`.
    fn issue(&self, ticket: Ticket) -> std::result::Result<Token, ServiceError> {
        let token = new_token().map_err(|e| ServiceError::new(format!("no token: {e}")))?;
        lock(&self.tokens).insert(token, ticket);
        Ok(token)
    }
}

/// A running file transfer or stream service: its side listener's address and the tokens
/// waiting. Cloning is cheap.
#[derive(Clone)]
pub struct SideService {
    side: Arc<Side>,
}

impl SideService {
    /// The address the side listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.side.local
    }

    /// The address replies tell clients to dial.
    pub fn advertised_addr(&self) -> &str {
        &self.side.advertised
    }

    /// Tokens issued, not yet used and not expired (bounded by
    /// [`TransferOptions::max_tokens`]).
    pub fn pending_tokens(&self) -> usize {
        lock(&self.side.tokens).len()
    }

    /// Handlers (uploads, downloads, streams) running now (at most
    /// [`TransferOptions::max_transfers`]).
    pub fn active_transfers(&self) -> usize {
        self.side.options.max_transfers - self.side.transfers.available_permits()
    }

    /// Stops the side listener (also done when the server shuts down). Transfers under way go
    /// on.
    pub fn close(&self) {
        self.side.stop.cancel();
    }
}

impl fmt::Debug for SideService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SideService")
            .field("local_addr", &self.side.local)
            .field("advertised_addr", &self.side.advertised)
            .field("pending_tokens", &self.pending_tokens())
            .field("active_transfers", &self.active_transfers())
            .finish()
    }
}

impl Server {
    /// Serves file transfer (rpcx's `EnableFileTransfer`): binds the side listener and registers
    /// `service_name` (`""` means `_filetransfer`) with `TransferFile` and `DownloadFile`.
    pub async fn enable_file_transfer(
        &self,
        service_name: &str,
        transfer: FileTransfer,
    ) -> Result<SideService> {
        let name = if service_name.is_empty() {
            SEND_FILE_SERVICE_NAME
        } else {
            service_name
        };
        let FileTransfer {
            addr,
            upload,
            download,
            options,
        } = transfer;
        self.check_free(name)?;
        let side = self
            .start_side(&addr, options, upload, download, None)
            .await?;
        // Registration fails (a name already taken): the side listener stops again.
        let guard = side.stop.clone().drop_guard();
        let s = side.clone();
        self.register_fn(
            name,
            "TransferFile",
            move |_cx: Context, args: FileTransferArgs| {
                let s = s.clone();
                async move {
                    let handler = s
                        .upload
                        .as_ref()
                        .ok_or_else(|| ServiceError::new("this server takes no uploads"))?;
                    if args.file_size < 0 {
                        return Err(ServiceError::new("file size is negative"));
                    }
                    handler.check(&args)?;
                    let token = s.issue(Ticket::Upload(args))?;
                    Ok::<_, ServiceError>(FileTransferReply {
                        token: token.to_vec(),
                        addr: s.advertised.clone(),
                    })
                }
            },
        )?;
        let s = side.clone();
        self.register_fn(
            name,
            "DownloadFile",
            move |_cx: Context, args: DownloadFileArgs| {
                let s = s.clone();
                async move {
                    let handler = s
                        .download
                        .as_ref()
                        .ok_or_else(|| ServiceError::new("this server serves no downloads"))?;
                    handler.check(&args)?;
                    let token = s.issue(Ticket::Download(args))?;
                    Ok::<_, ServiceError>(FileTransferReply {
                        token: token.to_vec(),
                        addr: s.advertised.clone(),
                    })
                }
            },
        )?;
        guard.disarm();
        Ok(SideService { side })
    }

    /// Serves streams (rpcx's `EnableStreamService`): binds the side listener and registers
    /// `service_name` (`""` means `_streamservice`) with `Stream`.
    pub async fn enable_stream_service(
        &self,
        service_name: &str,
        service: StreamService,
    ) -> Result<SideService> {
        let name = if service_name.is_empty() {
            STREAM_SERVICE_NAME
        } else {
            service_name
        };
        let StreamService {
            addr,
            handler,
            acceptor,
            options,
        } = service;
        self.check_free(name)?;
        let side = self.start_side(&addr, options, None, None, handler).await?;
        let guard = side.stop.clone().drop_guard();
        let s = side.clone();
        self.register_fn(
            name,
            "Stream",
            move |cx: Context, args: StreamServiceArgs| {
                let s = s.clone();
                let accepted = acceptor.as_ref().is_none_or(|a| a(&cx, &args));
                async move {
                    if !accepted {
                        return Err(ServiceError::new(ERR_NOT_ACCEPT));
                    }
                    if s.stream.is_none() {
                        return Err(ServiceError::new("this server serves no streams"));
                    }
                    let token = s.issue(Ticket::Stream(args))?;
                    Ok::<_, ServiceError>(StreamServiceReply {
                        token: token.to_vec(),
                        addr: s.advertised.clone(),
                    })
                }
            },
        )?;
        guard.disarm();
        Ok(SideService { side })
    }

    /// Refuses a service name already in use, as Go's `RegisterName` does.
    fn check_free(&self, name: &str) -> Result<()> {
        if self.service_names().iter().any(|n| n == name) {
            return Err(Error::Config(format!(
                "service {name} is already registered"
            )));
        }
        Ok(())
    }

    async fn start_side(
        &self,
        addr: &str,
        mut options: TransferOptions,
        upload: Option<Arc<dyn UploadHandler>>,
        download: Option<Arc<dyn DownloadHandler>>,
        stream: Option<Arc<dyn StreamHandler>>,
    ) -> Result<Arc<Side>> {
        if self.is_shutting_down() {
            return Err(Error::ServerShutdown);
        }
        // The fields are public: a 0 set directly means 1, as the setters do.
        options.max_tokens = options.max_tokens.max(1);
        options.max_handshakes = options.max_handshakes.max(1);
        options.max_transfers = options.max_transfers.max(1);
        let bind_err = |e: io::Error| Error::Bind {
            address: addr.to_string(),
            source: Arc::new(e),
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        let side = Arc::new(Side {
            local,
            advertised: options
                .advertise_addr
                .clone()
                .unwrap_or_else(|| local.to_string()),
            tokens: Mutex::new(Tokens::new(options.max_tokens, options.token_ttl)),
            transfers: Arc::new(Semaphore::new(options.max_transfers)),
            options,
            upload,
            download,
            stream,
            stop: CancellationToken::new(),
        });
        let stop = side.stop.clone();
        self.on_shutdown(move || async move { stop.cancel() });
        tokio::spawn(accept_loop(listener, side.clone()));
        tracing::info!(address = %local, "side listener for streams and file transfer");
        Ok(side)
    }
}

async fn accept_loop(listener: TcpListener, side: Arc<Side>) {
    let handshakes = Arc::new(Semaphore::new(side.options.max_handshakes));
    let mut backoff = crate::util::Backoff::new(Duration::from_millis(5), Duration::from_secs(1));
    loop {
        let accepted = tokio::select! {
            _ = side.stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let (conn, peer) = match accepted {
            Ok(a) => {
                backoff.reset();
                a
            }
            Err(e) => {
                let wait = backoff.next_delay();
                tracing::error!(error = %e, retry_in = ?wait, "side listener: accept error");
                tokio::select! {
                    _ = side.stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "side listener: too many connections waiting for their token or a transfer slot; closing");
            continue;
        };
        let side = side.clone();
        tokio::spawn(async move {
            let Some((conn, ticket)) = handshake(&side, conn, peer).await else {
                return;
            };
            // The handshake slot is held until a transfer slot is free, so connections waiting
            // for either are bounded together by `max_handshakes`.
            let Ok(slot) = side.transfers.clone().acquire_owned().await else {
                return;
            };
            drop(permit);
            serve(&side, conn, ticket).await;
            drop(slot);
        });
    }
}

/// Reads the token and takes its ticket; `None` (and the connection closed) when the token is
/// late, unknown, used or expired.
async fn handshake(
    side: &Side,
    mut conn: TcpStream,
    peer: SocketAddr,
) -> Option<(TcpStream, Ticket)> {
    let mut token = [0u8; TOKEN_LEN];
    let read = tokio::time::timeout(side.options.token_read_timeout, conn.read_exact(&mut token));
    match read.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "side connection closed before its token");
            return None;
        }
        Err(_) => {
            tracing::info!(%peer, timeout = ?side.options.token_read_timeout, "side connection sent no token in time; closing");
            return None;
        }
    }
    let ticket = lock(&side.tokens).take(&token);
    match ticket {
        Some(t) => Some((conn, t)),
        None => {
            tracing::info!(%peer, "side connection with an unknown, used or expired token; closing");
            None
        }
    }
}

async fn serve(side: &Side, conn: TcpStream, ticket: Ticket) {
    let _ = conn.set_nodelay(true);
    match ticket {
        Ticket::Upload(args) => {
            if let Some(h) = &side.upload {
                h.handle(Upload { args, conn }).await
            }
        }
        Ticket::Download(args) => {
            if let Some(h) = &side.download {
                h.handle(Download { args, conn }).await
            }
        }
        Ticket::Stream(args) => {
            if let Some(h) = &side.stream {
                h.handle(conn, args).await
            }
        }
    }
}

type DoneFn = dyn Fn(&FileTransferArgs, std::result::Result<&Path, &TransferError>) + Send + Sync;

/// An [`UploadHandler`] that stores each upload in a directory under its file name (its last
/// path component): into a temporary file first, renamed once all `FileSize` bytes arrived. An
/// upload cut short leaves nothing behind (the temporary file is removed) and is reported to
/// [`on_done`](SaveToDir::on_done) and the log.
pub struct SaveToDir {
    dir: PathBuf,
    max_size: Option<u64>,
    on_done: Option<Arc<DoneFn>>,
}

impl SaveToDir {
    /// Stores uploads in `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> SaveToDir {
        SaveToDir {
            dir: dir.into(),
            max_size: None,
            on_done: None,
        }
    }

    /// Refuses uploads announcing more than `bytes` (`FileSize`), during the `TransferFile`
    /// call. Default: no limit (as Go).
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// Calls `f` after each upload with where the file is, or why it is not there.
    pub fn on_done(
        mut self,
        f: impl Fn(&FileTransferArgs, std::result::Result<&Path, &TransferError>)
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.on_done = Some(Arc::new(f));
        self
    }

    /// The name an upload is stored under: the last component of `file_name`.
    fn target(&self, file_name: &str) -> std::result::Result<PathBuf, ServiceError> {
        let name = file_name.rsplit(['/', '\\']).next().unwrap_or("");
        if name.is_empty() || name == "." || name == ".." {
            return Err(ServiceError::new(format!(
                "invalid file name {file_name:?}"
            )));
        }
        Ok(self.dir.join(name))
    }
}

impl UploadHandler for SaveToDir {
    fn check(&self, args: &FileTransferArgs) -> std::result::Result<(), ServiceError> {
        if let Some(max) = self.max_size {
            if u64::try_from(args.file_size).is_ok_and(|n| n > max) {
                return Err(ServiceError::new(format!(
                    "file too large: {} bytes, at most {max}",
                    args.file_size
                )));
            }
        }
        self.target(&args.file_name).map(|_| ())
    }

    fn handle(&self, mut upload: Upload) -> BoxFuture<'static, ()> {
        let target = self.target(&upload.args.file_name);
        let on_done = self.on_done.clone();
        let dir = self.dir.clone();
        Box::pin(async move {
            let Ok(target) = target else { return };
            let result = async {
                let suffix = new_token()?;
                let temp = dir.join(format!(
                    ".{}.{:02x}{:02x}{:02x}{:02x}.part",
                    target.file_name().unwrap_or_default().to_string_lossy(),
                    suffix[0],
                    suffix[1],
                    suffix[2],
                    suffix[3]
                ));
                let copied = async {
                    let mut file = tokio::fs::File::create(&temp).await?;
                    upload.copy_to(&mut file).await?;
                    Ok::<_, TransferError>(())
                }
                .await;
                match copied {
                    Ok(()) => tokio::fs::rename(&temp, &target).await.map_err(|e| {
                        let _ = std::fs::remove_file(&temp);
                        TransferError::Io(e)
                    }),
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&temp).await;
                        Err(e)
                    }
                }
            }
            .await;
            // Tell the client it is done: it waits for the connection to close.
            let (args, mut conn) = upload.into_parts();
            let _ = conn.shutdown().await;
            match &result {
                Ok(()) => {
                    tracing::info!(file = %target.display(), bytes = args.file_size, "upload stored")
                }
                Err(e) => {
                    tracing::warn!(file = %target.display(), error = %e, "upload failed; nothing stored")
                }
            }
            if let Some(f) = on_done {
                f(&args, result.as_ref().map(|()| target.as_path()));
            }
        })
    }
}

/// A [`DownloadHandler`] that serves files from a directory. A name with `..`, or one that
/// leads outside the directory (an absolute path elsewhere, a symbolic link out), is refused
/// during the `DownloadFile` call, as is a name that is not a regular file.
pub struct ServeDir {
    dir: PathBuf,
}

impl ServeDir {
    /// Serves the files under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> ServeDir {
        ServeDir { dir: dir.into() }
    }

    /// The file `file_name` names, if it is a regular file inside the directory.
    fn resolve(&self, file_name: &str) -> std::result::Result<PathBuf, ServiceError> {
        let refused = || {
            ServiceError::new(format!(
                "refused: {file_name:?} is not a file inside the served directory"
            ))
        };
        let path = Path::new(file_name);
        if file_name.is_empty() || path.components().any(|c| c == Component::ParentDir) {
            return Err(refused());
        }
        let root = self.dir.canonicalize().map_err(|e| {
            ServiceError::new(format!("the served directory is not available: {e}"))
        })?;
        // An absolute path is taken as it is (and must lead into the directory); a relative
        // one is under the directory.
        let full = root.join(path);
        let full = match full.canonicalize() {
            Ok(f) => f,
            Err(_) => return Err(ServiceError::new(format!("file not found: {file_name}"))),
        };
        if !full.starts_with(&root) || !full.is_file() {
            return Err(refused());
        }
        Ok(full)
    }
}

impl DownloadHandler for ServeDir {
    fn check(&self, args: &DownloadFileArgs) -> std::result::Result<(), ServiceError> {
        self.resolve(&args.file_name).map(|_| ())
    }

    fn handle(&self, download: Download) -> BoxFuture<'static, ()> {
        let path = self.resolve(&download.args.file_name);
        Box::pin(async move {
            let Ok(path) = path else { return };
            let result = async {
                let file = tokio::fs::File::open(&path).await?;
                download.send_from(file).await
            }
            .await;
            match result {
                Ok(n) => tracing::info!(file = %path.display(), bytes = n, "download sent"),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "download failed"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_to_dir_keeps_the_last_component_only() {
        let s = SaveToDir::new("/srv/in");
        assert_eq!(s.target("a.txt").unwrap(), Path::new("/srv/in/a.txt"));
        assert_eq!(
            s.target("../../etc/passwd").unwrap(),
            Path::new("/srv/in/passwd")
        );
        assert_eq!(
            s.target("C:\\x\\y.bin").unwrap(),
            Path::new("/srv/in/y.bin")
        );
        for bad in ["", ".", "..", "dir/", "a/.."] {
            assert!(s.target(bad).is_err(), "{bad:?}");
        }
    }
}
