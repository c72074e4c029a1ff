//! [`ClientOptions`] (rpcx's `client.Option`, the per-connection part) and [`CallOptions`].

use std::time::Duration;

use sextant_protocol::codec::Codecs;
use sextant_protocol::{ByteStr, CompressType, Limits, Metadata, SerializeType};

#[cfg(doc)]
use super::Client;
use super::PushOverflow;
#[cfg(feature = "tls")]
use crate::transport::ClientTlsConfig;
#[cfg(feature = "kcp")]
use crate::transport::KcpConfig;
use crate::transport::{Connector, InProcess};

/// A [`Connector`] shared by the clients of one set of options.
#[derive(Clone)]
pub struct SharedConnector(pub std::sync::Arc<dyn Connector>);

impl std::fmt::Debug for SharedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl std::ops::Deref for SharedConnector {
    type Target = dyn Connector;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// Client settings, named after rpcx's `client.Option`. Every field states its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// How long dialling may take. Default: 1 s (rpcx's `ConnectTimeout`).
    pub connect_timeout: Duration,
    /// How arguments are serialized. Default: msgpack (rpcx's `SerializeType`).
    pub serialize_type: SerializeType,
    /// How arguments over 1024 bytes are compressed. Default: none (rpcx's `CompressType`).
    pub compress_type: CompressType,
    /// Sent as `__AUTH` with every call when set. Default: none.
    pub auth_token: Option<String>,
    /// Deadline applied to calls that do not set one. Default: none.
    pub default_timeout: Option<Duration>,
    /// Send heartbeats and close the connection when one is not answered (rpcx's `Heartbeat`).
    /// Default: false.
    pub heartbeat: bool,
    /// Time between heartbeats (rpcx's `HeartbeatInterval`). Default: 10 s.
    pub heartbeat_interval: Duration,
    /// How long to wait for a heartbeat's answer before declaring the connection dead (rpcx's
    /// `MaxWaitForHeartbeat`). Default: 30 s.
    pub max_wait_for_heartbeat: Duration,
    /// Size limits for replies. Default: 16 MiB each.
    pub limits: Limits,
    /// Codecs, for custom serialize types. Default: the built-in ones.
    pub codecs: Codecs,
    /// Capacity of the queue of messages pushed by the server (see
    /// [`Client::server_messages`]); 0 disables it (pushes are dropped, as a Go client without
    /// `ServerMessageChan` does). Default: 0.
    pub server_message_capacity: usize,
    /// What happens to a push when that queue is full (rpcx's `BidirectionalBlock`). Default:
    /// [`PushOverflow::Drop`], counted in [`ServerMessages::dropped`](super::ServerMessages::dropped).
    pub server_message_overflow: PushOverflow,
    /// The hub in which `inprocess@` addresses are dialled. Default: none, meaning the
    /// process-wide hub [`InProcess::global`].
    pub in_process: Option<InProcess>,
    /// TLS for `tcp@`, `http@`, `wss@` and `quic@` (rpcx's `Option.TLSConfig`); required for
    /// `wss@` and `quic@`. Default: none (plain TCP).
    #[cfg(feature = "tls")]
    pub tls: Option<ClientTlsConfig>,
    /// TCP keepalive probes after this much silence, on every TCP-based connection (rpcx's
    /// `TCPKeepAlivePeriod`); `None` turns them off. Default: 1 minute, as rpcx.
    pub tcp_keepalive: Option<Duration>,
    /// Closes the connection when nothing has arrived on it for this long (rpcx's
    /// `IdleTimeout`): a half-open connection is found without heartbeats, and an unused one is
    /// let go (an XClient dials again on the next call). Default: none.
    pub idle_timeout: Option<Duration>,
    /// The HTTP path of `http@` (`CONNECT`) and `ws@`/`wss@` dials (rpcx's `RPCPath`).
    /// Default: `/_rpcx_`.
    pub rpc_path: String,
    /// The kcp-go session settings for `kcp@` (rpcx's `Option.Block` and FEC shards); required
    /// for `kcp@`. Default: none.
    #[cfg(feature = "kcp")]
    pub kcp: Option<KcpConfig>,
    /// Dials every address itself instead of sextant's transports (see [`Connector`]).
    /// Default: none.
    pub connector: Option<SharedConnector>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(1),
            serialize_type: SerializeType::MSGPACK,
            compress_type: CompressType::NONE,
            auth_token: None,
            default_timeout: None,
            heartbeat: false,
            heartbeat_interval: Duration::from_secs(10),
            max_wait_for_heartbeat: Duration::from_secs(30),
            limits: Limits::default(),
            codecs: Codecs::default(),
            server_message_capacity: 0,
            server_message_overflow: PushOverflow::Drop,
            in_process: None,
            #[cfg(feature = "tls")]
            tls: None,
            tcp_keepalive: Some(Duration::from_secs(60)),
            idle_timeout: None,
            rpc_path: crate::transport::RPCX_PATH.to_string(),
            #[cfg(feature = "kcp")]
            kcp: None,
            connector: None,
        }
    }
}

impl ClientOptions {
    /// Sets [`serialize_type`](ClientOptions::serialize_type).
    pub fn serialize_type(mut self, st: SerializeType) -> Self {
        self.serialize_type = st;
        self
    }

    /// Sets [`compress_type`](ClientOptions::compress_type).
    pub fn compress_type(mut self, ct: CompressType) -> Self {
        self.compress_type = ct;
        self
    }

    /// Sets the auth token.
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.auth_token = Some(token.into());
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets the default call deadline.
    pub fn default_timeout(mut self, t: Duration) -> Self {
        self.default_timeout = Some(t);
        self
    }

    /// Turns heartbeats on with this interval.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = true;
        self.heartbeat_interval = interval;
        self
    }

    /// Sets how long a heartbeat may go unanswered.
    pub fn max_wait_for_heartbeat(mut self, t: Duration) -> Self {
        self.max_wait_for_heartbeat = t;
        self
    }

    /// Sets the codecs.
    pub fn codecs(mut self, codecs: Codecs) -> Self {
        self.codecs = codecs;
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`server_message_overflow`](ClientOptions::server_message_overflow).
    pub fn server_message_overflow(mut self, overflow: PushOverflow) -> Self {
        self.server_message_overflow = overflow;
        self
    }

    /// Keeps up to `capacity` server-pushed messages for [`Client::server_messages`].
    pub fn server_message_capacity(mut self, capacity: usize) -> Self {
        self.server_message_capacity = capacity;
        self
    }

    /// Dials `inprocess@` addresses in `hub`.
    pub fn in_process(mut self, hub: InProcess) -> Self {
        self.in_process = Some(hub);
        self
    }

    /// Sets [`tls`](ClientOptions::tls).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets [`tcp_keepalive`](ClientOptions::tcp_keepalive).
    pub fn tcp_keepalive(mut self, period: Option<Duration>) -> Self {
        self.tcp_keepalive = period;
        self
    }

    /// Sets [`idle_timeout`](ClientOptions::idle_timeout).
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = Some(t);
        self
    }

    /// Sets [`rpc_path`](ClientOptions::rpc_path).
    pub fn rpc_path(mut self, path: impl Into<String>) -> Self {
        self.rpc_path = path.into();
        self
    }

    /// Sets [`kcp`](ClientOptions::kcp).
    #[cfg(feature = "kcp")]
    pub fn kcp(mut self, config: KcpConfig) -> Self {
        self.kcp = Some(config);
        self
    }

    /// Sets [`connector`](ClientOptions::connector).
    pub fn connector(mut self, connector: impl Connector) -> Self {
        self.connector = Some(SharedConnector(std::sync::Arc::new(connector)));
        self
    }
}

/// Per-call settings: metadata, deadline, and overrides of the client's codec choices.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Metadata sent with the request (rpcx's `share.ReqMetaDataKey`).
    pub metadata: Metadata,
    /// The call's deadline, counted from when it is sent; also sent to the server as
    /// `__ServerTimeout`. Default: the client's `default_timeout`.
    pub timeout: Option<Duration>,
    /// Serialize type for this call. Default: the client's.
    pub serialize_type: Option<SerializeType>,
    /// Compress type for this call. Default: the client's.
    pub compress_type: Option<CompressType>,
    /// Routing key for the XClient's consistent-hash selector: calls with the same key go to the
    /// same server, whatever their arguments. Not sent to the server; a plain [`Client`] ignores
    /// it, and an XClient whose selector does not hash rejects it. Default: none (the selector
    /// hashes service path, method and arguments).
    pub hash_key: Option<String>,
}

impl CallOptions {
    /// Default per-call options.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Adds a metadata pair.
    pub fn metadata(mut self, key: impl Into<ByteStr>, value: impl Into<ByteStr>) -> Self {
        self.metadata.insert(key, value);
        self
    }

    /// Sets the deadline.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Sets the serialize type.
    pub fn serialize_type(mut self, st: SerializeType) -> Self {
        self.serialize_type = Some(st);
        self
    }

    /// Sets the compress type.
    pub fn compress_type(mut self, ct: CompressType) -> Self {
        self.compress_type = Some(ct);
        self
    }

    /// Sets the consistent-hash routing key (see [`hash_key`](CallOptions::hash_key)).
    pub fn hash_key(mut self, key: impl Into<String>) -> Self {
        self.hash_key = Some(key.into());
        self
    }
}
