//! rpcx's registry key layout: `{basePath}/{servicePath}/{network}@{host}:{port}`.
//!
//! # Base paths
//!
//! A base path is normalized to start with `/` and to have no trailing `/`: `rpcx_test`,
//! `/rpcx_test` and `/rpcx_test/` all mean `/rpcx_test`, and `""` or `/` mean the root (keys
//! `/Arith/tcp@...`). Empty segments (`/a//b`) are rejected. Go rpcx servers and clients sharing a
//! registry with sextant should write the base path with its leading slash, as rpcx's examples do
//! (`/rpcx_test`): rpcx's etcd plugin and discovery use the path exactly as written, so a Go
//! program configured with `rpcx_test` looks at different etcd keys. (rpcx's ZooKeeper, Redis and
//! Consul stores normalize the path themselves, as sextant does.)

use sextant::Address;

use crate::error::{RegistryError, Result};

/// Normalizes a base path (see the module docs): leading `/`, no trailing `/`, root as `""`.
pub fn normalize_base_path(base_path: &str) -> Result<String> {
    let trimmed = base_path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed.split('/').any(str::is_empty) {
        return Err(RegistryError::Config(format!(
            "base path {base_path:?} has an empty segment (`//`); write it like `/rpcx_test`"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(RegistryError::Config(format!(
            "base path {base_path:?} contains a control character"
        )));
    }
    Ok(format!("/{trimmed}"))
}

/// Checks a service path: not empty, not blank, no control characters, no leading or trailing
/// `/`.
pub fn check_service_path(service_path: &str) -> Result<()> {
    if service_path.trim().is_empty() {
        return Err(RegistryError::Config(
            "service path must not be empty".into(),
        ));
    }
    if service_path.starts_with('/') || service_path.ends_with('/') {
        return Err(RegistryError::Config(format!(
            "service path {service_path:?} must not start or end with `/`"
        )));
    }
    if service_path.chars().any(char::is_control) {
        return Err(RegistryError::Config(format!(
            "service path {service_path:?} contains a control character"
        )));
    }
    Ok(())
}

/// The directory of a service: `{basePath}/{servicePath}` (base path already normalized).
pub fn service_dir(base_path: &str, service_path: &str) -> String {
    format!("{base_path}/{service_path}")
}

/// The key of one server of a service: `{basePath}/{servicePath}/{address}`.
pub fn server_key(base_path: &str, service_path: &str, address: &str) -> String {
    format!("{base_path}/{service_path}/{address}")
}

/// Checks that a registry key's last part is a server address sextant can dial: what
/// [`Address::parse`] accepts and [`Address::check_dialable`] lets through (the one address
/// parser of sextant, so a discovery and an XClient never disagree about an address).
///
/// Every network sextant dials is accepted (`tcp`, `unix`, `reuseport`, `http`, `ws`, `wss`,
/// `quic`, `kcp`, `inprocess`); rpcx's `utp`, `rdma` and `memu` are reported as unsupported, so a
/// discovery skips them with a warning that says why.
pub fn check_server_address(address: &str) -> std::result::Result<(), String> {
    let describe = |e: sextant::Error| match e {
        sextant::Error::InvalidAddress { reason, .. } => reason,
        other => other.to_string(),
    };
    let parsed = Address::parse(address).map_err(describe)?;
    parsed.check_dialable().map_err(describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_are_normalized() {
        assert_eq!(normalize_base_path("rpcx_test").unwrap(), "/rpcx_test");
        assert_eq!(normalize_base_path("/rpcx_test").unwrap(), "/rpcx_test");
        assert_eq!(normalize_base_path("/rpcx_test/").unwrap(), "/rpcx_test");
        assert_eq!(normalize_base_path("a/b").unwrap(), "/a/b");
        assert_eq!(normalize_base_path("").unwrap(), "");
        assert_eq!(normalize_base_path("/").unwrap(), "");
        assert!(normalize_base_path("/a//b").is_err());
        assert!(normalize_base_path("/a\n").is_err());
    }

    #[test]
    fn keys_follow_rpcx_layout() {
        let base = normalize_base_path("rpcx_test").unwrap();
        assert_eq!(
            server_key(&base, "Arith", "tcp@127.0.0.1:8972"),
            "/rpcx_test/Arith/tcp@127.0.0.1:8972"
        );
        assert_eq!(service_dir("", "Arith"), "/Arith");
    }

    #[test]
    fn service_paths() {
        assert!(check_service_path("Arith").is_ok());
        assert!(check_service_path("").is_err());
        assert!(check_service_path(" ").is_err());
        assert!(check_service_path("/Arith").is_err());
    }

    #[test]
    fn addresses() {
        for ok in [
            "tcp@127.0.0.1:8972",
            "tcp@localhost:1",
            "tcp6@[::1]:8972",
            "tcp@my-host.example.com:80",
            "unix@/tmp/rpcx.sock",
            "inprocess@arith",
            "127.0.0.1:8972",
            "quic@127.0.0.1:8972",
            "kcp@127.0.0.1:8972",
            "ws@127.0.0.1:8972",
            "wss@h:1",
            "http@h:1",
            "reuseport@h:1",
        ] {
            assert!(check_server_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "tcp@127.0.0.1",
            "tcp@127.0.0.1:0",
            "tcp@127.0.0.1:99999",
            "tcp@:80",
            "tcp@bad host:80",
            "utp@127.0.0.1:8972",
            "quic@127.0.0.1:0",
            "foo@x:1",
            "unix@",
            "inprocess@",
            "rpcx_path",
        ] {
            assert!(check_server_address(bad).is_err(), "{bad}");
        }
        // The registry and the XClient agree on every address: both use Address::parse.
        for a in [
            "tcp@h:0",
            "tcp@h:99999",
            "inprocess@x",
            "tcp@h:1",
            "quic@h:1",
        ] {
            let xclient_ok = Address::parse(a).and_then(|a| a.check_dialable()).is_ok();
            assert_eq!(check_server_address(a).is_ok(), xclient_ok, "{a}");
        }
    }
}
