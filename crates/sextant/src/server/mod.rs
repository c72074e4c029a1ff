//! The rpcx server: register services, serve them on TCP or unix sockets, shut down gracefully.
//!
//! ```no_run
//! use sextant::{Context, Server, ServiceError};
//! # #[derive(serde::Deserialize)] struct Args { a: i64, b: i64 }
//! # #[derive(serde::Serialize, Default)] struct Reply { c: i64 }
//!
//! # async fn run() -> sextant::Result<()> {
//! let server = Server::new();
//! // rpcx's RegisterFunctionName: a plain async function under a service path.
//! server.register_fn("Arith", "Mul", "", |_cx: Context, args: Args| async move {
//!     Ok::<_, ServiceError>(Reply { c: args.a * args.b })
//! })?;
//! server.serve("tcp@127.0.0.1:8972").await
//! # }
//! ```
//!
//! ## Order of work for each request
//!
//! 1. The frame is read and checked against [`Limits`] (too large,
//!    malformed: the connection is closed).
//! 2. Heartbeats are answered at once; no auth, no handler.
//! 3. The auth function, if any, checks `__AUTH`; on failure an error is sent and the connection
//!    closed, as rpcx does.
//! 4. A concurrency permit is taken (the reader waits for one when the connection is at
//!    [`ServerOptions::max_concurrent_requests`]).
//! 5. In its own task: route lookup, decompression, argument decoding, the handler (under the
//!    `__ServerTimeout` deadline, with panics caught), reply encoding, compression.
//! 6. The response frame is queued to the connection's writer, which batches.

mod conn;
mod plugin;
mod router;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use sextant_protocol::codec::{Codec, Codecs};
use sextant_protocol::{Decode, Encode, Limits, Message};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::transport::{Address, Listener};
pub use plugin::{ServerPlugin, ServerStats};
pub use router::Method;
use router::{Env, Router, ServiceEntry};

/// Server settings. Every field states its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Once the first byte of a request has arrived, the whole request must arrive within this
    /// time or the connection is closed (protects against slow senders holding buffers).
    /// Default: `None` (no limit), as rpcx.
    pub read_timeout: Option<Duration>,
    /// A write of responses that takes longer than this closes the connection.
    /// Default: `None`, as rpcx.
    pub write_timeout: Option<Duration>,
    /// A connection with no request and no call in flight for this long is closed.
    /// Default: `None` (connections live until the client closes them).
    pub idle_timeout: Option<Duration>,
    /// Calls that may run at once on one connection; past that the server stops reading from
    /// the connection until one finishes. Default: 1024.
    pub max_concurrent_requests: usize,
    /// Message and decompressed-payload size limits. Default: 16 MiB each.
    pub limits: Limits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            read_timeout: None,
            write_timeout: None,
            idle_timeout: None,
            max_concurrent_requests: 1024,
            limits: Limits::default(),
        }
    }
}

/// A service made of methods, usually generated from an impl block by
/// [`#[sextant::service]`](crate::service).
pub trait Service: Send + Sync + 'static {
    /// The name the service is registered under by [`Server::register`]: the type name unless the
    /// macro was given `name = "..."`.
    fn service_name(&self) -> &'static str;
    /// The service's methods, each bound to this instance.
    fn methods(self: Arc<Self>) -> Vec<Method>;
}

type AuthFn =
    dyn Fn(&Message, &str) -> BoxFuture<'static, std::result::Result<(), String>> + Send + Sync;
type ShutdownHook = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

pub(crate) struct ServerInner {
    router: ArcSwap<Router>,
    register_lock: Mutex<()>,
    env: Arc<Env>,
    options: ServerOptions,
    auth: Option<Box<AuthFn>>,
    /// Fired when shutdown starts: stop accepting and reading.
    shutdown: CancellationToken,
    /// Fired when the grace period is over: drop calls still running.
    force: CancellationToken,
    tracker: TaskTracker,
    on_shutdown: Mutex<Vec<ShutdownHook>>,
    addresses: Mutex<Vec<Address>>,
    plugins: ArcSwap<Vec<Arc<dyn ServerPlugin>>>,
    pub(crate) connections: AtomicUsize,
    pub(crate) total_connections: AtomicU64,
    pub(crate) calls: AtomicU64,
}

impl ServerInner {
    pub(crate) fn plugins(&self) -> arc_swap::Guard<Arc<Vec<Arc<dyn ServerPlugin>>>> {
        self.plugins.load()
    }
}

/// An rpcx server. Cheap to clone: clones share the same services and listeners.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("services", &self.service_names())
            .field("addresses", &self.addresses())
            .finish()
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

/// Builds a [`Server`] with options, codecs and an auth function.
#[derive(Default)]
pub struct ServerBuilder {
    options: ServerOptions,
    codecs: Codecs,
    auth: Option<Box<AuthFn>>,
    plugins: Vec<Arc<dyn ServerPlugin>>,
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

    /// Sets [`ServerOptions::max_concurrent_requests`].
    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.options.max_concurrent_requests = n.max(1);
        self
    }

    /// Sets the size limits.
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

    /// Builds the server.
    pub fn build(self) -> Server {
        Server {
            inner: Arc::new(ServerInner {
                router: ArcSwap::from_pointee(Router::default()),
                register_lock: Mutex::new(()),
                env: Arc::new(Env {
                    codecs: self.codecs,
                }),
                options: self.options,
                auth: self.auth,
                shutdown: CancellationToken::new(),
                force: CancellationToken::new(),
                tracker: TaskTracker::new(),
                on_shutdown: Mutex::new(Vec::new()),
                addresses: Mutex::new(Vec::new()),
                plugins: ArcSwap::from_pointee(self.plugins),
                connections: AtomicUsize::new(0),
                total_connections: AtomicU64::new(0),
                calls: AtomicU64::new(0),
            }),
        }
    }
}

/// Which methods of a service to register, under which name, with which metadata.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RegisterOptions {
    /// The service path; default: the service's own name.
    pub name: Option<String>,
    /// rpcx's metadata string, e.g. `weight=10&group=test`; default empty.
    pub metadata: String,
    /// Only these methods (wire names); default: all of them.
    pub methods: Option<Vec<String>>,
}

impl RegisterOptions {
    /// Registers under `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the metadata string.
    pub fn metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// Registers only these methods.
    pub fn methods<I: IntoIterator<Item = S>, S: Into<String>>(mut self, methods: I) -> Self {
        self.methods = Some(methods.into_iter().map(Into::into).collect());
        self
    }
}

impl Server {
    /// A server with default options.
    pub fn new() -> Server {
        Server::builder().build()
    }

    /// A builder for options, codecs and auth.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The options in force.
    pub fn options(&self) -> &ServerOptions {
        &self.inner.options
    }

    fn update_router(&self, f: impl FnOnce(&mut Router) -> Result<()>) -> Result<()> {
        let _guard = self
            .inner
            .register_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut router = Router::clone(&self.inner.router.load());
        f(&mut router)?;
        self.inner.router.store(Arc::new(router));
        Ok(())
    }

    /// Registers every method of `service` under its own name (rpcx's `Register`).
    pub fn register<S: Service>(&self, service: S) -> Result<()> {
        self.register_with(service, RegisterOptions::default())
    }

    /// Registers `service` under `name` with rpcx's metadata string (rpcx's `RegisterName`).
    pub fn register_name<S: Service>(&self, name: &str, service: S, metadata: &str) -> Result<()> {
        self.register_with(
            service,
            RegisterOptions::default().name(name).metadata(metadata),
        )
    }

    /// Registers `service` with explicit options: a name, metadata, a subset of methods.
    pub fn register_with<S: Service>(&self, service: S, options: RegisterOptions) -> Result<()> {
        let service = Arc::new(service);
        let name = options
            .name
            .unwrap_or_else(|| service.service_name().to_string());
        check_name(&name)?;
        let mut methods = service.methods();
        if let Some(only) = &options.methods {
            for m in only {
                if !methods.iter().any(|x| x.name() == m) {
                    return Err(Error::Config(format!("service {name} has no method {m}")));
                }
            }
            methods.retain(|m| only.iter().any(|o| o == m.name()));
        }
        if methods.is_empty() {
            return Err(Error::Config(format!(
                "service {name} has no methods to register"
            )));
        }
        let metadata = options.metadata;
        let entry = ServiceEntry {
            metadata: metadata.clone(),
            methods: methods
                .into_iter()
                .map(|m| (m.name().to_string(), m.handler().clone()))
                .collect(),
        };
        self.update_router(|r| {
            r.services.insert(name.clone(), entry);
            Ok(())
        })?;
        self.notify_register(&name, &metadata);
        Ok(())
    }

    fn notify_register(&self, service_path: &str, metadata: &str) {
        for p in self.inner.plugins().iter() {
            p.on_register(self, service_path, metadata);
        }
    }

    /// Registers one function as `service_path.method` (rpcx's `RegisterFunctionName`). Several
    /// functions can share a service path; `metadata` replaces the service's metadata string
    /// when not empty.
    pub fn register_fn<F, Fut, A, R, E>(
        &self,
        service_path: &str,
        method: &str,
        metadata: &str,
        f: F,
    ) -> Result<()>
    where
        F: Fn(Context, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
        A: Decode + Send + 'static,
        R: Encode + Default + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        check_name(service_path)?;
        check_name(method)?;
        let m = Method::new(method, f);
        let mut service_metadata = String::new();
        self.update_router(|r| {
            let entry = r.services.entry(service_path.to_string()).or_default();
            if !metadata.is_empty() {
                entry.metadata = metadata.to_string();
            }
            entry
                .methods
                .insert(method.to_string(), m.handler().clone());
            service_metadata = entry.metadata.clone();
            Ok(())
        })?;
        self.notify_register(service_path, &service_metadata);
        Ok(())
    }

    /// Removes a service. Calls already running finish; new calls get `can't find service`.
    pub fn unregister(&self, service_path: &str) -> Result<()> {
        self.update_router(|r| match r.services.remove(service_path) {
            Some(_) => Ok(()),
            None => Err(Error::Config(format!(
                "service {service_path} is not registered"
            ))),
        })?;
        for p in self.inner.plugins().iter() {
            p.on_unregister(self, service_path);
        }
        Ok(())
    }

    /// Adds a plugin to a running server. It is told about the services already registered and
    /// the addresses already listening, as if it had been there from the start.
    pub fn add_plugin(&self, plugin: impl ServerPlugin) {
        let plugin: Arc<dyn ServerPlugin> = Arc::new(plugin);
        self.inner.plugins.rcu(|cur| {
            let mut v = Vec::clone(cur);
            v.push(plugin.clone());
            v
        });
        for name in self.service_names() {
            let meta = self.service_metadata(&name).unwrap_or_default();
            plugin.on_register(self, &name, &meta);
        }
        for a in self.addresses() {
            plugin.on_listen(self, &a);
        }
    }

    /// Connection and call counters, for metrics and registry rate figures.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            connections: self.inner.connections.load(Ordering::Relaxed),
            total_connections: self.inner.total_connections.load(Ordering::Relaxed),
            calls: self.inner.calls.load(Ordering::Relaxed),
        }
    }

    /// The registered service paths, sorted.
    pub fn service_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.inner.router.load().services.keys().cloned().collect();
        v.sort();
        v
    }

    /// The metadata string a service was registered with.
    pub fn service_metadata(&self, service_path: &str) -> Option<String> {
        self.inner
            .router
            .load()
            .services
            .get(service_path)
            .map(|s| s.metadata.clone())
    }

    /// The wire names of a service's methods, sorted.
    pub fn method_names(&self, service_path: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .router
            .load()
            .services
            .get(service_path)
            .map(|s| s.methods.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The addresses this server listens on.
    pub fn addresses(&self) -> Vec<Address> {
        self.inner
            .addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Binds `address` (`tcp@host:port`, `unix@/path`, or `host:port`) and serves in a background
    /// task. Returns the bound address, with the real port when port 0 was asked for.
    pub async fn start<A>(&self, address: A) -> Result<Address>
    where
        A: TryInto<Address, Error = Error>,
    {
        let listener = self.bind(address).await?;
        let addr = listener.local_addr().map_err(Error::io)?;
        let inner = self.inner.clone();
        self.inner.tracker.spawn(accept_loop(inner, listener));
        for p in self.inner.plugins().iter() {
            p.on_listen(self, &addr);
        }
        Ok(addr)
    }

    /// Serves on a listener that is already bound, e.g. an in-process name from
    /// [`InProcess::listen`](crate::transport::InProcess::listen), in a background task. Returns
    /// the listener's address.
    pub async fn start_listener(&self, listener: Listener) -> Result<Address> {
        if self.inner.shutdown.is_cancelled() {
            return Err(Error::Closed);
        }
        let addr = listener.local_addr().map_err(Error::io)?;
        self.inner
            .addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(addr.clone());
        self.inner
            .tracker
            .spawn(accept_loop(self.inner.clone(), listener));
        for p in self.inner.plugins().iter() {
            p.on_listen(self, &addr);
        }
        Ok(addr)
    }

    /// Binds `address` and serves until [`shutdown`](Server::shutdown) is called (rpcx's `Serve`).
    pub async fn serve<A>(&self, address: A) -> Result<()>
    where
        A: TryInto<Address, Error = Error>,
    {
        let listener = self.bind(address).await?;
        let addr = listener.local_addr().map_err(Error::io)?;
        // The socket is bound and listening: connections are queued from here on, so it is
        // safe to tell registries before the accept loop starts.
        for p in self.inner.plugins().iter() {
            p.on_listen(self, &addr);
        }
        accept_loop(self.inner.clone(), listener).await;
        // Wait for the shutdown to finish draining, so `serve` returns when the server is done.
        self.inner.tracker.wait().await;
        Ok(())
    }

    async fn bind<A>(&self, address: A) -> Result<Listener>
    where
        A: TryInto<Address, Error = Error>,
    {
        if self.inner.shutdown.is_cancelled() {
            return Err(Error::Closed);
        }
        let address = address.try_into()?;
        let listener = Listener::bind(&address).await?;
        let local = listener.local_addr().map_err(Error::io)?;
        tracing::info!(address = %local, "sextant server listening");
        self.inner
            .addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(local);
        Ok(listener)
    }

    /// Adds a function to run when shutdown starts (rpcx's `RegisterOnShutdown`), e.g. to remove
    /// the server from a registry before connections are drained.
    pub fn on_shutdown<F, Fut>(&self, f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.inner
            .on_shutdown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(move || Box::pin(f())));
    }

    /// Whether shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Shuts down gracefully: runs the on-shutdown hooks, stops accepting connections and reading
    /// requests, and lets calls in flight finish and their responses be written, for at most
    /// `grace`. Calls still running after `grace` are dropped and their connections closed; then
    /// the result is `Err(Error::DeadlineExceeded)`.
    pub async fn shutdown(&self, grace: Duration) -> Result<()> {
        let hooks = std::mem::take(
            &mut *self
                .inner
                .on_shutdown
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for h in hooks {
            h().await;
        }
        let plugins = self.inner.plugins().clone();
        for p in plugins.iter() {
            p.on_shutdown(self).await;
        }
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        let graceful = tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_ok();
        if graceful {
            return Ok(());
        }
        tracing::warn!(
            ?grace,
            "shutdown grace period over: dropping calls still running"
        );
        self.inner.force.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tracker.wait()).await;
        Err(Error::DeadlineExceeded)
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Config(
            "service and method names must not be empty".into(),
        ));
    }
    Ok(())
}

async fn accept_loop(inner: Arc<ServerInner>, listener: Listener) {
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = inner.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                tracing::debug!(%peer, "accepted connection");
                inner
                    .tracker
                    .spawn(conn::serve_conn(inner.clone(), stream, peer));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off as Go's net/http and rpcx do.
                backoff = if backoff.is_zero() {
                    Duration::from_millis(5)
                } else {
                    (backoff * 2).min(Duration::from_secs(1))
                };
                tracing::error!(error = %e, retry_in = ?backoff, "accept error");
                tokio::select! {
                    _ = inner.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    if let Ok(addr) = listener.local_addr() {
        inner
            .addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|a| *a != addr);
    }
}
