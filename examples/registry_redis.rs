//! Redis registry (rpcx-examples `registry/redis`): two servers publish `Arith` under
//! `/rpcx_test/Arith/tcp@...` (libkv's JSON values, PX TTLs), an XClient finds them through
//! keyspace notifications, one leaves.
//!
//! Needs Redis: `redis-server`, then `cargo run --example registry-redis --features redis`.
//! `REDIS_ADDR` overrides `redis://127.0.0.1:6379`. Exits 1 with a message when Redis cannot be reached.

#[path = "registry_common.rs"]
mod common;

use std::time::Duration;

use sextant_redis::{RedisOptions, RedisStore};
use sextant_registry::RegistryStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("REDIS_ADDR").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let store = || {
        RedisStore::new(
            &addr,
            RedisOptions::default().connect_timeout(Duration::from_secs(2)),
        )
        .expect("a Redis URL")
    };
    if let Err(e) = store().connect(Duration::from_secs(4)).await {
        common::unreachable(
            "Redis",
            &addr,
            "Start redis-server, or point REDIS_ADDR at yours.",
            &e,
        );
    }
    common::run("Redis", store).await
}
