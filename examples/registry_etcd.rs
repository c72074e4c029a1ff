//! etcd registry (rpcx-examples `registry/etcdv3`): two servers publish `Arith` in etcd under
//! `/rpcx_test/Arith/tcp@...` (leases with keep-alive), an XClient finds them, one leaves.
//!
//! Needs etcd: `etcd` (Debian: `apt install etcd-server`), then
//! `cargo run --example registry-etcd --features etcd` (building etcd-client needs `protoc`:
//! Debian's `protobuf-compiler`). `ETCD_ADDR` overrides `http://127.0.0.1:2379`.
//! Exits 1 with a message when etcd cannot be reached.

#[path = "registry_common.rs"]
mod common;

use std::time::Duration;

use sextant_etcd::{EtcdOptions, EtcdStore};
use sextant_registry::RegistryStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("ETCD_ADDR").unwrap_or_else(|_| "http://127.0.0.1:2379".into());
    let store = || {
        EtcdStore::new(
            [addr.as_str()],
            EtcdOptions::default().connect_timeout(Duration::from_secs(2)),
        )
        .expect("an etcd endpoint")
    };
    let probe = tokio::time::timeout(
        Duration::from_secs(5),
        store().connect(Duration::from_secs(20)),
    )
    .await;
    match probe {
        Ok(Ok(())) => {}
        Ok(Err(e)) => common::unreachable(
            "etcd",
            &addr,
            "Start etcd, or point ETCD_ADDR at yours.",
            &e,
        ),
        Err(_) => common::unreachable(
            "etcd",
            &addr,
            "Start etcd, or point ETCD_ADDR at yours.",
            &sextant_registry::RegistryError::unreachable(
                "etcd",
                addr.clone(),
                "no answer within 5 s",
            ),
        ),
    }
    common::run("etcd", store).await
}
