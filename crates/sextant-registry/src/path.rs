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

use std::net::IpAddr;

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

/// Checks that a registry key's last part is a server address sextant can dial:
/// `tcp@host:port` (also `tcp4`, `tcp6`) or `unix@/path`.
///
/// rpcx registries may also hold `quic@`, `kcp@`, `http@`, `ws@` servers (Go rpcx servers); they
/// are reported as unsupported, so a discovery skips them with a warning that says why.
pub fn check_server_address(address: &str) -> std::result::Result<(), String> {
    let Some((network, addr)) = address.split_once('@') else {
        return Err("expected network@host:port, e.g. tcp@127.0.0.1:8972".into());
    };
    match network {
        "tcp" | "tcp4" | "tcp6" => {
            let Some((host, port)) = addr.rsplit_once(':') else {
                return Err("a tcp address needs host:port".into());
            };
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!("{port:?} is not a port number (1-65535)"));
            }
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            if host.is_empty() {
                return Err("the host is empty".into());
            }
            if host.parse::<IpAddr>().is_err() && !is_hostname(host) {
                return Err(format!("{host:?} is neither an IP address nor a host name"));
            }
            Ok(())
        }
        "unix" => {
            if addr.is_empty() {
                Err("the socket path is empty".into())
            } else {
                Ok(())
            }
        }
        "quic" | "kcp" | "http" | "ws" | "wss" | "reuseport" | "rdma" | "utp" | "memu" => Err(
            format!("network {network:?} is an rpcx network sextant cannot dial yet"),
        ),
        _ => Err(format!("unknown network {network:?}")),
    }
}

fn is_hostname(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
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
        ] {
            assert!(check_server_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1:8972",
            "tcp@127.0.0.1",
            "tcp@127.0.0.1:0",
            "tcp@127.0.0.1:99999",
            "tcp@:80",
            "tcp@bad host:80",
            "quic@127.0.0.1:8972",
            "foo@x:1",
            "unix@",
            "rpcx_path",
        ] {
            assert!(check_server_address(bad).is_err(), "{bad}");
        }
    }
}
