//! Server push throughput (`sextant-bench push`): how many pushes per second one connection
//! carries, to compare with the call TPS of one connection (`client -k 1`) in the same run
//! (`bench/push.sh`).
//!
//! The client makes one call, `Bench.Push` with `[n, size]`; the server answers it, then pushes
//! `n` messages of `size` bytes to the caller's connection as fast as its push queue takes them
//! (`ClientConn::send_message`; when the queue is full it yields and tries again). The client
//! reads them from a blocking queue (`PushOverflow::Block`, so none is dropped) and reports the
//! rate from the call to the last push.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use sextant::{
    Client, ClientOptions, Context, Error, Metadata, PushError, PushOverflow, Server, ServiceError,
};

/// The service and method the bench server answers push requests on.
pub const SERVICE: &str = "Bench";
/// See [`SERVICE`].
pub const METHOD: &str = "Push";

/// Registers `Bench.Push([n, size])` on `server`.
pub fn register(server: &Server) -> sextant::Result<()> {
    server.register_fn(
        SERVICE,
        METHOD,
        |cx: Context, (n, size): (u64, usize)| async move {
            let conn = cx
                .conn()
                .cloned()
                .ok_or_else(|| ServiceError::new("Bench.Push needs an rpcx connection"))?;
            if size > 1 << 20 {
                return Err(ServiceError::new("size is at most 1 MiB"));
            }
            tokio::spawn(async move {
                let payload = vec![b'p'; size];
                let meta = Metadata::new();
                let mut i = 0;
                while i < n {
                    match conn.send_message(SERVICE, METHOD, &meta, &payload) {
                        Ok(()) => i += 1,
                        Err(Error::Push {
                            reason: PushError::Full,
                            ..
                        }) => tokio::task::yield_now().await,
                        Err(e) => {
                            eprintln!("push {i} of {n}: {e}");
                            return;
                        }
                    }
                }
            });
            Ok::<_, ServiceError>(n)
        },
    )
}

/// Asks the server at `addr` for `n` pushes of `size` bytes on one connection, receives them
/// and prints one JSON line: pushes, seconds, pushes per second.
pub async fn push_client(addr: std::net::SocketAddr, n: u64, size: usize) -> anyhow::Result<()> {
    let client = Client::connect(
        addr.to_string(),
        ClientOptions::default()
            .server_message_capacity(4096)
            .server_message_overflow(PushOverflow::Block),
    )
    .await
    .with_context(|| format!("connecting to {addr}"))?;
    let mut pushes = client.server_messages().context("push queue")?;
    let started = Instant::now();
    let asked: u64 = client
        .call(SERVICE, METHOD, &(n, size))
        .await
        .context("Bench.Push")?;
    anyhow::ensure!(asked == n, "the server agreed to {asked} pushes, not {n}");
    let mut received = 0u64;
    let mut bytes = 0usize;
    while received < n {
        let m = tokio::time::timeout(Duration::from_secs(30), pushes.recv())
            .await
            .with_context(|| format!("no push for 30 s after {received} of {n}"))?
            .with_context(|| format!("connection closed after {received} of {n} pushes"))?;
        bytes += m.payload().len();
        received += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(bytes == size * n as usize, "payload bytes: {bytes}");
    println!(
        "{{\"peer\":\"{}\",\"pushes\":{n},\"payload\":{size},\"secs\":{secs:.3},\"pushes_per_sec\":{:.0}}}",
        crate::PEER,
        n as f64 / secs
    );
    client.close();
    Ok(())
}
