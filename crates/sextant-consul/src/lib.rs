//! # sextant-consul
//!
//! A Consul registry for [sextant], over Consul's HTTP API (no Consul client library).
//! Two layouts, chosen with [`ConsulOptions::mode`]:
//!
//! ## [`ConsulMode::Kv`] (default): rpcx's layout
//!
//! rpcx's `ConsulRegisterPlugin` and `ConsulDiscovery` (over libkv's Consul store) keep servers in
//! Consul's **KV store**, and so does this mode, so Go rpcx and sextant share the registry:
//!
//! - key `{basePath}/{servicePath}/{network}@{host}:{port}` without the leading slash (libkv
//!   strips it), e.g. `rpcx_test/Arith/tcp@127.0.0.1:8972`; value: the metadata query string;
//! - TTL: the keys are acquired (`PUT /v1/kv/<key>?acquire=<session>`) by a session created with
//!   `Behavior: delete` and `TTL` = half the entry TTL (libkv's rule: Consul may take up to twice
//!   a session's TTL to invalidate it), at least Consul's minimum of 10 s; the session is renewed
//!   every update interval (`PUT /v1/session/renew/<id>`); when it is invalidated Consul deletes
//!   its keys; a lost session is replaced and the keys written again;
//! - discovery: `GET /v1/kv/<dir>/?recurse`, then blocking queries on the same URL with
//!   `index=<X-Consul-Index>&wait=<wait>`.
//!
//! ## [`ConsulMode::AgentService`]: Consul services with a TTL check
//!
//! Each server is an agent service, visible in Consul's catalog, UI and DNS:
//!
//! - `PUT /v1/agent/service/register` with `ID` = the rpcx key without its leading slash, `Name`
//!   = the service path, `Tags` = `[basePath]`, `Address`/`Port` from the server address, `Meta`
//!   = `{rpcx_address, rpcx_metadata, rpcx_base_path}`, and a TTL check (`TTL` = the entry TTL,
//!   `Status: passing`, `DeregisterCriticalServiceAfter` = [`ConsulOptions::deregister_after`]);
//!   every refresh registers again (new rates) and passes the check
//!   (`PUT /v1/agent/check/pass/service:<ID>`);
//! - discovery: `GET /v1/health/service/<service>?passing=true&tag=<basePath>`, then blocking
//!   queries: a server whose check went critical drops out at once.
//!
//! Go rpcx programs do not read this layout; Consul's `Meta` values are limited to 512 bytes.
//!
//! ```no_run
//! use sextant_consul::{ConsulDiscovery, ConsulOptions, ConsulRegisterPlugin, ConsulStore};
//! use sextant_registry::{DiscoveryOptions, RegistryOptions};
//! # async fn run(server: sextant::Server) -> Result<(), Box<dyn std::error::Error>> {
//! let store = ConsulStore::new("http://127.0.0.1:8500", ConsulOptions::default())?;
//! server.add_plugin(ConsulRegisterPlugin::start(store.clone(), RegistryOptions::default()).await?);
//! let discovery = ConsulDiscovery::start(store, "/rpcx_test", "Arith", DiscoveryOptions::default()).await?;
//! # Ok(()) }
//! ```

mod agent;
mod kv;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use sextant_registry::http::{escape_query, HttpClient, HttpResponse};
use sextant_registry::{
    ChangeWatch, DiscoveryStore, Listing, RegistryDiscovery, RegistryError, RegistryPlugin,
    RegistryStore, Result,
};
use tokio::sync::Mutex;

const ENGINE: &str = "consul";

/// rpcx's `ConsulRegisterPlugin`: the registry plugin on Consul.
pub type ConsulRegisterPlugin = RegistryPlugin<ConsulStore>;

/// rpcx's `ConsulDiscovery`: the discovery on Consul.
pub type ConsulDiscovery = RegistryDiscovery;

/// Where servers are kept in Consul (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConsulMode {
    /// rpcx's layout: KV entries held by a session with a TTL. Shared with Go rpcx.
    #[default]
    Kv,
    /// Agent services with a TTL check, read through the health API.
    AgentService,
}

/// Settings of a [`ConsulStore`]. Every field states its default.
#[derive(Clone)]
#[non_exhaustive]
pub struct ConsulOptions {
    /// The layout. Default: [`ConsulMode::Kv`], rpcx's.
    pub mode: ConsulMode,
    /// An ACL token, sent as `X-Consul-Token`. Default: `None`.
    pub token: Option<String>,
    /// The datacenter (`?dc=`). Default: `None` (the agent's).
    pub datacenter: Option<String>,
    /// How long one blocking query waits for a change (`wait=`). Default: 30 s.
    pub wait: Duration,
    /// Agent mode: how long a service whose check is critical stays registered before Consul
    /// removes it (`DeregisterCriticalServiceAfter`; Consul's minimum is one minute). Default:
    /// 1 min. It is already out of discoveries as soon as its check is critical.
    pub deregister_after: Duration,
}

impl fmt::Debug for ConsulOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulOptions")
            .field("mode", &self.mode)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("datacenter", &self.datacenter)
            .field("wait", &self.wait)
            .field("deregister_after", &self.deregister_after)
            .finish()
    }
}

impl Default for ConsulOptions {
    fn default() -> Self {
        ConsulOptions {
            mode: ConsulMode::Kv,
            token: None,
            datacenter: None,
            wait: Duration::from_secs(30),
            deregister_after: Duration::from_secs(60),
        }
    }
}

impl ConsulOptions {
    /// Sets [`mode`](Self::mode).
    pub fn mode(mut self, mode: ConsulMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`token`](Self::token).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sets [`datacenter`](Self::datacenter).
    pub fn datacenter(mut self, dc: impl Into<String>) -> Self {
        self.datacenter = Some(dc.into());
        self
    }

    /// Sets [`wait`](Self::wait).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait.max(Duration::from_millis(10));
        self
    }

    /// Sets [`deregister_after`](Self::deregister_after).
    pub fn deregister_after(mut self, after: Duration) -> Self {
        self.deregister_after = after;
        self
    }
}

pub(crate) struct Inner {
    pub(crate) http: HttpClient,
    pub(crate) options: ConsulOptions,
    /// KV mode: the session holding this server's keys, and its TTL.
    pub(crate) session: Mutex<Option<kv::Session>>,
}

/// A client of a Consul agent, for [`RegistryPlugin`] (server side) and [`RegistryDiscovery`]
/// (client side). Cheap to clone: clones share connections and the session.
#[derive(Clone)]
pub struct ConsulStore {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for ConsulStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulStore")
            .field("url", &self.inner.http.base_url())
            .field("options", &self.inner.options)
            .finish()
    }
}

/// Bound of one plain request; the plugin and discovery bound them again with their timeouts.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl ConsulStore {
    /// A client of the Consul agent at `url` (`http://127.0.0.1:8500` or `127.0.0.1:8500`).
    /// Nothing is sent until it is used.
    pub fn new(url: &str, options: ConsulOptions) -> Result<ConsulStore> {
        Ok(ConsulStore {
            inner: Arc::new(Inner {
                http: HttpClient::new(ENGINE, url)?,
                options,
                session: Mutex::new(None),
            }),
        })
    }

    /// The agent's URL.
    pub fn url(&self) -> &str {
        self.inner.http.base_url()
    }

    /// The layout in use.
    pub fn mode(&self) -> ConsulMode {
        self.inner.options.mode
    }

    /// Appends `dc` and the first parameter separator to a path.
    pub(crate) fn path(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut out = path.to_string();
        let mut params: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    (*k).to_string()
                } else {
                    format!("{k}={}", escape_query(v))
                }
            })
            .collect();
        if let Some(dc) = &self.inner.options.datacenter {
            params.push(format!("dc={}", escape_query(dc)));
        }
        if !params.is_empty() {
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }

    /// Sends a request with the token, bounded by `timeout`.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<HttpResponse> {
        // The token travels in a header, so it never shows in logged URLs.
        self.inner
            .http
            .request_with_headers(method, path, body, timeout, &self.headers())
            .await
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        match &self.inner.options.token {
            Some(t) => vec![("X-Consul-Token", t.clone())],
            None => Vec::new(),
        }
    }

    pub(crate) fn unexpected(&self, operation: &str, resp: &HttpResponse) -> RegistryError {
        self.inner.http.unexpected(operation, resp)
    }
}

/// The `X-Consul-Index` of a response.
pub(crate) fn consul_index(resp: &HttpResponse) -> Option<u64> {
    resp.header("X-Consul-Index")?.parse().ok()
}

/// A Go duration string for Consul (`"10s"`, `"1500ms"`).
pub(crate) fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl RegistryStore for ConsulStore {
    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        self.url().to_string()
    }

    async fn connect(&self, _ttl: Duration) -> Result<()> {
        let resp = self
            .call(Method::GET, "/v1/status/leader", None, REQUEST_TIMEOUT)
            .await
            .map_err(|e| RegistryError::unreachable(ENGINE, self.url(), e))?;
        if resp.status != StatusCode::OK {
            return Err(RegistryError::unreachable(
                ENGINE,
                self.url(),
                format!(
                    "GET /v1/status/leader answered HTTP {}: is it a Consul agent?",
                    resp.status
                ),
            ));
        }
        let leader: String = serde_json::from_slice(&resp.body).unwrap_or_default();
        if leader.is_empty() {
            return Err(RegistryError::unreachable(
                ENGINE,
                self.url(),
                "the Consul cluster has no leader yet",
            ));
        }
        Ok(())
    }

    async fn keep_alive(&self, ttl: Duration) -> Result<()> {
        match self.inner.options.mode {
            ConsulMode::Kv => kv::keep_alive(self, ttl).await,
            ConsulMode::AgentService => Ok(()),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        match self.inner.options.mode {
            ConsulMode::Kv => kv::get(self, key).await,
            ConsulMode::AgentService => agent::get(self, key).await,
        }
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        match self.inner.options.mode {
            ConsulMode::Kv => kv::put(self, key, value, ttl).await,
            ConsulMode::AgentService => agent::put(self, key, value, ttl).await,
        }
    }

    async fn update(&self, key: &str, value: &str) -> Result<bool> {
        match self.inner.options.mode {
            ConsulMode::Kv => kv::update(self, key, value).await,
            // An agent service's metadata is the service's registration: only its agent's
            // owner (the server) can register it again.
            ConsulMode::AgentService => Err(RegistryError::Config(format!(
                "Consul agent services cannot be edited in place ({key}): their metadata is \
                 the server's registration; use the KV mode, or change the server's metadata"
            ))),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.inner.options.mode {
            ConsulMode::Kv => kv::delete(self, key).await,
            ConsulMode::AgentService => agent::delete(self, key).await,
        }
    }

    async fn close(&self) {
        if self.inner.options.mode == ConsulMode::Kv {
            kv::close(self).await;
        }
    }
}

/// A blocking query on a directory: waits until Consul's index for it moves.
pub struct ConsulWatch {
    store: ConsulStore,
    dir: String,
    index: u64,
}

impl fmt::Debug for ConsulWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulWatch")
            .field("dir", &self.dir)
            .field("index", &self.index)
            .finish()
    }
}

impl ChangeWatch for ConsulWatch {
    async fn changed(&mut self) -> Result<()> {
        loop {
            let l = list_at(&self.store, &self.dir, Some(self.index)).await?;
            let index = l.revision.unwrap_or_default();
            // Consul: an index that goes backwards (a snapshot restore) means start over.
            if index != self.index {
                self.index = if index < self.index { 0 } else { index };
                return Ok(());
            }
        }
    }
}

async fn list_at(store: &ConsulStore, dir: &str, index: Option<u64>) -> Result<Listing> {
    match store.inner.options.mode {
        ConsulMode::Kv => kv::list(store, dir, index).await,
        ConsulMode::AgentService => agent::list(store, dir, index).await,
    }
}

impl DiscoveryStore for ConsulStore {
    type Watch = ConsulWatch;

    /// Blocking queries start from the listing's `X-Consul-Index`.
    const WATCH_RESUMES_FROM_LISTING: bool = true;

    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        self.url().to_string()
    }

    async fn list(&self, dir: &str) -> Result<Listing> {
        list_at(self, dir, None).await
    }

    async fn watch(&self, dir: &str, after: &Listing) -> Result<ConsulWatch> {
        Ok(ConsulWatch {
            store: self.clone(),
            dir: dir.to_string(),
            index: after.revision.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn paths_carry_dc() {
        let s = ConsulStore::new(
            "127.0.0.1:8500",
            ConsulOptions::default().datacenter("dc 2"),
        )
        .unwrap();
        assert_eq!(
            s.path(
                "/v1/kv/a",
                &[("recurse", String::new()), ("index", "5".into())]
            ),
            "/v1/kv/a?recurse&index=5&dc=dc%202"
        );
    }
}
