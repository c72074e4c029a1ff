//! # sextant-gateway
//!
//! An HTTP gateway for rpcx services, as [rpcx-gateway](https://github.com/rpcxio/rpcx-gateway):
//! programs in any language call rpcx services with plain HTTP requests, and the gateway turns
//! each request into a raw rpcx call to one of the service's servers, found through any sextant
//! discovery (a registry, a fixed list of servers), and the reply back into an HTTP response.
//!
//! - **In**: HTTP/1.1 and HTTP/2 (cleartext, both on one port). rpcx's *HTTP invoke* — the same
//!   `X-RPCX-*` headers a sextant or Go rpcx server answers on its service port (see
//!   [`sextant::http`]) — and JSON-RPC 2.0 (requests with the header `X-JSONRPC-2.0: true`).
//! - **Out**: for each service path, one [`XClient`](sextant::XClient), made on the service's
//!   first request from the *template* discovery's
//!   [`clone_for(service_path)`](sextant::ServiceDiscovery::clone_for) (rpcx's
//!   `Clone(servicePath)`), with the gateway's fail mode (default `Failover`, as rpcx-gateway),
//!   select mode (default `RoundRobin`) and [`XClientOptions`](sextant::XClientOptions). The
//!   request's payload is passed on as it is, with
//!   [`XClient::send_raw`](sextant::XClient::send_raw): the gateway never decodes it.
//!
//! ```no_run
//! use std::time::Duration;
//! use sextant::discovery::Peer2PeerDiscovery;
//! use sextant_gateway::{Gateway, GatewayMode};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Every service on one server; with a registry, pass its discovery (any service path: the
//! // gateway clones it for each service it is asked for).
//! let template = Peer2PeerDiscovery::new("tcp@127.0.0.1:8972", "")?;
//! let gateway = Gateway::builder(template)
//!     .mode(GatewayMode::Gateway)
//!     .listen("127.0.0.1:9981")
//!     .call_timeout(Duration::from_secs(10))
//!     .start()
//!     .await?;
//! println!("gateway at {}", gateway.url());
//! // ... until it is time to stop:
//! gateway.shutdown(Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```
//!
//! Then, from anywhere:
//!
//! ```text
//! curl -s http://127.0.0.1:9981/ -H 'X-RPCX-SerializeType: 1' \
//!      -H 'X-RPCX-ServicePath: Arith' -H 'X-RPCX-ServiceMethod: Mul' -d '{"A":6,"B":7}'
//! {"C":42}
//! curl -s http://127.0.0.1:9981/ -H 'X-JSONRPC-2.0: true' \
//!      -d '{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":6,"B":7},"id":1}'
//! {"jsonrpc":"2.0","result":{"C":42},"id":1}
//! ```
//!
//! The `sextant gateway` command (crate `sextant-cli`) runs one from the command line, with the
//! discovery given as a registry URL (`etcd://127.0.0.1:2379/rpcx`, `peer2peer://...`).
//!
//! ## Two deployment modes
//!
//! Both modes run the same code; [`GatewayMode`] decides where the gateway listens and how much
//! of the fleet it shows to its callers:
//!
//! | | [`GatewayMode::Gateway`] | [`GatewayMode::Agent`] |
//! |---|---|---|
//! | deployed | on its own machines, in front of the fleet, like an HTTP load balancer (stateless: run as many as needed) | next to the clients, one per host, like a service-mesh sidecar: the host's programs call `http://127.0.0.1:9981` |
//! | default listen address | `0.0.0.0:9981` (rpcx-gateway's `:9981`) | `127.0.0.1:9981` |
//! | non-loopback listen address | allowed | refused with [`GatewayError::NonLoopback`] unless [`allow_non_loopback`](GatewayBuilder::allow_non_loopback) is set |
//! | `__ServerAddress` in the reply's `X-RPCX-Meta` | removed: callers outside do not learn the servers' addresses | kept, as an rpcx client on the host would see it |
//! | text of a `502`/`503`/`504` | generic (`no server of "Arith" could be reached`), the details logged | the call's error as it is (server addresses included) |
//!
//! ## Answers
//!
//! | outcome | HTTP status | headers |
//! |---|---|---|
//! | the service replied | `200`, the reply payload as body | the `X-RPCX-*` of a server's HTTP invoke, the reply metadata in `X-RPCX-Meta` |
//! | the service returned an error (a handler error, an unknown method) | `500` | `X-RPCX-MessageStatusType: Error`, `X-RPCX-ErrorMessage: <the service's text>`, as a server answers |
//! | a missing or invalid `X-RPCX-*` header, an invalid service path | `400` | the error headers, the text as body |
//! | a body over [`max_body_size`](GatewayBuilder::max_body_size) | `413` | the error headers, the text as body; the connection is closed |
//! | no server of the service (none registered, or none reachable), a connect failure, [too many service paths](GatewayBuilder::max_services), the gateway shutting down | `503` | the error headers, the text as body |
//! | the connection to the server broke mid-call, the server sent something that is not rpcx | `502` | the error headers, the text as body |
//! | the [call timeout](GatewayBuilder::call_timeout) passed (counted from when the request was read, across failover attempts) | `504` | the error headers, the text as body |
//! | a method other than `GET`, `POST`, `PUT` | `405` | `Allow: GET, POST, PUT` |
//!
//! JSON-RPC requests are answered as a server answers them ([`sextant::http::serve_jsonrpc`]):
//! every failure above is a JSON-RPC error object (`-32603` with the same text) in a `200`.
//! `X-RPCX-Oneway` requests (and JSON-RPC notifications) are answered `200` with an empty body
//! as soon as the request is queued to a server, as rpcx-gateway does. A heartbeat
//! (`X-RPCX-Heartbeat`) without a service path is answered by the gateway itself (a health
//! check); with one it is sent to one of the service's servers.
//!
//! ## Bounds
//!
//! Everything an HTTP caller can make the gateway hold is bounded; every default is on its
//! [`GatewayBuilder`] setter: the body size (`413`), the time to send the request headers, the
//! header size, HTTP/2 streams per connection, connections, the call time (`504`), and the
//! number of service paths with an XClient. That last one matters: each XClient holds server
//! connections and, with a registry, a watch. So
//!
//! - a service path must be 1 to 128 characters from `A-Z a-z 0-9 _ - .`, else `400`;
//! - an XClient is kept only for a service that has servers: a path whose discovery lists none
//!   is answered `503` and nothing is kept for it (a request for it lists the registry again);
//! - at most [`max_services`](GatewayBuilder::max_services) XClients (default 1024); a request
//!   for one more service is refused with `503` and says so, until idle ones are dropped: an
//!   XClient unused for [`service_idle_timeout`](GatewayBuilder::service_idle_timeout) (default
//!   10 minutes) is closed, and made again on the service's next request.
//!
//! ## Shutdown
//!
//! [`Gateway::shutdown`] stops accepting connections, lets the requests in progress finish
//! within the grace period (HTTP/1 connections are closed once idle, HTTP/2 ones get a `GOAWAY`),
//! drops whatever still runs after it, then closes every XClient and every discovery it cloned.
//! The template discovery is the caller's and is left alone.
//!
//! ## Differences from rpcx-gateway
//!
//! - Failures have HTTP statuses (`400`, `413`, `500`, `502`, `503`, `504`); rpcx-gateway answers
//!   `200` with `X-RPCX-MessageStatusType: Error`. The error headers are the same.
//! - JSON-RPC 2.0 is answered too (rpcx-gateway only answers HTTP invoke).
//! - The bounds above; rpcx-gateway makes an XClient for any service path it is sent.
//! - The HTTP server is built in (hyper), rather than a choice of Go web frameworks.

#![warn(missing_docs)]

mod builder;
mod serve;
mod services;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use builder::GatewayBuilder;
use sextant::ServiceDiscovery;

use serve::Shared;

/// Where and for whom a gateway runs (rpcx-gateway's two deployment models); see the
/// [crate documentation](crate#two-deployment-modes) for what differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GatewayMode {
    /// A standalone gateway in front of the fleet, reached by remote callers. Listens on
    /// `0.0.0.0:9981` unless told otherwise. The default.
    #[default]
    Gateway,
    /// A sidecar next to the clients of one host. Listens on `127.0.0.1:9981` unless told
    /// otherwise, and refuses a non-loopback address unless
    /// [`allow_non_loopback`](GatewayBuilder::allow_non_loopback) is set.
    Agent,
}

impl GatewayMode {
    /// `"gateway"` or `"agent"`.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayMode::Gateway => "gateway",
            GatewayMode::Agent => "agent",
        }
    }

    /// The address listened on when none is given: `0.0.0.0:9981` or `127.0.0.1:9981`.
    pub fn default_listen(self) -> &'static str {
        match self {
            GatewayMode::Gateway => "0.0.0.0:9981",
            GatewayMode::Agent => "127.0.0.1:9981",
        }
    }
}

impl fmt::Display for GatewayMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a gateway could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// A setting is invalid (a zero bound, a select mode the gateway cannot set up).
    #[error("invalid gateway configuration: {0}")]
    Config(String),
    /// The listen address could not be resolved or bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An agent was asked to listen on an address other hosts can reach.
    #[error(
        "an agent listens on loopback only, and {address} is not a loopback address \
         (listen on 127.0.0.1 or [::1], or allow it explicitly with allow_non_loopback / \
         --allow-non-loopback)"
    )]
    NonLoopback {
        /// The address asked for.
        address: String,
    },
    /// The shutdown grace period ran out: the requests still running then were dropped.
    #[error(
        "shutdown grace period of {grace:?} ran out: requests still running on {connections} \
         connections were dropped"
    )]
    ShutdownTimeout {
        /// The grace period given.
        grace: Duration,
        /// Connections still open when it ran out.
        connections: usize,
    },
}

/// A running gateway. Cheap to clone: every clone is a handle to the same gateway.
///
/// Made by [`GatewayBuilder::start`] (see [`Gateway::builder`]); it serves until
/// [`shutdown`](Gateway::shutdown) is called. Dropping the handles does not stop it.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("mode", &self.shared.config.mode)
            .field("local_addr", &self.shared.local_addr)
            .field("services", &self.shared.services.len())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

impl Gateway {
    /// A builder for a gateway whose XClients are made from `template`: the XClient of service
    /// path `p` uses `template.clone_for(p)` (rpcx's `Clone(servicePath)`). Any discovery
    /// implementing [`ServiceDiscovery::clone_for`] will do: a registry discovery (of any
    /// service; only its store, base path and options are used) or a fixed list of servers
    /// that serve every service.
    pub fn builder(template: impl ServiceDiscovery) -> GatewayBuilder {
        GatewayBuilder::new(Arc::new(template))
    }

    /// A builder from a shared template discovery (see [`builder`](Gateway::builder)).
    pub fn builder_shared(template: Arc<dyn ServiceDiscovery>) -> GatewayBuilder {
        GatewayBuilder::new(template)
    }

    /// The mode it runs in.
    pub fn mode(&self) -> GatewayMode {
        self.shared.config.mode
    }

    /// The address it listens on (with the port picked when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// `http://{local_addr}`; for an unspecified address (`0.0.0.0`, `[::]`) the loopback
    /// address of the same family, so that the URL can be used on this host.
    pub fn url(&self) -> String {
        let mut a = self.shared.local_addr;
        if a.ip().is_unspecified() {
            a.set_ip(match a {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{a}")
    }

    /// The service paths that have an XClient now, sorted.
    pub fn services(&self) -> Vec<String> {
        self.shared.services.paths()
    }

    /// Whether [`shutdown`](Gateway::shutdown) has started.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }

    /// Waits until the gateway has stopped (after [`shutdown`](Gateway::shutdown), called from
    /// anywhere, has finished).
    pub async fn stopped(&self) {
        self.shared.stopped.cancelled().await
    }

    /// Shuts down gracefully: stops accepting connections, lets the requests in progress finish
    /// within `grace`, drops those still running after it, then closes every XClient and the
    /// discoveries cloned for them. Calling it again (or concurrently) waits for the first call
    /// to finish and returns `Ok`.
    ///
    /// Fails with [`GatewayError::ShutdownTimeout`] when the grace period ran out (the gateway
    /// is stopped all the same).
    pub async fn shutdown(&self, grace: Duration) -> Result<(), GatewayError> {
        serve::shutdown(&self.shared, grace).await
    }
}
