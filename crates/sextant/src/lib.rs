//! # sextant
//!
//! A distributed RPC framework for async Rust with service governance built in, wire-compatible
//! with Go's [rpcx](https://github.com/smallnest/rpcx): Go rpcx clients call sextant servers and
//! sextant clients call Go rpcx servers, byte for byte.
//!
//! ## A tour
//!
//! Services are plain Rust: an impl block of async methods over `serde` types. No IDL.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use sextant::{Client, ClientOptions, Context, Server, ServiceError};
//!
//! // Go interop: Go's msgpack uses the Go field names as keys.
//! #[derive(Serialize, Deserialize, Default)]
//! #[serde(rename_all = "PascalCase")]
//! pub struct Args { pub a: i64, pub b: i64 }
//!
//! #[derive(Serialize, Deserialize, Default, Debug)]
//! #[serde(rename_all = "PascalCase")]
//! pub struct Reply { pub c: i64 }
//!
//! pub struct Arith;
//!
//! #[sextant::service]
//! impl Arith {
//!     /// Served as `Arith.Mul`.
//!     async fn mul(&self, _cx: Context, args: Args) -> Result<Reply, ServiceError> {
//!         Ok(Reply { c: args.a * args.b })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> sextant::Result<()> {
//! let server = Server::new();
//! server.register(Arith)?;
//! let address = server.start("tcp@127.0.0.1:0").await?;
//!
//! let client = Client::connect(&address, ClientOptions::default()).await?;
//! let reply: Reply = client.call("Arith", "Mul", &Args { a: 10, b: 20 }).await?;
//! assert_eq!(reply.c, 200);
//!
//! client.close();
//! server.shutdown(std::time::Duration::from_secs(1)).await?;
//! # Ok(()) }
//! ```
//!
//! - [`Server`]: register services ([`Server::register`], [`Server::register_fn`]), serve on
//!   any transport, auth, timeouts, backpressure, graceful shutdown.
//! - [`Client`]: one multiplexed connection; [`Client::call`], [`Client::go`], oneway calls,
//!   metadata, deadlines (sent as `__ServerTimeout`), heartbeats; [`Client::send_raw`] and
//!   [`XClient::send_raw`] send a payload the caller encoded and return a [`RawReply`] (rpcx's
//!   `SendRaw`).
//! - [`Context`]: what a handler knows about its call.
//! - [`Error`]: one error type; [`Error::is_retryable`] tells transport failures from service
//!   errors.
//! - [`protocol`]: the wire format, codecs and compression (the `sextant-protocol` crate); it
//!   alone lays out the bytes of a frame.
//! - [`Address`] and [`ToAddress`]: `network@address` as rpcx writes it; every method that takes
//!   an address takes a `&str`, a `String`, an `Address` or a `SocketAddr`.
//! - [`transport`]: the networks, chosen by the address as rpcx names them: `tcp` (TLS with
//!   [`ServerOptions::tls`] / [`ClientOptions::tls`]), `unix`, `reuseport`, `http` (CONNECT),
//!   `ws`/`wss`, `quic`, `kcp`, `inprocess`; your own listeners and connectors.
//! - [`query`]: server metadata as query strings ([`QueryValues`]), as rpcx reads and writes it.
//! - [`util`]: the poison-free lock and the backoff every sextant crate uses.
//! - [`transfer`]: streams and file transfer over a side connection (rpcx's `_streamservice` and
//!   `_filetransfer`), [`XClient::send_file`], [`XClient::download_file`], [`XClient::stream`].
//!
//! ## Many servers: the XClient
//!
//! [`XClient`] calls one service on the servers a [`ServiceDiscovery`] lists, in rpcx's
//! vocabulary: a [`SelectMode`] picks the server (random, round robin, smooth weighted, network
//! quality, consistent hash, closest, or your own [`Selector`](selector::Selector)); a
//! [`FailMode`] says what a failure does (`Failover`, `Failfast`, `Failtry`, `Failbackup`);
//! per-server circuit [breakers](breaker) keep failing servers out; `fork`, `broadcast` and
//! `inform` call every server. Servers in the same process are reached without a socket through
//! an [`InProcess`](transport::InProcess) hub.
//!
//! ```no_run
//! # async fn run() -> sextant::Result<()> {
//! use sextant::discovery::Peer2PeerDiscovery;
//! use sextant::{FailMode, SelectMode, XClient};
//!
//! let xclient = XClient::builder("Arith")
//!     .fail_mode(FailMode::Failover)
//!     .select_mode(SelectMode::RoundRobin)
//!     .discovery(Peer2PeerDiscovery::new("tcp@127.0.0.1:8972", "")?)
//!     .build()?;
//! let c: i64 = xclient.call("Mul", &(10, 20)).await?;
//! # Ok(()) }
//! ```
//!
//! ## Codecs
//!
//! The request's serialize type picks the codec; the reply uses the same. `serde` types work with
//! JSON and msgpack (the default) and with custom codecs; [`Proto`] wraps `prost` messages,
//! [`Thrift`] Thrift structs, and [`Raw`] passes bytes through.
//!
//! ## Features
//!
//! - `macros` (default): the [`service`] attribute macro.
//! - `thrift` (default): the Thrift codec.
//! - `http` (default): HTTP invoke, JSON-RPC 2.0 and `CONNECT` on the service port.
//! - `tls` (default): TLS and mutual TLS (rustls) on `tcp@`, `http@`, `wss@`.
//! - `websocket` (default): the `ws@` and `wss@` transports.
//! - `quic`: the `quic@` transport (quinn), as rpcx's `quic` build tag.
//! - `kcp`: the `kcp@` transport (kcp-go's sessions, the `sextant-kcp` crate), as rpcx's `kcp`
//!   build tag.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod breaker;
pub mod client;
mod context;
pub mod discovery;
mod error;
#[cfg(feature = "http")]
pub mod http;
mod io;
pub mod query;
pub mod selector;
pub mod server;
pub mod transfer;
pub mod transport;
pub mod util;
pub mod xclient;

pub use client::{
    CallOptions, Client, ClientOptions, PendingCall, PushOverflow, RawReply, Response,
    ServerMessage, ServerMessages,
};
pub use context::Context;
pub use discovery::{KVPair, ServiceDiscovery};
pub use error::{Error, PushError, Result, ServiceError};
pub use query::QueryValues;
pub use selector::SelectMode;
pub use server::{
    AuthPeer, CallHooks, CallOutcome, ClientConn, Method, RegisterOptions, Server, ServerBuilder,
    ServerOptions, ServerPlugin, ServerStats, Service, Verdict,
};
pub use transport::{Address, PeerAddr, ToAddress};
pub use xclient::{FailMode, XClient, XClientBuilder, XClientOptions};

/// The wire format: messages, codecs, compression (re-export of `sextant-protocol`).
pub use sextant_protocol as protocol;
#[cfg(feature = "thrift")]
#[cfg_attr(docsrs, doc(cfg(feature = "thrift")))]
pub use sextant_protocol::Thrift;
pub use sextant_protocol::{keys, CompressType, Metadata, Proto, Raw, SerializeType};

/// Turns an impl block into an rpcx service.
///
/// Every `async fn` taking `&self`, a [`Context`] and one argument, and returning
/// `Result<Reply, E>` (with `E: Display`), becomes a method. Its wire name is the Rust name in
/// PascalCase (`user_info` → `UserInfo`), or `#[sextant(name = "...")]` on the method. Other
/// functions are left alone; `#[sextant(skip)]` leaves out an async one. The service is named
/// after the type, or `#[sextant::service(name = "...")]`.
///
/// ```
/// use sextant::{Context, ServiceError};
/// pub struct Arith;
///
/// #[sextant::service(name = "Arith")]
/// impl Arith {
///     async fn mul(&self, _cx: Context, (a, b): (i64, i64)) -> Result<i64, ServiceError> {
///         Ok(a * b)
///     }
///     #[sextant(name = "Divide")]
///     async fn div(&self, _cx: Context, (a, b): (i64, i64)) -> Result<i64, ServiceError> {
///         if b == 0 { return Err("divide by zero".into()); }
///         Ok(a / b)
///     }
/// }
/// # use sextant::Service;
/// # let m: Vec<String> = std::sync::Arc::new(Arith).methods().iter().map(|m| m.name().to_string()).collect();
/// # assert!(m.contains(&"Mul".to_string()) && m.contains(&"Divide".to_string()));
/// ```
///
/// A method whose types cannot be encoded, or whose signature is not of this shape, fails to
/// compile.
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use sextant_macros::service;

#[doc(hidden)]
pub mod __private {
    pub use std::sync::Arc;
    pub use std::vec::Vec;
}
