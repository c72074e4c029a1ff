//! sextant-kcp against Go's kcp-go (Debian's golang-github-xtaci-kcp-dev), both directions, with
//! AES (rpcx-examples' pass/salt key derivation) and FEC 10/3 in stream mode, on 127.0.0.1.
//!
//! Skipped with a note when `go` or the kcp-go package is missing, unless
//! `SEXTANT_REQUIRE_SERVICES=1` (then it fails). Every Go process is killed when its test ends
//! (`kill_on_drop`), and gives up by itself after its `-timeout`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sextant_kcp::{KcpConfig, KcpListener, KcpStream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};
use tokio::time::timeout;

const PASS: &str = "rpcx-key";
const SALT: &str = "rpcx-salt";
const GOPATH: &str = "/usr/share/gocode";

fn config() -> KcpConfig {
    KcpConfig::new().with_pass_salt(PASS, SALT).fec(10, 3)
}

fn pattern(i: usize) -> u8 {
    // The same pattern as tests/go/kcpecho.
    ((i * 7 + i / 251) & 0xff) as u8
}

/// Builds tests/go/kcpecho once; `None` (after printing why) when Go or kcp-go is missing.
fn kcpecho() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let required = std::env::var("SEXTANT_REQUIRE_SERVICES").as_deref() == Ok("1");
        let missing = |why: String| {
            if required {
                panic!("SEXTANT_REQUIRE_SERVICES=1 but {why}");
            }
            eprintln!("note: skipping the kcp-go interop tests: {why} (apt-get install golang-go golang-github-xtaci-kcp-dev)");
            None
        };
        if std::process::Command::new("go").arg("version").output().is_err() {
            return missing("`go` is not installed".into());
        }
        if !Path::new(GOPATH).join("src/github.com/xtaci/kcp-go").is_dir() {
            return missing(format!("kcp-go is not in {GOPATH}"));
        }
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let bin = tmp.join("kcpecho");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/kcpecho");
        let out = std::process::Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&src)
            .env("GO111MODULE", "off")
            .env("GOPATH", GOPATH)
            .env("GOCACHE", tmp.join("gocache"))
            .env("GOPROXY", "off")
            .output()
            .expect("run go build");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if required {
                panic!("go build of kcpecho failed: {err}");
            }
            eprintln!("note: skipping the kcp-go interop tests: go build failed: {err}");
            return None;
        }
        Some(bin)
    })
    .clone()
}

fn go(bin: &Path, args: &[&str]) -> Child {
    Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start kcpecho")
}

/// Starts the Go echo server; returns it, its address, and the latest `fec_recovered` it
/// reported.
async fn go_server(bin: &Path) -> (Child, SocketAddr, Arc<AtomicU64>) {
    let mut child = go(
        bin,
        &[
            "server",
            "-addr",
            "127.0.0.1:0",
            "-pass",
            PASS,
            "-salt",
            SALT,
            "-timeout",
            "90s",
        ],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("kcpecho server start")
        .unwrap()
        .unwrap();
    let addr = first
        .strip_prefix("LISTEN ")
        .unwrap_or_else(|| panic!("unexpected {first:?}"))
        .parse()
        .unwrap();
    let recovered = Arc::new(AtomicU64::new(0));
    let r = recovered.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(v) = field(&line, "fec_recovered") {
                r.store(v, Ordering::Relaxed);
            }
        }
    });
    (child, addr, recovered)
}

fn field(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

async fn rust_echo_client(addr: SocketAddr, n: usize) -> KcpStream {
    let stream = KcpStream::connect(addr, config()).await.unwrap();
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        let data: Vec<u8> = (0..n).map(pattern).collect();
        for chunk in data.chunks(8 * 1024) {
            w.write_all(chunk).await.unwrap();
        }
        w
    });
    let mut got = vec![0u8; n];
    let start = std::time::Instant::now();
    r.read_exact(&mut got).await.unwrap();
    println!(
        "Rust client <-> Go server: {n} bytes echoed in {:?}",
        start.elapsed()
    );
    for (i, b) in got.iter().enumerate() {
        assert_eq!(*b, pattern(i), "byte {i}");
    }
    r.unsplit(writer.await.unwrap())
}

/// Starts a Rust echo listener; returns its address and the sessions it accepted.
async fn rust_server() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Arc<tokio::sync::Mutex<Option<sextant_kcp::KcpStats>>>>,
    tokio::task::JoinHandle<()>,
) {
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), config())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let stats = Arc::new(tokio::sync::Mutex::new(None));
            let _ = tx.send(stats.clone());
            tokio::spawn(async move {
                let mut stream = stream;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                    *stats.lock().await = Some(stream.stats());
                }
            });
        }
    });
    (addr, rx, task)
}

async fn go_client(bin: &Path, addr: SocketAddr, n: usize) -> String {
    let mut child = go(
        bin,
        &[
            "client",
            "-addr",
            &addr.to_string(),
            "-pass",
            PASS,
            "-salt",
            SALT,
            "-bytes",
            &n.to_string(),
            "-timeout",
            "60s",
        ],
    );
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    let status = timeout(Duration::from_secs(70), child.wait())
        .await
        .expect("kcpecho client exit")
        .unwrap();
    assert!(
        status.success() && out.starts_with("OK"),
        "kcpecho client: {status} {out}"
    );
    println!("Go client <-> Rust server: {}", out.trim());
    out
}

#[tokio::test]
async fn rust_client_talks_to_go_server() {
    let Some(bin) = kcpecho() else { return };
    let (_server, addr, _) = go_server(&bin).await;
    timeout(Duration::from_secs(60), rust_echo_client(addr, 1 << 20))
        .await
        .expect("echo via the Go server");
}

#[tokio::test]
async fn go_client_talks_to_rust_server() {
    let Some(bin) = kcpecho() else { return };
    let (addr, _sessions, server) = rust_server().await;
    go_client(&bin, addr, 1 << 20).await;
    server.abort();
}

/// A UDP relay that drops every `every`-th datagram in each direction (one client).
async fn lossy_proxy(upstream: SocketAddr, every: u64) -> SocketAddr {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    back.connect(upstream).await.unwrap();
    let addr = front.local_addr().unwrap();
    let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
    let (f, b, c) = (front.clone(), back.clone(), client.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let mut count = 0u64;
        while let Ok((n, from)) = f.recv_from(&mut buf).await {
            *c.lock().unwrap() = Some(from);
            count += 1;
            if !count.is_multiple_of(every) {
                let _ = b.send(&buf[..n]).await;
            }
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let mut count = 0u64;
        while let Ok(n) = back.recv(&mut buf).await {
            count += 1;
            let to = *client.lock().unwrap();
            if let Some(to) = to {
                if !count.is_multiple_of(every) {
                    let _ = front.send_to(&buf[..n], to).await;
                }
            }
        }
    });
    addr
}

/// With datagrams lost on the way, each side recovers some of the other's packets from its
/// parity: Go decodes Rust's parity and Rust decodes Go's.
#[tokio::test]
async fn fec_parity_is_understood_both_ways() {
    let Some(bin) = kcpecho() else { return };

    let (_server, go_addr, go_recovered) = go_server(&bin).await;
    let proxy = lossy_proxy(go_addr, 9).await;
    let client = timeout(Duration::from_secs(60), rust_echo_client(proxy, 512 * 1024))
        .await
        .expect("lossy echo via Go");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let go_rec = go_recovered.load(Ordering::Relaxed);
    let rust_rec = client.stats().fec_recovered;
    println!("Rust client -> Go server through 1/9 loss: Go recovered {go_rec}, Rust recovered {rust_rec}");
    assert!(
        go_rec > 0,
        "kcp-go recovered nothing from sextant-kcp's parity"
    );
    assert!(
        rust_rec > 0,
        "sextant-kcp recovered nothing from kcp-go's parity"
    );

    let (addr, mut sessions, server) = rust_server().await;
    let proxy = lossy_proxy(addr, 9).await;
    let out = go_client(&bin, proxy, 512 * 1024).await;
    let stats = sessions.recv().await.unwrap();
    let rust_rec = stats.lock().await.map(|s| s.fec_recovered).unwrap_or(0);
    let go_rec = field(&out, "fec_recovered").unwrap_or(0);
    println!("Go client -> Rust server through 1/9 loss: Go recovered {go_rec}, Rust recovered {rust_rec}");
    assert!(rust_rec > 0 && go_rec > 0);
    server.abort();
}
