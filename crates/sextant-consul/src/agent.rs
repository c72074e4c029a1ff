//! [`ConsulMode::AgentService`](crate::ConsulMode::AgentService): every server is an agent
//! service with a TTL check; discoveries read the health API.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use sextant_registry::http::escape_path;
use sextant_registry::{ListedEntry, Listing, RegistryError, Result};

use crate::{consul_index, go_duration, ConsulStore, ENGINE, REQUEST_TIMEOUT};

/// `Meta` keys of a registration.
const META_ADDRESS: &str = "rpcx_address";
const META_METADATA: &str = "rpcx_metadata";
const META_BASE_PATH: &str = "rpcx_base_path";
/// Consul's limit on a `Meta` value.
const MAX_META_VALUE: usize = 512;

/// A registry key split into rpcx's parts.
struct KeyParts<'a> {
    base: &'a str,
    service: &'a str,
    address: &'a str,
}

/// Splits `/{base}/{service}/{network}@{addr}`: the address starts at the last `/` before the
/// first `@` (a unix address holds slashes after it), the service is the segment before.
fn split_key(key: &str) -> Option<KeyParts<'_>> {
    let at = key.find('@')?;
    let addr_start = key[..at].rfind('/')?;
    let dir = &key[..addr_start];
    let svc_start = dir.rfind('/')?;
    Some(KeyParts {
        base: &dir[..svc_start],
        service: &dir[svc_start + 1..],
        address: &key[addr_start + 1..],
    })
}

/// Consul's service ID for a key: the key without its leading slash.
fn service_id(key: &str) -> String {
    key.trim_start_matches('/').to_string()
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Check {
    #[serde(rename = "TTL")]
    ttl: String,
    status: &'static str,
    deregister_critical_service_after: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Registration<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    name: &'a str,
    tags: Vec<&'a str>,
    address: &'a str,
    port: u16,
    meta: BTreeMap<&'static str, &'a str>,
    check: Check,
}

/// What `GET /v1/agent/service/:id` and the health API return of a service.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Service {
    #[serde(default)]
    meta: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthEntry {
    service: Service,
}

/// Host and port for Consul's `Address`/`Port` fields (`tcp@10.0.0.5:8972` → `10.0.0.5`, 8972;
/// a unix socket → its path, 0), read with sextant's one address parser.
fn host_port(address: &str) -> (String, u16) {
    match sextant::Address::parse(address) {
        Ok(a) => match a.host_port() {
            Some((h, p)) => (h.to_string(), p),
            None => (a.addr().to_string(), 0),
        },
        Err(_) => (address.to_string(), 0),
    }
}

pub(crate) async fn get(store: &ConsulStore, key: &str) -> Result<Option<String>> {
    let path = store.path(
        &format!("/v1/agent/service/{}", escape_path(&service_id(key))),
        &[],
    );
    let resp = store
        .call(Method::GET, &path, None, REQUEST_TIMEOUT)
        .await?;
    match resp.status {
        StatusCode::OK => {
            let s: Service = serde_json::from_slice(&resp.body)
                .map_err(|e| RegistryError::backend(ENGINE, format!("get {key}"), e))?;
            Ok(Some(
                s.meta
                    .and_then(|m| m.get(META_METADATA).cloned())
                    .unwrap_or_default(),
            ))
        }
        StatusCode::NOT_FOUND => Ok(None),
        _ => Err(store.unexpected(&format!("get {key}"), &resp)),
    }
}

pub(crate) async fn put(store: &ConsulStore, key: &str, value: &str, ttl: Duration) -> Result<()> {
    let parts = split_key(key).ok_or_else(|| {
        RegistryError::Config(format!(
            "{key} is not {{basePath}}/{{service}}/{{network}}@{{address}}"
        ))
    })?;
    if value.len() > MAX_META_VALUE {
        return Err(RegistryError::Config(format!(
            "the metadata of {key} is {} bytes; Consul's agent services hold at most {MAX_META_VALUE} \
             per Meta value: shorten it or use ConsulMode::Kv",
            value.len()
        )));
    }
    let id = service_id(key);
    let (host, port) = host_port(parts.address);
    let base = if parts.base.is_empty() {
        "/"
    } else {
        parts.base
    };
    let mut meta = BTreeMap::new();
    meta.insert(META_ADDRESS, parts.address);
    meta.insert(META_METADATA, value);
    meta.insert(META_BASE_PATH, base);
    let reg = Registration {
        id: &id,
        name: parts.service,
        tags: vec![base],
        address: &host,
        port,
        meta,
        check: Check {
            ttl: go_duration(ttl),
            status: "passing",
            deregister_critical_service_after: go_duration(store.inner.options.deregister_after),
        },
    };
    let body = serde_json::to_vec(&reg).expect("a registration always encodes");
    let resp = store
        .call(
            Method::PUT,
            &store.path("/v1/agent/service/register", &[]),
            Some(Bytes::from(body)),
            REQUEST_TIMEOUT,
        )
        .await?;
    if resp.status != StatusCode::OK {
        return Err(store.unexpected(&format!("register {id}"), &resp));
    }
    // Re-registering may not reset a TTL check's timer: pass it explicitly.
    let check = format!("service:{id}");
    let resp = store
        .call(
            Method::PUT,
            &store.path(
                &format!("/v1/agent/check/pass/{}", escape_path(&check)),
                &[],
            ),
            None,
            REQUEST_TIMEOUT,
        )
        .await?;
    if resp.status != StatusCode::OK {
        return Err(store.unexpected(&format!("pass {check}"), &resp));
    }
    Ok(())
}

pub(crate) async fn delete(store: &ConsulStore, key: &str) -> Result<()> {
    let id = service_id(key);
    let resp = store
        .call(
            Method::PUT,
            &store.path(
                &format!("/v1/agent/service/deregister/{}", escape_path(&id)),
                &[],
            ),
            None,
            REQUEST_TIMEOUT,
        )
        .await?;
    match resp.status {
        // Consul answers 404 for an unknown service: it is gone either way.
        StatusCode::OK | StatusCode::NOT_FOUND => Ok(()),
        _ => Err(store.unexpected(&format!("deregister {id}"), &resp)),
    }
}

/// Lists the passing instances of the directory's service tagged with its base path (a blocking
/// query when `index` is given).
pub(crate) async fn list(store: &ConsulStore, dir: &str, index: Option<u64>) -> Result<Listing> {
    let (base, service) = dir.rsplit_once('/').unwrap_or(("", dir));
    let base = if base.is_empty() { "/" } else { base };
    let wait = store.inner.options.wait;
    let mut query = vec![("passing", "true".to_string()), ("tag", base.to_string())];
    if let Some(i) = index {
        query.push(("index", i.to_string()));
        query.push(("wait", go_duration(wait)));
    }
    let path = store.path(
        &format!("/v1/health/service/{}", escape_path(service)),
        &query,
    );
    let timeout = if index.is_some() {
        wait + REQUEST_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    };
    let resp = store.call(Method::GET, &path, None, timeout).await?;
    if resp.status != StatusCode::OK {
        return Err(store.unexpected(&format!("list {dir}"), &resp));
    }
    let revision = consul_index(&resp);
    let entries: Vec<HealthEntry> = serde_json::from_slice(&resp.body)
        .map_err(|e| RegistryError::backend(ENGINE, format!("list {dir}"), e))?;
    let entries = entries
        .into_iter()
        .filter_map(|e| {
            let meta = e.service.meta.unwrap_or_default();
            // Instances registered by others (no rpcx_address) are not rpcx servers.
            let child = meta.get(META_ADDRESS)?.clone();
            Some(match meta.get(META_METADATA) {
                Some(v) => ListedEntry::new(child, v.clone()),
                None => ListedEntry {
                    child,
                    value: Err(format!("no {META_METADATA} in the service's Meta")),
                },
            })
        })
        .collect();
    Ok(Listing { entries, revision })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_into_rpcx_parts() {
        let p = split_key("/rpcx_test/Arith/tcp@127.0.0.1:8972").unwrap();
        assert_eq!(
            (p.base, p.service, p.address),
            ("/rpcx_test", "Arith", "tcp@127.0.0.1:8972")
        );
        let p = split_key("/a/b/Svc/unix@/tmp/x.sock").unwrap();
        assert_eq!(
            (p.base, p.service, p.address),
            ("/a/b", "Svc", "unix@/tmp/x.sock")
        );
        let p = split_key("/Arith/tcp@h:1").unwrap();
        assert_eq!((p.base, p.service, p.address), ("", "Arith", "tcp@h:1"));
        assert!(split_key("/rpcx_test/Arith/nope").is_none());
    }

    #[test]
    fn host_and_port() {
        let hp = host_port;
        assert_eq!(hp("tcp@10.0.0.5:8972"), ("10.0.0.5".to_string(), 8972));
        assert_eq!(hp("tcp6@[::1]:80"), ("::1".to_string(), 80));
        assert_eq!(hp("unix@/tmp/x.sock"), ("/tmp/x.sock".to_string(), 0));
    }
}
