//! The server side: one UDP socket, one reader task that decrypts, checks and routes datagrams
//! to sessions keyed by the peer's address, as kcp-go's `Listener` (sess.go:746-1004).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::fec::{FEC_HEADER_PLUS2, TYPE_DATA};
use crate::packet::{self, le16, le32, KCP_OVERHEAD, KCP_SN_OFFSET, MTU_LIMIT};
use crate::session::{new_session, transient, Failure, Inbound, Removal, Shared};
use crate::{KcpConfig, KcpStream};

/// Datagrams queued for one session before the reader drops more (UDP semantics: KCP resends).
const SESSION_QUEUE: usize = 512;

/// A KCP listener, wire-compatible with kcp-go's `kcp.ListenWithOptions(addr, block, data,
/// parity)`.
///
/// One UDP socket serves every session. A datagram that fails the checksum (random bytes, a wrong
/// key) is dropped before any session exists. A new session starts from a data packet of a
/// conversation's first segment (`sn == 0`) from an address without a session, when fewer than
/// `max_sessions` sessions are open and the accept backlog has room; a `sn == 0` packet of another
/// conversation from an address with a session replaces that session (kcp-go sess.go:810-817).
///
/// Dropping the listener stops accepting; sessions already accepted keep working until they end.
pub struct KcpListener {
    local: SocketAddr,
    accept: tokio::sync::Mutex<mpsc::Receiver<(KcpStream, SocketAddr)>>,
}

impl std::fmt::Debug for KcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KcpListener")
            .field("local", &self.local)
            .finish()
    }
}

impl KcpListener {
    /// Binds a UDP socket at `addr` and starts serving KCP sessions on it.
    pub async fn bind(addr: SocketAddr, config: KcpConfig) -> io::Result<KcpListener> {
        config.validate()?;
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        let local = socket.local_addr()?;
        let (accept_tx, accept_rx) = mpsc::channel(config.accept_backlog.max(1));
        let (removal_tx, removal_rx) = mpsc::unbounded_channel();
        let reader = Reader {
            socket,
            config: Arc::new(config),
            sessions: HashMap::new(),
            next_id: 0,
            accept_tx,
            removal_tx,
            removal_rx,
        };
        tokio::spawn(reader.run());
        Ok(KcpListener {
            local,
            accept: tokio::sync::Mutex::new(accept_rx),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Waits for the next session. Cancel-safe: a session is never lost when the future is
    /// dropped. Fails only when the listener's socket failed.
    pub async fn accept(&self) -> io::Result<(KcpStream, SocketAddr)> {
        let mut rx = self.accept.lock().await;
        rx.recv().await.ok_or_else(|| {
            io::Error::new(io::ErrorKind::BrokenPipe, crate::KcpError::ListenerClosed)
        })
    }
}

struct Entry {
    id: u64,
    conv: u32,
    tx: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
}

struct Reader {
    socket: Arc<UdpSocket>,
    config: Arc<KcpConfig>,
    sessions: HashMap<SocketAddr, Entry>,
    next_id: u64,
    accept_tx: mpsc::Sender<(KcpStream, SocketAddr)>,
    removal_tx: mpsc::UnboundedSender<Removal>,
    removal_rx: mpsc::UnboundedReceiver<Removal>,
}

impl Reader {
    fn remove(&mut self, (addr, id): Removal) {
        if self.sessions.get(&addr).is_some_and(|e| e.id == id) {
            self.sessions.remove(&addr);
        }
    }

    async fn run(mut self) {
        let mut buf = vec![0u8; MTU_LIMIT + 1];
        let header = self.config.header_size();
        let mut listening = true;
        loop {
            let accept_tx = self.accept_tx.clone();
            tokio::select! {
                biased;
                Some(r) = self.removal_rx.recv() => {
                    self.remove(r);
                    while let Ok(r) = self.removal_rx.try_recv() {
                        self.remove(r);
                    }
                }
                _ = accept_tx.closed(), if listening => {
                    listening = false;
                }
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        // Short datagrams are dropped before decryption (readloop.go:38).
                        if n >= header + KCP_OVERHEAD && n <= MTU_LIMIT {
                            self.packet(&mut buf[..n], from, listening);
                        } else {
                            tracing::trace!(%from, n, "kcp: datagram of a bad size dropped");
                        }
                    }
                    Err(e) if transient(&e) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "kcp: listener socket failed");
                        for entry in self.sessions.values() {
                            entry.shared.fail(Failure::Socket(e.kind()));
                        }
                        return;
                    }
                },
            }
            if !listening && self.sessions.is_empty() {
                return;
            }
        }
    }

    /// One datagram (sess.go:773-830).
    fn packet(&mut self, buf: &mut [u8], from: SocketAddr, listening: bool) {
        let Some(data) = packet::open(self.config.crypt.as_ref(), buf) else {
            tracing::trace!(%from, "kcp: checksum failed, datagram dropped");
            return;
        };
        // The conversation and first sn of a data packet; parity packets carry neither.
        let fec = self.config.fec_enabled();
        let kcp_at = if fec { FEC_HEADER_PLUS2 } else { 0 };
        let is_data = !fec || le16(&data[4..]) == TYPE_DATA;
        let (conv, sn) = if is_data && data.len() >= kcp_at + KCP_OVERHEAD {
            (
                Some(le32(&data[kcp_at..])),
                le32(&data[kcp_at + KCP_SN_OFFSET..]),
            )
        } else {
            (None, 0)
        };

        if let Some(entry) = self.sessions.get(&from) {
            if conv.is_none() || conv == Some(entry.conv) {
                match entry.tx.try_send(Bytes::copy_from_slice(data)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::trace!(%from, "kcp: session queue full, datagram dropped");
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        self.sessions.remove(&from);
                    }
                }
                return;
            }
            if sn != 0 {
                return;
            }
            // A new conversation from the same address replaces the session (sess.go:813-816).
            tracing::debug!(%from, old = entry.conv, new = ?conv, "kcp: session replaced");
            if let Some(old) = self.sessions.remove(&from) {
                old.shared.fail(Failure::Replaced);
            }
        }

        let Some(conv) = conv else { return };
        // Stricter than kcp-go, which starts a session from any data packet: only a
        // conversation's first segment does, so stray retransmissions of a finished session do
        // not open sessions that could never deliver data.
        if !listening || sn != 0 || !packet::valid_kcp(&data[kcp_at..], conv, None) {
            return;
        }
        if self.sessions.len() >= self.config.max_sessions {
            tracing::debug!(%from, conv, max_sessions = self.config.max_sessions, "kcp: too many sessions, new session dropped");
            return;
        }
        // Do not let new sessions overwhelm the accept queue (sess.go:820).
        let Ok(permit) = self.accept_tx.try_reserve() else {
            tracing::debug!(%from, conv, "kcp: accept backlog full, new session dropped");
            return;
        };
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        let id = self.next_id;
        self.next_id += 1;
        let (stream, driver) = new_session(
            conv,
            self.config.clone(),
            self.socket.clone(),
            from,
            false,
            Some((self.removal_tx.clone(), id)),
        );
        let _ = tx.try_send(Bytes::copy_from_slice(data));
        let shared = driver.shared().clone();
        tokio::spawn(driver.run(Inbound::Channel(rx)));
        self.sessions.insert(
            from,
            Entry {
                id,
                conv,
                tx,
                shared,
            },
        );
        tracing::debug!(%from, conv, "kcp: new session");
        permit.send((stream, from));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::time::timeout;

    use super::*;
    use crate::fec::{FEC_HEADER_PLUS2, TYPE_PARITY};
    use crate::packet::{seal, CRYPT_HEADER};

    fn push(conv: u32, sn: u32, data: &[u8]) -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(&conv.to_le_bytes());
        s.extend_from_slice(&[81, 0]);
        s.extend_from_slice(&128u16.to_le_bytes());
        s.extend_from_slice(&0u32.to_le_bytes());
        s.extend_from_slice(&sn.to_le_bytes());
        s.extend_from_slice(&0u32.to_le_bytes());
        s.extend_from_slice(&(data.len() as u32).to_le_bytes());
        s.extend_from_slice(data);
        s
    }

    /// A sealed datagram: crypto header, FEC `seqid | flag | size`, then `body`.
    fn datagram(config: &KcpConfig, seqid: u32, flag: u16, size: u16, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; CRYPT_HEADER];
        p.extend_from_slice(&seqid.to_le_bytes());
        p.extend_from_slice(&flag.to_le_bytes());
        p.extend_from_slice(&size.to_le_bytes());
        p.extend_from_slice(body);
        seal(config.crypt.as_ref().unwrap(), &mut p);
        p
    }

    /// Correctly sealed packets (right key, good checksum) with absurd FEC seqids, flags and
    /// sizes, and garbage KCP: the session survives and still delivers its data in order.
    #[tokio::test]
    async fn absurd_fec_packets_on_a_live_session() {
        let config = KcpConfig::new().with_pass_salt("rpcx-key", "rpcx-salt");
        let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), config.clone())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let first = push(77, 0, b"hi ");
        let size = (2 + first.len()) as u16;
        peer.send_to(&datagram(&config, 0, TYPE_DATA, size, &first), addr)
            .await
            .unwrap();
        let (mut stream, _) = timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap()
            .unwrap();

        let mut x: u32 = 0xdead_beef;
        for i in 0..4000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let flag = [TYPE_DATA, TYPE_PARITY, 0, 0xffff][(x % 4) as usize];
            let seqid = [x, u32::MAX - i % 20, i % 40, x | 0x8000_0000][(i % 4) as usize];
            let len = (x >> 7) as usize % (MTU_LIMIT - CRYPT_HEADER - FEC_HEADER_PLUS2);
            let mut body: Vec<u8> = (0..len).map(|j| (x >> (j % 24)) as u8).collect();
            if i % 3 == 0 && body.len() >= 24 {
                body[..4].copy_from_slice(&77u32.to_le_bytes()); // right conv, garbage segment
            }
            let size = (x >> 16) as u16;
            let _ = peer
                .send_to(&datagram(&config, seqid, flag, size, &body), addr)
                .await;
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }

        let second = push(77, 1, b"there");
        let size = (2 + second.len()) as u16;
        peer.send_to(&datagram(&config, 1, TYPE_DATA, size, &second), addr)
            .await
            .unwrap();
        let mut buf = [0u8; 8];
        timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
            .await
            .expect("session alive")
            .unwrap();
        assert_eq!(&buf, b"hi there");
        assert!(stream.stats().dropped_in > 0);
    }
}
