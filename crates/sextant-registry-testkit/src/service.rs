//! The test service (`Arith.Mul`, as in rpcx-examples) and servers that can crash.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::{Address, Client, ClientOptions, Context, Server, ServiceError};

/// rpcx-examples' argument (PascalCase keys, as Go's msgpack writes them).
#[derive(Serialize, Deserialize, Default, Debug, Clone, Copy)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    /// A.
    pub a: i64,
    /// B.
    pub b: i64,
}

/// rpcx-examples' reply.
#[derive(Serialize, Deserialize, Default, Debug, Clone, Copy)]
#[serde(rename_all = "PascalCase")]
pub struct Reply {
    /// C.
    pub c: i64,
}

/// `Arith.Mul`.
pub struct Arith;

#[sextant::service]
impl Arith {
    async fn mul(&self, _cx: Context, args: Args) -> Result<Reply, ServiceError> {
        Ok(Reply { c: args.a * args.b })
    }
}

/// Calls `Arith.Mul(a, b)` on the server at `address` over a new connection.
pub async fn call_mul(address: &str, a: i64, b: i64) -> sextant::Result<i64> {
    let client = Client::connect(
        address,
        ClientOptions::default().connect_timeout(Duration::from_secs(2)),
    )
    .await?;
    let r: sextant::Result<Reply> = client.call("Arith", "Mul", &Args { a, b }).await;
    client.close();
    r.map(|r| r.c)
}

/// A server running on its own tokio runtime, so that a test can kill it like a crashed
/// process: every task it started (accept loop, connections, registry plugin, registry client
/// sessions) stops at once, without a graceful shutdown.
pub struct IsolatedServer {
    runtime: Option<tokio::runtime::Runtime>,
    server: Server,
    address: Address,
}

impl std::fmt::Debug for IsolatedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolatedServer")
            .field("address", &self.address)
            .finish()
    }
}

impl IsolatedServer {
    /// Runs `setup` on a new runtime; it builds and starts the server (plugins, services,
    /// listener) and returns it with its address.
    pub async fn start<F, Fut>(setup: F) -> IsolatedServer
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = (Server, Address)> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("cannot build a runtime");
        let (server, address) = runtime
            .spawn(async move { setup().await })
            .await
            .expect("server setup panicked");
        IsolatedServer {
            runtime: Some(runtime),
            server,
            address,
        }
    }

    /// The server's address (`tcp@127.0.0.1:port`).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Kills the server: its runtime stops and every task on it is dropped (no graceful
    /// shutdown, no registry cleanup; sockets close).
    pub fn kill(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }

    /// Shuts the server down gracefully on its own runtime (registry entries are removed before
    /// this returns), then stops the runtime.
    pub async fn shutdown(mut self) {
        let server = self.server.clone();
        if let Some(rt) = self.runtime.as_ref() {
            let _ = rt
                .spawn(async move { server.shutdown(Duration::from_secs(5)).await })
                .await;
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for IsolatedServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Waits until `check` holds, checking every 50 ms for at most `timeout`; panics with `what`
/// if it never does.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sets up logging for a test from `RUST_LOG` (default: warnings), once.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
