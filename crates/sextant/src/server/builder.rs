//! [`ServerBuilder`]: options, codecs, auth and plugins, assembled into a [`Server`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sextant_protocol::codec::{Codec, Codecs};
use sextant_protocol::{Limits, Message};

use super::options::ServerOptions;
use super::plugin::ServerPlugin;
use super::{Server, ServerInner};
use crate::error::Result;

/// rpcx's `AuthFunc`, boxed: the request, its `__AUTH` token and the connection's peer in,
/// `Err(text)` to refuse.
pub(crate) type AuthFn = dyn Fn(&Message, &str, &AuthPeer<'_>) -> BoxFuture<'static, std::result::Result<(), String>>
    + Send
    + Sync;

/// Who sent a request, as the auth function of
/// [`ServerBuilder::auth_fn_with_peer`] sees it: the peer's address and, on TLS and QUIC
/// connections, what its handshake showed (the client certificate of mutual TLS, SNI, ALPN).
#[derive(Debug, Clone, Copy)]
pub struct AuthPeer<'a> {
    pub(crate) addr: &'a crate::transport::PeerAddr,
    pub(crate) identity: Option<&'a crate::transport::PeerIdentity>,
}

impl<'a> AuthPeer<'a> {
    /// The remote address.
    pub fn addr(&self) -> &'a crate::transport::PeerAddr {
        self.addr
    }

    /// The TLS or QUIC peer identity, if the connection had a handshake that showed one.
    pub fn identity(&self) -> Option<&'a crate::transport::PeerIdentity> {
        self.identity
    }
}

/// Builds a [`Server`] with options, codecs, an auth function and plugins.
///
/// ```
/// use std::time::Duration;
/// use sextant::Server;
///
/// let server = Server::builder()
///     .read_timeout(Duration::from_secs(5))
///     .idle_timeout(Duration::from_secs(300))
///     .max_concurrent_requests(256)
///     .auth_fn(|_request, token| {
///         let ok = token == "secret";
///         async move { if ok { Ok(()) } else { Err("bad token".to_string()) } }
///     })
///     .build();
/// # drop(server);
/// ```
#[derive(Default)]
pub struct ServerBuilder {
    options: ServerOptions,
    codecs: Codecs,
    auth: Option<Box<AuthFn>>,
    plugins: Vec<Arc<dyn ServerPlugin>>,
    #[cfg(feature = "tower")]
    layers: Vec<Box<super::layer::WrapHandler>>,
    #[cfg(feature = "http")]
    routes: Vec<super::http::Route>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("options", &self.options)
            .field("codecs", &self.codecs)
            .field("auth", &self.auth.is_some())
            .field("plugins", &self.plugins.len())
            .finish()
    }
}

impl ServerBuilder {
    /// Serves TLS (see [`ServerOptions::tls`]).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::transport::ServerTlsConfig) -> Self {
        self.options.tls = Some(tls);
        self
    }

    /// Sets [`ServerOptions::handshake_timeout`].
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.options.handshake_timeout = t;
        self
    }

    /// Sets [`ServerOptions::max_plugin_wait`].
    pub fn max_plugin_wait(mut self, t: Duration) -> Self {
        self.options.max_plugin_wait = t;
        self
    }

    /// Sets [`ServerOptions::tcp_keepalive`] (rpcx's `WithTCPKeepAlivePeriod`).
    pub fn tcp_keepalive(mut self, period: Option<Duration>) -> Self {
        self.options.tcp_keepalive = period;
        self
    }

    /// Sets [`ServerOptions::kcp`] (rpcx's `WithBlockCrypt`).
    #[cfg(feature = "kcp")]
    pub fn kcp(mut self, config: crate::transport::KcpConfig) -> Self {
        self.options.kcp = Some(config);
        self
    }

    /// Replaces all options.
    pub fn options(mut self, options: ServerOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets [`ServerOptions::read_timeout`].
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.options.read_timeout = Some(t);
        self
    }

    /// Sets [`ServerOptions::write_timeout`].
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.options.write_timeout = Some(t);
        self
    }

    /// Sets [`ServerOptions::idle_timeout`].
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.options.idle_timeout = Some(t);
        self
    }

    /// Sets [`ServerOptions::push_queue_capacity`] (at least 1).
    pub fn push_queue_capacity(mut self, n: usize) -> Self {
        self.options.push_queue_capacity = n.max(1);
        self
    }

    /// Sets [`ServerOptions::max_concurrent_requests`] (at least 1).
    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.options.max_concurrent_requests = n.max(1);
        self
    }

    /// Sets [`ServerOptions::limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.options.limits = limits;
        self
    }

    /// Registers a custom codec for serialize type `id` (5 to 15) on this server only.
    pub fn codec(mut self, id: u8, codec: impl Codec) -> Result<Self> {
        self.codecs.register(id, codec)?;
        Ok(self)
    }

    /// Sets rpcx's `AuthFunc`: called with the request and its `__AUTH` token before every
    /// non-heartbeat request. An `Err(text)` is sent to the client as the error and the
    /// connection is closed.
    ///
    /// The function returns a future so the check may be asynchronous; what it needs from the
    /// request must be copied out before the `async` block.
    pub fn auth_fn<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(&Message, &str) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        self.auth = Some(Box::new(move |m, t, _| Box::pin(f(m, t))));
        self
    }

    /// Like [`auth_fn`](Self::auth_fn), with the peer the request came from: its address and,
    /// over TLS or QUIC, its certificate identity ([`AuthPeer::identity`]), so that mutual TLS
    /// clients can be authorised by certificate.
    ///
    /// ```
    /// let server = sextant::Server::builder()
    ///     .auth_fn_with_peer(|_request, _token, peer| {
    ///         let cn = peer.identity().and_then(|id| id.common_name()).map(str::to_string);
    ///         async move {
    ///             match cn.as_deref() {
    ///                 Some("billing") => Ok(()),
    ///                 _ => Err("client certificate not allowed".to_string()),
    ///             }
    ///         }
    ///     })
    ///     .build();
    /// # drop(server);
    /// ```
    pub fn auth_fn_with_peer<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(&Message, &str, &AuthPeer<'_>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        self.auth = Some(Box::new(move |m, t, p| Box::pin(f(m, t, p))));
        self
    }

    /// Adds a plugin; plugins run in the order they were added.
    pub fn plugin(mut self, plugin: impl ServerPlugin) -> Self {
        self.plugins.push(Arc::new(plugin));
        self
    }

    /// Wraps every method's handler in a [`tower::Layer`] (timeouts, concurrency limits, load
    /// shedding, tracing: any middleware over a [`Service`](tower::Service) of
    /// [`CallRequest`](super::CallRequest) to [`CallResponse`](super::CallResponse)). The first
    /// layer added is the outermost, as with tower's `ServiceBuilder`. Layers run inside the
    /// plugins' `pre_call` and `post_call`, under the call's deadline; an error from a layer is
    /// sent to the caller as the call's error text.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sextant::Server;
    ///
    /// let server = Server::builder()
    ///     .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(2)))
    ///     .build();
    /// # drop(server);
    /// ```
    #[cfg(feature = "tower")]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<super::HandlerService> + Send + Sync + 'static,
        L::Service: tower::Service<super::CallRequest, Response = super::CallResponse>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<super::CallRequest>>::Error: Into<tower::BoxError>,
        <L::Service as tower::Service<super::CallRequest>>::Future: Send + 'static,
    {
        // Applied innermost first, so the first layer added ends up outermost.
        self.layers.insert(0, super::layer::wrapper(layer));
        self
    }

    /// Turns off HTTP invoke on the service port (rpcx's `DisableHTTPGateway`).
    #[cfg(feature = "http")]
    pub fn disable_http_gateway(mut self) -> Self {
        self.options.disable_http_gateway = true;
        self
    }

    /// Turns off JSON-RPC 2.0 on the service port (rpcx's `DisableJSONRPC`).
    #[cfg(feature = "http")]
    pub fn disable_jsonrpc(mut self) -> Self {
        self.options.disable_jsonrpc = true;
        self
    }

    /// Sets [`ServerOptions::http`]: body and header limits, timeouts, CORS.
    #[cfg(feature = "http")]
    pub fn http_options(mut self, http: super::HttpOptions) -> Self {
        self.options.http = http;
        self
    }

    /// CORS for HTTP invoke and JSON-RPC (rpcx's `SetCORS`), e.g.
    /// [`cors_allow_all()`](crate::http::cors_allow_all).
    #[cfg(feature = "http")]
    pub fn cors(mut self, cors: crate::http::CorsLayer) -> Self {
        self.options.http.cors = Some(cors);
        self
    }

    /// Serves `handler` for HTTP requests to `path` on the service port (an exact path, or every
    /// path under it when it ends with `/`), ahead of HTTP invoke: the place for `/metrics`,
    /// health checks or a debug page. Routes are tried in the order they were added.
    ///
    /// ```
    /// use sextant::http::{text_response, HttpBody};
    /// use sextant::Server;
    ///
    /// let server = Server::builder()
    ///     .http_route("/healthz", |_req, _peer| async {
    ///         text_response(http::StatusCode::OK, "ok")
    ///     })
    ///     .build();
    /// # drop(server);
    /// ```
    #[cfg(feature = "http")]
    pub fn http_route(mut self, path: impl Into<String>, handler: impl super::HttpHandler) -> Self {
        self.routes
            .push(super::http::Route::new(path.into(), Arc::new(handler)));
        self
    }

    /// Builds the server.
    pub fn build(self) -> Server {
        Server {
            inner: Arc::new(ServerInner::new(
                self.options,
                self.codecs,
                self.auth,
                self.plugins,
                #[cfg(feature = "tower")]
                self.layers,
                #[cfg(feature = "http")]
                self.routes,
            )),
        }
    }
}
