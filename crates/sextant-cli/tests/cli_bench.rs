//! `sextant bench server` and `sextant bench client` as real processes on loopback: the client
//! makes every call without error and reports a JSON line.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn bench_client_loads_bench_server() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Kill(
        Command::new(env!("CARGO_BIN_EXE_sextant"))
            .args(["bench", "server", "--addr", &addr, "--threads", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Wait (bounded) until the server says it listens.
    let stderr = server.0.stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "server said: {line}");

    for workload in ["hello", "arith"] {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
            .args([
                "bench", "client", "--addr", &addr, "-c", "8", "-k", "2", "-n", "2000",
            ])
            .args([
                "--json",
                "--no-progress",
                "--threads",
                "1",
                "--workload",
                workload,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(started.elapsed() < Duration::from_secs(120));
        let json = String::from_utf8(out.stdout).unwrap();
        assert!(json.contains("\"errors\":0"), "{json}");
        assert!(json.contains("\"n\":2000"), "{json}");
        assert!(json.contains("\"p99_us\""), "{json}");
    }
}
