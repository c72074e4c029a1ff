//! [`XClientOptions`] (rpcx's `client.Option`) and [`FailMode`].

use std::fmt;
use std::time::Duration;

use sextant_protocol::codec::Codecs;
use sextant_protocol::{CompressType, Limits, SerializeType};

use crate::breaker::{Breaker, GenBreaker};
use crate::client::ClientOptions;
use crate::transport::InProcess;

/// What a call does when its server fails (rpcx's `FailMode`). Only for
/// [`XClient::call`](super::XClient::call) and `call_with`; `go` sends once, and fork, broadcast
/// and inform go to every server.
///
/// Whatever the mode, a service error (`__rpcx_error__`), an expired deadline and a cancelled
/// call are returned as they are, never retried ([`Error::is_retryable`](crate::Error::is_retryable)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FailMode {
    /// Try another server, up to `retries` more times (rpcx's default in its examples). Servers
    /// not yet tried for this call come first; once all were tried, any may be tried again.
    #[default]
    Failover,
    /// Return the first error.
    Failfast,
    /// Try the same server again, up to `retries` more times, reconnecting if the connection
    /// broke; when its dial failed, wait out the reconnect backoff first (bounded by the call's
    /// deadline).
    Failtry,
    /// Send to one server; if it has not answered after `backup_latency`, send the same call to a
    /// second server. The first answer wins and the other call is cancelled (dropped; the server
    /// may still run it). An error from one that is retryable does not end the call while the
    /// other may still answer, and makes the backup go out at once.
    Failbackup,
}

impl FailMode {
    /// The rpcx name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            FailMode::Failover => "Failover",
            FailMode::Failfast => "Failfast",
            FailMode::Failtry => "Failtry",
            FailMode::Failbackup => "Failbackup",
        }
    }
}

impl fmt::Display for FailMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// XClient settings, named after rpcx's `client.Option`. Every field states its default (rpcx's
/// `DefaultOption` where rpcx has the setting).
#[derive(Clone)]
#[non_exhaustive]
pub struct XClientOptions {
    /// Only servers whose metadata has this `group` are used; empty means any group
    /// (rpcx's `Group`). Default: empty.
    pub group: String,
    /// Extra attempts after the first for `Failover` and `Failtry` (rpcx's `Retries`), so a call
    /// makes at most `retries + 1` attempts. Default: 3.
    pub retries: usize,
    /// How long dialling a server may take (rpcx's `ConnectTimeout`). Default: 1 s.
    pub connect_timeout: Duration,
    /// Deadline for calls that set none, counted from the start of the call across all its
    /// attempts. Default: none (rpcx calls use the context's deadline, if any).
    pub default_timeout: Option<Duration>,
    /// Deadline for fork, broadcast and inform calls that set none; rpcx gives these one minute.
    /// Default: 60 s.
    pub broadcast_timeout: Duration,
    /// How long `Failbackup` waits for the first server before asking a second
    /// (rpcx's `BackupLatency`). Default: 10 ms.
    pub backup_latency: Duration,
    /// Makes a circuit breaker for each server (rpcx's `GenBreaker`). Default: none, as in rpcx:
    /// no breakers.
    pub gen_breaker: Option<GenBreaker>,
    /// How arguments are serialized (rpcx's `SerializeType`). Default: msgpack.
    pub serialize_type: SerializeType,
    /// How arguments over 1024 bytes are compressed (rpcx's `CompressType`). Default: none.
    pub compress_type: CompressType,
    /// Send heartbeats on every connection and drop one whose heartbeat goes unanswered (rpcx's
    /// `Heartbeat`). Default: false.
    pub heartbeat: bool,
    /// Time between heartbeats (rpcx's `HeartbeatInterval`). Default: 10 s.
    pub heartbeat_interval: Duration,
    /// How long a heartbeat may go unanswered (rpcx's `MaxWaitForHeartbeat`). Default: 30 s.
    pub max_wait_for_heartbeat: Duration,
    /// Wait before redialling a server whose dial failed; doubles with each failure in a row, up
    /// to `max_reconnect_backoff`. Calls that pick the server meanwhile fail at once with the
    /// dial's error (and fail over). Default: 100 ms.
    pub reconnect_backoff: Duration,
    /// Upper bound of the redial wait. Default: 5 s.
    pub max_reconnect_backoff: Duration,
    /// The hub in which `inprocess@` servers are dialled. Default: none, meaning the
    /// process-wide hub [`InProcess::global`].
    pub in_process: Option<InProcess>,
    /// Size limits for replies. Default: 16 MiB each.
    pub limits: Limits,
    /// Codecs, for custom serialize types. Default: the built-in ones.
    pub codecs: Codecs,
}

impl Default for XClientOptions {
    fn default() -> Self {
        XClientOptions {
            group: String::new(),
            retries: 3,
            connect_timeout: Duration::from_secs(1),
            default_timeout: None,
            broadcast_timeout: Duration::from_secs(60),
            backup_latency: Duration::from_millis(10),
            gen_breaker: None,
            serialize_type: SerializeType::MSGPACK,
            compress_type: CompressType::NONE,
            heartbeat: false,
            heartbeat_interval: Duration::from_secs(10),
            max_wait_for_heartbeat: Duration::from_secs(30),
            reconnect_backoff: Duration::from_millis(100),
            max_reconnect_backoff: Duration::from_secs(5),
            in_process: None,
            limits: Limits::default(),
            codecs: Codecs::default(),
        }
    }
}

impl fmt::Debug for XClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XClientOptions")
            .field("group", &self.group)
            .field("retries", &self.retries)
            .field("connect_timeout", &self.connect_timeout)
            .field("default_timeout", &self.default_timeout)
            .field("broadcast_timeout", &self.broadcast_timeout)
            .field("backup_latency", &self.backup_latency)
            .field("gen_breaker", &self.gen_breaker.is_some())
            .field("serialize_type", &self.serialize_type)
            .field("compress_type", &self.compress_type)
            .field("heartbeat", &self.heartbeat)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("max_wait_for_heartbeat", &self.max_wait_for_heartbeat)
            .field("reconnect_backoff", &self.reconnect_backoff)
            .field("max_reconnect_backoff", &self.max_reconnect_backoff)
            .field("in_process", &self.in_process)
            .field("limits", &self.limits)
            .finish()
    }
}

impl XClientOptions {
    /// Sets [`group`](XClientOptions::group).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Sets [`retries`](XClientOptions::retries).
    pub fn retries(mut self, retries: usize) -> Self {
        self.retries = retries;
        self
    }

    /// Sets [`connect_timeout`](XClientOptions::connect_timeout).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets [`default_timeout`](XClientOptions::default_timeout).
    pub fn default_timeout(mut self, t: Duration) -> Self {
        self.default_timeout = Some(t);
        self
    }

    /// Sets [`broadcast_timeout`](XClientOptions::broadcast_timeout).
    pub fn broadcast_timeout(mut self, t: Duration) -> Self {
        self.broadcast_timeout = t;
        self
    }

    /// Sets [`backup_latency`](XClientOptions::backup_latency).
    pub fn backup_latency(mut self, t: Duration) -> Self {
        self.backup_latency = t;
        self
    }

    /// Gives every server a breaker made by `gen` (rpcx's `GenBreaker`), e.g.
    /// `|| ConsecutiveBreaker::new(5, Duration::from_secs(30))`.
    pub fn breaker<B, F>(mut self, gen: F) -> Self
    where
        B: Breaker,
        F: Fn() -> B + Send + Sync + 'static,
    {
        self.gen_breaker = Some(std::sync::Arc::new(move || Box::new(gen())));
        self
    }

    /// Sets [`serialize_type`](XClientOptions::serialize_type).
    pub fn serialize_type(mut self, st: SerializeType) -> Self {
        self.serialize_type = st;
        self
    }

    /// Sets [`compress_type`](XClientOptions::compress_type).
    pub fn compress_type(mut self, ct: CompressType) -> Self {
        self.compress_type = ct;
        self
    }

    /// Turns heartbeats on with this interval.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = true;
        self.heartbeat_interval = interval;
        self
    }

    /// Sets the redial backoff bounds.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_backoff = min;
        self.max_reconnect_backoff = max;
        self
    }

    /// Dials `inprocess@` servers in `hub`.
    pub fn in_process(mut self, hub: InProcess) -> Self {
        self.in_process = Some(hub);
        self
    }

    /// Sets the codecs.
    pub fn codecs(mut self, codecs: Codecs) -> Self {
        self.codecs = codecs;
        self
    }

    /// Sets the reply size limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The options each server connection is made with.
    pub(crate) fn client_options(&self) -> ClientOptions {
        let mut o = ClientOptions::default()
            .serialize_type(self.serialize_type)
            .compress_type(self.compress_type)
            .connect_timeout(self.connect_timeout)
            .max_wait_for_heartbeat(self.max_wait_for_heartbeat)
            .codecs(self.codecs.clone())
            .limits(self.limits);
        if self.heartbeat {
            o = o.heartbeat(self.heartbeat_interval);
        }
        o
    }
}
