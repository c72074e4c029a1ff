//! [`XClientBuilder`]: `XClient::builder("Arith").fail_mode(..).select_mode(..)
//! .discovery(..).build()`, with a setter for every option, as [`ServerBuilder`] has.
//!
//! [`ServerBuilder`]: crate::ServerBuilder

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use sextant_protocol::codec::{Codec, Codecs};
use sextant_protocol::{CompressType, Limits, SerializeType};
use tokio_util::sync::CancellationToken;

use super::pool::DialConfig;
use super::servers::{watch, Snapshot};
use super::{ClientPlugin, FailMode, Inner, SelectorSlot, XClient, XClientOptions};
use crate::breaker::Breaker;
use crate::client::{ClientOptions, PushOverflow, PushSink};
use crate::discovery::ServiceDiscovery;
use crate::error::{Error, Result};
use crate::selector::{ClosestSelector, SelectMode, Selector};
use crate::transport::InProcess;

/// Assembles an [`XClient`]. Every option of [`XClientOptions`] (and of the embedded
/// [`ClientOptions`]) has a setter; [`options`](XClientBuilder::options) replaces them all.
///
/// ```
/// use std::time::Duration;
/// use sextant::discovery::Peer2PeerDiscovery;
/// use sextant::{FailMode, SelectMode, SerializeType, XClient};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> sextant::Result<()> {
/// let xclient = XClient::builder("Arith")
///     .fail_mode(FailMode::Failtry)
///     .select_mode(SelectMode::RoundRobin)
///     .discovery(Peer2PeerDiscovery::new("tcp@127.0.0.1:8972", "")?)
///     .retries(5)
///     .connect_timeout(Duration::from_millis(500))
///     .default_timeout(Duration::from_secs(2))
///     .serialize_type(SerializeType::JSON)
///     .build()?;
/// assert_eq!(xclient.options().retries, 5);
/// assert_eq!(xclient.options().client.serialize_type, SerializeType::JSON);
/// # Ok(()) }
/// ```
pub struct XClientBuilder {
    service_path: String,
    fail_mode: FailMode,
    select_mode: SelectMode,
    discovery: Option<Arc<dyn ServiceDiscovery>>,
    options: XClientOptions,
    selector: Option<Arc<dyn Selector>>,
    plugins: Vec<Arc<dyn ClientPlugin>>,
    wrap_selector: Option<super::SelectorWrapper>,
    geo: Option<(f64, f64)>,
}

impl fmt::Debug for XClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XClientBuilder")
            .field("service_path", &self.service_path)
            .field("fail_mode", &self.fail_mode)
            .field("select_mode", &self.select_mode)
            .field("options", &self.options)
            .finish()
    }
}

impl XClientBuilder {
    pub(super) fn new(service_path: String) -> XClientBuilder {
        XClientBuilder {
            service_path,
            fail_mode: FailMode::default(),
            select_mode: SelectMode::default(),
            discovery: None,
            options: XClientOptions::default(),
            selector: None,
            plugins: Vec::new(),
            wrap_selector: None,
            geo: None,
        }
    }

    /// Sets the fail mode. Default: [`FailMode::Failover`].
    pub fn fail_mode(mut self, mode: FailMode) -> Self {
        self.fail_mode = mode;
        self
    }

    /// Sets the select mode. Default: [`SelectMode::Random`].
    pub fn select_mode(mut self, mode: SelectMode) -> Self {
        self.select_mode = mode;
        self
    }

    /// Sets where the servers come from. Required. Pass an `Arc` to keep a handle, e.g. to call
    /// [`MultipleServersDiscovery::update`](crate::discovery::MultipleServersDiscovery::update).
    pub fn discovery(mut self, discovery: impl ServiceDiscovery) -> Self {
        self.discovery = Some(Arc::new(discovery));
        self
    }

    /// Replaces all options.
    pub fn options(mut self, options: XClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Replaces the options of every server connection ([`XClientOptions::client`]).
    pub fn client_options(mut self, options: ClientOptions) -> Self {
        self.options.client = options;
        self
    }

    /// Uses `selector` (and [`SelectMode::SelectByUser`]).
    pub fn selector(mut self, selector: impl Selector) -> Self {
        self.selector = Some(Arc::new(selector));
        self.select_mode = SelectMode::SelectByUser;
        self
    }

    /// Selects the closest server to this position (and [`SelectMode::Closest`]); see
    /// [`XClient::config_geo_selector`].
    pub fn geo_position(mut self, latitude: f64, longitude: f64) -> Self {
        self.geo = Some((latitude, longitude));
        self.select_mode = SelectMode::Closest;
        self
    }

    /// Wraps the selector (rpcx's `SelectNodePlugin.WrapSelect`): `f` gets each selector the
    /// XClient installs (the builder's, and later [`set_selector`](XClient::set_selector) and
    /// [`config_geo_selector`](XClient::config_geo_selector) ones) and returns the one to use, e.g. a
    /// [`Selector`] that delegates to it and records or overrides its choice.
    pub fn wrap_selector(
        mut self,
        f: impl Fn(Arc<dyn Selector>) -> Arc<dyn Selector> + Send + Sync + 'static,
    ) -> Self {
        self.wrap_selector = Some(Arc::new(f));
        self
    }

    /// Adds a plugin; plugins run in the order they were added.
    pub fn plugin(mut self, plugin: impl ClientPlugin) -> Self {
        self.plugins.push(Arc::new(plugin));
        self
    }

    /// Sends `token` as `__AUTH` with every call (rpcx's `Auth`; sets
    /// [`ClientOptions::auth_token`]).
    pub fn auth(mut self, token: impl Into<String>) -> Self {
        self.options.client.auth_token = Some(token.into());
        self
    }

    /// Sets [`XClientOptions::group`].
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.options.group = group.into();
        self
    }

    /// Sets [`XClientOptions::retries`].
    pub fn retries(mut self, retries: usize) -> Self {
        self.options.retries = retries;
        self
    }

    /// Sets [`XClientOptions::broadcast_timeout`].
    pub fn broadcast_timeout(mut self, t: Duration) -> Self {
        self.options.broadcast_timeout = t;
        self
    }

    /// Sets [`XClientOptions::backup_latency`].
    pub fn backup_latency(mut self, t: Duration) -> Self {
        self.options.backup_latency = t;
        self
    }

    /// Gives every server a breaker made by `gen` (rpcx's `GenBreaker`).
    pub fn breaker<B, F>(mut self, gen: F) -> Self
    where
        B: Breaker,
        F: Fn() -> B + Send + Sync + 'static,
    {
        self.options = self.options.breaker(gen);
        self
    }

    /// Sets the redial backoff bounds ([`XClientOptions::reconnect_backoff`] and
    /// [`XClientOptions::max_reconnect_backoff`]).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.options.reconnect_backoff = min;
        self.options.max_reconnect_backoff = max;
        self
    }

    /// Sets [`ClientOptions::connect_timeout`].
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.options.client.connect_timeout = t;
        self
    }

    /// Sets [`ClientOptions::default_timeout`]: the deadline of calls that set none, across all
    /// their attempts.
    pub fn default_timeout(mut self, t: Duration) -> Self {
        self.options.client.default_timeout = Some(t);
        self
    }

    /// Sets [`ClientOptions::serialize_type`].
    pub fn serialize_type(mut self, st: SerializeType) -> Self {
        self.options.client.serialize_type = st;
        self
    }

    /// Sets [`ClientOptions::compress_type`].
    pub fn compress_type(mut self, ct: CompressType) -> Self {
        self.options.client.compress_type = ct;
        self
    }

    /// Turns heartbeats on every connection on, with this interval ([`ClientOptions::heartbeat`]).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.options.client.heartbeat = true;
        self.options.client.heartbeat_interval = interval;
        self
    }

    /// Makes a bidirectional XClient (rpcx's `NewBidirectionalXClient`): the messages every
    /// server pushes on its connection are merged into one queue of `capacity` messages, read
    /// through [`XClient::server_messages`] ([`ClientOptions::server_message_capacity`]).
    pub fn bidirectional(mut self, capacity: usize) -> Self {
        self.options.client.server_message_capacity = capacity;
        self
    }

    /// Sets what happens to a push when that queue is full
    /// ([`ClientOptions::server_message_overflow`], rpcx's `BidirectionalBlock`).
    pub fn server_message_overflow(mut self, overflow: PushOverflow) -> Self {
        self.options.client.server_message_overflow = overflow;
        self
    }

    /// Sets [`ClientOptions::max_wait_for_heartbeat`].
    pub fn max_wait_for_heartbeat(mut self, t: Duration) -> Self {
        self.options.client.max_wait_for_heartbeat = t;
        self
    }

    /// Sets [`ClientOptions::limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.options.client.limits = limits;
        self
    }

    /// Sets [`ClientOptions::codecs`].
    pub fn codecs(mut self, codecs: Codecs) -> Self {
        self.options.client.codecs = codecs;
        self
    }

    /// Registers a custom codec for serialize type `id` (5 to 15) on this XClient only.
    pub fn codec(mut self, id: u8, codec: impl Codec) -> Result<Self> {
        self.options.client.codecs.register(id, codec)?;
        Ok(self)
    }

    /// Dials `inprocess@` servers in `hub` ([`ClientOptions::in_process`]).
    pub fn in_process(mut self, hub: InProcess) -> Self {
        self.options.client.in_process = Some(hub);
        self
    }

    /// Dials TLS (and `wss@`, `quic@`) with this configuration
    /// ([`ClientOptions::tls`](crate::ClientOptions::tls)).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::transport::ClientTlsConfig) -> Self {
        self.options.client.tls = Some(tls);
        self
    }

    /// Sets [`ClientOptions::tcp_keepalive`](crate::ClientOptions::tcp_keepalive).
    pub fn tcp_keepalive(mut self, period: Option<Duration>) -> Self {
        self.options.client.tcp_keepalive = period;
        self
    }

    /// Sets [`ClientOptions::idle_timeout`](crate::ClientOptions::idle_timeout).
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.options.client.idle_timeout = Some(t);
        self
    }

    /// Sets [`ClientOptions::kcp`](crate::ClientOptions::kcp).
    #[cfg(feature = "kcp")]
    pub fn kcp(mut self, config: crate::transport::KcpConfig) -> Self {
        self.options.client.kcp = Some(config);
        self
    }

    /// Dials every server with `connector` ([`ClientOptions::connector`](crate::ClientOptions::connector)).
    pub fn connector(mut self, connector: impl crate::transport::Connector) -> Self {
        self.options.client = self.options.client.connector(connector);
        self
    }

    /// Builds the XClient. Fails when the service path is empty, no discovery was given, or it is
    /// not called inside a tokio runtime.
    pub fn build(self) -> Result<XClient> {
        if self.service_path.is_empty() {
            return Err(Error::Config(
                "XClient needs a service path, e.g. XClient::builder(\"Arith\")".into(),
            ));
        }
        let discovery = self.discovery.ok_or_else(|| {
            Error::Config(format!(
                "XClient for {} needs a discovery: call .discovery(Peer2PeerDiscovery::new(..)?) \
                 or another ServiceDiscovery",
                self.service_path
            ))
        })?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config(
                "an XClient must be built inside a tokio runtime (it watches discovery in a \
                 background task)"
                    .into(),
            )
        })?;
        let selector = match (self.select_mode, self.selector, self.geo) {
            (_, Some(s), _) => Some(s),
            (SelectMode::Closest, None, Some((lat, lon))) => {
                Some(Arc::new(ClosestSelector::new(lat, lon)) as Arc<dyn Selector>)
            }
            (mode, None, _) => mode.new_selector(),
        };
        let selector = match (&self.wrap_selector, selector) {
            (Some(w), Some(s)) => Some(w(s)),
            (_, s) => s,
        };
        let options = self.options;
        // The XClient sends its auth token itself (it can change at run time): connections are
        // made without one.
        let mut client_options = options.client.clone();
        let auth = client_options.auth_token.take();
        let stop = CancellationToken::new();
        let (push, server_messages) = if client_options.server_message_capacity > 0 {
            let (sink, messages) = PushSink::channel(
                client_options.server_message_capacity,
                client_options.server_message_overflow,
                Some(stop.clone()),
            );
            (Some(sink), Some(messages))
        } else {
            (None, None)
        };
        let config = Arc::new(DialConfig {
            push,
            client_options,
            reconnect_backoff: options.reconnect_backoff,
            max_reconnect_backoff: options.max_reconnect_backoff,
            gen_breaker: options.gen_breaker.clone(),
            plugins: ArcSwap::from_pointee(self.plugins),
        });
        let inner = Arc::new(Inner {
            service_path: self.service_path,
            wrap_selector: self.wrap_selector,
            fail_mode: self.fail_mode,
            options,
            config,
            selector: ArcSwap::from_pointee(SelectorSlot {
                mode: self.select_mode,
                selector,
            }),
            servers: ArcSwap::from_pointee(Snapshot::default()),
            auth: ArcSwapOption::new(auth.map(Arc::new)),
            update_lock: Mutex::new(()),
            stop,
            closed: AtomicBool::new(false),
            server_messages: Mutex::new(server_messages),
            discovery,
        });
        let mut rx = inner.discovery.watch_services();
        let first = rx.borrow_and_update().clone();
        inner.apply(&first);
        handle.spawn(watch(Arc::downgrade(&inner), rx, inner.stop.clone()));
        Ok(XClient { inner })
    }
}
