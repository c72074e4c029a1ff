//! The in-process transport: client and server in one process, connected by in-memory pipes.
//!
//! rpcx's "inprocess" registry lets tests and development builds call a server in the same
//! process without a socket. sextant does the same with an explicit hub, [`InProcess`]: a server
//! listens on a name in a hub and clients dial that name in the same hub. The bytes on the pipe
//! are the ordinary rpcx wire format, so everything a TCP connection does (codecs, metadata,
//! deadlines, heartbeats) works unchanged.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> sextant::Result<()> {
//! use sextant::transport::InProcess;
//! use sextant::{Client, ClientOptions, Context, Server, ServiceError};
//!
//! let hub = InProcess::new();
//! let server = Server::new();
//! server.register_fn("Arith", "Mul", |_cx: Context, (a, b): (i64, i64)| async move {
//!     Ok::<_, ServiceError>(a * b)
//! })?;
//! let address = hub.serve(&server, "arith").await?; // inprocess@arith
//!
//! let stream = hub.connect("arith").await?;
//! let client = Client::from_stream(address, stream, ClientOptions::default());
//! let c: i64 = client.call("Arith", "Mul", &(6, 7)).await?;
//! assert_eq!(c, 42);
//! # server.shutdown(std::time::Duration::from_secs(1)).await?;
//! # Ok(()) }
//! ```
//!
//! ## The process-wide hub
//!
//! Addresses are plain strings (`inprocess@arith`) and travel through discovery, so something must
//! map a name to a hub when no hub is at hand: [`Server::start`](crate::Server::start) with an
//! `inprocess@` address and [`Client::connect`](crate::Client::connect) to one use
//! [`InProcess::global`], a hub created on first use and shared by the whole process. Pass an
//! explicit hub ([`InProcess::serve`], [`InProcess::connect`], or the XClient option
//! `in_process`) to keep tests that run in parallel apart.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use super::{Address, Listener, PeerAddr, Stream};
use crate::error::{Error, Result};

/// Bytes buffered in each direction of an in-process connection before the writer waits.
const PIPE_CAPACITY: usize = 256 * 1024;
/// Connections that may wait for the server's accept loop.
const BACKLOG: usize = 1024;

type Accepted = (DuplexStream, PeerAddr);

/// A set of in-process listeners, by name. Cheap to clone: clones share the same listeners.
#[derive(Clone, Default)]
pub struct InProcess {
    inner: Arc<Hub>,
}

#[derive(Default)]
struct Hub {
    listeners: Mutex<HashMap<String, mpsc::Sender<Accepted>>>,
    next_peer: AtomicU64,
}

impl fmt::Debug for InProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcess")
            .field("names", &self.names())
            .finish()
    }
}

impl InProcess {
    /// An empty hub.
    pub fn new() -> InProcess {
        InProcess::default()
    }

    /// The process-wide hub, used for `inprocess@` addresses when no hub is given (see the module
    /// docs).
    pub fn global() -> &'static InProcess {
        static GLOBAL: OnceLock<InProcess> = OnceLock::new();
        GLOBAL.get_or_init(InProcess::new)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Accepted>>> {
        crate::util::lock(&self.inner.listeners)
    }

    /// Listens on `name`. Fails when a live listener already has the name; the name is free again
    /// once that listener is dropped.
    pub fn listen(&self, name: &str) -> Result<Listener> {
        check_name(name)?;
        let (tx, rx) = mpsc::channel(BACKLOG);
        let mut map = self.lock();
        if let Some(existing) = map.get(name) {
            if !existing.is_closed() {
                return Err(Error::Config(format!(
                    "in-process name {name:?} is already being listened on; pick another name or \
                     shut the other server down first"
                )));
            }
        }
        map.insert(name.to_string(), tx);
        Ok(Listener::memory(MemoryListener {
            name: name.to_string(),
            rx: tokio::sync::Mutex::new(rx),
        }))
    }

    /// Connects to the listener named `name`.
    pub async fn connect(&self, name: &str) -> Result<Stream> {
        let tx = self.lock().get(name).cloned();
        let refused = || Error::Connect {
            address: format!("inprocess@{name}"),
            source: Arc::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "no server listens on this in-process name (is it started, and in the same hub?)",
            )),
        };
        let Some(tx) = tx else {
            return Err(refused());
        };
        let (client, server) = tokio::io::duplex(PIPE_CAPACITY);
        let n = self.inner.next_peer.fetch_add(1, Ordering::Relaxed);
        let peer = PeerAddr::InProcess(format!("{name}#{n}"));
        tx.send((server, peer)).await.map_err(|_| refused())?;
        Ok(Stream::Memory(client))
    }

    /// Serves `server` on `name` in this hub; returns the address (`inprocess@name`) to give to
    /// clients and discovery.
    pub async fn serve(&self, server: &crate::Server, name: &str) -> Result<Address> {
        server.start_listener(self.listen(name)?).await
    }

    /// The names listened on now, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, tx)| !tx.is_closed())
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidAddress {
            address: "inprocess@".into(),
            reason: "the in-process name after '@' is empty".into(),
        });
    }
    Ok(())
}

/// The listening end of an in-process name (inside a [`Listener`] from [`InProcess::listen`]).
pub struct MemoryListener {
    name: String,
    rx: tokio::sync::Mutex<mpsc::Receiver<Accepted>>,
}

impl fmt::Debug for MemoryListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryListener")
            .field("name", &self.name)
            .finish()
    }
}

impl MemoryListener {
    /// The name listened on.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) async fn accept(&self) -> std::io::Result<(Stream, PeerAddr)> {
        // Only the server's accept loop calls this, so the lock is never contended.
        match self.rx.lock().await.recv().await {
            Some((s, peer)) => Ok((Stream::Memory(s), peer)),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "in-process hub dropped",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn connect_accept_and_names() {
        let hub = InProcess::new();
        assert!(hub.connect("x").await.is_err());
        let l = hub.listen("x").unwrap();
        assert!(hub.listen("x").unwrap_err().to_string().contains("already"));
        assert_eq!(hub.names(), vec!["x".to_string()]);
        let Stream::Memory(mut c) = hub.connect("x").await.unwrap() else {
            panic!("not a memory stream")
        };
        let c2 = l
            .accept()
            .await
            .unwrap()
            .finish(Duration::from_secs(1))
            .await
            .unwrap();
        let (s, peer) = (c2.stream, c2.peer);
        assert!(peer.to_string().starts_with("inprocess@x#"));
        let Stream::Memory(mut s) = s else {
            panic!("not a memory stream")
        };
        c.write_all(b"hi").await.unwrap();
        let mut b = [0u8; 2];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"hi");
        drop(l);
        assert!(hub.names().is_empty());
        let e = hub.connect("x").await.unwrap_err().to_string();
        assert!(e.contains("no server listens"), "{e}");
        // The name can be reused once the old listener is gone.
        let _l2 = hub.listen("x").unwrap();
        assert!(hub.listen("").is_err());
    }
}
