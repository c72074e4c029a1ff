//! The client of the embedded registry, for plugins and discoveries.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::api;
use crate::error::{RegistryError, Result};
use crate::http::{escape_path, HttpClient, HttpResponse};
use crate::store::{ChangeWatch, DiscoveryStore, ListedEntry, Listing, RegistryStore};

const ENGINE: &str = "embedded";
/// Bound of plain requests; the plugin and discovery bound them again with their own timeouts.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The client of an [`EmbeddedRegistry`](super::EmbeddedRegistry): a [`RegistryStore`] for
/// [`RegistryPlugin`](crate::RegistryPlugin) and a [`DiscoveryStore`] for
/// [`RegistryDiscovery`](crate::RegistryDiscovery). Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    http: Arc<HttpClient>,
    long_poll: Duration,
}

impl EmbeddedStore {
    /// A client of the registry at `url` (`http://127.0.0.1:9980` or `127.0.0.1:9980`).
    /// Nothing is sent until it is used.
    pub fn new(url: &str) -> Result<EmbeddedStore> {
        Ok(EmbeddedStore {
            http: Arc::new(HttpClient::new(ENGINE, url)?),
            long_poll: Duration::from_secs(30),
        })
    }

    /// How long one watch request waits for a change before asking again. Default: 30 s.
    pub fn with_long_poll(mut self, wait: Duration) -> Self {
        self.long_poll = wait.max(Duration::from_millis(10));
        self
    }

    /// The registry's URL.
    pub fn url(&self) -> &str {
        self.http.base_url()
    }

    async fn call(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<HttpResponse> {
        self.http.request(method, path, body, REQUEST_TIMEOUT).await
    }

    async fn list_at(&self, dir: &str, wait: Option<(u64, Duration)>) -> Result<Listing> {
        let mut path = format!("{}{}", api::LIST, escape_path(dir.trim_start_matches('/')));
        let timeout = match wait {
            Some((index, wait)) => {
                path.push_str(&format!("?index={index}&wait_ms={}", wait.as_millis()));
                wait + REQUEST_TIMEOUT
            }
            None => REQUEST_TIMEOUT,
        };
        let resp = self.http.request(Method::GET, &path, None, timeout).await?;
        if resp.status != StatusCode::OK {
            return Err(self.http.unexpected(&format!("list {dir}"), &resp));
        }
        let r: api::ListResult = serde_json::from_slice(&resp.body)
            .map_err(|e| RegistryError::backend(ENGINE, format!("list {dir}"), e))?;
        let prefix = format!("{dir}/");
        let entries = r
            .entries
            .into_iter()
            .filter_map(|e| {
                let child = e.key.strip_prefix(&prefix)?.to_string();
                Some(ListedEntry::new(child, e.value))
            })
            .collect();
        Ok(Listing {
            entries,
            revision: Some(r.index),
        })
    }
}

fn kv_path(key: &str) -> String {
    format!("{}{}", api::KV, escape_path(key.trim_start_matches('/')))
}

impl RegistryStore for EmbeddedStore {
    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        self.url().to_string()
    }

    async fn connect(&self, _ttl: Duration) -> Result<()> {
        let resp = self
            .call(Method::GET, api::STATUS, None)
            .await
            .map_err(|e| RegistryError::unreachable(ENGINE, self.url(), e))?;
        if resp.status != StatusCode::OK {
            return Err(RegistryError::unreachable(
                ENGINE,
                self.url(),
                format!(
                    "{} answered HTTP {} to GET /v1/status: is it a sextant embedded registry?",
                    self.url(),
                    resp.status
                ),
            ));
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let resp = self.call(Method::GET, &kv_path(key), None).await?;
        match resp.status {
            StatusCode::OK => {
                let e: api::Entry = serde_json::from_slice(&resp.body)
                    .map_err(|e| RegistryError::backend(ENGINE, format!("get {key}"), e))?;
                Ok(Some(e.value))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.http.unexpected(&format!("get {key}"), &resp)),
        }
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        let path = format!("{}?ttl_ms={}", kv_path(key), ttl.as_millis().max(1));
        let resp = self
            .call(
                Method::PUT,
                &path,
                Some(Bytes::copy_from_slice(value.as_bytes())),
            )
            .await?;
        if resp.status != StatusCode::OK {
            return Err(self.http.unexpected(&format!("put {key}"), &resp));
        }
        Ok(())
    }

    async fn update(&self, key: &str, value: &str) -> Result<bool> {
        let path = format!("{}?keep_ttl=1", kv_path(key));
        let resp = self
            .call(
                Method::PUT,
                &path,
                Some(Bytes::copy_from_slice(value.as_bytes())),
            )
            .await?;
        match resp.status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.http.unexpected(&format!("update {key}"), &resp)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let resp = self.call(Method::DELETE, &kv_path(key), None).await?;
        if resp.status != StatusCode::OK {
            return Err(self.http.unexpected(&format!("delete {key}"), &resp));
        }
        Ok(())
    }
}

/// A watch on the embedded registry: long-polls the directory until the index moves.
#[derive(Debug)]
pub struct EmbeddedWatch {
    store: EmbeddedStore,
    dir: String,
    index: u64,
}

impl ChangeWatch for EmbeddedWatch {
    async fn changed(&mut self) -> Result<()> {
        loop {
            let l = self
                .store
                .list_at(&self.dir, Some((self.index, self.store.long_poll)))
                .await?;
            let index = l.revision.unwrap_or_default();
            if index != self.index {
                self.index = index;
                return Ok(());
            }
        }
    }
}

impl DiscoveryStore for EmbeddedStore {
    type Watch = EmbeddedWatch;

    const WATCH_RESUMES_FROM_LISTING: bool = true;

    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        self.url().to_string()
    }

    async fn list(&self, dir: &str) -> Result<Listing> {
        self.list_at(dir, None).await
    }

    async fn watch(&self, dir: &str, after: &Listing) -> Result<EmbeddedWatch> {
        Ok(EmbeddedWatch {
            store: self.clone(),
            dir: dir.to_string(),
            index: after.revision.unwrap_or_default(),
        })
    }
}
