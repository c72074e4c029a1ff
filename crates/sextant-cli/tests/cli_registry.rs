//! `sextant registry` as a process: it prints its URL, serves the embedded registry to a server
//! plugin and a discovery, and stops on SIGTERM; bad arguments and a busy port are clear errors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sextant::ServiceDiscovery;
use sextant_registry::{DiscoveryOptions, EmbeddedStore, RegistryDiscovery};
use sextant_registry_testkit::scenarios::start_server;
use sextant_registry_testkit::{call_mul, wait_until};

/// The child process, killed and reaped on drop (also when the test panics).
struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sextant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sextant"))
}

/// Starts `sextant registry` on a free port and returns it with its URL (its first stdout line).
fn start() -> (Registry, String) {
    let mut child = sextant()
        .args(["registry", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the sextant binary");
    let stdout = child.stdout.take().unwrap();
    let guard = Registry(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
    (guard, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_command_serves_plugins_and_discoveries() {
    let (mut registry, url) = start();
    let store = EmbeddedStore::new(&url).unwrap();
    let options =
        sextant_registry::RegistryOptions::default().update_interval(Duration::from_secs(1));
    let server = start_server(store.clone(), options, "weight=1").await;
    let d = RegistryDiscovery::start(store, "/rpcx_test", "Arith", DiscoveryOptions::default())
        .await
        .unwrap();
    wait_until(
        "discovered through the CLI registry",
        Duration::from_secs(20),
        || async { d.get_services().len() == 1 },
    )
    .await;
    assert_eq!(call_mul(&d.get_services()[0].key, 6, 7).await.unwrap(), 42);
    server.shutdown().await;

    // SIGTERM stops it cleanly.
    let pid = registry.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(s) = registry.0.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = exited.expect("sextant registry exits within 5 s of SIGTERM");
    assert!(exited.success(), "{exited}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    let out = sextant()
        .args(["registry", "--max-ttl", "10d"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown unit"), "{err}");

    let out = sextant().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("registry"));
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = sextant()
        .args(["registry", "--addr", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot listen on") && err.contains("--addr"),
        "{err}"
    );
}
