//! KCP over UDP for tokio, wire-compatible with Go's [xtaci/kcp-go] sessions as Go rpcx uses them
//! (`kcp.ListenWithOptions(addr, kcp.NewAESBlockCrypt(key), 10, 3)` and
//! `kcp.DialWithOptions(addr, block, 10, 3)`, stream mode): the `kcp@` transport of sextant.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use sextant_kcp::{KcpConfig, KcpListener, KcpStream};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! // rpcx-examples' key: pbkdf2-sha1("rpcx-key", "rpcx-salt", 4096, 32) -> AES-256.
//! let config = KcpConfig::new().with_pass_salt("rpcx-key", "rpcx-salt");
//! let listener = KcpListener::bind("127.0.0.1:8972".parse().unwrap(), config.clone()).await?;
//! let mut client = KcpStream::connect(listener.local_addr()?, config).await?;
//! client.write_all(b"ping").await?;
//! let (mut server, _peer) = listener.accept().await?;
//! let mut buf = [0u8; 4];
//! server.read_exact(&mut buf).await?;
//! # Ok(()) }
//! ```
//!
//! # Packet layout
//!
//! Every datagram, as kcp-go v5.4.20 writes it (file:line of that version):
//!
//! | bytes | field | kcp-go |
//! |---|---|---|
//! | 16 | nonce, random per packet (only with a cipher) | sess.go:27, sess.go:549 |
//! | 4 | CRC32-IEEE of everything after it, little-endian (only with a cipher) | sess.go:30, sess.go:550-551 |
//! | 4 | FEC seqid, LE (only with FEC) | fec.go:21, fec.go:326-330 |
//! | 2 | FEC flag, LE: `0xf1` data, `0xf2` parity (only with FEC) | fec.go:13-14, fec.go:22 |
//! | 2 | size of this field + the KCP packet, LE (data packets with FEC only) | fec.go:278-281 |
//! | n | KCP packet: one or more segments (data packets); a parity shard (parity packets) | kcp.go:119-130 |
//!
//! A KCP segment is `conv u32 | cmd u8 | frg u8 | wnd u16 | ts u32 | sn u32 | una u32 | len u32 |
//! data` in little-endian (kcp.go:119-130), cmd 81 push, 82 ack, 83 window ask, 84 window tell
//! (kcp.go:14-17). With a cipher, the whole datagram, nonce included, is encrypted with AES-CFB
//! from kcp-go's fixed initial vector (crypt.go:22, crypt.go:335-411); the checksum is computed
//! before encryption (sess.go:548-552). Parity is Reed-Solomon over groups of `data + parity`
//! packets (fec.go:276-324), with the matrix klauspost/reedsolomon's `New` builds. Datagrams are
//! at most `mtu` bytes (kcp-go's MTU includes these headers: kcp.go:207-214, sess.go:175) and
//! kcp-go drops datagrams shorter than the headers plus one segment header (readloop.go:22,
//! readloop.go:38).
//!
//! See the crate's README.md for the differences from kcp-go.
//!
//! [xtaci/kcp-go]: https://github.com/xtaci/kcp-go

mod crypt;
mod fec;
mod listener;
mod packet;
mod session;

use std::io;
use std::time::Duration;

pub use listener::KcpListener;
pub use session::KcpStream;

use crate::crypt::BlockCrypt;

/// KCP's `nodelay` tuning, kcp-go's `SetNoDelay(nodelay, interval, resend, nc)` (kcp.go:1002).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoDelay {
    /// Use the short minimum retransmission timeout (30 ms instead of 100 ms) and a gentler RTO
    /// backoff.
    pub nodelay: bool,
    /// Internal update interval in ms (10..=5000).
    pub interval: u32,
    /// Fast retransmit after this many acknowledgements that skip a segment (0: off).
    pub resend: u32,
    /// Turn congestion control off.
    pub no_congestion_control: bool,
}

impl NoDelay {
    /// kcp-go's "turbo" setting `SetNoDelay(1, 10, 2, 1)`.
    pub const FAST: NoDelay = NoDelay {
        nodelay: true,
        interval: 10,
        resend: 2,
        no_congestion_control: true,
    };
    /// kcp-go's default `(0, 100, 0, 0)`, what rpcx-examples run with.
    pub const NORMAL: NoDelay = NoDelay {
        nodelay: false,
        interval: 100,
        resend: 0,
        no_congestion_control: false,
    };
}

/// Settings of a kcp-go session: block cipher and FEC as rpcx's
/// `ListenWithOptions`/`DialWithOptions`, and the ARQ tuning of the session.
///
/// Only the cipher, its key and the FEC shard counts must match the peer; the rest is local
/// tuning. rpcx-examples (kcp/server, kcp/client) set only `SetStreamMode(true)` and
/// `SetACKNoDelay(true)` and leave kcp-go's defaults otherwise (`NoDelay::NORMAL`, windows 32/32,
/// MTU 1400); the defaults here keep the stream mode, ack-nodelay and MTU and use a faster ARQ
/// (`NoDelay::FAST`, windows 1024/1024), which talks to those peers just the same.
#[derive(Clone)]
pub struct KcpConfig {
    crypt: Option<BlockCrypt>,
    /// FEC data shards per group (default 10, as rpcx). 0 together with `parity_shards` 0: no FEC.
    pub data_shards: usize,
    /// FEC parity shards per group (default 3, as rpcx).
    pub parity_shards: usize,
    /// Largest datagram sent, headers included (default 1400, kcp-go's; at most 1500).
    pub mtu: usize,
    /// ARQ tuning (default [`NoDelay::FAST`]).
    pub nodelay: NoDelay,
    /// Send window in segments (default 1024). Writes wait while this many segments are queued
    /// or in flight, which bounds a session's send buffer to about `send_window * mtu` bytes.
    pub send_window: u16,
    /// Receive window in segments (default 1024; the `kcp` crate uses at least 128).
    pub recv_window: u16,
    /// Stream mode (default true, as rpcx): writes are coalesced into full segments and reads
    /// see a byte stream. In message mode each write of at most 120 segments is one message.
    pub stream_mode: bool,
    /// Acknowledge every input at once instead of at the next interval (default true, as rpcx).
    pub ack_nodelay: bool,
    /// Retransmissions of one segment after which the peer is considered dead and the session
    /// fails with [`KcpError::DeadLink`] (default 20, KCP's).
    pub dead_link: u32,
    /// Fail a session after this long without a valid packet from the peer (default `None`, as
    /// kcp-go: an idle session lives until its stream is dropped).
    pub idle_timeout: Option<Duration>,
    /// After a stream is dropped, how long its session keeps retransmitting what was written
    /// before it is freed (default 5 s; kcp-go flushes once and stops).
    pub linger: Duration,
    /// Most sessions a listener serves at once (default 1024); packets opening more are dropped.
    pub max_sessions: usize,
    /// Sessions a listener queues for `accept` (default 128, kcp-go's); when full, packets
    /// opening more are dropped.
    pub accept_backlog: usize,
}

impl std::fmt::Debug for KcpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KcpConfig")
            .field("crypt", &self.crypt.as_ref().map(BlockCrypt::name))
            .field("data_shards", &self.data_shards)
            .field("parity_shards", &self.parity_shards)
            .field("mtu", &self.mtu)
            .field("nodelay", &self.nodelay)
            .field("send_window", &self.send_window)
            .field("recv_window", &self.recv_window)
            .field("stream_mode", &self.stream_mode)
            .field("ack_nodelay", &self.ack_nodelay)
            .field("dead_link", &self.dead_link)
            .field("idle_timeout", &self.idle_timeout)
            .field("linger", &self.linger)
            .field("max_sessions", &self.max_sessions)
            .field("accept_backlog", &self.accept_backlog)
            .finish()
    }
}

impl Default for KcpConfig {
    fn default() -> Self {
        KcpConfig::new()
    }
}

impl KcpConfig {
    /// No cipher (kcp-go's `nil` BlockCrypt: no nonce nor checksum either), FEC 10/3, the
    /// defaults documented on each field.
    pub fn new() -> Self {
        KcpConfig {
            crypt: None,
            data_shards: 10,
            parity_shards: 3,
            mtu: 1400,
            nodelay: NoDelay::FAST,
            send_window: 1024,
            recv_window: 1024,
            stream_mode: true,
            ack_nodelay: true,
            dead_link: 20,
            idle_timeout: None,
            linger: Duration::from_secs(5),
            max_sessions: 1024,
            accept_backlog: 128,
        }
    }

    /// AES-128, -192 or -256 by key length (16, 24 or 32 bytes), as `kcp.NewAESBlockCrypt(key)`.
    pub fn with_key(mut self, key: &[u8]) -> Result<Self, KcpError> {
        self.crypt = Some(BlockCrypt::aes(key)?);
        Ok(self)
    }

    /// AES-256 with the key rpcx-examples derive: `pbkdf2.Key(pass, salt, 4096, 32, sha1.New)`.
    pub fn with_pass_salt(mut self, pass: &str, salt: &str) -> Self {
        let key = derive_key(pass, salt);
        self.crypt = Some(BlockCrypt::aes(&key).expect("a 32-byte key is valid for AES-256"));
        self
    }

    /// FEC with `data_shards` data and `parity_shards` parity packets per group; `(0, 0)` turns
    /// FEC off (kcp-go turns it off when either is 0).
    pub fn fec(mut self, data_shards: usize, parity_shards: usize) -> Self {
        self.data_shards = data_shards;
        self.parity_shards = parity_shards;
        self
    }

    /// Whether a cipher is set.
    pub fn is_encrypted(&self) -> bool {
        self.crypt.is_some()
    }

    pub(crate) fn fec_enabled(&self) -> bool {
        self.data_shards > 0 && self.parity_shards > 0
    }

    /// Bytes before the KCP packet in every datagram (sess.go:162-168).
    pub(crate) fn header_size(&self) -> usize {
        let mut h = 0;
        if self.crypt.is_some() {
            h += packet::CRYPT_HEADER;
        }
        if self.fec_enabled() {
            h += fec::FEC_HEADER_PLUS2;
        }
        h
    }

    pub(crate) fn validate(&self) -> io::Result<()> {
        let invalid = |e: KcpError| Err(io::Error::new(io::ErrorKind::InvalidInput, e));
        if self.fec_enabled() && self.data_shards + self.parity_shards > 256 {
            return invalid(KcpError::InvalidFec(self.data_shards, self.parity_shards));
        }
        let min = self.header_size() + 50;
        if self.mtu < min || self.mtu > packet::MTU_LIMIT {
            return invalid(KcpError::InvalidMtu(self.mtu));
        }
        if self.send_window == 0 || self.recv_window == 0 {
            return invalid(KcpError::InvalidWindow);
        }
        Ok(())
    }
}

/// pbkdf2-HMAC-SHA1, 4096 rounds, 32 bytes: rpcx-examples' key derivation.
pub(crate) fn derive_key(pass: &str, salt: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pass.as_bytes(), salt.as_bytes(), 4096, &mut key);
    key
}

/// Counters of one session ([`KcpStream::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KcpStats {
    /// Datagrams received that passed the checksum.
    pub packets_in: u64,
    /// Datagrams sent, parity included.
    pub packets_out: u64,
    /// FEC parity packets received.
    pub fec_parity_in: u64,
    /// KCP packets recovered from parity.
    pub fec_recovered: u64,
    /// Datagrams or KCP packets dropped as invalid (checksum, FEC header, segment checks).
    pub dropped_in: u64,
}

/// Errors of this crate; I/O calls return them inside an [`io::Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KcpError {
    /// AES keys are 16, 24 or 32 bytes.
    #[error("kcp: AES key of {0} bytes (16, 24 or 32 expected)")]
    InvalidKeyLength(usize),
    /// More than 256 shards per FEC group.
    #[error("kcp: invalid FEC {0} data + {1} parity shards")]
    InvalidFec(usize, usize),
    /// The MTU is outside `headers + 50 ..= 1500`.
    #[error("kcp: invalid MTU {0}")]
    InvalidMtu(usize),
    /// A window of 0 segments.
    #[error("kcp: windows must be at least 1 segment")]
    InvalidWindow,
    /// The peer stopped acknowledging: a segment was sent `dead_link` times.
    #[error("kcp: peer dead (too many retransmissions)")]
    DeadLink,
    /// Nothing came from the peer for `idle_timeout`.
    #[error("kcp: session idle timeout")]
    IdleTimeout,
    /// The peer started a new conversation from the same address.
    #[error("kcp: session replaced by a new conversation from the same address")]
    Replaced,
    /// The listener's socket failed.
    #[error("kcp: listener closed")]
    ListenerClosed,
    /// The socket failed.
    #[error("kcp: socket error: {0}")]
    Socket(io::ErrorKind),
    /// Written after `shutdown`.
    #[error("kcp: stream shut down")]
    Closed,
    /// The KCP state machine refused an operation.
    #[error("kcp: {0}")]
    Kcp(String),
}

impl From<KcpError> for io::Error {
    fn from(e: KcpError) -> io::Error {
        let kind = match &e {
            KcpError::InvalidKeyLength(_)
            | KcpError::InvalidFec(..)
            | KcpError::InvalidMtu(_)
            | KcpError::InvalidWindow => io::ErrorKind::InvalidInput,
            KcpError::DeadLink | KcpError::IdleTimeout => io::ErrorKind::TimedOut,
            KcpError::Replaced => io::ErrorKind::ConnectionReset,
            KcpError::ListenerClosed => io::ErrorKind::ConnectionAborted,
            KcpError::Socket(kind) => *kind,
            KcpError::Closed => io::ErrorKind::BrokenPipe,
            KcpError::Kcp(_) => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_go() {
        // tests/go/kcpvectors: pbkdf2.Key("rpcx-key", "rpcx-salt", 4096, 32, sha1.New).
        assert_eq!(
            hex::encode(derive_key("rpcx-key", "rpcx-salt")),
            "5f9d2ef0a6ed0eadb0a23ad75c5e93898821ebca13a778efa8586fc8002ad083"
        );
    }

    #[test]
    fn config_builders() {
        let c = KcpConfig::new();
        assert!(!c.is_encrypted());
        assert_eq!(
            (c.data_shards, c.parity_shards, c.header_size()),
            (10, 3, 8)
        );
        let c = c.with_key(&[1; 24]).unwrap().fec(0, 0);
        assert!(c.is_encrypted());
        assert_eq!(c.header_size(), 20);
        assert!(KcpConfig::new().with_key(&[1; 20]).is_err());
        assert!(KcpConfig::new().fec(200, 100).validate().is_err());
        let mut c = KcpConfig::new();
        c.mtu = 2000;
        assert!(c.validate().is_err());
        let dbg = format!("{:?}", KcpConfig::new().with_pass_salt("a", "b"));
        assert!(dbg.contains("AES-256-CFB"), "{dbg}");
    }
}
