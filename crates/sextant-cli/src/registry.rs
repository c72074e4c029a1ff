//! `sextant registry`: run the embedded registry until Ctrl-C or SIGTERM.

use std::time::Duration;

use clap::Args;
use sextant_registry::{EmbeddedRegistry, EmbeddedRegistryOptions};

use crate::duration;

/// Options of `sextant registry`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The address to listen on, `host:port` (port 0 picks a free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:9980")]
    pub addr: String,
    /// The longest TTL an entry may ask for.
    #[arg(long, default_value = "10m", value_parser = duration::parse)]
    pub max_ttl: Duration,
    /// The longest a watch request blocks before answering "no change".
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    pub max_wait: Duration,
    /// The most entries held.
    #[arg(long, default_value_t = 100_000)]
    pub max_entries: usize,
}

/// Runs the registry until interrupted.
pub async fn run(args: RegistryArgs) -> Result<(), String> {
    let options = EmbeddedRegistryOptions::default()
        .max_ttl(args.max_ttl)
        .max_wait(args.max_wait)
        .max_entries(args.max_entries);
    let registry = EmbeddedRegistry::bind(args.addr.as_str(), options)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e} (is another process using the port? pick another with --addr)",
                args.addr
            )
        })?;
    // The first line of stdout is the URL, for scripts and tests.
    println!("{}", registry.url());
    eprintln!(
        "sextant embedded registry at {}: servers use EmbeddedStore::new({:?}); Ctrl-C stops it",
        registry.url(),
        registry.url()
    );
    let stop = registry.shutdown_token();
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = stop.cancelled() => {}
    }
    tracing::info!("stopping the embedded registry");
    registry.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM on unix (`gateway` waits for it too).
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
