//! A TCP proxy on 127.0.0.1 that a test can cut and restore, to partition one client from a
//! registry that keeps running for everyone else.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards 127.0.0.1:`port` to a target. [`cut`](Proxy::cut) closes every forwarded connection
/// and refuses new ones; [`restore`](Proxy::restore) accepts again on the same port.
pub struct Proxy {
    port: u16,
    target: String,
    /// `true` while cut; every forwarding task watches it.
    cut: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("port", &self.port)
            .field("target", &self.target)
            .finish()
    }
}

impl Proxy {
    /// Starts forwarding a free port to `target` (`127.0.0.1:2379`).
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let p = Proxy {
            port,
            target: target.to_string(),
            cut: Arc::new(watch::channel(false).0),
        };
        p.serve(listener);
        p
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every forwarded connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Accepts and forwards again.
    pub async fn restore(&self) {
        self.cut.send_replace(false);
        // Bounded: the old listener closes as soon as its task sees the cut.
        for _ in 0..100 {
            if let Ok(l) = TcpListener::bind(("127.0.0.1", self.port)).await {
                self.serve(l);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("proxy port {} still busy after 2 s", self.port);
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target.clone();
        let mut cut = self.cut.subscribe();
        let cut_tx = self.cut.clone();
        tokio::spawn(async move {
            loop {
                let (inbound, _) = tokio::select! {
                    _ = cut.wait_for(|c| *c) => return, // drops the listener: refused
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                };
                let target = target.clone();
                let mut cut = cut_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| *c) => {} // both sockets dropped: reset
                    }
                });
            }
        });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
    }
}
