//! [`ConsulMode::Kv`](crate::ConsulMode::Kv): rpcx's layout in Consul's KV store, held by a
//! session with a TTL.

use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use sextant_registry::http::escape_path;
use sextant_registry::{ListedEntry, Listing, RegistryError, Result};

use crate::{consul_index, go_duration, ConsulStore, ENGINE, REQUEST_TIMEOUT};

/// Consul's smallest session TTL.
const MIN_SESSION_TTL: Duration = Duration::from_secs(10);

/// The session holding this server's keys.
pub(crate) struct Session {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Created {
    #[serde(rename = "ID")]
    id: String,
}

/// One KV entry as Consul returns it (`Value` is base64, or null for an empty value).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KvEntry {
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    modify_index: u64,
}

/// Consul's KV key for a registry key: without the leading slash, as libkv writes it.
fn kv_key(key: &str) -> String {
    key.trim_start_matches('/').to_string()
}

fn kv_path(store: &ConsulStore, key: &str, query: &[(&str, String)]) -> String {
    store.path(&format!("/v1/kv/{}", escape_path(&kv_key(key))), query)
}

/// The session TTL for entries that must go `ttl` after the last renewal: half of it, since
/// Consul may take up to twice a session's TTL to invalidate it (libkv's rule), and at least
/// Consul's minimum.
fn session_ttl(ttl: Duration) -> Duration {
    (ttl / 2).max(MIN_SESSION_TTL)
}

async fn session(store: &ConsulStore, ttl: Duration) -> Result<String> {
    let mut s = store.inner.session.lock().await;
    if let Some(s) = s.as_ref() {
        return Ok(s.id.clone());
    }
    let session_ttl = session_ttl(ttl);
    if session_ttl > ttl / 2 {
        tracing::info!(
            ttl = ?ttl,
            session_ttl = ?session_ttl,
            "Consul sessions live at least 10 s: entries may outlive a crashed server by up to twice that"
        );
    }
    let body = serde_json::json!({
        "Name": "sextant registry",
        "Behavior": "delete",
        "TTL": go_duration(session_ttl),
        // Keys of an invalidated session are deleted, not locked: no lock delay is needed.
        "LockDelay": "1ms",
    });
    let resp = store
        .call(
            Method::PUT,
            &store.path("/v1/session/create", &[]),
            Some(Bytes::from(body.to_string())),
            REQUEST_TIMEOUT,
        )
        .await?;
    if resp.status != StatusCode::OK {
        return Err(store.unexpected("create a session", &resp));
    }
    let created: Created = serde_json::from_slice(&resp.body)
        .map_err(|e| RegistryError::backend(ENGINE, "create a session", e))?;
    tracing::debug!(session = %created.id, ttl = ?session_ttl, "Consul session created");
    *s = Some(Session {
        id: created.id.clone(),
    });
    Ok(created.id)
}

async fn forget_session(store: &ConsulStore, id: &str) {
    let mut s = store.inner.session.lock().await;
    if s.as_ref().is_some_and(|s| s.id == id) {
        *s = None;
    }
}

pub(crate) async fn keep_alive(store: &ConsulStore, _ttl: Duration) -> Result<()> {
    let Some(id) = store
        .inner
        .session
        .lock()
        .await
        .as_ref()
        .map(|s| s.id.clone())
    else {
        return Ok(()); // the next put creates one
    };
    let resp = store
        .call(
            Method::PUT,
            &store.path(&format!("/v1/session/renew/{id}"), &[]),
            None,
            REQUEST_TIMEOUT,
        )
        .await?;
    match resp.status {
        StatusCode::OK => Ok(()),
        StatusCode::NOT_FOUND => {
            // Invalidated: Consul deleted its keys; the refresh re-creates them under a new one.
            tracing::warn!(session = %id, "Consul session invalidated; creating a new one");
            forget_session(store, &id).await;
            Ok(())
        }
        _ => Err(store.unexpected("renew the session", &resp)),
    }
}

pub(crate) async fn get(store: &ConsulStore, key: &str) -> Result<Option<String>> {
    let resp = store
        .call(
            Method::GET,
            &kv_path(store, key, &[]),
            None,
            REQUEST_TIMEOUT,
        )
        .await?;
    match resp.status {
        StatusCode::OK => {
            let entries: Vec<KvEntry> = serde_json::from_slice(&resp.body)
                .map_err(|e| RegistryError::backend(ENGINE, format!("get {key}"), e))?;
            Ok(entries.into_iter().next().map(|e| {
                let bytes = e.value.and_then(|v| base64_decode(&v)).unwrap_or_default();
                String::from_utf8_lossy(&bytes).into_owned()
            }))
        }
        StatusCode::NOT_FOUND => Ok(None),
        _ => Err(store.unexpected(&format!("get {key}"), &resp)),
    }
}

/// Replaces an existing key's value without acquiring it: Consul keeps the session that holds
/// it (the server's), so the key still goes with that session. `cas` on the index read first
/// makes sure a key deleted (or replaced) in between is not written back without a session.
pub(crate) async fn update(store: &ConsulStore, key: &str, value: &str) -> Result<bool> {
    for _ in 0..3 {
        let resp = store
            .call(
                Method::GET,
                &kv_path(store, key, &[]),
                None,
                REQUEST_TIMEOUT,
            )
            .await?;
        let index = match resp.status {
            StatusCode::OK => {
                let entries: Vec<KvEntry> = serde_json::from_slice(&resp.body)
                    .map_err(|e| RegistryError::backend(ENGINE, format!("get {key}"), e))?;
                match entries.first() {
                    Some(e) if e.modify_index > 0 => e.modify_index,
                    _ => return Ok(false),
                }
            }
            StatusCode::NOT_FOUND => return Ok(false),
            _ => return Err(store.unexpected(&format!("get {key}"), &resp)),
        };
        let resp = store
            .call(
                Method::PUT,
                &kv_path(store, key, &[("cas", index.to_string())]),
                Some(Bytes::copy_from_slice(value.as_bytes())),
                REQUEST_TIMEOUT,
            )
            .await?;
        match (resp.status, resp.body.as_ref()) {
            (StatusCode::OK, b"true") => return Ok(true),
            (StatusCode::OK, _) => continue, // changed since it was read: read it again
            _ => return Err(store.unexpected(&format!("update {key}"), &resp)),
        }
    }
    Err(RegistryError::backend(
        ENGINE,
        format!("update {key}"),
        "the key kept changing while it was being updated",
    ))
}

pub(crate) async fn put(store: &ConsulStore, key: &str, value: &str, ttl: Duration) -> Result<()> {
    for _ in 0..3 {
        let id = session(store, ttl).await?;
        let resp = store
            .call(
                Method::PUT,
                &kv_path(store, key, &[("acquire", id.clone())]),
                Some(Bytes::copy_from_slice(value.as_bytes())),
                REQUEST_TIMEOUT,
            )
            .await?;
        match (resp.status, resp.body.as_ref()) {
            (StatusCode::OK, b"true") => return Ok(()),
            (StatusCode::OK, _) => {
                // Held by another session (an earlier run of this server): take the key over.
                tracing::info!(key, "key held by another Consul session; replacing it");
                delete(store, key).await?;
            }
            (s, body) if !s.is_success() && String::from_utf8_lossy(body).contains("session") => {
                // Our session is gone (Consul answers "invalid session"): make a new one.
                forget_session(store, &id).await;
            }
            _ => return Err(store.unexpected(&format!("put {key}"), &resp)),
        }
    }
    Err(RegistryError::backend(
        ENGINE,
        format!("put {key}"),
        "could not acquire the key for this server's session",
    ))
}

pub(crate) async fn delete(store: &ConsulStore, key: &str) -> Result<()> {
    let resp = store
        .call(
            Method::DELETE,
            &kv_path(store, key, &[]),
            None,
            REQUEST_TIMEOUT,
        )
        .await?;
    if resp.status != StatusCode::OK {
        return Err(store.unexpected(&format!("delete {key}"), &resp));
    }
    Ok(())
}

pub(crate) async fn close(store: &ConsulStore) {
    let Some(s) = store.inner.session.lock().await.take() else {
        return;
    };
    // Destroying the session deletes any key it still holds.
    let _ = store
        .call(
            Method::PUT,
            &store.path(&format!("/v1/session/destroy/{}", s.id), &[]),
            None,
            REQUEST_TIMEOUT,
        )
        .await;
}

/// Lists `{dir}/` (a blocking query when `index` is given).
pub(crate) async fn list(store: &ConsulStore, dir: &str, index: Option<u64>) -> Result<Listing> {
    let prefix = format!("{}/", kv_key(dir));
    let wait = store.inner.options.wait;
    let mut query = vec![("recurse", String::new())];
    if let Some(i) = index {
        query.push(("index", i.to_string()));
        query.push(("wait", go_duration(wait)));
    }
    let path = store.path(&format!("/v1/kv/{}", escape_path(&prefix)), &query);
    let timeout = if index.is_some() {
        wait + REQUEST_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    };
    let resp = store.call(Method::GET, &path, None, timeout).await?;
    let revision = consul_index(&resp);
    let entries = match resp.status {
        StatusCode::OK => {
            let entries: Vec<KvEntry> = serde_json::from_slice(&resp.body)
                .map_err(|e| RegistryError::backend(ENGINE, format!("list {dir}"), e))?;
            entries
                .into_iter()
                .filter_map(|e| {
                    // Consul lists by string prefix; rpcx skips keys outside `{dir}/` too.
                    let child = e.key.strip_prefix(&prefix)?.to_string();
                    Some(match e.value {
                        None => ListedEntry::new(child, ""),
                        Some(v) => match base64_decode(&v) {
                            Some(bytes) => ListedEntry::from_bytes(child, bytes),
                            None => ListedEntry {
                                child,
                                value: Err("Value is not base64".into()),
                            },
                        },
                    })
                })
                .collect()
        }
        StatusCode::NOT_FOUND => Vec::new(),
        _ => return Err(store.unexpected(&format!("list {dir}"), &resp)),
    };
    Ok(Listing { entries, revision })
}

/// Standard base64 with padding, as Consul encodes KV values; `None` if it is not.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_lose_their_leading_slash() {
        assert_eq!(
            kv_key("/rpcx_test/Arith/tcp@127.0.0.1:8972"),
            "rpcx_test/Arith/tcp@127.0.0.1:8972"
        );
    }

    #[test]
    fn session_ttls() {
        assert_eq!(
            session_ttl(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
        assert_eq!(session_ttl(Duration::from_secs(2)), Duration::from_secs(10));
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("d2VpZ2h0PTEw").unwrap(), b"weight=10");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("abc").is_none());
    }
}
