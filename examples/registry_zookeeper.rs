//! ZooKeeper registry (rpcx-examples `registry/zookeeper`): two servers publish `Arith` as
//! ephemeral nodes `/rpcx_test/Arith/tcp@...`, an XClient finds them, one leaves.
//!
//! Needs ZooKeeper 3.6+ (Debian: `apt install zookeeperd`, or
//! `java -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain zoo.cfg`),
//! then `cargo run --example registry-zookeeper --features zookeeper`. `ZK_ADDR` overrides
//! `127.0.0.1:2181`.
//! Exits 1 with a message when ZooKeeper cannot be reached.

#[path = "registry_common.rs"]
mod common;

use std::time::Duration;

use sextant_registry::RegistryStore;
use sextant_zookeeper::{ZooKeeperOptions, ZooKeeperStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("ZK_ADDR").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let store = || {
        ZooKeeperStore::new(
            &addr,
            ZooKeeperOptions::default().connect_timeout(Duration::from_secs(3)),
        )
        .expect("a ZooKeeper address")
    };
    if let Err(e) = store().connect(Duration::from_secs(10)).await {
        common::unreachable(
            "ZooKeeper",
            &addr,
            "Start ZooKeeper, or point ZK_ADDR at yours.",
            &e,
        );
    }
    common::run("ZooKeeper", store).await
}
