//! Registry engine processes for tests: etcd, Redis and ZooKeeper, each on free 127.0.0.1 ports
//! with a temporary data directory, stopped (killed and reaped) when dropped.
//!
//! Binaries are found on `PATH` or through environment variables:
//!
//! | engine | how it is run | override |
//! |---|---|---|
//! | etcd | `etcd` (Debian package `etcd-server`) | `SEXTANT_ETCD` (path to `etcd`) |
//! | Redis | `redis-server` (Debian package `redis-server`) | `SEXTANT_REDIS_SERVER` |
//! | ZooKeeper | `java -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain zoo.cfg` (Debian package `zookeeper`; the jar's manifest names its dependencies) | `SEXTANT_ZOOKEEPER_CLASSPATH` (a Java class path), `SEXTANT_JAVA` |
//!
//! When an engine is missing, [`EtcdServer::start`] and friends print a loud skip message and
//! return `None`, unless `SEXTANT_REQUIRE_SERVICES=1`: then a missing engine fails the test.
//! `scripts/services.sh install` installs all three.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Whether `SEXTANT_REQUIRE_SERVICES=1`: missing engines fail tests instead of skipping them.
pub fn services_required() -> bool {
    std::env::var("SEXTANT_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Reports a missing engine: panics when services are required, else prints a loud skip
/// message. Returns `None` for `let Some(x) = ... else { return }`.
pub fn missing<T>(engine: &str, why: &str) -> Option<T> {
    if services_required() {
        panic!(
            "{engine} is required (SEXTANT_REQUIRE_SERVICES=1) but {why}; \
             install it with `scripts/services.sh install`"
        );
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED: {engine} is not available ({why}).\n\
         !!!!!!!! Install it with `scripts/services.sh install`, or set SEXTANT_REQUIRE_SERVICES=1 \
         to make this a failure.\n"
    );
    None
}

/// A free TCP port on 127.0.0.1 for an engine to listen on.
///
/// It is taken below Linux's ephemeral range (32768–60999 by default), from which the kernel
/// hands out ports to `bind(:0)` listeners and to outgoing connections: a port from there that
/// was free a moment ago can be the local end of some test's client connection by the time the
/// engine binds it ("Address already in use"). Ports here are handed out in turn, so one test
/// process never gets the same one twice, starting at an offset from the process id so that two
/// processes are unlikely to meet; each is checked free by binding it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    // Bounded: one pass over the span at most.
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// The binary named by `env`, or `name` on `PATH` (and in /usr/bin, /usr/sbin); or why not.
fn find_binary(env: &str, name: &str, package: &str) -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var(env) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{env}={} is not a file", p.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("no `{name}` on PATH (Debian package {package})"))
}

/// How to run one engine: its command line and how to tell it is ready.
#[derive(Debug, Clone)]
struct Spec {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    port: u16,
    ready: Ready,
}

#[derive(Debug, Clone, Copy)]
enum Ready {
    /// `GET /health` answers with `"health":"true"` (etcd).
    EtcdHealth,
    /// `PING` answers `+PONG` (Redis).
    RedisPing,
    /// `srvr` answers with the server's state (ZooKeeper). `ruok` would not do: it answers
    /// `imok` before the server accepts sessions.
    ZkSrvr,
}

/// A running engine process; killed and reaped on drop (also when a test panics), with its log
/// printed if the test failed.
#[derive(Debug)]
struct Process {
    spec: Spec,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    async fn start(spec: Spec, log: PathBuf) -> Process {
        let mut p = Process {
            spec,
            child: None,
            log,
        };
        p.spawn().await;
        p
    }

    async fn spawn(&mut self) {
        assert!(
            self.child.is_none(),
            "{} is already running",
            self.spec.name
        );
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("cannot open the engine log file");
        let err = out.try_clone().expect("cannot open the engine log file");
        let child = Command::new(&self.spec.program)
            .args(&self.spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({}): {e}",
                    self.spec.name,
                    self.spec.program.display()
                )
            });
        self.child = Some(child);
        // Bounded: 300 checks, 100 ms apart (30 s) — engines here start in about a second.
        for _ in 0..300 {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "{} exited at start with {status}; its log:\n{}",
                    self.spec.name,
                    self.log_tail()
                );
            }
            if self.is_ready().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.kill();
        panic!(
            "{} did not become ready on 127.0.0.1:{} within 30 s; its log:\n{}",
            self.spec.name,
            self.spec.port,
            self.log_tail()
        );
    }

    async fn is_ready(&self) -> bool {
        let probe = async {
            let mut s = TcpStream::connect(("127.0.0.1", self.spec.port))
                .await
                .ok()?;
            let (req, want): (&[u8], &str) = match self.spec.ready {
                Ready::EtcdHealth => (
                    b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
                    "\"health\":\"true\"",
                ),
                Ready::RedisPing => (b"PING\r\n", "+PONG"),
                Ready::ZkSrvr => (b"srvr", "Mode: "),
            };
            s.write_all(req).await.ok()?;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            loop {
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if String::from_utf8_lossy(&buf).contains(want) {
                    return Some(());
                }
            }
            String::from_utf8_lossy(&buf).contains(want).then_some(())
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), probe).await,
            Ok(Some(()))
        )
    }

    /// Kills the process (SIGKILL: a crash; the data directory stays) and reaps it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- last lines of the {} log ({}) ----\n{}",
                self.spec.name,
                self.log.display(),
                self.log_tail()
            );
        }
    }
}

/// How many engines of one kind may run at once in a test process: test binaries run their
/// tests in parallel (one per core), and a ZooKeeper is a JVM.
fn permits(name: &str) -> Arc<Semaphore> {
    static ZK: OnceLock<Arc<Semaphore>> = OnceLock::new();
    static OTHER: OnceLock<Arc<Semaphore>> = OnceLock::new();
    if name == "zookeeper" {
        ZK.get_or_init(|| Arc::new(Semaphore::new(3))).clone()
    } else {
        OTHER.get_or_init(|| Arc::new(Semaphore::new(6))).clone()
    }
}

/// An engine started for a test: stop it, start it again (same port, same data), drop it to
/// kill it.
#[derive(Debug)]
pub struct Engine {
    process: Process,
    // Declared after `process` so the directory outlives the process.
    dir: tempfile::TempDir,
    _permit: OwnedSemaphorePermit,
}

impl Engine {
    async fn start(spec: Spec, dir: tempfile::TempDir) -> Engine {
        let permit = permits(spec.name)
            .acquire_owned()
            .await
            .expect("the engine semaphore is never closed");
        let log = dir.path().join(format!("{}.log", spec.name));
        Engine {
            process: Process::start(spec, log).await,
            dir,
            _permit: permit,
        }
    }

    /// The client port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.process.spec.port
    }

    /// `127.0.0.1:{port}`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// The temporary data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the engine (as a crash would); its data stays for [`start_again`](Self::start_again).
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// Starts the engine again on the same port with the same data, and waits until it is ready.
    pub async fn start_again(&mut self) {
        self.process.spawn().await;
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.process.child.is_some()
    }
}

fn temp_dir(engine: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("sextant-{engine}-"))
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// etcd v3 started for a test.
pub struct EtcdServer;

impl EtcdServer {
    /// Starts etcd on a free port, or `None` (after a loud message) if it is not installed.
    pub async fn start() -> Option<Engine> {
        Self::start_on(free_port()).await
    }

    /// Starts etcd with its client port at `port`.
    pub async fn start_on(port: u16) -> Option<Engine> {
        let program = match find_binary("SEXTANT_ETCD", "etcd", "etcd-server") {
            Ok(p) => p,
            Err(why) => return missing("etcd", &why),
        };
        let dir = temp_dir("etcd");
        let peer = free_port();
        let data = dir.path().join("data");
        let client_url = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let args = vec![
            "--name".into(),
            "sextant-test".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--listen-client-urls".into(),
            client_url.clone(),
            "--advertise-client-urls".into(),
            client_url,
            "--listen-peer-urls".into(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".into(),
            peer_url.clone(),
            "--initial-cluster".into(),
            format!("sextant-test={peer_url}"),
            "--initial-cluster-state".into(),
            "new".into(),
            "--logger".into(),
            "zap".into(),
            "--log-level".into(),
            "warn".into(),
        ];
        let spec = Spec {
            name: "etcd",
            program,
            args,
            port,
            ready: Ready::EtcdHealth,
        };
        Some(Engine::start(spec, dir).await)
    }
}

/// Redis started for a test, with append-only persistence (fsync on every write), so a restart
/// keeps the keys and their TTLs.
pub struct RedisServer;

impl RedisServer {
    /// Starts Redis on a free port, or `None` (after a loud message) if it is not installed.
    /// `notify_keyspace_events` is passed as `--notify-keyspace-events` (`""` disables them).
    pub async fn start(notify_keyspace_events: &str) -> Option<Engine> {
        Self::start_on(free_port(), notify_keyspace_events).await
    }

    /// Starts Redis on `port`.
    pub async fn start_on(port: u16, notify_keyspace_events: &str) -> Option<Engine> {
        let program = match find_binary("SEXTANT_REDIS_SERVER", "redis-server", "redis-server") {
            Ok(p) => p,
            Err(why) => return missing("redis-server", &why),
        };
        let dir = temp_dir("redis");
        let args = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.path().display().to_string(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "yes".into(),
            "--appendfsync".into(),
            "always".into(),
            "--daemonize".into(),
            "no".into(),
            "--notify-keyspace-events".into(),
            notify_keyspace_events.into(),
        ];
        let spec = Spec {
            name: "redis",
            program,
            args,
            port,
            ready: Ready::RedisPing,
        };
        Some(Engine::start(spec, dir).await)
    }
}

/// ZooKeeper (standalone) started for a test, with tick time 500 ms so that session timeouts
/// from 1 s are allowed.
pub struct ZooKeeperServer;

impl ZooKeeperServer {
    /// Starts ZooKeeper on a free port, or `None` (after a loud message) if it is not installed.
    pub async fn start() -> Option<Engine> {
        Self::start_on(free_port()).await
    }

    /// Starts ZooKeeper on `port`.
    pub async fn start_on(port: u16) -> Option<Engine> {
        let java = match find_binary("SEXTANT_JAVA", "java", "zookeeper") {
            Ok(p) => p,
            Err(why) => return missing("zookeeper", &why),
        };
        let classpath = match std::env::var("SEXTANT_ZOOKEEPER_CLASSPATH") {
            Ok(cp) => cp,
            Err(_) => {
                let jar = Path::new("/usr/share/java/zookeeper.jar");
                if !jar.is_file() {
                    return missing(
                        "zookeeper",
                        "no /usr/share/java/zookeeper.jar (Debian package zookeeper); or set \
                         SEXTANT_ZOOKEEPER_CLASSPATH",
                    );
                }
                // slf4j-simple, when installed, puts the server's log in the test's engine log.
                let simple = Path::new("/usr/share/java/slf4j-simple.jar");
                if simple.is_file() {
                    format!("{}:{}", jar.display(), simple.display())
                } else {
                    jar.display().to_string()
                }
            }
        };
        let dir = temp_dir("zookeeper");
        let data = dir.path().join("data");
        fs::create_dir_all(&data).expect("cannot create the ZooKeeper data directory");
        let cfg = dir.path().join("zoo.cfg");
        fs::write(
            &cfg,
            format!(
                "tickTime=500\n\
                 dataDir={}\n\
                 clientPort={port}\n\
                 clientPortAddress=127.0.0.1\n\
                 minSessionTimeout=1000\n\
                 maxSessionTimeout=60000\n\
                 admin.enableServer=false\n\
                 4lw.commands.whitelist=srvr,stat,ruok\n\
                 maxClientCnxns=0\n",
                data.display()
            ),
        )
        .expect("cannot write zoo.cfg");
        let args = vec![
            "-Xmx256m".into(),
            "-XX:+UseSerialGC".into(),
            "-cp".into(),
            classpath,
            "org.apache.zookeeper.server.ZooKeeperServerMain".into(),
            cfg.display().to_string(),
        ];
        let spec = Spec {
            name: "zookeeper",
            program: java,
            args,
            port,
            ready: Ready::ZkSrvr,
        };
        Some(Engine::start(spec, dir).await)
    }
}
