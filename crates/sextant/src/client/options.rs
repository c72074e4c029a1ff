//! [`ClientOptions`] (rpcx's `client.Option`, the per-connection part) and [`CallOptions`].

use std::time::Duration;

use sextant_protocol::codec::Codecs;
use sextant_protocol::{ByteStr, CompressType, Limits, Metadata, SerializeType};

#[cfg(doc)]
use super::Client;
use super::PushOverflow;
use crate::transport::InProcess;

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
