//! The embedded registry: no external service, for one machine and first contact.
//!
//! [`EmbeddedRegistry`] is a small in-memory registry served over HTTP, in the spirit of
//! GeeRPC's registry (servers send heartbeats; an entry not refreshed within its TTL is dropped),
//! but holding rpcx's layout, so its entries are exactly those an etcd or ZooKeeper registry would
//! hold: key `{basePath}/{service}/{network}@{host}:{port}`, value the metadata query string.
//! [`EmbeddedStore`] is its client, for both [`RegistryPlugin`](crate::RegistryPlugin) (server
//! side) and [`RegistryDiscovery`](crate::RegistryDiscovery) (client side).
//!
//! Run one with `sextant registry --addr 127.0.0.1:9980` (the `sextant-cli` crate) or in process:
//!
//! ```no_run
//! use sextant_registry::{EmbeddedRegistry, EmbeddedRegistryOptions};
//! # async fn run() -> std::io::Result<()> {
//! let registry = EmbeddedRegistry::bind("127.0.0.1:9980", EmbeddedRegistryOptions::default()).await?;
//! println!("registry at {}", registry.url());
//! # Ok(()) }
//! ```
//!
//! For an in-process registry without any network, use the XClient's in-process discovery
//! (rpcx's `InprocessDiscovery`) instead.
//!
//! # When to move on
//!
//! The embedded registry is one process with no persistence and no replication: if it stops,
//! clients keep the servers they know but learn of no change until it is back. Move to etcd
//! (`sextant-etcd`) or ZooKeeper (`sextant-zookeeper`) when servers run on several machines, when
//! the registry must survive a machine failure, or when Go rpcx programs must share the registry.
//!
//! # HTTP API
//!
//! Keys are percent-escaped in paths (letters, digits, `-._~/@:` stay as they are). Bodies are
//! JSON unless stated otherwise; errors are `{"error": "..."}` with a 4xx status.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/status` | `{"index": N, "entries": N}` |
//! | `PUT /v1/kv/{key}?ttl_ms=N`, body: the value (UTF-8 text) | creates or refreshes the entry for `N` ms (at most `max_ttl`): `{"created": bool}` |
//! | `PUT /v1/kv/{key}?keep_ttl=1`, body: the value | replaces a live entry's value, keeping its TTL and expiry (`sextant set`): `{"created": false}`, or 404 |
//! | `GET /v1/kv/{key}` | `{"key", "value", "ttl_ms"}`, or 404 |
//! | `DELETE /v1/kv/{key}` | `{"deleted": bool}` |
//! | `GET /v1/list/{dir}` | the entries under `{dir}/`: `{"index": N, "entries": [{"key", "value"}]}` |
//! | `GET /v1/list/{dir}?index=N&wait_ms=M` | the same, but first waits up to `M` ms (at most `max_wait`) while the registry's index is still `N` |
//!
//! The index changes with every change (a new entry, a new value, a removal, an expiry); a
//! refresh that keeps the value only extends the TTL. Indexes start at a random number, so a
//! watch from before a restart returns at once.

mod server;
mod store;

pub use server::{EmbeddedRegistry, EmbeddedRegistryOptions};
pub use store::{EmbeddedStore, EmbeddedWatch};

/// The wire types of the HTTP API.
pub(crate) mod api {
    use serde::{Deserialize, Serialize};

    pub(crate) const STATUS: &str = "/v1/status";
    pub(crate) const KV: &str = "/v1/kv/";
    pub(crate) const LIST: &str = "/v1/list/";

    #[derive(Debug, Serialize, Deserialize)]
    pub(crate) struct Status {
        pub(crate) index: u64,
        pub(crate) entries: usize,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub(crate) struct Entry {
        pub(crate) key: String,
        pub(crate) value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub(crate) ttl_ms: Option<u64>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub(crate) struct ListResult {
        pub(crate) index: u64,
        pub(crate) entries: Vec<Entry>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub(crate) struct PutResult {
        pub(crate) created: bool,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub(crate) struct DeleteResult {
        pub(crate) deleted: bool,
    }
}
