//! `sextant ui` as a process: driven in headless Chromium over WebDriver (chromedriver) against
//! a real etcd with two `Arith` servers publishing through the registry plugin, and over plain
//! HTTP for the bad input it must survive and the speed of the services listing.
//!
//! Needs `chromium` and `chromium-driver` (Debian; `scripts/services.sh install`) and etcd: when
//! one is missing the browser test prints why and skips, unless `SEXTANT_REQUIRE_SERVICES=1`
//! (then it fails). `SEXTANT_CHROMIUM` / `SEXTANT_CHROMEDRIVER` name other binaries.
//! `SEXTANT_UI_SCREENSHOTS=DIR` saves `ui-services.png` and `ui-service.png` there.
//!
//! Every process started here (chromedriver and its Chromium, etcd, the UI) is killed when its
//! guard drops; every wait is bounded.

// The browser walk-through needs etcd (feature `etcd`); without it its helpers go unused.
#![cfg_attr(not(feature = "etcd"), allow(dead_code, unused_imports))]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::client::legacy::connect::HttpConnector;
use sextant_registry::{
    EmbeddedRegistry, EmbeddedRegistryOptions, EmbeddedStore, QueryValues, RegistryOptions,
    RegistryStore,
};
use sextant_registry_testkit::engine::missing;
use sextant_registry_testkit::free_port;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::sextant;

const BOUND: Duration = Duration::from_secs(20);

/// A child process killed (and reaped) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child process leading its own process group, the whole group killed when dropped:
/// chromedriver, and the Chromium processes it starts (which outlive a killed chromedriver).
struct Group(Proc);

impl Group {
    fn spawn(command: &mut Command) -> Group {
        use std::os::unix::process::CommandExt as _;
        Group(Proc(
            command.process_group(0).spawn().expect("run chromedriver"),
        ))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let group = format!("-{}", self.0 .0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
    }
}

/// Waits until something listens on 127.0.0.1:`port`, failing if `child` exits first.
async fn wait_listening(child: &mut Proc, port: u16, what: &str) {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} does not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `sextant ui ARGS --listen 127.0.0.1:PORT`, waits until it listens.
async fn start_ui(args: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = sextant()
        .arg("ui")
        .args(args)
        .args(["--listen", &listen])
        .env_remove("SEXTANT_REGISTRY")
        .env_remove("SEXTANT_UI_PASSWORD_HASH")
        .env_remove("SEXTANT_UI_USER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the sextant binary");
    let mut child = Proc(child);
    wait_listening(&mut child, port, "sextant ui").await;
    (child, port)
}

/// Runs `sextant ARGS` to the end with `stdin` (at most 30 s): status, stdout, stderr.
async fn run(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    run_env(args, stdin, &[]).await
}

/// [`run`] with environment variables set.
async fn run_env(
    args: &[&str],
    stdin: &str,
    envs: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let stdin = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        let mut command = sextant();
        command
            .args(&args)
            .env_remove("SEXTANT_REGISTRY")
            .env_remove("SEXTANT_UI_PASSWORD_HASH")
            .env_remove("SEXTANT_UI_USER")
            .envs(envs);
        let out = common::run_to_end(command, stdin.as_bytes());
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// `sextant ui --hash-password` of `password`.
async fn hash(password: &str) -> String {
    let (code, out, err) = run(&["ui", "--hash-password"], &format!("{password}\n")).await;
    assert_eq!(code, Some(0), "{err}");
    let phc = out.trim().to_string();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    phc
}

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 client (one request per connection).

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    tokio::time::timeout(BOUND, async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the UI");
        let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        // A caller sending `Transfer-Encoding: chunked` has chunked the body itself.
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
        {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        // The server may answer before reading all of a large body.
        let _ = s.write_all(body).await;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read the answer");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .expect("a status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        assert!(
            !headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")),
            "chunked answers are not read here"
        );
        Resp {
            status,
            headers,
            body: body.to_string(),
        }
    })
    .await
    .expect("the UI answers in time")
}

/// The CSRF token in the page's `<meta name="csrf-token">`.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf-token\" content=\"")
        .unwrap_or_else(|| panic!("no CSRF token in {page}"));
    let rest = &page[at + "name=\"csrf-token\" content=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Logs in over HTTP: the session cookie (`name=value`).
async fn login_http(port: u16, user: &str, password: &str) -> Resp {
    let body = format!("user={user}&password={password}");
    http(
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
    .await
}

fn cookie_of(r: &Resp) -> String {
    let c = r.header("set-cookie").expect("a session cookie");
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    c.split(';').next().unwrap().to_string()
}

fn options(base: &str) -> RegistryOptions {
    RegistryOptions::default()
        .base_path(base)
        .update_interval(Duration::from_secs(1))
}

async fn embedded() -> (EmbeddedRegistry, EmbeddedStore) {
    let registry = EmbeddedRegistry::bind("127.0.0.1:0", EmbeddedRegistryOptions::default())
        .await
        .unwrap();
    let store = EmbeddedStore::new(&registry.url()).unwrap();
    (registry, store)
}

// ---------------------------------------------------------------------------------------------
// Bad input, over plain HTTP against the embedded registry.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly() {
    // A registry that does not answer: exit 3, naming it. An unknown scheme: usage, 2.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, _, err) = run(&["ui", "--registry", &url, "--listen", "127.0.0.1:0"], "").await;
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("cannot be reached") && err.contains(&port.to_string()),
        "{err}"
    );
    let (code, _, err) = run(&["ui", "--registry", "nacos://127.0.0.1:8848"], "").await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown registry type"), "{err}");
    // Half a login, or a hash that is not one: usage.
    let (code, _, err) = run(&["ui", "--user", "admin"], "").await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--password-hash"), "{err}");
    let (code, _, err) = run(&["ui", "--user", "a", "--password-hash", "plain"], "").await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a PHC string"), "{err}");
    let (code, _, err) = run_env(
        &["ui", "--user", "a"],
        "",
        &[("SEXTANT_UI_PASSWORD_HASH", "also plain")],
    )
    .await;
    assert_eq!(
        code,
        Some(2),
        "the hash is read from the environment: {err}"
    );
    assert!(err.contains("not a PHC string"), "{err}");
    let (code, _, err) = run(&["ui", "--hash-password"], "").await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no password on stdin"), "{err}");

    let (registry, store) = embedded().await;
    let put = |k: &str, v: &str| {
        let (store, k, v) = (store.clone(), k.to_string(), v.to_string());
        async move {
            RegistryStore::put(&store, &k, &v, Duration::from_secs(120))
                .await
                .unwrap()
        }
    };
    put("/ui_bad/Arith/tcp@127.0.0.1:1", "%zz;not a query").await;
    put("/ui_bad/Arith/tcp@127.0.0.1:2", "weight=1&note=hello").await;
    let phc = hash("s3cret").await;
    let (_ui, port) = start_ui(&[
        "--registry",
        &registry.url(),
        "--base-path",
        "/ui_bad",
        "--user",
        "admin",
        "--password-hash",
        &phc,
    ])
    .await;

    // Without a session: the API says 401, the page is the login form.
    let r = http(port, "GET", "/api/services", &[], b"").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("log in"),
        "{}",
        r.body
    );
    let r = http(port, "GET", "/", &[], b"").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("id=\"login-form\""), "{}", r.body);
    assert!(!r.body.contains("csrf-token"), "{}", r.body);
    // A Host that is no IP or localhost (DNS rebinding): refused.
    let r = http(
        port,
        "GET",
        "/api/services",
        &[("Host", "evil.example:80")],
        b"",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Wrong credentials: 401, then 429 after five tries; an unknown user is refused the same.
    let r = login_http(port, "nobody", "s3cret").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("Wrong user name or password"), "{}", r.body);
    for _ in 0..4 {
        let r = login_http(port, "admin", "wrong").await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = login_http(port, "admin", "s3cret").await;
    assert_eq!(r.status, 429, "even the right password waits: {}", r.body);
    assert!(r.body.contains("Too many failed logins"), "{}", r.body);

    // The same from a fresh UI (the limit is per process and client IP): the right password.
    drop(_ui);
    let (_ui, port) = start_ui(&[
        "--registry",
        &registry.url(),
        "--base-path",
        "/ui_bad",
        "--user",
        "admin",
        "--password-hash",
        &phc,
    ])
    .await;
    let r = login_http(port, "admin", "s3cret").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = cookie_of(&r);
    let page = http(port, "GET", "/", &[("Cookie", &cookie)], b"").await;
    assert_eq!(page.status, 200);
    let csrf = csrf_of(&page.body);
    assert_eq!(csrf.len(), 64);
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp}");

    // A value that is not a query string: listed raw and flagged.
    let r = http(
        port,
        "GET",
        "/api/services/Arith",
        &[("Cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let servers = v["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{v}");
    assert_eq!(servers[0]["address"], "tcp@127.0.0.1:1");
    assert_eq!(servers[0]["valid"], false);
    assert_eq!(servers[0]["value"], "%zz;not a query");
    assert_eq!(servers[1]["valid"], true);
    assert_eq!(servers[1]["metadata"]["note"], "hello");
    // ... and not edited.
    let state = "/api/services/Arith/servers/tcp@127.0.0.1:1/state";
    let r = http(
        port,
        "POST",
        state,
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        br#"{"active":false}"#,
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("not a metadata query string"));

    // CSRF: missing, forged, or from another origin: 403, nothing written.
    let meta = "/api/services/Arith/servers/tcp@127.0.0.1:2/metadata";
    let edit = br#"{"set":["note=changed"]}"#;
    let r = http(port, "POST", meta, &[("Cookie", &cookie)], edit).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("missing CSRF token"),
        "{}",
        r.body
    );
    let forged = "0".repeat(64);
    let r = http(
        port,
        "POST",
        meta,
        &[("Cookie", &cookie), ("X-CSRF-Token", &forged)],
        edit,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("forged"),
        "{}",
        r.body
    );
    let r = http(
        port,
        "POST",
        meta,
        &[
            ("Cookie", &cookie),
            ("X-CSRF-Token", &csrf),
            ("Origin", "http://evil.example"),
        ],
        edit,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("cross-origin"),
        "{}",
        r.body
    );
    let value = RegistryStore::get(&store, "/ui_bad/Arith/tcp@127.0.0.1:2")
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("weight=1&note=hello"));
    // The right token, from the page's own origin: written.
    let origin = format!("http://127.0.0.1:{port}");
    let r = http(
        port,
        "POST",
        meta,
        &[
            ("Cookie", &cookie),
            ("X-CSRF-Token", &csrf),
            ("Origin", &origin),
        ],
        edit,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let value = RegistryStore::get(&store, "/ui_bad/Arith/tcp@127.0.0.1:2")
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("note=changed&weight=1"));

    // 10 MB of metadata: 413, nothing written, and the UI still answers.
    let huge = format!(r#"{{"set":["note={}"]}}"#, "x".repeat(10 << 20));
    let r = http(
        port,
        "POST",
        meta,
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        huge.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("too large"),
        "{}",
        r.body
    );
    let value = RegistryStore::get(&store, "/ui_bad/Arith/tcp@127.0.0.1:2")
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("note=changed&weight=1"));
    // The same without a Content-Length (chunked): 413 as well.
    let mut chunked = Vec::new();
    for piece in huge.as_bytes().chunks(1 << 20) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = http(
        port,
        "POST",
        meta,
        &[
            ("Cookie", &cookie),
            ("X-CSRF-Token", &csrf),
            ("Transfer-Encoding", "chunked"),
        ],
        &chunked,
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.body);
    let value = RegistryStore::get(&store, "/ui_bad/Arith/tcp@127.0.0.1:2")
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("note=changed&weight=1"));
    let r = http(port, "GET", "/api/services", &[("Cookie", &cookie)], b"").await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A call with JSON that does not parse: a clear 400, before anything is sent.
    let call = serde_json::json!({
        "service": "Arith", "method": "Mul", "address": "tcp@127.0.0.1:2",
        "codec": "msgpack", "args": "{\"A\":7,",
    });
    let r = http(
        port,
        "POST",
        "/api/call",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        call.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("not JSON"),
        "{}",
        r.body
    );
    // A body that is not JSON at all, and a probe of an address the registry does not list.
    let r = http(
        port,
        "POST",
        "/api/probe",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        b"{{{",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = http(
        port,
        "POST",
        "/api/probe",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        br#"{"service":"Arith","address":"tcp@127.0.0.1:9"}"#,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    // A probe of a listed server that is not there: an error within the timeout, not a hang.
    let r = http(
        port,
        "POST",
        "/api/probe",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        br#"{"service":"Arith","address":"tcp@127.0.0.1:2"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ok"], false, "{}", r.body);

    // Logout ends the session.
    let r = http(
        port,
        "POST",
        "/logout",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        b"",
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = http(port, "GET", "/api/services", &[("Cookie", &cookie)], b"").await;
    assert_eq!(r.status, 401, "{}", r.body);
    drop(_ui);

    // --read-only: no login, every change refused (403), reading works.
    let (_ui, port) = start_ui(&[
        "--registry",
        &registry.url(),
        "--base-path",
        "/ui_bad",
        "--read-only",
    ])
    .await;
    let page = http(port, "GET", "/", &[], b"").await;
    assert!(
        page.body.contains("name=\"read-only\" content=\"true\""),
        "{}",
        page.body
    );
    let csrf = csrf_of(&page.body);
    let r = http(port, "POST", meta, &[("X-CSRF-Token", &csrf)], edit).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("read-only"),
        "{}",
        r.body
    );
    let r = http(port, "GET", "/api/services", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["services"][0]["servers"], 2);
    drop(_ui);
    registry.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Speed of the services listing: 1,000 services x 10 servers.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_listing_speed() {
    use futures::StreamExt as _;
    let (registry, store) = embedded().await;
    let started = Instant::now();
    let keys: Vec<String> = (0..1000)
        .flat_map(|s| {
            (0..10).map(move |i| format!("/ui_speed/Service{s:04}/tcp@127.0.0.1:{}", 10000 + i))
        })
        .collect();
    futures::stream::iter(keys)
        .map(|k| {
            let store = store.clone();
            async move {
                RegistryStore::put(
                    &store,
                    &k,
                    "group=g&weight=1&calls=12&tps=3&state=active",
                    Duration::from_secs(600),
                )
                .await
                .unwrap()
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    eprintln!("wrote 10,000 entries in {:?}", started.elapsed());
    let (_ui, port) = start_ui(&["--registry", &registry.url(), "--base-path", "/ui_speed"]).await;
    // One warm-up, then the figure.
    let _ = http(port, "GET", "/api/services", &[], b"").await;
    let mut figures = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = http(port, "GET", "/api/services", &[], b"").await;
        let client_ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["services"].as_array().unwrap().len(), 1000);
        assert_eq!(v["total_servers"], 10_000);
        let server = r.header("server-timing").unwrap_or("-").to_string();
        figures.push((server, client_ms, r.body.len()));
    }
    let t = Instant::now();
    let page = http(port, "GET", "/", &[], b"").await;
    let page_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(page.status, 200);
    for (server, client_ms, bytes) in &figures {
        println!(
            "GET /api/services, 1,000 services x 10 servers: server {server}, \
             {client_ms:.1} ms at the client, {bytes} bytes"
        );
    }
    println!("GET / (the page): {page_ms:.1} ms at the client");
    // The page in a browser, when there is one: load to 1,000 rows drawn.
    if let Some(browser) = Browser::start().await {
        for _ in 0..2 {
            let t = Instant::now();
            browser
                .client
                .goto(&format!("http://127.0.0.1:{port}/"))
                .await
                .unwrap();
            browser
                .wait(
                    "1,000 services are drawn",
                    "return document.querySelectorAll('tr.service-row').length === 1000;",
                    vec![],
                )
                .await;
            println!(
                "the services page in Chromium, load to 1,000 rows drawn: {:.0} ms",
                t.elapsed().as_secs_f64() * 1e3
            );
        }
        browser.close().await;
    }
    drop(_ui);
    registry.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The browser.

/// chromedriver (killed on drop) and a WebDriver session on headless Chromium.
struct Browser {
    client: fantoccini::Client,
    _driver: Group,
    _profile: tempfile::TempDir,
}

fn binary(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

impl Browser {
    /// Starts chromedriver on a free port and a headless session, or `None` (after a loud
    /// message; a failure under `SEXTANT_REQUIRE_SERVICES=1`) when they are not installed.
    async fn start() -> Option<Browser> {
        let chromium = binary("SEXTANT_CHROMIUM", "/usr/bin/chromium");
        let driver = binary("SEXTANT_CHROMEDRIVER", "/usr/bin/chromedriver");
        for (p, package) in [(&chromium, "chromium"), (&driver, "chromium-driver")] {
            if !p.exists() {
                return missing(
                    package,
                    &format!("{} does not exist (Debian package {package})", p.display()),
                );
            }
        }
        let port = free_port();
        let mut driver_proc = Group::spawn(
            Command::new(&driver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_listening(&mut driver_proc.0, port, "chromedriver").await;
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,900", "--no-first-run", "--disable-extensions",
                    "--disable-background-networking", "--disable-sync", "--disable-breakpad",
                    "--disable-component-update", "--disable-domain-reliability", "--no-pings",
                    // Loopback only: every host name but 127.0.0.1 resolves to nothing.
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = tokio::time::timeout(
            BOUND,
            // chromedriver on loopback speaks plain HTTP: no TLS stack is needed.
            fantoccini::ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .expect("chromedriver starts a session in time")
        .expect("a WebDriver session");
        Some(Browser {
            client,
            _driver: driver_proc,
            _profile: profile,
        })
    }

    /// Runs `script` (a function body, `arguments[i]` are `args`) and returns its value.
    async fn js(&self, script: &str, args: Vec<serde_json::Value>) -> serde_json::Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("{e}: {script}"))
    }

    /// Waits (at most 20 s, every 100 ms) until `script` returns true.
    async fn wait(&self, what: &str, script: &str, args: Vec<serde_json::Value>) {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Ok(serde_json::Value::Bool(true)) =
                self.client.execute(script, args.clone()).await
            {
                return;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body.innerText;", vec![]).await;
                panic!(
                    "timed out waiting until {what}; the page shows:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{e}: {css}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("{e}: click {css}"));
    }

    /// Sets a form field's value (as typing would, without typing each key).
    async fn fill(&self, css: &str, value: &str) {
        self.js(
            "const e = document.querySelector(arguments[0]); e.value = arguments[1]; return true;",
            vec![css.into(), value.into()],
        )
        .await;
    }

    async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("SEXTANT_UI_SCREENSHOTS") else {
            return;
        };
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = PathBuf::from(dir).join(name);
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("saved {}", path.display());
    }

    async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.close()).await;
    }
}

/// The JS that reads a server row's cell: `row(address).querySelector(css).textContent`.
const CELL: &str = "const r = [...document.querySelectorAll('tr.server-row')]
    .find(r => r.dataset.address === arguments[0]);
    if (!r) return null; const c = r.querySelector(arguments[1]); return c ? c.textContent : null;";

async fn cell(b: &Browser, address: &str, css: &str) -> String {
    b.js(CELL, vec![address.into(), css.into()])
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn wait_cell(b: &Browser, address: &str, css: &str, contains: &str) {
    let script = format!(
        "{CELL_FN} const t = cell(arguments[0], arguments[1]); return t !== null && t.includes(arguments[2]);"
    );
    b.wait(
        &format!("{address} {css} shows {contains:?}"),
        &script,
        vec![address.into(), css.into(), contains.into()],
    )
    .await;
}

/// Waits until `address`'s `css` cell reads exactly `text`.
async fn wait_cell_is(b: &Browser, address: &str, css: &str, text: &str) {
    let script = format!("{CELL_FN} return cell(arguments[0], arguments[1]) === arguments[2];");
    b.wait(
        &format!("{address} {css} is {text:?}"),
        &script,
        vec![address.into(), css.into(), text.into()],
    )
    .await;
}

const CELL_FN: &str =
    "function cell(a, css) { const r = [...document.querySelectorAll('tr.server-row')]
    .find(r => r.dataset.address === a); if (!r) return null;
    const c = r.querySelector(css); return c ? c.textContent : null; }";

async fn click_in_row(b: &Browser, address: &str, css: &str) {
    let ok = b
        .js(
            "const r = [...document.querySelectorAll('tr.server-row')]
             .find(r => r.dataset.address === arguments[0]);
             if (!r) return false; const e = r.querySelector(arguments[1]);
             if (!e) return false; e.click(); return true;",
            vec![address.into(), css.into()],
        )
        .await;
    assert_eq!(
        ok,
        serde_json::Value::Bool(true),
        "no {css} in the row of {address}"
    );
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_operates_etcd() {
    use sextant::XClient;
    use sextant_registry::{DiscoveryOptions, RegistryDiscovery};
    use sextant_registry_testkit::scenarios::start_server;
    use sextant_registry_testkit::{wait_until, Args, Reply};

    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(etcd) = sextant_registry_testkit::EtcdServer::start().await else {
        browser.close().await;
        return;
    };
    let store = sextant_etcd::EtcdStore::new(
        [format!("http://{}", etcd.address())],
        sextant_etcd::EtcdOptions::default(),
    )
    .unwrap();
    let base = "/cli_ui";
    let a = start_server(store.clone(), options(base), "weight=1&group=g1").await;
    let b = start_server(store.clone(), options(base), "weight=2&group=g1").await;
    let (a_addr, b_addr) = (a.address().to_string(), b.address().to_string());
    // Hostile registry values: HTML in metadata, and a value that is not a query string.
    let mut evil = QueryValues::default();
    evil.set(
        "note".to_string(),
        "<script>document.title='pwned';window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">"
            .to_string(),
    );
    RegistryStore::put(
        &store,
        "/cli_ui/Evil/tcp@127.0.0.1:1",
        &evil.encode(),
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    RegistryStore::put(
        &store,
        "/cli_ui/Evil/tcp@127.0.0.1:2",
        "%zz<script>window.__pwned=3</script>",
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    // ... and a service name holding HTML.
    let evil_name = "<img src=x onerror=window.__pwned=4>";
    RegistryStore::put(
        &store,
        &format!("/cli_ui/{evil_name}/tcp@127.0.0.1:3"),
        "weight=1",
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    let key = |addr: &str| format!("{base}/Arith/{addr}");
    wait_until("both servers are published", BOUND, || async {
        RegistryStore::get(&store, &key(&a_addr))
            .await
            .ok()
            .flatten()
            .is_some()
            && RegistryStore::get(&store, &key(&b_addr))
                .await
                .ok()
                .flatten()
                .is_some()
    })
    .await;

    let phc = hash("open sesame").await;
    let registry = format!("etcd://{}", etcd.address());
    let (ui, port) = start_ui(&[
        "--registry",
        &registry,
        "--base-path",
        base,
        "--user",
        "admin",
        "--password-hash",
        &phc,
    ])
    .await;
    let home = format!("http://127.0.0.1:{port}/");

    // Login is enforced: the API says 401, the page is the login form.
    let r = http(port, "GET", "/api/services", &[], b"").await;
    assert_eq!(r.status, 401, "{}", r.body);
    let c = &browser.client;
    c.goto(&home).await.unwrap();
    browser
        .wait(
            "the login form shows",
            "return !!document.getElementById('login-form');",
            vec![],
        )
        .await;
    // A wrong password is refused.
    browser.fill("#login-user", "admin").await;
    browser.fill("#login-password", "wrong").await;
    browser.click("#login-submit").await;
    browser
        .wait(
            "the login is refused",
            "const e = document.getElementById('login-error');
             return !!e && e.textContent.includes('Wrong user name or password');",
            vec![],
        )
        .await;
    // The right one works: the services page lists Arith with both servers.
    browser.fill("#login-user", "admin").await;
    browser.fill("#login-password", "open sesame").await;
    browser.click("#login-submit").await;
    let service_row = "const r = [...document.querySelectorAll('tr.service-row')]
        .find(r => r.dataset.service === arguments[0]);
        return !!r && r.querySelector('.servers').textContent === arguments[1]
            && r.querySelector('.active').textContent === arguments[2];";
    browser
        .wait(
            "Arith is listed with 2 servers, 2 active",
            service_row,
            vec!["Arith".into(), "2".into(), "2".into()],
        )
        .await;
    browser
        .wait(
            "Evil is listed",
            service_row,
            vec!["Evil".into(), "2".into(), "2".into()],
        )
        .await;
    browser
        .wait(
            "the HTML service name is listed as text",
            service_row,
            vec![evil_name.into(), "1".into(), "1".into()],
        )
        .await;
    let listed = browser
        .js(
            "const r = [...document.querySelectorAll('tr.service-row')]
             .find(r => r.dataset.service === arguments[0]);
             return [r.querySelector('a').textContent, document.querySelectorAll('#services img').length,
                     typeof window.__pwned];",
            vec![evil_name.into()],
        )
        .await;
    assert_eq!(listed, serde_json::json!([evil_name, 0, "undefined"]));
    browser.screenshot("ui-services.png").await;
    // The filter box.
    c.find(fantoccini::Locator::Css("#filter"))
        .await
        .unwrap()
        .send_keys("ari")
        .await
        .unwrap();
    browser
        .wait(
            "the filter leaves Arith alone",
            "const rows = document.querySelectorAll('tr.service-row');
             return rows.length === 1 && rows[0].dataset.service === 'Arith'
                 && document.getElementById('summary').textContent.startsWith('1 of 3 services');",
            vec![],
        )
        .await;

    // The service page: both servers with address, group, weight, state and the rates.
    c.goto(&format!("{home}#/service/Arith")).await.unwrap();
    for addr in [&a_addr, &b_addr] {
        wait_cell_is(&browser, addr, ".state", "active").await;
    }
    assert_eq!(cell(&browser, &a_addr, ".group").await, "g1");
    assert_eq!(cell(&browser, &a_addr, ".weight").await, "1");
    assert_eq!(cell(&browser, &b_addr, ".weight").await, "2");
    // The registry plugin publishes the rates with its refreshes (every second here).
    wait_cell(&browser, &a_addr, ".meta", "tps=").await;
    assert_ne!(cell(&browser, &a_addr, ".tps").await, "-");
    assert_ne!(cell(&browser, &a_addr, ".calls").await, "-");

    // Health probe: a real heartbeat, ok and its round-trip time.
    click_in_row(&browser, &a_addr, "button.probe").await;
    wait_cell(&browser, &a_addr, ".probe-result", " ms").await;
    let probe = cell(&browser, &a_addr, ".probe-result").await;
    assert!(probe.contains("ok"), "{probe}");
    browser.screenshot("ui-service.png").await;

    // Deactivate a in the browser: etcd holds state=inactive, an XClient stops calling it.
    click_in_row(&browser, &a_addr, "button.toggle-state").await;
    wait_cell_is(&browser, &a_addr, ".state", "inactive").await;
    let v = RegistryStore::get(&store, &key(&a_addr))
        .await
        .unwrap()
        .unwrap();
    let q = QueryValues::parse(&v).unwrap();
    assert_eq!(
        (q.get("state"), q.get("weight"), q.get("group")),
        (Some("inactive"), Some("1"), Some("g1")),
        "{v}"
    );
    let discovery = RegistryDiscovery::start(
        store.clone(),
        base,
        "Arith",
        DiscoveryOptions::default().request_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let xclient = XClient::builder("Arith")
        .discovery(discovery)
        .build()
        .unwrap();
    wait_until(
        "the XClient leaves the inactive server out",
        BOUND,
        || async { xclient.servers().len() == 1 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a_before, b_before) = (a.server().stats().calls, b.server().stats().calls);
    for i in 0..20 {
        let r: Reply = xclient.call("Mul", &Args { a: i, b: 3 }).await.unwrap();
        assert_eq!(r.c, i * 3);
    }
    assert_eq!(
        a.server().stats().calls,
        a_before,
        "an inactive server gets no call"
    );
    assert_eq!(b.server().stats().calls, b_before + 20, "b takes them all");

    // Activate it again: state=active, and a gets calls again.
    click_in_row(&browser, &a_addr, "button.toggle-state").await;
    wait_cell_is(&browser, &a_addr, ".state", "active").await;
    let v = RegistryStore::get(&store, &key(&a_addr))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        QueryValues::parse(&v).unwrap().get("state"),
        Some("active"),
        "{v}"
    );
    wait_until("the XClient takes the server back", BOUND, || async {
        xclient.servers().len() == 2
    })
    .await;
    let mut reached = false;
    for i in 0..200 {
        let _: Reply = xclient.call("Mul", &Args { a: i, b: 1 }).await.unwrap();
        if a.server().stats().calls > a_before {
            reached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reached, "a gets calls again");

    // Auto refresh: a change made elsewhere (here, straight into etcd) shows without a reload.
    let v = RegistryStore::get(&store, &key(&b_addr))
        .await
        .unwrap()
        .unwrap();
    let mut q = QueryValues::parse(&v).unwrap();
    q.set("state".to_string(), "inactive".to_string());
    assert!(RegistryStore::update(&store, &key(&b_addr), &q.encode())
        .await
        .unwrap());
    wait_cell_is(&browser, &b_addr, ".state", "inactive").await;
    q.set("state".to_string(), "active".to_string());
    assert!(RegistryStore::update(&store, &key(&b_addr), &q.encode())
        .await
        .unwrap());
    wait_cell_is(&browser, &b_addr, ".state", "active").await;

    // Edit b's metadata: it persists (and survives the server's refreshes).
    click_in_row(&browser, &b_addr, "button.edit").await;
    browser
        .wait(
            "the edit form opens",
            "return !document.getElementById('edit-panel').hidden;",
            vec![],
        )
        .await;
    let pairs = browser
        .js(
            "return document.getElementById('edit-pairs').value;",
            vec![],
        )
        .await;
    assert!(pairs.as_str().unwrap().contains("weight=2"), "{pairs}");
    browser.fill("#edit-pairs", "weight=7\ncolor=blue").await;
    browser.click("#edit-save").await;
    browser
        .wait(
            "the edit is saved",
            "return document.getElementById('edit-result').textContent.startsWith('saved');",
            vec![],
        )
        .await;
    wait_cell_is(&browser, &b_addr, ".weight", "7").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let v = RegistryStore::get(&store, &key(&b_addr))
        .await
        .unwrap()
        .unwrap();
    let q = QueryValues::parse(&v).unwrap();
    assert_eq!(
        (q.get("weight"), q.get("color")),
        (Some("7"), Some("blue")),
        "{v}"
    );

    // 10 MB typed into the edit form: 413 shown, nothing written.
    click_in_row(&browser, &b_addr, "button.edit").await;
    browser
        .js(
            "document.getElementById('edit-pairs').value = 'note=' + 'x'.repeat(10 * 1024 * 1024);
             return true;",
            vec![],
        )
        .await;
    browser.click("#edit-save").await;
    browser
        .wait(
            "the 10 MB edit is refused",
            "const t = document.getElementById('edit-result').textContent;
             return t.includes('413') && t.includes('too large');",
            vec![],
        )
        .await;
    let v = RegistryStore::get(&store, &key(&b_addr))
        .await
        .unwrap()
        .unwrap();
    assert!(!v.contains("note="), "{v}");
    browser.click("#edit-cancel").await;

    // The call form: JSON arguments, the reply as JSON; JSON that does not parse, an error.
    browser
        .js(
            "document.getElementById('call-server').value = arguments[0]; return true;",
            vec![a_addr.as_str().into()],
        )
        .await;
    browser.fill("#call-method", "Mul").await;
    browser.fill("#call-args", r#"{"A":7,"B":6}"#).await;
    browser.click("#call-submit").await;
    browser
        .wait(
            "the call's reply shows",
            "const t = document.getElementById('call-result').textContent;
             return t.includes('\"C\": 42');",
            vec![],
        )
        .await;
    browser.fill("#call-args", r#"{"A":7,"#).await;
    browser.click("#call-submit").await;
    browser
        .wait(
            "bad JSON is an error",
            "const t = document.getElementById('call-result').textContent;
             return t.startsWith('error') && t.includes('not JSON');",
            vec![],
        )
        .await;
    browser.fill("#call-method", "Nope").await;
    browser.fill("#call-args", r#"{"A":1,"B":2}"#).await;
    browser.click("#call-submit").await;
    browser
        .wait(
            "an unknown method is the service's error",
            "const t = document.getElementById('call-result').textContent;
             return t.startsWith('error') && t.includes('service answered an error');",
            vec![],
        )
        .await;

    // Hostile values are text: visible as written, and no script of theirs ran.
    c.goto(&format!("{home}#/service/Evil")).await.unwrap();
    wait_cell(&browser, "tcp@127.0.0.1:1", ".meta", "<script>").await;
    wait_cell(&browser, "tcp@127.0.0.1:2", ".meta", "not a query string").await;
    let raw = cell(&browser, "tcp@127.0.0.1:2", ".meta").await;
    assert!(
        raw.contains("%zz<script>window.__pwned=3</script>"),
        "{raw}"
    );
    let shown = cell(&browser, "tcp@127.0.0.1:1", ".meta").await;
    assert!(shown.contains("<img src=x onerror"), "{shown}");
    let pwned = browser
        .js("return [typeof window.__pwned, document.title, document.querySelectorAll('td img, td script').length];", vec![])
        .await;
    assert_eq!(pwned, serde_json::json!(["undefined", "sextant ui", 0]));
    // A state cell (flagged value) has no buttons that would edit it.
    let disabled = browser
        .js(
            &format!(
                "{CELL_FN} const r = [...document.querySelectorAll('tr.server-row')]
                 .find(r => r.dataset.address === 'tcp@127.0.0.1:2');
                 return r.querySelector('button.toggle-state').disabled;"
            ),
            vec![],
        )
        .await;
    assert_eq!(disabled, serde_json::Value::Bool(true));

    // The service whose name is HTML opens by its link (the name percent-encoded both ways).
    c.goto(&home).await.unwrap();
    browser
        .wait(
            "the services are listed again",
            service_row,
            vec![evil_name.into(), "1".into(), "1".into()],
        )
        .await;
    browser
        .js(
            "[...document.querySelectorAll('tr.service-row')]
             .find(r => r.dataset.service === arguments[0]).querySelector('a').click();
             return true;",
            vec![evil_name.into()],
        )
        .await;
    wait_cell_is(&browser, "tcp@127.0.0.1:3", ".weight", "1").await;
    let title = browser
        .js(
            "return [document.getElementById('service-name').textContent, typeof window.__pwned];",
            vec![],
        )
        .await;
    assert_eq!(title, serde_json::json!([evil_name, "undefined"]));

    // Sign out: the login form again.
    browser.click("#logout").await;
    browser
        .wait(
            "signed out",
            "return !!document.getElementById('login-form');",
            vec![],
        )
        .await;

    // --read-only (and no login): the page shows the servers and no control that changes them.
    let (read_only, ro_port) =
        start_ui(&["--registry", &registry, "--base-path", base, "--read-only"]).await;
    c.goto(&format!("http://127.0.0.1:{ro_port}/#/service/Arith"))
        .await
        .unwrap();
    wait_cell_is(&browser, &a_addr, ".state", "active").await;
    let controls = browser
        .js(
            "return [document.querySelectorAll('button.toggle-state, button.edit').length,
                     getComputedStyle(document.getElementById('call-panel')).display,
                     document.getElementById('mode').textContent,
                     document.querySelectorAll('button.probe').length];",
            vec![],
        )
        .await;
    assert_eq!(controls, serde_json::json!([0, "none", "read-only", 2]));
    drop(read_only);

    browser.close().await;
    drop(ui);
    xclient.close();
    a.shutdown().await;
    b.shutdown().await;
    drop(etcd);
}
