//! # sextant-registry
//!
//! Service registries for [sextant], laid out exactly as rpcx lays them out. With the etcd,
//! ZooKeeper, Redis and Consul (KV mode) backends, Go rpcx and sextant servers and clients share
//! one registry; the embedded registry and mDNS are for sextant programs only (Go rpcx has no
//! client for the first, and its mDNS service type is one DNS-SD libraries refuse).
//!
//! A server publishes each service it serves at
//! `{basePath}/{servicePath}/{network}@{host}:{port}` — e.g. `/rpcx_test/Arith/tcp@127.0.0.1:8972`
//! — with the service's metadata query string as value (`group=test&weight=10`); the entry lives
//! under a TTL that the server keeps refreshing. Clients list and watch `{basePath}/{servicePath}`
//! and use every server found there.
//!
//! This crate holds what every registry engine shares, written once:
//!
//! - [`RegistryPlugin`]: the server plugin (rpcx's `*RegisterPlugin`): publish on listen, TTL
//!   refresh, re-create vanished entries, rate figures, remove everything at shutdown; registry
//!   I/O never blocks the server.
//! - [`RegistryDiscovery`]: the client discovery (rpcx's `*Discovery`): full lists through
//!   [`ServerList`](sextant::discovery::ServerList), validation of what is listed, keep the last
//!   known servers through outages, reconnect with backoff, catch up after reconnecting.
//! - [`RegistryStore`] and [`DiscoveryStore`]: the small traits an engine implements.
//! - The **embedded registry** ([`EmbeddedRegistry`], [`EmbeddedStore`]): a small HTTP registry
//!   with heartbeats and TTLs for one machine and first contact, with no external service.
//!
//! Engines live in their own crates: `sextant-etcd`, `sextant-zookeeper`, `sextant-redis`,
//! `sextant-consul`, `sextant-mdns`. For tests and single-process programs, the XClient's
//! in-process discovery needs no registry at all.
//!
//! ## A tour
//!
//! ```no_run
//! use sextant::{Server, ServiceDiscovery};
//! use sextant_registry::{
//!     DiscoveryOptions, EmbeddedRegistry, EmbeddedRegistryOptions, EmbeddedStore,
//!     RegistryDiscovery, RegistryOptions, RegistryPlugin,
//! };
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The registry (or run `sextant registry --addr 127.0.0.1:9980`).
//! let registry = EmbeddedRegistry::bind("127.0.0.1:9980", EmbeddedRegistryOptions::default()).await?;
//!
//! // Server side: the plugin publishes Arith once the server listens.
//! let plugin = RegistryPlugin::start(
//!     EmbeddedStore::new(&registry.url())?,
//!     RegistryOptions::default().base_path("/rpcx_test"),
//! )
//! .await?;
//! let server = Server::builder().plugin(plugin).build();
//! server.register_fn_with("Arith", "Mul", |_cx, (a, b): (i64, i64)| async move {
//!     Ok::<_, String>(a * b)
//! }, sextant::RegisterOptions::default().metadata("weight=10"))?;
//! server.start("tcp@127.0.0.1:8972").await?;
//!
//! // Client side: the discovery lists /rpcx_test/Arith and follows its changes.
//! let discovery = RegistryDiscovery::start(
//!     EmbeddedStore::new(&registry.url())?,
//!     "/rpcx_test",
//!     "Arith",
//!     DiscoveryOptions::default(),
//! )
//! .await?;
//! for server in discovery.get_services().iter() {
//!     println!("{} {}", server.key, server.value); // tcp@127.0.0.1:8972 weight=10
//! }
//! # Ok(()) }
//! ```
//!
//! ## Behaviour shared by every engine
//!
//! - Base paths are normalized: `rpcx_test` means `/rpcx_test` (see [`path`]).
//! - The TTL is twice the update interval unless set, as in rpcx.
//! - Values written back by refreshes are encoded as Go's `url.Values.Encode` does
//!   ([`QueryValues`]), and keep keys set by others (`state=inactive`).
//! - Entries whose key is not a dialable address or whose value is not a metadata query string
//!   are skipped by discoveries with a warning.
#![warn(missing_docs)]

pub mod backoff;
mod discovery;
pub mod embedded;
mod error;
pub mod http;
pub mod path;
mod plugin;
pub mod query;
pub mod rates;
pub mod store;

pub use discovery::{DiscoveryOptions, RegistryDiscovery};
pub use embedded::{EmbeddedRegistry, EmbeddedRegistryOptions, EmbeddedStore};
pub use error::{RegistryError, Result};
pub use plugin::{RegistryOptions, RegistryPlugin};
pub use query::QueryValues;
pub use store::{ChangeWatch, DiscoveryStore, ListedEntry, Listing, RegistryStore};
