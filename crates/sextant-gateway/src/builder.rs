//! [`GatewayBuilder`]: every setting of a gateway, with its default, and starting it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sextant::http::{CorsLayer, JsonRpcOptions};
use sextant::{FailMode, SelectMode, ServiceDiscovery, XClientOptions};
use tokio::net::TcpListener;

use crate::serve::{self, Config, HttpLimits};
use crate::{Gateway, GatewayError, GatewayMode};

/// Builds a [`Gateway`]: made by [`Gateway::builder`], started by [`start`](Self::start) or
/// [`start_on`](Self::start_on). Every setter states its default.
pub struct GatewayBuilder {
    template: Arc<dyn ServiceDiscovery>,
    listen: Option<String>,
    allow_non_loopback: bool,
    config: Config,
    http: HttpLimits,
}

impl fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("listen", &self.listen)
            .field("allow_non_loopback", &self.allow_non_loopback)
            .field("config", &self.config)
            .field("http", &self.http)
            .finish()
    }
}

impl GatewayBuilder {
    pub(crate) fn new(template: Arc<dyn ServiceDiscovery>) -> GatewayBuilder {
        GatewayBuilder {
            template,
            listen: None,
            allow_non_loopback: false,
            config: Config {
                mode: GatewayMode::Gateway,
                fail_mode: FailMode::Failover,
                select_mode: SelectMode::RoundRobin,
                xclient: XClientOptions::default(),
                call_timeout: Duration::from_secs(10),
                max_body_size: 16 * 1024 * 1024,
                body_read_timeout: Duration::from_secs(30),
                max_services: 1024,
                service_idle_timeout: Duration::from_secs(600),
                jsonrpc: JsonRpcOptions::default(),
                cors: None,
            },
            http: HttpLimits {
                header_read_timeout: Duration::from_secs(10),
                max_header_size: 64 * 1024,
                max_concurrent_streams: 256,
                max_connections: 10_000,
            },
        }
    }

    /// The deployment mode. Default: [`GatewayMode::Gateway`].
    pub fn mode(mut self, mode: GatewayMode) -> Self {
        self.config.mode = mode;
        self
    }

    /// The address to listen on, `host:port` (port 0 picks a free port, see
    /// [`Gateway::local_addr`]). Default: the mode's
    /// [`default_listen`](GatewayMode::default_listen), `0.0.0.0:9981` for a gateway and
    /// `127.0.0.1:9981` for an agent.
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.listen = Some(address.into());
        self
    }

    /// Lets an agent listen on an address that is not a loopback address. Default: `false` (an
    /// agent refuses with [`GatewayError::NonLoopback`]). A gateway may listen anywhere.
    pub fn allow_non_loopback(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }

    /// The XClients' fail mode. Default: [`FailMode::Failover`], as rpcx-gateway.
    pub fn fail_mode(mut self, mode: FailMode) -> Self {
        self.config.fail_mode = mode;
        self
    }

    /// The XClients' select mode. Default: [`SelectMode::RoundRobin`], as rpcx-gateway.
    /// [`SelectMode::Closest`] and [`SelectMode::SelectByUser`] need a position or a selector
    /// the gateway has no setting for, and are refused by [`start`](Self::start).
    pub fn select_mode(mut self, mode: SelectMode) -> Self {
        self.config.select_mode = mode;
        self
    }

    /// The XClients' options: retries, backup latency, breakers, group, and in
    /// [`client`](XClientOptions::client) the connection settings (connect timeout, heartbeat,
    /// auth token, limits). Default: [`XClientOptions::default`]. The call deadline is
    /// [`call_timeout`](Self::call_timeout), not the client's `default_timeout`.
    pub fn xclient_options(mut self, options: XClientOptions) -> Self {
        self.config.xclient = options;
        self
    }

    /// The longest a call may take, from the moment its request was read (making the service's
    /// XClient and every failover attempt included); past it the caller gets `504` and the
    /// server is sent the deadline as `__ServerTimeout`. Default: 10 s.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.config.call_timeout = timeout;
        self
    }

    /// The largest request body read; a larger one is answered `413` and not read (a declared
    /// `Content-Length` over it is refused before reading). Default: 16 MiB (the rpcx message
    /// limit).
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.config.max_body_size = bytes;
        self
    }

    /// A request body must arrive within this time once its headers have, or the request is
    /// answered `408` and the connection closed (slow-body attacks). Default: 30 s.
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.body_read_timeout = timeout;
        self
    }

    /// The request line and headers must arrive within this time, or the connection is closed
    /// (slow-header attacks). Default: 10 s.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.http.header_read_timeout = timeout;
        self
    }

    /// The largest request head (HTTP/1) or header list (HTTP/2). Default: 64 KiB.
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.http.max_header_size = bytes;
        self
    }

    /// HTTP/2 streams one connection may have open at once. Default: 256.
    pub fn max_concurrent_streams(mut self, streams: u32) -> Self {
        self.http.max_concurrent_streams = streams;
        self
    }

    /// Connections served at once; when at the bound, new ones wait in the listen backlog until
    /// one closes. Default: 10,000.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.http.max_connections = connections;
        self
    }

    /// The most service paths with an XClient at once; a request for one more is answered
    /// `503` (`too many service paths`) until idle ones are dropped. Default: 1024.
    pub fn max_services(mut self, services: usize) -> Self {
        self.config.max_services = services;
        self
    }

    /// An XClient not used for this long is closed (with its discovery), making room for other
    /// services; the next request for its service makes a new one. Default: 10 minutes.
    pub fn service_idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.service_idle_timeout = timeout;
        self
    }

    /// The most requests in one JSON-RPC batch. Default: 100.
    pub fn jsonrpc_max_batch(mut self, requests: usize) -> Self {
        self.config.jsonrpc.max_batch = requests;
        self
    }

    /// CORS for every request (rpcx's `SetCORS`), e.g.
    /// [`cors_allow_all`](sextant::http::cors_allow_all). Default: none.
    pub fn cors(mut self, cors: CorsLayer) -> Self {
        self.config.cors = Some(cors);
        self
    }

    fn check(&self) -> Result<(), GatewayError> {
        let c = &self.config;
        let bad = |what: &str| Err(GatewayError::Config(what.to_string()));
        if c.call_timeout.is_zero() {
            return bad("call_timeout must be longer than zero");
        }
        if c.max_services == 0 {
            return bad("max_services must be at least 1");
        }
        if c.service_idle_timeout.is_zero() {
            return bad("service_idle_timeout must be longer than zero");
        }
        if c.max_body_size == 0 {
            return bad("max_body_size must be at least 1 byte");
        }
        if c.jsonrpc.max_batch == 0 {
            return bad("jsonrpc_max_batch must be at least 1");
        }
        if self.http.header_read_timeout.is_zero() {
            return bad("header_read_timeout must be longer than zero");
        }
        if self.http.max_concurrent_streams == 0 {
            return bad("max_concurrent_streams must be at least 1");
        }
        if self.http.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        if matches!(
            c.select_mode,
            SelectMode::Closest | SelectMode::SelectByUser
        ) {
            return Err(GatewayError::Config(format!(
                "select mode {} needs a position or a selector of its own, which the gateway \
                 cannot set up; use RoundRobin, Random, WeightedRoundRobin, WeightedICMP or \
                 ConsistentHash",
                c.select_mode.as_str()
            )));
        }
        Ok(())
    }

    /// Binds the [listen address](Self::listen) and starts serving. Must be called within a
    /// tokio runtime.
    ///
    /// Fails with [`GatewayError::Config`] for an invalid setting, [`GatewayError::Bind`] when
    /// the address cannot be resolved or bound, and, for an agent, with
    /// [`GatewayError::NonLoopback`] when it resolves to an address other hosts can reach.
    pub async fn start(self) -> Result<Gateway, GatewayError> {
        self.check()?;
        let address = self
            .listen
            .clone()
            .unwrap_or_else(|| self.config.mode.default_listen().to_string());
        let bind_err = |source| GatewayError::Bind {
            address: address.clone(),
            source,
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(address.as_str())
            .await
            .map_err(bind_err)?
            .collect();
        if addrs.is_empty() {
            return Err(bind_err(std::io::Error::other(
                "the name resolves to no address",
            )));
        }
        for a in &addrs {
            self.check_loopback(&address, a)?;
        }
        let listener = TcpListener::bind(&addrs[..]).await.map_err(bind_err)?;
        self.serve(listener).await
    }

    /// Starts serving on `listener`, bound by the caller. For an agent the listener's address
    /// must be a loopback address (unless [allowed](Self::allow_non_loopback)). Must be called
    /// within a tokio runtime.
    pub async fn start_on(self, listener: TcpListener) -> Result<Gateway, GatewayError> {
        self.check()?;
        let local = listener.local_addr().map_err(|source| GatewayError::Bind {
            address: "the listener given".into(),
            source,
        })?;
        self.check_loopback(&local.to_string(), &local)?;
        self.serve(listener).await
    }

    fn check_loopback(&self, address: &str, a: &SocketAddr) -> Result<(), GatewayError> {
        let agent = self.config.mode == GatewayMode::Agent;
        if agent && !self.allow_non_loopback && !a.ip().is_loopback() {
            return Err(GatewayError::NonLoopback {
                address: if address == a.to_string() {
                    address.to_string()
                } else {
                    format!("{address} ({a})")
                },
            });
        }
        Ok(())
    }

    async fn serve(self, listener: TcpListener) -> Result<Gateway, GatewayError> {
        let local = listener.local_addr().map_err(|source| GatewayError::Bind {
            address: "the listener".into(),
            source,
        })?;
        let shared = serve::start(self.template, self.config, self.http, listener, local);
        tracing::info!(
            mode = %shared.config.mode,
            address = %local,
            "sextant gateway listening"
        );
        Ok(Gateway { shared })
    }
}
