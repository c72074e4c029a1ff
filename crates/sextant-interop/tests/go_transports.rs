//! sextant's transports against the Go libraries Go rpcx uses for them, in both directions:
//! tcp, TLS and mutual TLS over tcp, http (CONNECT `/_rpcx_`, plain and over TLS), ws, wss,
//! quic and kcp.
//!
//! No Go rpcx build is available, so the Go end is `tests/go/transport_peer`, a small program
//! that dials and listens exactly as rpcx does on each network, with the same libraries: the
//! standard library (TCP, TLS, `net/http`), golang.org/x/net/websocket, quic-go and kcp-go
//! (rpcx-examples' pbkdf2 AES key, FEC 10/3, stream mode). As a client
//! it sends Go rpcx's captured `Arith.Mul` request (`testdata/wire`) and prints the one response
//! frame it reads, which must be Go rpcx's captured response byte for byte; as a server it
//! answers every request with that captured response, and a `sextant::Client` must read
//! `C = 200` from it.
//!
//! The peer is built once per test run from Debian's Go packages (`scripts/services.sh install`:
//! golang-go, golang-golang-x-net-dev, golang-github-lucas-clemente-quic-go-dev,
//! golang-github-xtaci-kcp-dev), offline, in
//! GOPATH mode. Without them every test prints why and passes, unless
//! `SEXTANT_REQUIRE_SERVICES=1`, which makes it fail. `SEXTANT_GO` names the `go` binary and
//! `SEXTANT_GOPATH` the GOPATH holding the packages (default `/usr/share/gocode`).

use std::path::Path;
use std::time::Duration;

use sextant::transport::{ClientTlsConfig, ServerTlsConfig};
use sextant::{Client, ClientOptions, Server};
use sextant_interop::go_peer::{self, GoProcess, WAIT};
use sextant_interop::pki::TestPki;
use sextant_interop::{Args, Reply};
use tempfile::TempDir;

/// The request and response captured from Go rpcx (`Arith.Mul` {A: 10, B: 20}, msgpack, seq 1).
const REQUEST: &str = "go-req-arith-mul-msgpack-seq1";
const RESPONSE: &str = "go-resp-arith-mul-msgpack-seq1";

fn capture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/wire")
        .join(format!("{name}.hex"));
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The Go peer, built once per run into this test target's temporary directory.
fn go_peer() -> Option<&'static Path> {
    go_peer::peer(
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("go_transports"),
        "go_transports",
    )
}

// ---- networks and certificates ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    Tcp,
    Tls,
    MutualTls,
    Http,
    HttpTls,
    Ws,
    Wss,
    Quic,
    Kcp,
}

/// rpcx-examples' KCP pass and salt, given to both sides.
const KCP_PASS: &str = "rpcx-pass";
const KCP_SALT: &str = "rpcx-salt";

impl Net {
    /// The network, as rpcx (and the Go peer's `-net`) and sextant's addresses name it.
    fn name(self) -> &'static str {
        match self {
            Net::Tcp | Net::Tls | Net::MutualTls => "tcp",
            Net::Http | Net::HttpTls => "http",
            Net::Ws => "ws",
            Net::Wss => "wss",
            Net::Quic => "quic",
            Net::Kcp => "kcp",
        }
    }

    fn tls(self) -> bool {
        matches!(
            self,
            Net::Tls | Net::MutualTls | Net::HttpTls | Net::Wss | Net::Quic
        )
    }

    fn mutual(self) -> bool {
        self == Net::MutualTls
    }

    /// The Go peer's switches for the KCP key.
    fn kcp_args(self) -> Vec<String> {
        if self == Net::Kcp {
            strings(&["-kcppass", KCP_PASS, "-kcpsalt", KCP_SALT])
        } else {
            Vec::new()
        }
    }
}

fn kcp_config() -> sextant::transport::KcpConfig {
    sextant::transport::KcpConfig::new().with_pass_salt(KCP_PASS, KCP_SALT)
}

/// A fresh CA, server and client certificate, also as PEM files for the Go side, and the
/// directory the Go processes write their output to.
struct Fixture {
    pki: TestPki,
    dir: TempDir,
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

impl Fixture {
    fn new() -> Fixture {
        let pki = TestPki::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let [ca, server_cert, server_key, client_cert, client_key] = pki
            .write_to(dir.path())
            .unwrap()
            .map(|p| p.display().to_string());
        Fixture {
            pki,
            dir,
            ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }

    fn server_tls(&self, net: Net) -> ServerTlsConfig {
        let b = ServerTlsConfig::builder()
            .identity_pem(
                self.pki.server.cert.as_bytes(),
                self.pki.server.key.as_bytes(),
            )
            .unwrap();
        let b = if net.mutual() {
            b.client_ca_pem(self.pki.ca.as_bytes()).unwrap()
        } else {
            b
        };
        b.build().unwrap()
    }

    fn client_options(&self, net: Net, with_identity: bool) -> ClientOptions {
        let options = ClientOptions::default();
        if net == Net::Kcp {
            return options.kcp(kcp_config());
        }
        if !net.tls() {
            return options;
        }
        let b = ClientTlsConfig::builder()
            .ca_pem(self.pki.ca.as_bytes())
            .unwrap();
        let b = if with_identity {
            b.identity_pem(
                self.pki.client.cert.as_bytes(),
                self.pki.client.key.as_bytes(),
            )
            .unwrap()
            .server_name("localhost")
        } else {
            b
        };
        options.tls(b.build().unwrap())
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

// ---- the two directions ----

/// The Go peer, dialling as rpcx's client, sends Go rpcx's request to a sextant server and
/// must get Go rpcx's response, byte for byte.
async fn go_client_calls_sextant_server(net: Net) {
    let Some(peer) = go_peer() else { return };
    let fx = Fixture::new();
    let mut builder = Server::builder();
    if net.tls() {
        builder = builder.tls(fx.server_tls(net));
    }
    if net == Net::Kcp {
        builder = builder.kcp(kcp_config());
    }
    let server = builder.build();
    sextant_interop::register_all(&server).unwrap();
    let addr = server
        .start(format!("{}@127.0.0.1:0", net.name()))
        .await
        .unwrap();

    let mut args = strings(&["client", "-net", net.name(), "-addr", addr.addr()]);
    args.extend(strings(&["-req", &capture(REQUEST), "-timeout", "15s"]));
    args.extend(net.kcp_args());
    if net.tls() {
        args.extend(strings(&["-ca", &fx.ca]));
    }
    if net.mutual() {
        args.extend(strings(&[
            "-cert",
            &fx.client_cert,
            "-key",
            &fx.client_key,
            "-servername",
            "localhost",
        ]));
    }
    let dir = fx.dir.path().to_path_buf();
    let result =
        tokio::task::spawn_blocking(move || GoProcess::spawn(peer, &args, &dir, "client").finish())
            .await
            .unwrap();
    let got = result.unwrap_or_else(|e| panic!("{net:?}: Go client against {addr}: {e}"));
    assert_eq!(
        got.trim(),
        capture(RESPONSE),
        "{net:?}: the Go client read another response than Go rpcx's from {addr}"
    );
    server.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A sextant client calls the Go peer, listening as rpcx's server, which answers with Go rpcx's
/// captured response.
async fn sextant_client_calls_go_server(net: Net) {
    let Some(peer) = go_peer() else { return };
    let fx = Fixture::new();
    let mut args = strings(&["server", "-net", net.name(), "-addr", "127.0.0.1:0"]);
    args.extend(strings(&["-resp", &capture(RESPONSE)]));
    args.extend(net.kcp_args());
    if net.tls() {
        args.extend(strings(&["-cert", &fx.server_cert, "-key", &fx.server_key]));
    }
    if net.mutual() {
        args.extend(strings(&["-clientca", &fx.ca]));
    }
    let dir = fx.dir.path().to_path_buf();
    let (go, listening) = tokio::task::spawn_blocking(move || {
        let mut go = GoProcess::spawn(peer, &args, &dir, "server");
        let listening = go.listening_on();
        (go, listening)
    })
    .await
    .unwrap();
    let go_addr = listening.unwrap_or_else(|e| panic!("{net:?}: Go server: {e}"));
    let address = format!("{}@{go_addr}", net.name());
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        panic!(
            "{net:?}: sextant client against the Go server at {address}: {what}: {e}\n\
             Go server stderr:\n{}",
            go.stderr()
        )
    };

    let call = async {
        let client = Client::connect(&address, fx.client_options(net, true)).await?;
        let reply: Reply = client.call("Arith", "Mul", &Args { a: 10, b: 20 }).await?;
        client.close();
        Ok::<_, sextant::Error>(reply)
    };
    let reply = match tokio::time::timeout(WAIT, call).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => fail("call", &e),
        Err(e) => fail("call", &e),
    };
    assert_eq!(reply.c, 200, "{net:?}: {address}");

    if net.mutual() {
        // The Go server requires a client certificate: a client without one gets nowhere.
        let call = async {
            let client = Client::connect(&address, fx.client_options(net, false)).await?;
            client
                .call::<_, Reply>("Arith", "Mul", &Args { a: 1, b: 2 })
                .await
        };
        match tokio::time::timeout(WAIT, call).await {
            Ok(Err(_)) => {}
            Ok(Ok(r)) => fail("a client without a certificate was answered", &r.c),
            Err(e) => fail("a client without a certificate", &e),
        }
    }
    drop(go);
}

macro_rules! both_directions {
    ($($net:ident: $go_client:ident, $go_server:ident;)*) => {$(
        #[tokio::test]
        async fn $go_client() {
            go_client_calls_sextant_server(Net::$net).await;
        }

        #[tokio::test]
        async fn $go_server() {
            sextant_client_calls_go_server(Net::$net).await;
        }
    )*};
}

both_directions! {
    Tcp: tcp_go_client_to_sextant_server, tcp_sextant_client_to_go_server;
    Tls: tls_go_client_to_sextant_server, tls_sextant_client_to_go_server;
    MutualTls: mutual_tls_go_client_to_sextant_server, mutual_tls_sextant_client_to_go_server;
    Http: http_go_client_to_sextant_server, http_sextant_client_to_go_server;
    HttpTls: http_tls_go_client_to_sextant_server, http_tls_sextant_client_to_go_server;
    Ws: ws_go_client_to_sextant_server, ws_sextant_client_to_go_server;
    Wss: wss_go_client_to_sextant_server, wss_sextant_client_to_go_server;
    Quic: quic_go_client_to_sextant_server, quic_sextant_client_to_go_server;
    Kcp: kcp_go_client_to_sextant_server, kcp_sextant_client_to_go_server;
}
