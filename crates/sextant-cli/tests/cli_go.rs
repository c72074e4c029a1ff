//! `sextant call` against a Go server on every network rpcx has: the Go end is the transport
//! peer of `sextant-interop` (`sextant_interop::go_peer`: it listens exactly as rpcx's server
//! does on each network, with the libraries rpcx uses, and answers every request with Go rpcx's
//! captured `Arith.Mul` response, `C = 200`). The command's transport and TLS flags must reach
//! it and print the reply as JSON.
//!
//! Without Go and its Debian packages the tests print why and pass, unless
//! `SEXTANT_REQUIRE_SERVICES=1`.

use std::path::Path;
use std::process::Output;

use sextant_interop::go_peer::{self, GoProcess};

mod common;
use sextant_interop::pki::TestPki;

/// Go rpcx's response to `Arith.Mul {A: 10, B: 20}` (msgpack), as captured.
fn response() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/wire/go-resp-arith-mul-msgpack-seq1.hex");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Runs `sextant ARGS` to the end (killed after 30 s).
fn sextant(args: &[String]) -> Output {
    let mut command = common::sextant();
    command.args(args);
    common::run_to_end(command, b"")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Starts the Go server on `net` (with `go_args`), then `sextant call NET@ADDR Arith.Mul` with
/// `call_args`: the reply must be `{"C": 200}`.
fn call_go_server(net: &str, go_args: &[String], call_args: &[String], dir: &Path) {
    let Some(peer) = go_peer::peer(
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("go_transports"),
        "cli_go",
    ) else {
        return;
    };
    let mut args = strings(&["server", "-net", net, "-addr", "127.0.0.1:0"]);
    args.extend(strings(&["-resp", &response()]));
    args.extend_from_slice(go_args);
    let mut go = GoProcess::spawn(peer, &args, dir, &format!("server-{net}"));
    let addr = go
        .listening_on()
        .unwrap_or_else(|e| panic!("{net}: Go server: {e}"));
    let mut args = strings(&[
        "call",
        &format!("{net}@{addr}"),
        "Arith.Mul",
        r#"{"A":10,"B":20}"#,
    ]);
    args.extend_from_slice(call_args);
    args.extend(strings(&["--timeout", "10s"]));
    let out = sextant(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{net}: sextant {args:?}\nstderr: {stderr}\nGo stderr: {}",
        go.stderr()
    );
    let v: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{net}: {e}: {stdout}"));
    assert_eq!(v, serde_json::json!({"C": 200}), "{net}");
}

/// A CA, server and client certificates as files in a fresh directory.
struct Certs {
    dir: tempfile::TempDir,
    ca: String,
    server: [String; 2],
    client: [String; 2],
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new().unwrap();
    let [ca, sc, sk, cc, ck] = pki
        .write_to(dir.path())
        .unwrap()
        .map(|p| p.display().to_string());
    Certs {
        dir,
        ca,
        server: [sc, sk],
        client: [cc, ck],
    }
}

impl Certs {
    fn go_tls(&self) -> Vec<String> {
        strings(&["-cert", &self.server[0], "-key", &self.server[1]])
    }
}

#[test]
fn plain_networks() {
    let dir = tempfile::tempdir().unwrap();
    for net in ["tcp", "http", "ws"] {
        call_go_server(net, &[], &[], dir.path());
    }
}

#[test]
fn tls_networks() {
    let c = certs();
    let ca = strings(&["--ca", &c.ca]);
    for net in ["tcp", "http", "wss", "quic"] {
        call_go_server(net, &c.go_tls(), &ca, c.dir.path());
    }
}

#[test]
fn mutual_tls() {
    let c = certs();
    let mut go = c.go_tls();
    go.extend(strings(&["-clientca", &c.ca]));
    let call = strings(&[
        "--ca",
        &c.ca,
        "--cert",
        &c.client[0],
        "--key",
        &c.client[1],
        "--server-name",
        "localhost",
    ]);
    call_go_server("tcp", &go, &call, c.dir.path());
}

#[test]
fn kcp() {
    let dir = tempfile::tempdir().unwrap();
    // rpcx-examples' pass and salt, on both sides.
    call_go_server(
        "kcp",
        &strings(&["-kcppass", "rpcx-pass", "-kcpsalt", "rpcx-salt"]),
        &strings(&["--kcp-pass", "rpcx-pass", "--kcp-salt", "rpcx-salt"]),
        dir.path(),
    );
}
