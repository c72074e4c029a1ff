//! # sextant-redis
//!
//! A Redis registry for [sextant], laid out as rpcx's `RedisRegisterPlugin` and
//! `RedisDiscovery` (github.com/rpcxio/rpcx-redis, over libkv's Redis store) lay it out, so Go
//! rpcx and sextant servers and clients share it:
//!
//! - key `{basePath}/{servicePath}/{network}@{host}:{port}`, with a leading slash, e.g.
//!   `/rpcx_test/Arith/tcp@127.0.0.1:8972` (libkv normalizes keys this way);
//! - value: the JSON of libkv's `KVPair`, `{"Key":"<the key>","Value":"<base64 of the metadata
//!   string>","LastIndex":<n>}`, as libkv's Redis store writes and reads it;
//! - TTL: each key is written with `SET ... PX <ttl>` (twice the update interval unless set) and
//!   rewritten at every refresh, which renews it. A server that stops refreshing disappears when
//!   Redis expires its keys.
//!
//! ## How discoveries watch: keyspace notifications, with polling as fallback
//!
//! A discovery lists with `SCAN MATCH {dir}/*` and `MGET`, then subscribes to Redis keyspace
//! notifications for the directory (`PSUBSCRIBE __keyspace@<db>__:{dir}/*`) and lists again on
//! every notification (a `set`, `del` or `expired` of a server key). Notifications are off by
//! default in Redis; like rpcx's store (which sets `notify-keyspace-events KEA`), the store turns
//! on the flags it needs (`K`, `$`, `g`, `x`, added to those already set) with `CONFIG SET`,
//! unless [`RedisOptions::enable_keyspace_events`] is `false`. Where notifications stay off
//! (`CONFIG` disabled, as on many managed services), discoveries poll every
//! [`RedisOptions::poll_interval`] instead and say so in a warning. Pub/sub is fire-and-forget,
//! so even with notifications a discovery lists again every
//! [`RedisOptions::resync_interval`], and after every reconnection.
//!
//! Expiry events come when Redis actually removes a key: promptly for registries of this size
//! (Redis samples keys with a TTL ten times a second), but not at the exact millisecond.
//!
//! ```no_run
//! use sextant_redis::{RedisDiscovery, RedisOptions, RedisRegisterPlugin, RedisStore};
//! use sextant_registry::{DiscoveryOptions, RegistryOptions};
//! # async fn run(server: sextant::Server) -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::new("redis://127.0.0.1:6379", RedisOptions::default())?;
//! server.add_plugin(RedisRegisterPlugin::start(store.clone(), RegistryOptions::default()).await?);
//! let discovery = RedisDiscovery::start(store, "/rpcx_test", "Arith", DiscoveryOptions::default()).await?;
//! # Ok(()) }
//! ```

pub mod libkv;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubStream};
use redis::{AsyncCommands, Client, RedisError};
use sextant_registry::{
    ChangeWatch, DiscoveryStore, ListedEntry, Listing, RegistryDiscovery, RegistryError,
    RegistryPlugin, RegistryStore, Result,
};
use tokio::sync::Mutex;

const ENGINE: &str = "redis";

/// rpcx's `RedisRegisterPlugin`: the registry plugin on Redis.
pub type RedisRegisterPlugin = RegistryPlugin<RedisStore>;

/// rpcx's `RedisDiscovery`: the discovery on Redis.
pub type RedisDiscovery = RegistryDiscovery;

/// Settings of a [`RedisStore`]. Every field states its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Turn on the keyspace notifications discoveries need (`K$gx`, added to the flags already
    /// set) with `CONFIG SET notify-keyspace-events` when they are off, as rpcx's store does.
    /// Default: `true`.
    pub enable_keyspace_events: bool,
    /// How often discoveries list again when keyspace notifications are off. Default: 5 s.
    pub poll_interval: Duration,
    /// How often discoveries list again even with notifications (they can be lost while a
    /// subscriber reconnects). Default: 60 s.
    pub resync_interval: Duration,
    /// How long connecting may take. Default: 5 s.
    pub connect_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            enable_keyspace_events: true,
            poll_interval: Duration::from_secs(5),
            resync_interval: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl RedisOptions {
    /// Sets [`enable_keyspace_events`](Self::enable_keyspace_events).
    pub fn enable_keyspace_events(mut self, enable: bool) -> Self {
        self.enable_keyspace_events = enable;
        self
    }

    /// Sets [`poll_interval`](Self::poll_interval).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets [`resync_interval`](Self::resync_interval).
    pub fn resync_interval(mut self, interval: Duration) -> Self {
        self.resync_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

struct Inner {
    url: String,
    client: Client,
    db: i64,
    options: RedisOptions,
    conn: Mutex<Option<ConnectionManager>>,
    /// Whether the "notifications are off, polling" warning was given.
    warned_polling: AtomicBool,
}

/// A client of a Redis server, for [`RegistryPlugin`] (server side) and [`RegistryDiscovery`]
/// (client side). Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .field("db", &self.inner.db)
            .field("options", &self.inner.options)
            .finish()
    }
}

fn err(operation: impl Into<String>, e: RedisError) -> RegistryError {
    RegistryError::backend(ENGINE, operation, e)
}

/// Escapes Redis glob characters (`*?[]\`) so a key prefix matches only itself.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisStore {
    /// A client of the Redis server at `url` (`redis://[user:password@]host:port[/db]`, or
    /// `host:port`). Nothing is sent until it is used.
    pub fn new(url: &str, options: RedisOptions) -> Result<RedisStore> {
        let full = if url.contains("://") {
            url.to_string()
        } else {
            format!("redis://{url}")
        };
        let client = Client::open(full.as_str()).map_err(|e| {
            RegistryError::Config(format!(
                "redis address {url:?} is not valid ({e}); write redis://host:port/db"
            ))
        })?;
        let db = client.get_connection_info().redis.db;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                url: full,
                client,
                db,
                options,
                conn: Mutex::new(None),
                warned_polling: AtomicBool::new(false),
            }),
        })
    }

    /// The connection (which reconnects by itself), made on first use.
    pub async fn connection(&self) -> Result<ConnectionManager> {
        let mut c = self.inner.conn.lock().await;
        if let Some(c) = c.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.inner.options.connect_timeout)
            .set_response_timeout(self.inner.options.connect_timeout)
            .set_number_of_retries(1);
        let conn = self
            .inner
            .client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| RegistryError::unreachable(ENGINE, self.inner.url.clone(), e))?;
        *c = Some(conn.clone());
        Ok(conn)
    }

    /// Whether keyspace notifications for the keys discoveries watch are on, turning them on if
    /// allowed.
    async fn keyspace_events(&self) -> bool {
        let Ok(mut c) = self.connection().await else {
            return false;
        };
        let current: Result<Vec<String>, RedisError> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query_async(&mut c)
            .await;
        let flags = match current {
            Ok(v) => v.get(1).cloned().unwrap_or_default(),
            Err(e) => {
                self.warn_polling(&format!("CONFIG GET refused: {e}"));
                return false;
            }
        };
        let has = |f: char| flags.contains(f) || ("g$x".contains(f) && flags.contains('A'));
        let missing: String = "K$gx".chars().filter(|&f| !has(f)).collect();
        if missing.is_empty() {
            return true;
        }
        if !self.inner.options.enable_keyspace_events {
            self.warn_polling(&format!(
                "notify-keyspace-events is {flags:?} (needs K$gx) and enabling it is turned off"
            ));
            return false;
        }
        let wanted = format!("{flags}{missing}");
        let set: Result<(), RedisError> = redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg(&wanted)
            .query_async(&mut c)
            .await;
        match set {
            Ok(()) => {
                tracing::info!(flags = %wanted, "turned on Redis keyspace notifications");
                true
            }
            Err(e) => {
                self.warn_polling(&format!("CONFIG SET notify-keyspace-events refused: {e}"));
                false
            }
        }
    }

    fn warn_polling(&self, why: &str) {
        if !self.inner.warned_polling.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                url = %self.inner.url,
                reason = why,
                interval = ?self.inner.options.poll_interval,
                "Redis keyspace notifications are unavailable; discoveries poll instead"
            );
        }
    }
}

impl RegistryStore for RedisStore {
    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        self.inner.url.clone()
    }

    async fn connect(&self, _ttl: Duration) -> Result<()> {
        let mut c = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| RegistryError::unreachable(ENGINE, self.inner.url.clone(), e))
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let mut c = self.connection().await?;
        let raw: Option<Vec<u8>> = c.get(key).await.map_err(|e| err(format!("GET {key}"), e))?;
        // A value not in libkv's format is handed back as text: the refresh rewrites it.
        Ok(raw.map(|r| {
            libkv::decode(&r).unwrap_or_else(|_| String::from_utf8_lossy(&r).into_owned())
        }))
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        let mut c = self.connection().await?;
        let ms = ttl.as_millis().max(1) as u64;
        redis::cmd("SET")
            .arg(key)
            .arg(libkv::encode(key, value))
            .arg("PX")
            .arg(ms)
            .query_async::<()>(&mut c)
            .await
            .map_err(|e| err(format!("SET {key}"), e))
    }

    async fn update(&self, key: &str, value: &str) -> Result<bool> {
        // XX: only an existing key; KEEPTTL: its TTL stays the server's (Redis 6.0 and later).
        let mut c = self.connection().await?;
        let r: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(libkv::encode(key, value))
            .arg("XX")
            .arg("KEEPTTL")
            .query_async(&mut c)
            .await
            .map_err(|e| err(format!("SET {key} XX KEEPTTL"), e))?;
        Ok(r.is_some())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut c = self.connection().await?;
        c.del::<_, ()>(key)
            .await
            .map_err(|e| err(format!("DEL {key}"), e))
    }
}

/// A watch on a directory: keyspace notifications, or a poll timer when they are off.
pub struct RedisWatch {
    events: Option<PubSubStream>,
    poll: Duration,
}

impl fmt::Debug for RedisWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisWatch")
            .field("notifications", &self.events.is_some())
            .field("poll", &self.poll)
            .finish()
    }
}

impl ChangeWatch for RedisWatch {
    async fn changed(&mut self) -> Result<()> {
        match self.events.as_mut() {
            None => {
                tokio::time::sleep(self.poll).await;
                Ok(())
            }
            Some(events) => tokio::select! {
                m = events.next() => match m {
                    Some(_) => Ok(()),
                    None => Err(RegistryError::backend(
                        ENGINE,
                        "watch",
                        "the subscription connection closed",
                    )),
                },
                _ = tokio::time::sleep(self.poll) => Ok(()),
            },
        }
    }
}

impl DiscoveryStore for RedisStore {
    type Watch = RedisWatch;

    /// Pub/sub has no history: after subscribing, the discovery lists once more.
    const WATCH_RESUMES_FROM_LISTING: bool = false;

    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn endpoints(&self) -> String {
        self.inner.url.clone()
    }

    async fn list(&self, dir: &str) -> Result<Listing> {
        let prefix = format!("{dir}/");
        let pattern = format!("{}*", escape_glob(&prefix));
        let mut c = self.connection().await?;
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        // Bounded: SCAN ends when the cursor comes back to 0; the caller's timeout bounds time.
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await
                .map_err(|e| err(format!("SCAN {pattern}"), e))?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        let mut entries = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(chunk)
                .query_async(&mut c)
                .await
                .map_err(|e| err(format!("MGET under {prefix}"), e))?;
            for (key, raw) in chunk.iter().zip(values) {
                // A key that expired between SCAN and MGET is simply gone.
                let (Some(raw), Some(child)) = (raw, key.strip_prefix(&prefix)) else {
                    continue;
                };
                entries.push(ListedEntry {
                    child: child.to_string(),
                    value: libkv::decode(&raw),
                });
            }
        }
        Ok(Listing {
            entries,
            revision: None,
        })
    }

    async fn watch(&self, dir: &str, _after: &Listing) -> Result<RedisWatch> {
        let opts = &self.inner.options;
        if !self.keyspace_events().await {
            return Ok(RedisWatch {
                events: None,
                poll: opts.poll_interval,
            });
        }
        let mut pubsub = self
            .inner
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| err("connect for keyspace notifications", e))?;
        let channel = format!(
            "__keyspace@{}__:{}*",
            self.inner.db,
            escape_glob(&format!("{dir}/"))
        );
        pubsub
            .psubscribe(&channel)
            .await
            .map_err(|e| err(format!("PSUBSCRIBE {channel}"), e))?;
        Ok(RedisWatch {
            events: Some(pubsub.into_on_message()),
            poll: opts.resync_interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_escaping() {
        assert_eq!(escape_glob("/rpcx_test/Arith/"), "/rpcx_test/Arith/");
        assert_eq!(escape_glob("/a*b?[c]\\"), "/a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn urls() {
        assert!(RedisStore::new("127.0.0.1:6379", RedisOptions::default()).is_ok());
        let s = RedisStore::new("redis://127.0.0.1:6379/3", RedisOptions::default()).unwrap();
        assert_eq!(s.inner.db, 3);
        assert!(RedisStore::new("http://x", RedisOptions::default()).is_err());
    }
}
