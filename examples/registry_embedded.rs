//! Embedded registry (no external service): the registry runs in this process (as
//! `sextant registry --addr 127.0.0.1:9980` would run it on its own); two servers publish
//! `Arith` in it, an XClient finds them through it, one server leaves.
//!
//! Run: `cargo run --example registry-embedded`
//! (`REGISTRY_ADDR=http://127.0.0.1:9980` uses a registry already running instead.)

#[path = "registry_common.rs"]
mod common;

use sextant_registry::{EmbeddedRegistry, EmbeddedRegistryOptions, EmbeddedStore, RegistryStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _registry) = match std::env::var("REGISTRY_ADDR") {
        Ok(url) => (url, None),
        Err(_) => {
            let r =
                EmbeddedRegistry::bind("127.0.0.1:0", EmbeddedRegistryOptions::default()).await?;
            println!("embedded registry at {}", r.url());
            (r.url(), Some(r))
        }
    };
    let probe = EmbeddedStore::new(&url)?;
    if let Err(e) = probe.connect(std::time::Duration::from_secs(1)).await {
        common::unreachable(
            "the embedded registry",
            &url,
            "Start one with `sextant registry --addr 127.0.0.1:9980`, or unset REGISTRY_ADDR.",
            &e,
        );
    }
    common::run("embedded registry", || {
        EmbeddedStore::new(&url).expect("a valid URL")
    })
    .await
}
