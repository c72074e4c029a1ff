//! `http-client`: the closed-loop load of `client`, made of HTTP/1.1 requests instead of rpcx
//! calls, for rpcx's HTTP invoke (an HTTP request to an rpcx server's own port, or to a
//! gateway in front of it) and for any HTTP server that answers it the same way (the axum peer in
//! `bench/peers/axum-bench`).
//!
//! Every call is `POST URL` with rpcx's gateway headers and a JSON body, by default `Arith.Mul`:
//!
//! ```text
//! POST /Arith HTTP/1.1
//! host: 127.0.0.1:PORT
//! content-type: application/json
//! x-rpcx-serializetype: 1
//! x-rpcx-servicemethod: Mul
//! x-rpcx-messageid: 12
//!
//! {"A":13,"B":7}
//! ```
//!
//! and its reply must have status 200, no `X-RPCX-MessageStatusType: Error` (and, with the
//! default body, be `{"C":91}`); anything else counts as an error. The service path is left to the URL path, as rpcx's gateway allows.
//!
//! Connections: `-k` keep-alive HTTP/1.1 connections (hyper's low-level `client::conn::http1`, one
//! per TCP connection, TCP_NODELAY) in a pool shared by the `-c` callers. HTTP/1.1 carries one
//! request at a time per connection, so a caller takes a free connection from the pool (waiting
//! in FIFO order when all `k` are busy), makes its call and puts the connection back. `-k` equal
//! to `-c` gives every caller a connection of its own. A connection that fails, or whose call
//! timed out half-way, is dropped and replaced by a new one on next use.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use sextant_bench_driver::cli::ClientArgs;
use sextant_bench_driver::driver;
use sextant_interop::{Args, Reply};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, SemaphorePermit};

/// rpcx's message id header; set to a per-call sequence number unless `--header` gives one.
pub const MESSAGE_ID: &str = "x-rpcx-messageid";
/// The error text of a failed call, in rpcx's gateway replies.
const ERROR_MESSAGE: &str = "x-rpcx-errormessage";
/// `Error` in the reply of a failed call (rpcx answers some of them with status 200).
const MESSAGE_STATUS_TYPE: &str = "x-rpcx-messagestatustype";

/// Flags of `http-client`: the load flags of `client` (`-c`, `-k`, `-n`, `--json`, ...) plus
/// the request.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpClientArgs {
    /// Load and report flags, shared with `client` and the peers. `--addr ADDR` stands for
    /// `--url http://ADDR/Arith`.
    #[command(flatten)]
    pub load: ClientArgs,
    /// Where to POST, e.g. `http://127.0.0.1:8972/Arith` (loopback IP addresses only).
    #[arg(long, conflicts_with = "addr")]
    pub url: Option<String>,
    /// An extra request header, `NAME:VALUE`; repeatable. Replaces a default header of the same
    /// name.
    #[arg(short = 'H', long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Do not send the default headers (`content-type: application/json`,
    /// `X-RPCX-SerializeType: 1`, `X-RPCX-ServiceMethod: Mul`, and the per-call
    /// `X-RPCX-MessageID`).
    #[arg(long)]
    pub no_default_headers: bool,
    /// A fixed request body. Default: `{"A":a,"B":7}` with `a` varying per call, and the reply
    /// must then be `{"C":7a}`; with `--body` only the status is checked.
    #[arg(long)]
    pub body: Option<String>,
    /// Name of the peer in the report.
    #[arg(long, default_value = "http")]
    pub peer: String,
}

/// Where the requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    addr: SocketAddr,
    /// The request target in origin form (`/Arith`).
    path: Uri,
    /// The `host` header.
    host: HeaderValue,
}

/// Parses `http://IP:PORT/PATH`, accepting loopback addresses only (benchmarks never leave the
/// machine).
fn parse_url(url: &str) -> anyhow::Result<Target> {
    let uri: Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("{url}: only http:// URLs are supported");
    }
    let authority = uri.authority().context("the URL has no host")?;
    let host = authority.host();
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(|| format!("{url}: the host must be an IP address"))?;
    if !ip.is_loopback() {
        bail!("{url}: {ip} is not a loopback address");
    }
    let addr = SocketAddr::new(ip, authority.port_u16().unwrap_or(80));
    let path = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .context("bad URL path")?;
    Ok(Target {
        addr,
        path,
        host: HeaderValue::from_str(authority.as_str()).context("bad URL host")?,
    })
}

/// Parses `NAME:VALUE` (spaces around the value are dropped).
fn parse_header(s: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (name, value) = s
        .split_once(':')
        .with_context(|| format!("header {s:?} is not NAME:VALUE"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .with_context(|| format!("bad header name in {s:?}"))?;
    let value = HeaderValue::from_str(value.trim())
        .with_context(|| format!("bad header value in {s:?}"))?;
    Ok((name, value))
}

/// Everything needed to build each request.
#[derive(Debug)]
struct Template {
    path: Uri,
    headers: HeaderMap,
    /// Whether to add `X-RPCX-MessageID: <sequence number>` to each request.
    message_id: bool,
    /// `--body`, or `None` for the varying, checked `Arith.Mul` body.
    fixed_body: Option<Bytes>,
}

impl Template {
    fn new(args: &HttpClientArgs, target: &Target) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, target.host.clone());
        if !args.no_default_headers {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert("x-rpcx-serializetype", HeaderValue::from_static("1"));
            headers.insert("x-rpcx-servicemethod", HeaderValue::from_static("Mul"));
        }
        for h in &args.headers {
            let (name, value) = parse_header(h)?;
            headers.insert(name, value);
        }
        Ok(Self {
            path: target.path.clone(),
            message_id: !args.no_default_headers && !headers.contains_key(MESSAGE_ID),
            headers,
            fixed_body: args.body.clone().map(Bytes::from),
        })
    }

    /// Request number `seq`, and the `C` its reply must carry (`None`: only check the status).
    fn request(&self, seq: u64) -> (Request<Full<Bytes>>, Option<i64>) {
        let (body, expected) = match &self.fixed_body {
            Some(body) => (body.clone(), None),
            None => {
                let args = Args {
                    a: (seq % 1000) as i64 + 1,
                    b: 7,
                };
                // Two integers always serialize.
                let body = serde_json::to_vec(&args).expect("Args serializes");
                (Bytes::from(body), Some(args.a * args.b))
            }
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.path.clone();
        *request.headers_mut() = self.headers.clone();
        if self.message_id {
            request
                .headers_mut()
                .insert(MESSAGE_ID, HeaderValue::from(seq));
        }
        (request, expected)
    }
}

/// Opens one HTTP/1.1 connection to `addr` and spawns its connection task.
async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("HTTP/1.1 handshake with {addr}: {e}"))?;
    // Ends when the sender is dropped or the server closes the connection.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// `k` keep-alive connections shared by the callers: a caller takes a free one, waiting in FIFO
/// order when all are busy.
struct Pool {
    addr: SocketAddr,
    /// One permit per connection: a caller holding a permit is sure to find a connection (or
    /// room for a new one).
    permits: Semaphore,
    /// The idle, healthy connections. Fewer than the free permits when some were dropped; they
    /// are re-opened on demand.
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

/// A connection taken from the pool, ready for a request; goes back when dropped if its last
/// call completed.
struct Lease<'a> {
    pool: &'a Pool,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// Whether the connection is between two complete exchanges (else it is dropped).
    reusable: bool,
    _permit: SemaphorePermit<'a>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        // Runs before the permit is released, so the next caller finds the connection.
        if let Some(sender) = self.sender.take() {
            if self.reusable && !sender.is_closed() {
                let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.push(sender);
            }
        }
    }
}

impl Pool {
    /// Opens `k` connections to `addr`.
    async fn open(addr: SocketAddr, k: usize) -> anyhow::Result<Self> {
        let mut idle = Vec::with_capacity(k);
        for _ in 0..k {
            idle.push(connect(addr).await.map_err(anyhow::Error::msg)?);
        }
        Ok(Self {
            addr,
            permits: Semaphore::new(k),
            idle: Mutex::new(idle),
        })
    }

    async fn lease(&self) -> Result<Lease<'_>, String> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| "connection pool closed".to_string())?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        // An idle connection the server has closed meanwhile (keep-alive timeout,
        // `connection: close`) is replaced by a new one, not counted as a failed call.
        let reused = match idle {
            Some(mut sender) if !sender.is_closed() => sender.ready().await.ok().map(|()| sender),
            _ => None,
        };
        let sender = match reused {
            Some(sender) => sender,
            None => {
                let mut sender = connect(self.addr).await?;
                sender
                    .ready()
                    .await
                    .map_err(|e| format!("new connection not ready: {e}"))?;
                sender
            }
        };
        Ok(Lease {
            pool: self,
            sender: Some(sender),
            reusable: false,
            _permit: permit,
        })
    }

    /// Sends `request` on a free connection and returns the reply's body; a status other than
    /// 200, or `X-RPCX-MessageStatusType: Error`, is an error carrying the reply's
    /// `X-RPCX-ErrorMessage` (or the start of its body).
    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Bytes, String> {
        let mut lease = self.lease().await?;
        let Some(sender) = lease.sender.as_mut() else {
            return Err("no connection".into());
        };
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let failed = response
            .headers()
            .get(MESSAGE_STATUS_TYPE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"error"));
        let error_message = response
            .headers()
            .get(ERROR_MESSAGE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the reply body: {e}"))?
            .to_bytes();
        lease.reusable = true;
        drop(lease);
        if status == StatusCode::OK && !failed {
            Ok(body)
        } else {
            let detail = error_message.unwrap_or_else(|| {
                String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
            });
            Err(format!("status {status}: {detail}"))
        }
    }
}

/// The state the callers share.
struct HttpLoad {
    pool: Pool,
    template: Template,
    seq: AtomicU64,
}

impl HttpLoad {
    /// One call: build the request, send it, check the reply.
    async fn call(&self) -> Result<(), String> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (request, expected) = self.template.request(seq);
        let body = self.pool.send(request).await?;
        if let Some(expected) = expected {
            let reply: Reply = serde_json::from_slice(&body).map_err(|e| {
                format!(
                    "reply {:?} is not {{\"C\":...}}: {e}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                )
            })?;
            if reply.c != expected {
                return Err(format!("Arith.Mul returned {}, not {expected}", reply.c));
            }
        }
        Ok(())
    }
}

/// Drives the closed loop described by `args` with HTTP requests and prints the report. Fails
/// (before measuring anything) when a first probe request does not get a good reply.
pub async fn http_client(args: HttpClientArgs) -> anyhow::Result<()> {
    let url = match &args.url {
        Some(url) => url.clone(),
        None => format!("http://{}/Arith", args.load.addr),
    };
    let target = parse_url(&url)?;
    let template = Template::new(&args, &target)?;
    let config = args.load.load_config();
    let pool = Pool::open(target.addr, config.effective_connections())
        .await
        .with_context(|| format!("connecting to {}", target.addr))?;
    let load = Arc::new(HttpLoad {
        pool,
        template,
        seq: AtomicU64::new(0),
    });
    load.call().await.map_err(|e| {
        anyhow::anyhow!("probe request POST {url} failed (does the server answer HTTP there?): {e}")
    })?;
    let result = {
        let load = Arc::clone(&load);
        driver::run(&config, move |_connection| {
            let load = Arc::clone(&load);
            async move { load.call().await }
        })
        .await
    };
    args.load.print_report(&args.peer, &config, &result);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("http://127.0.0.1:8972/Arith").expect("parses");
        assert_eq!(t.addr, "127.0.0.1:8972".parse().expect("addr"));
        assert_eq!(t.path, "/Arith");
        assert_eq!(t.host, "127.0.0.1:8972");
        let t = parse_url("http://[::1]:9/a/b?x=1").expect("parses");
        assert_eq!(t.addr, "[::1]:9".parse().expect("addr"));
        assert_eq!(t.path, "/a/b?x=1");
        assert_eq!(
            parse_url("http://127.0.0.1").expect("parses").addr.port(),
            80
        );
        assert!(parse_url("https://127.0.0.1:1/").is_err());
        assert!(parse_url("http://10.0.0.1:1/").is_err());
        assert!(parse_url("http://localhost:1/").is_err());
    }

    #[test]
    fn headers() {
        let (n, v) = parse_header("X-RPCX-ServicePath: Arith").expect("parses");
        assert_eq!(
            (n.as_str(), v.to_str().expect("ascii")),
            ("x-rpcx-servicepath", "Arith")
        );
        assert!(parse_header("no colon").is_err());
    }

    #[test]
    fn requests() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: HttpClientArgs,
        }
        let cli = Cli::try_parse_from([
            "x",
            "--url",
            "http://127.0.0.1:1/Arith",
            "-H",
            "X-RPCX-ServiceMethod:Add",
            "-H",
            "X-RPCX-ServicePath: Arith",
        ])
        .expect("parses");
        let target = parse_url(cli.args.url.as_deref().expect("url")).expect("url");
        let template = Template::new(&cli.args, &target).expect("template");
        let (request, expected) = template.request(12);
        assert_eq!(expected, Some(13 * 7));
        let h = request.headers();
        assert_eq!(h["x-rpcx-servicemethod"], "Add");
        assert_eq!(h["x-rpcx-servicepath"], "Arith");
        assert_eq!(h["x-rpcx-serializetype"], "1");
        assert_eq!(h[MESSAGE_ID], "12");
        assert_eq!(h[HOST], "127.0.0.1:1");
        assert_eq!(request.uri(), "/Arith");
        assert!(Cli::try_parse_from([
            "x",
            "--url",
            "http://127.0.0.1:1/",
            "--addr",
            "127.0.0.1:2"
        ])
        .is_err());
        let cli =
            Cli::try_parse_from(["x", "--no-default-headers", "--body", "{}"]).expect("parses");
        let target = parse_url("http://127.0.0.1:1/").expect("url");
        let (request, expected) = Template::new(&cli.args, &target)
            .expect("template")
            .request(1);
        assert_eq!(expected, None);
        assert_eq!(request.headers().len(), 1);
    }

    /// A minimal HTTP invoke server for `Arith.Mul`: checks the rpcx headers, answers
    /// `{"C":A*B}`, and closes every 7th connection after its reply (`connection: close`), so
    /// that the pool has to re-open connections.
    async fn arith_server() -> SocketAddr {
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let served = Arc::new(AtomicU64::new(0));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let served = Arc::clone(&served);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let served = Arc::clone(&served);
                        async move {
                            let h = request.headers().clone();
                            assert_eq!(request.uri().path(), "/Arith");
                            assert_eq!(h["x-rpcx-servicemethod"], "Mul");
                            assert_eq!(h["x-rpcx-serializetype"], "1");
                            let body = request.into_body().collect().await?.to_bytes();
                            let args: Args = serde_json::from_slice(&body).expect("Args");
                            let reply =
                                serde_json::to_vec(&Reply { c: args.a * args.b }).expect("Reply");
                            let mut response = hyper::Response::new(Full::new(Bytes::from(reply)));
                            response
                                .headers_mut()
                                .insert(MESSAGE_ID, h[MESSAGE_ID].clone());
                            if served.fetch_add(1, Ordering::Relaxed) % 7 == 6 {
                                response.headers_mut().insert(
                                    hyper::header::CONNECTION,
                                    HeaderValue::from_static("close"),
                                );
                            }
                            Ok::<_, hyper::Error>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        addr
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loads_an_http_server() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: HttpClientArgs,
        }
        let addr = arith_server().await;
        let cli = Cli::try_parse_from([
            "x".to_string(),
            "--addr".into(),
            addr.to_string(),
            "-c".into(),
            "20".into(),
            "-k".into(),
            "3".into(),
            "-n".into(),
            "500".into(),
            "--no-progress".into(),
        ])
        .expect("parses");
        let target = parse_url(&format!("http://{addr}/Arith")).expect("url");
        let config = cli.args.load.load_config();
        let load = Arc::new(HttpLoad {
            pool: Pool::open(target.addr, config.effective_connections())
                .await
                .expect("connects"),
            template: Template::new(&cli.args, &target).expect("template"),
            seq: AtomicU64::new(0),
        });
        let result = driver::run(&config, move |_| {
            let load = Arc::clone(&load);
            async move { load.call().await }
        })
        .await;
        assert_eq!(
            (result.ok, result.errors),
            (500, 0),
            "{:?}",
            result.first_error
        );
        http_client(cli.args).await.expect("the whole command runs");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_is_not_http_fails_the_probe() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Accepts and closes at once, as an rpcx server without HTTP invoke does.
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                drop(tcp);
            }
        });
        let args = HttpClientArgs {
            load: {
                use clap::Parser;
                #[derive(Parser)]
                struct Cli {
                    #[command(flatten)]
                    load: ClientArgs,
                }
                Cli::try_parse_from(["x", "--addr", &addr.to_string(), "-n", "10"])
                    .expect("parses")
                    .load
            },
            url: None,
            headers: Vec::new(),
            no_default_headers: false,
            body: None,
            peer: "http".into(),
        };
        let error = http_client(args).await.expect_err("the probe fails");
        assert!(error.to_string().contains("probe request"), "{error}");
    }
}
