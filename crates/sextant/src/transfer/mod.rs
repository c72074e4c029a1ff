//! Streams and file transfer, as rpcx's `server/stream.go`, `server/file_transfer.go` and
//! `client/xclient_transfer.go` do them: large or long-lived data goes over a side connection,
//! outside the call path.
//!
//! ## The protocol (the same bytes as Go's)
//!
//! 1. **The control call.** The client calls a service on the rpcx port:
//!    - `_filetransfer.TransferFile(FileTransferArgs)` to upload;
//!    - `_filetransfer.DownloadFile(DownloadFileArgs)` to download;
//!    - `_streamservice.Stream(StreamServiceArgs)` for a raw stream.
//!
//!    The server answers with 32 random bytes, the token, and the address of its side listener
//!    (`FileTransferReply` / `StreamServiceReply`).
//! 2. **The side connection.** The client dials that address over plain TCP and writes the
//!    32 token bytes first. The server looks the token up, forgets it (a token serves once), and
//!    hands the connection to the handler with the call's arguments.
//! 3. **The bytes.** An upload sends the file's bytes and closes. A download receives the file's
//!    bytes until the server closes. A stream is raw bytes both ways for as long as both ends
//!    like.
//!
//! The argument and reply structs are encoded as Go encodes them:
//! - msgpack keys them by Go field name (`FileName`, `FileSize`, `Meta`, `Token`, `Addr`);
//! - JSON uses Go's json tags (`file_name`, `file_size`, `meta`, `token` in base64, `addr`,
//!   empty fields left out).
//!
//! So a Go rpcx client can upload to, download from and stream with a sextant server, and the
//! other way round.
//!
//! ## Server side
//!
//! [`Server::enable_file_transfer`](crate::Server::enable_file_transfer) and
//! [`Server::enable_stream_service`](crate::Server::enable_stream_service) bind the side
//! listener and register the service. They take:
//! - the handlers: [`UploadHandler`], [`DownloadHandler`] and [`StreamHandler`] (closures work),
//!   and a stream acceptor that can refuse a stream;
//! - ready-made handlers: [`SaveToDir`], which stores uploads into a directory, and [`ServeDir`],
//!   which serves downloads from one.
//!
//! Differences from Go, all bounds:
//! - A token expires ([`TransferOptions::token_ttl`], 60 s; Go's tokens never do).
//! - The token table is bounded as Go's (`waitNum`, [`TransferOptions::max_tokens`]; the oldest
//!   token is dropped).
//! - A side connection must send its token within [`TransferOptions::token_read_timeout`]
//!   (10 s; Go waits forever).
//! - At most [`TransferOptions::max_transfers`] handlers run at once; a side connection with a
//!   valid token beyond that waits for a slot. At most [`TransferOptions::max_handshakes`] side
//!   connections wait for their token or a slot at once; more are closed.
//! - Upload and download handlers can check their arguments during the control call, so a bad
//!   name is the call's error and no token is issued.
//!
//! ## Client side
//!
//! [`XClient::send_file`](crate::XClient::send_file),
//! [`XClient::download_file`](crate::XClient::download_file) and
//! [`XClient::stream`](crate::XClient::stream), on an XClient made for the service path
//! `_filetransfer` or `_streamservice`, as in Go. A plain [`Client`](crate::Client) has the same
//! three ([`Client::send_file`](crate::Client::send_file), ...), taking the service path. The
//! side connection is dialled within the client options' connect timeout.

mod client;
mod server;
mod tokens;
mod wire;

pub use server::{
    Download, DownloadHandler, FileTransfer, SaveToDir, ServeDir, SideService, StreamAcceptor,
    StreamHandler, StreamService, TransferError, TransferOptions, Upload, UploadHandler,
};
pub use wire::{
    DownloadFileArgs, FileTransferArgs, FileTransferReply, StreamServiceArgs, StreamServiceReply,
};

/// rpcx's `share.SendFileServiceName`: the default service path of file transfer.
pub const SEND_FILE_SERVICE_NAME: &str = "_filetransfer";
/// rpcx's `share.StreamServiceName`: the default service path of streams.
pub const STREAM_SERVICE_NAME: &str = "_streamservice";
/// The size of a token, in bytes.
pub const TOKEN_LEN: usize = 32;
/// The text of the error a refused stream gets (Go's `ErrNotAccept`).
pub const ERR_NOT_ACCEPT: &str = "server refused the connection";
