//! The Go end of the transport tests: `tests/go/transport_peer`, a small Go program that dials
//! and listens exactly as rpcx does on each network with the libraries rpcx uses (no Go rpcx
//! build is available here), built from Debian's Go packages; and the process running it.
//!
//! As a server (`server -net NET -addr 127.0.0.1:0 -resp HEX`) it prints `LISTEN host:port` and
//! answers every request frame with the given response, its seq set to the request's; as a
//! client it sends one request and prints the response frame in hex. Used by this crate's
//! `go_transports` test and by the `sextant call` tests.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The longest any step (a build aside) may take: a Go process's start, a dial, a call.
pub const WAIT: Duration = Duration::from_secs(20);

/// Whether `SEXTANT_REQUIRE_SERVICES=1`: a missing Go or Go library fails instead of skipping.
pub fn required() -> bool {
    std::env::var("SEXTANT_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The outcome of building the peer.
pub enum Build {
    /// The program, built.
    Built(PathBuf),
    /// Go or a Go package is not installed.
    Missing(String),
    /// It is, but the program does not build.
    Failed(String),
}

/// The `go` binary: `$SEXTANT_GO`, `go` on `PATH` or Debian's `/usr/lib/go/bin/go`.
pub fn go_binary() -> Option<PathBuf> {
    if let Some(go) = std::env::var_os("SEXTANT_GO") {
        return Some(go.into());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("go"));
    on_path
        .chain([PathBuf::from("/usr/lib/go/bin/go")])
        .find(|p| p.is_file())
}

/// Builds `tests/go/transport_peer` into `dir` (its build cache kept there too), offline in
/// GOPATH mode from Debian's Go packages.
pub fn build(dir: &Path) -> Build {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/transport_peer");
    build_program(
        &src,
        dir,
        "transport_peer",
        "golang-golang-x-net-dev, golang-github-lucas-clemente-quic-go-dev, \
         golang-github-xtaci-kcp-dev",
    )
}

/// Builds the Go program in `src` as `dir/name` (Go's build cache kept in `dir` too), offline
/// in GOPATH mode (`$SEXTANT_GOPATH`, default `/usr/share/gocode`, where Debian's golang-*-dev
/// packages put their sources). `packages` names the Debian packages it needs, for the
/// message when one is missing.
pub fn build_program(src: &Path, dir: &Path, name: &str, packages: &str) -> Build {
    let Some(go) = go_binary() else {
        return Build::Missing("`go` not found (Debian package golang-go)".into());
    };
    let gopath = std::env::var("SEXTANT_GOPATH").unwrap_or_else(|_| "/usr/share/gocode".into());
    let out = dir.join(name);
    let started = Instant::now();
    let result = Command::new(&go)
        .arg("build")
        .arg("-o")
        .arg(&out)
        .arg(".")
        .current_dir(src)
        .env("GO111MODULE", "off")
        .env("GOPATH", &gopath)
        .env("GOCACHE", dir.join("go-build-cache"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0")
        .stdin(Stdio::null())
        .output();
    let output = match result {
        Ok(o) => o,
        Err(e) => return Build::Missing(format!("cannot run {}: {e}", go.display())),
    };
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        eprintln!(
            "go peer: built {} in {:.1?}",
            out.display(),
            started.elapsed()
        );
        Build::Built(out)
    } else if stderr.contains("cannot find package") {
        Build::Missing(format!(
            "a Go package is missing ({packages}; GOPATH {gopath}):\n{stderr}"
        ))
    } else {
        Build::Failed(format!(
            "go build {}: {}\n{stderr}",
            src.display(),
            output.status
        ))
    }
}

/// The peer built once per process into `dir` (a test target's `CARGO_TARGET_TMPDIR`/…, so
/// Go's build cache survives between runs), or `None`, with a note on stderr, when Go or its
/// packages are not installed (a panic under [`required`]). `who` names the caller in notes.
pub fn peer(dir: &Path, who: &str) -> Option<&'static Path> {
    static PEER: OnceLock<Build> = OnceLock::new();
    match PEER.get_or_init(|| build(dir)) {
        Build::Built(p) => Some(p),
        Build::Failed(why) => panic!("{why}"),
        Build::Missing(why) if required() => {
            panic!("{why}\n(SEXTANT_REQUIRE_SERVICES=1; run scripts/services.sh install)")
        }
        Build::Missing(why) => {
            eprintln!("{who}: skipped: {why} (scripts/services.sh install)");
            None
        }
    }
}

/// A Go process, killed (and reaped) when dropped.
pub struct GoProcess {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl GoProcess {
    /// Starts `peer ARGS`, its stdout and stderr written to `dir/NAME.stdout` and `.stderr`.
    pub fn spawn(peer: &Path, args: &[String], dir: &Path, name: &str) -> GoProcess {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let child = Command::new(peer)
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", peer.display()));
        GoProcess {
            child,
            stdout,
            stderr,
        }
    }

    /// What it printed so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits up to `WAIT` for the process to exit: its stdout, or why not.
    pub fn finish(mut self) -> Result<String, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(self.stdout()),
                Ok(Some(status)) => {
                    return Err(format!(
                        "{status}; stdout: {:?}; stderr:\n{}",
                        self.stdout(),
                        self.stderr()
                    ))
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    return Err(format!(
                        "still running after {WAIT:?}; stderr:\n{}",
                        self.stderr()
                    ))
                }
                Err(e) => return Err(format!("wait: {e}")),
            }
        }
    }

    /// Waits up to `WAIT` for the server's `LISTEN host:port` line.
    pub fn listening_on(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(line) = self.stdout().lines().next() {
                if let Some(addr) = line.strip_prefix("LISTEN ") {
                    return Ok(addr.trim().to_string());
                }
                if self.stdout().contains('\n') {
                    return Err(format!("unexpected first line {line:?}"));
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}; stderr:\n{}", self.stderr()));
            }
            if Instant::now() >= deadline {
                return Err(format!("no LISTEN line within {WAIT:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for GoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
