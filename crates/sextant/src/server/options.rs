//! [`ServerOptions`]: the server's settings, named after rpcx's server options.

use std::time::Duration;

use sextant_protocol::Limits;

#[cfg(feature = "http")]
pub use super::http::HttpOptions;
#[cfg(feature = "kcp")]
use crate::transport::KcpConfig;
#[cfg(feature = "tls")]
use crate::transport::ServerTlsConfig;

/// Server settings. Every field states its default.
///
/// ## rpcx's `WithReadTimeout` and `WithWriteTimeout`
///
/// rpcx's `WithReadTimeout(d)` sets a read deadline of `d` before every request is read, so it
/// bounds two things at once: how long a request may take to arrive once it has started, and how
/// long a connection may sit idle between requests (an idle rpcx connection is closed after `d`).
/// sextant keeps the two apart: [`read_timeout`](ServerOptions::read_timeout) is the first,
/// [`idle_timeout`](ServerOptions::idle_timeout) the second (and, unlike rpcx, an idle timeout
/// never cuts a connection that still has calls running). To get rpcx's behaviour set both to
/// `d`. rpcx's `WithWriteTimeout(d)` maps to [`write_timeout`](ServerOptions::write_timeout).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Once the first byte of a request has arrived, the whole request must arrive within this
    /// time or the connection is closed (protects against slow senders holding buffers).
    /// Narrower than rpcx's `WithReadTimeout`: see the type's docs. Default: `None` (no limit),
    /// as rpcx.
    pub read_timeout: Option<Duration>,
    /// A write of responses that takes longer than this closes the connection (rpcx's
    /// `WithWriteTimeout`). Default: `None`, as rpcx.
    pub write_timeout: Option<Duration>,
    /// A connection with no request and no call in flight for this long is closed (the idle half
    /// of rpcx's `WithReadTimeout`). Default: `None` (connections live until the client closes
    /// them).
    pub idle_timeout: Option<Duration>,
    /// Calls that may run at once on one connection; past that the server stops reading from
    /// the connection until one finishes. Default: 1024.
    pub max_concurrent_requests: usize,
    /// Message and decompressed-payload size limits. Default: 16 MiB each.
    pub limits: Limits,
    /// Server pushes ([`ClientConn::send_message`](super::ClientConn::send_message)) that may
    /// wait to be written on one connection; one more fails at once with
    /// [`PushError::Full`](crate::PushError::Full). The queue's slots for call replies are kept
    /// apart, so pushes never take them. Default: 1024.
    pub push_queue_capacity: usize,
    /// Turns off HTTP invoke on the service port (rpcx's `DisableHTTPGateway`). Default: `false`.
    #[cfg(feature = "http")]
    pub disable_http_gateway: bool,
    /// Turns off JSON-RPC 2.0 on the service port (rpcx's `DisableJSONRPC`). Default: `false`.
    #[cfg(feature = "http")]
    pub disable_jsonrpc: bool,
    /// The HTTP side's limits, timeouts and CORS. Default: [`HttpOptions::default`].
    #[cfg(feature = "http")]
    pub http: HttpOptions,
    /// TLS on `tcp@`, `reuseport@`, `http@` and `wss@` listeners, and the certificate of
    /// `quic@` ones (rpcx's `WithTLSConfig`); required for `wss@` and `quic@`. Default: none.
    #[cfg(feature = "tls")]
    pub tls: Option<ServerTlsConfig>,
    /// How long a new connection's handshakes (TLS, WebSocket upgrade, QUIC) may take; past
    /// that it is closed, and it never holds up other connections. Default: 10 s.
    pub handshake_timeout: Duration,
    /// TCP keepalive probes after this much silence on accepted TCP connections (rpcx's
    /// `WithTCPKeepAlivePeriod`); `None` turns them off. Default: 3 minutes, as rpcx.
    pub tcp_keepalive: Option<Duration>,
    /// How long a plugin's [`Verdict::Wait`](super::Verdict::Wait) may hold a call that has no
    /// deadline of its own (`__ServerTimeout`); a call with a deadline waits at most until it.
    /// Default: 30 s.
    pub max_plugin_wait: Duration,
    /// The HTTP path `ws@` and `wss@` listeners upgrade on. Default: `/_rpcx_`.
    pub rpc_path: String,
    /// The kcp-go session settings of `kcp@` listeners (rpcx's `WithBlockCrypt`, FEC 10/3);
    /// required for `kcp@`. KCP has no close packet, so a server session silent for the
    /// config's `idle_timeout` is dropped, 120 s when it is not set (clients that stay idle
    /// longer should send heartbeats). Default: none.
    #[cfg(feature = "kcp")]
    pub kcp: Option<KcpConfig>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            read_timeout: None,
            write_timeout: None,
            idle_timeout: None,
            max_concurrent_requests: 1024,
            limits: Limits::default(),
            push_queue_capacity: 1024,
            #[cfg(feature = "http")]
            disable_http_gateway: false,
            #[cfg(feature = "http")]
            disable_jsonrpc: false,
            #[cfg(feature = "http")]
            http: HttpOptions::default(),
            #[cfg(feature = "tls")]
            tls: None,
            handshake_timeout: Duration::from_secs(10),
            tcp_keepalive: Some(Duration::from_secs(180)),
            max_plugin_wait: Duration::from_secs(30),
            rpc_path: crate::transport::RPCX_PATH.to_string(),
            #[cfg(feature = "kcp")]
            kcp: None,
        }
    }
}
