//! Consul registry (rpcx-examples `registry/consul`): two servers publish `Arith` in Consul, an
//! XClient finds them through blocking queries, one leaves. By default in rpcx's KV layout
//! (`rpcx_test/Arith/tcp@...` held by a session); `CONSUL_MODE=agent` registers agent services
//! with TTL checks instead.
//!
//! Needs a Consul agent: `consul agent -dev`, then
//! `cargo run --example registry-consul --features consul`.
//! `CONSUL_ADDR` overrides `http://127.0.0.1:8500`. Exits 1 with a message when Consul cannot
//! be reached. (Consul sessions live at least 10 s, so in KV mode a crashed server lingers for
//! 10-20 s; a graceful shutdown, as here, removes it at once.)

#[path = "registry_common.rs"]
mod common;

use std::time::Duration;

use sextant_consul::{ConsulMode, ConsulOptions, ConsulStore};
use sextant_registry::RegistryStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("CONSUL_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8500".into());
    let mode = match std::env::var("CONSUL_MODE").as_deref() {
        Ok("agent") => ConsulMode::AgentService,
        _ => ConsulMode::Kv,
    };
    println!("Consul layout: {mode:?}");
    let store =
        || ConsulStore::new(&addr, ConsulOptions::default().mode(mode)).expect("a Consul URL");
    match tokio::time::timeout(
        Duration::from_secs(5),
        store().connect(Duration::from_secs(20)),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => common::unreachable(
            "Consul",
            &addr,
            "Start an agent (`consul agent -dev`), or point CONSUL_ADDR at yours.",
            &e,
        ),
        Err(_) => common::unreachable(
            "Consul",
            &addr,
            "Start an agent (`consul agent -dev`), or point CONSUL_ADDR at yours.",
            &sextant_registry::RegistryError::unreachable(
                "consul",
                addr.clone(),
                "no answer within 5 s",
            ),
        ),
    }
    common::run("Consul", store).await
}
