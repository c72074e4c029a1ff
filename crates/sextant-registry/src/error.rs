//! The errors of registry plugins, discoveries and registry backends.

use std::fmt;
use std::time::Duration;

/// What went wrong talking to a registry, or with a registry setting.
///
/// Every message names the engine (`etcd`, `zookeeper`, ...) and the operation, and the
/// variants that a caller can act on say what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry could not be reached when a plugin or discovery started.
    #[error(
        "cannot reach {engine} at {endpoints}: {reason}; check that it runs and that the address \
         is right, or set `retry_on_start` in the options to keep trying in the background"
    )]
    Unreachable {
        /// The engine (`etcd`, `zookeeper`, `redis`, `consul`, `mdns`, `embedded`).
        engine: &'static str,
        /// The endpoints that were tried.
        endpoints: String,
        /// Why the connection failed.
        reason: String,
    },
    /// One request to the registry took longer than the request timeout.
    #[error("{engine}: {operation} timed out after {timeout:?}")]
    Timeout {
        /// The engine.
        engine: &'static str,
        /// What was being done (`put /rpcx_test/Arith/tcp@127.0.0.1:8972`).
        operation: String,
        /// The timeout in force.
        timeout: Duration,
    },
    /// The registry answered with an error, or the connection to it broke.
    #[error("{engine}: {operation} failed: {reason}")]
    Backend {
        /// The engine.
        engine: &'static str,
        /// What was being done.
        operation: String,
        /// The engine's error.
        reason: String,
    },
    /// An option or argument is invalid; the message says which and why.
    #[error("invalid registry configuration: {0}")]
    Config(String),
    /// The plugin or discovery was stopped; nothing more can be done with it.
    #[error("the registry plugin or discovery has stopped")]
    Stopped,
}

impl RegistryError {
    /// A [`RegistryError::Backend`] for `operation` on `engine`, caused by `reason`.
    pub fn backend(
        engine: &'static str,
        operation: impl Into<String>,
        reason: impl fmt::Display,
    ) -> RegistryError {
        RegistryError::Backend {
            engine,
            operation: operation.into(),
            reason: reason.to_string(),
        }
    }

    /// A [`RegistryError::Unreachable`] for `engine` at `endpoints`, caused by `reason`.
    pub fn unreachable(
        engine: &'static str,
        endpoints: impl Into<String>,
        reason: impl fmt::Display,
    ) -> RegistryError {
        RegistryError::Unreachable {
            engine,
            endpoints: endpoints.into(),
            reason: reason.to_string(),
        }
    }
}

/// Result with a [`RegistryError`].
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Runs `fut` under `timeout`, turning an expiry into [`RegistryError::Timeout`].
pub(crate) async fn with_timeout<T>(
    engine: &'static str,
    operation: impl FnOnce() -> String,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(RegistryError::Timeout {
            engine,
            operation: operation(),
            timeout,
        }),
    }
}
