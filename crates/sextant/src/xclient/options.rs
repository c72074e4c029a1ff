//! [`XClientOptions`] (rpcx's `client.Option`) and [`FailMode`].

use std::fmt;
use std::time::Duration;

use crate::breaker::{Breaker, GenBreaker};
use crate::client::ClientOptions;

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
///
/// The settings of each server connection are a [`ClientOptions`], embedded as
/// [`client`](XClientOptions::client): codec, compression, connect timeout, heartbeat, limits,
/// auth token, the default call deadline. The fields here are what only an XClient has.
#[derive(Clone)]
#[non_exhaustive]
pub struct XClientOptions {
    /// What every server connection is made with, and the calls' codec, compression, auth token
    /// and default deadline. Its `default_timeout` counts from the start of an XClient call
    /// across all its attempts. Default: [`ClientOptions::default`] (rpcx's defaults: msgpack,
    /// no compression, 1 s connect timeout, no heartbeat).
    pub client: ClientOptions,
    /// Only servers whose metadata has this `group` are used; empty means any group
    /// (rpcx's `Group`). Default: empty.
    pub group: String,
    /// Extra attempts after the first for `Failover` and `Failtry` (rpcx's `Retries`), so a call
    /// makes at most `retries + 1` attempts. Default: 3.
    pub retries: usize,
    /// Deadline for fork, broadcast and inform calls that set none; rpcx gives these one minute.
    /// Default: 60 s.
    pub broadcast_timeout: Duration,
    /// How long `Failbackup` waits for the first server before asking a second
    /// (rpcx's `BackupLatency`). Default: 10 ms.
    pub backup_latency: Duration,
    /// Makes a circuit breaker for each server (rpcx's `GenBreaker`). Default: none, as in rpcx:
    /// no breakers.
    pub gen_breaker: Option<GenBreaker>,
    /// Wait before redialling a server whose dial failed; doubles with each failure in a row, up
    /// to `max_reconnect_backoff`, each wait shortened by up to 20% at random
    /// ([`Backoff`](crate::util::Backoff)). Calls that pick the server meanwhile fail at once with
    /// the dial's error (and fail over). Default: 100 ms.
    pub reconnect_backoff: Duration,
    /// Upper bound of the redial wait. Default: 5 s.
    pub max_reconnect_backoff: Duration,
}

impl Default for XClientOptions {
    fn default() -> Self {
        XClientOptions {
            client: ClientOptions::default(),
            group: String::new(),
            retries: 3,
            broadcast_timeout: Duration::from_secs(60),
            backup_latency: Duration::from_millis(10),
            gen_breaker: None,
            reconnect_backoff: Duration::from_millis(100),
            max_reconnect_backoff: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for XClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XClientOptions")
            .field("client", &self.client)
            .field("group", &self.group)
            .field("retries", &self.retries)
            .field("broadcast_timeout", &self.broadcast_timeout)
            .field("backup_latency", &self.backup_latency)
            .field("gen_breaker", &self.gen_breaker.is_some())
            .field("reconnect_backoff", &self.reconnect_backoff)
            .field("max_reconnect_backoff", &self.max_reconnect_backoff)
            .finish()
    }
}

impl XClientOptions {
    /// Sets [`client`](XClientOptions::client): the options of every server connection.
    pub fn client(mut self, client: ClientOptions) -> Self {
        self.client = client;
        self
    }

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

    /// Sets the redial backoff bounds ([`reconnect_backoff`](XClientOptions::reconnect_backoff)
    /// and [`max_reconnect_backoff`](XClientOptions::max_reconnect_backoff)).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_backoff = min;
        self.max_reconnect_backoff = max;
        self
    }
}
