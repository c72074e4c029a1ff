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

/// rpcx's `AuthFunc`, boxed: the request and its `__AUTH` token in, `Err(text)` to refuse.
pub(crate) type AuthFn =
    dyn Fn(&Message, &str) -> BoxFuture<'static, std::result::Result<(), String>> + Send + Sync;

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
        self.auth = Some(Box::new(move |m, t| Box::pin(f(m, t))));
        self
    }

    /// Adds a plugin; plugins run in the order they were added.
    pub fn plugin(mut self, plugin: impl ServerPlugin) -> Self {
        self.plugins.push(Arc::new(plugin));
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
                #[cfg(feature = "http")]
                self.routes,
            )),
        }
    }
}
