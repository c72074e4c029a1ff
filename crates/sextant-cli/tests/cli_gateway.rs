//! `sextant gateway` as a process: it prints its URL, forwards HTTP invoke and JSON-RPC calls to
//! the servers of an embedded registry, and stops on SIGTERM; a bad registry URL, an unreachable
//! registry and an agent on a public address are clear errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sextant_registry::{EmbeddedRegistry, EmbeddedRegistryOptions, EmbeddedStore, RegistryOptions};
use sextant_registry_testkit::scenarios::start_server;

/// The child process, killed and reaped on drop (also when the test panics).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sextant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sextant"))
}

/// One HTTP/1.1 POST (`Connection: close`): status and body.
fn post(addr: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_command_forwards_to_the_registry_s_servers() {
    let registry = EmbeddedRegistry::bind("127.0.0.1:0", EmbeddedRegistryOptions::default())
        .await
        .unwrap();
    let options = RegistryOptions::default()
        .base_path("/cli_gw")
        .update_interval(Duration::from_secs(1));
    let server = start_server(EmbeddedStore::new(&registry.url()).unwrap(), options, "").await;

    let (mut gateway, addr) = start_gateway(
        &format!("{}/cli_gw", registry.url()),
        &["--timeout", "5s", "--max-body", "64KiB"],
    );

    let a = addr.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        post(
            &a,
            &[
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-ServicePath", "Arith"),
                ("X-RPCX-ServiceMethod", "Mul"),
            ],
            r#"{"A":6,"B":7}"#,
        )
    })
    .await
    .unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"C":42}"#));
    let a = addr.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        post(
            &a,
            &[("X-JSONRPC-2.0", "true")],
            r#"{"jsonrpc":"2.0","method":"Arith.Mul","params":{"A":2,"B":5},"id":1}"#,
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"jsonrpc":"2.0","result":{"C":10},"id":1}"#);
    // --max-body.
    let a = addr.clone();
    let (status, _) = tokio::task::spawn_blocking(move || {
        post(
            &a,
            &[
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-ServicePath", "Arith"),
                ("X-RPCX-ServiceMethod", "Mul"),
            ],
            &"x".repeat(70 * 1024),
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 413);

    // SIGTERM stops it cleanly.
    let pid = gateway.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut exited = None;
    for _ in 0..200 {
        if let Some(s) = gateway.0.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = exited.expect("sextant gateway exits within 10 s of SIGTERM");
    assert!(exited.success(), "{exited}");
    server.shutdown().await;
    registry.shutdown().await;
}

fn fails_with(args: &[&str], text: &str) {
    let out = sextant().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.contains(text), "{args:?}: {err}");
}

#[test]
fn bad_registries_and_addresses_are_clear_errors() {
    fails_with(
        &["gateway", "--registry", "nacos://127.0.0.1:8848"],
        "unknown registry type \"nacos\"",
    );
    fails_with(
        &["gateway", "--registry", "127.0.0.1:2379"],
        "not a registry URL",
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fails_with(
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--registry",
            &format!("http://127.0.0.1:{closed}"),
        ],
        "cannot be reached",
    );
    fails_with(
        &[
            "gateway",
            "--agent",
            "--listen",
            "0.0.0.0:0",
            "--registry",
            "peer2peer://127.0.0.1:8972",
        ],
        "loopback",
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    fails_with(
        &[
            "gateway",
            "--listen",
            &addr,
            "--registry",
            "peer2peer://127.0.0.1:8972",
        ],
        "--listen",
    );
    // clap's own errors: exit code 2.
    let out = sextant()
        .args([
            "gateway",
            "--registry",
            "peer2peer://h:1",
            "--fail-mode",
            "sometimes",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = sextant()
        .args([
            "gateway",
            "--registry",
            "peer2peer://h:1",
            "--max-body",
            "1XB",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
}

/// Starts `sextant gateway` with `registry` on a free port; returns it and its `host:port`.
fn start_gateway(registry: &str, more: &[&str]) -> (Proc, String) {
    let mut child = sextant()
        .args(["gateway", "--listen", "127.0.0.1:0", "--registry", registry])
        .args(more)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the sextant binary");
    let stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    (proc, addr)
}

/// `etcd://` on a real etcd (started by the test; skipped when etcd is not installed).
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_command_on_etcd() {
    let Some(etcd) = sextant_registry_testkit::EtcdServer::start().await else {
        return;
    };
    let store = sextant_etcd::EtcdStore::new(
        [format!("http://{}", etcd.address())],
        sextant_etcd::EtcdOptions::default(),
    )
    .unwrap();
    let options = RegistryOptions::default()
        .base_path("/cli_gw_etcd")
        .update_interval(Duration::from_secs(1));
    let server = start_server(store, options, "").await;
    let (gateway, addr) = start_gateway(&format!("etcd://{}/cli_gw_etcd", etcd.address()), &[]);
    let (status, body) = tokio::task::spawn_blocking(move || {
        post(
            &addr,
            &[
                ("X-RPCX-SerializeType", "1"),
                ("X-RPCX-ServicePath", "Arith"),
                ("X-RPCX-ServiceMethod", "Mul"),
            ],
            r#"{"A":3,"B":7}"#,
        )
    })
    .await
    .unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"C":21}"#));
    drop(gateway);
    server.shutdown().await;
}
