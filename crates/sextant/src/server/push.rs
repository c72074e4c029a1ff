//! Server push: a handle on each rpcx connection ([`ClientConn`]) through which the server sends
//! messages the client did not ask for (rpcx's `Server.SendMessage`).
//!
//! A push is an rpcx request the server writes on the client's connection: message type request,
//! the oneway bit set, serialize type none (or the codec's, with
//! [`ClientConn::send_message_encoded`]), a message id from one server-wide counter that starts at
//! 1, the service path, method and metadata given, and the payload. That is what Go's
//! `SendMessage` writes, and what a Go client's `ServerMessageChan` (and sextant's
//! [`Client::server_messages`](crate::Client::server_messages)) receives.
//!
//! Pushes share the connection's writer with call replies, so they are batched with them, but
//! they have a bounded share of its queue
//! ([`ServerOptions::push_queue_capacity`](super::ServerOptions::push_queue_capacity)): the slots
//! the connection's replies need are kept for them, so a client that does not read its pushes
//! fills only its own push share. A push that finds that share full, or the connection closed,
//! fails at once with [`Error::Push`]: nothing is dropped silently and nothing waits.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use sextant_protocol::{
    CompressType, Encode, FrameHead, Header, MessageType, Metadata, SerializeType,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::handler::Env;
use crate::error::{Error, PushError, Result};
use crate::transport::{PeerAddr, PeerIdentity};

/// A client's rpcx connection to this server, as a handle a handler can keep: rpcx's `net.Conn`
/// taken from `ctx.Value(server.RemoteConnContextKey)`.
///
/// Get it from [`Context::conn`](crate::Context::conn) during a call, or from
/// [`Server::active_connections`](super::Server::active_connections). It is cheap to clone,
/// outlives the call, and does not keep the connection open: once the connection closes, every
/// push through it fails with [`PushError::Closed`]. Two handles are equal when they are the
/// same connection.
#[derive(Clone)]
pub struct ClientConn {
    inner: Arc<ConnShared>,
}

struct ConnShared {
    id: u64,
    peer: PeerAddr,
    identity: Option<Arc<PeerIdentity>>,
    /// The connection's writer queue; weak, so that a handle does not keep the connection open.
    tx: mpsc::WeakSender<BytesMut>,
    /// Queue slots kept for replies: a push may only take a slot when this many stay free.
    reserved: usize,
    /// Cancelled when the connection has closed.
    closed: CancellationToken,
    /// The server's message id counter for pushes (Go's `Server.seq`).
    seq: Arc<AtomicU64>,
    env: Arc<Env>,
    pushes: AtomicU64,
    /// Bytes read from and written to the connection.
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: Arc<AtomicU64>,
}

impl ClientConn {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        id: u64,
        peer: PeerAddr,
        identity: Option<Arc<PeerIdentity>>,
        tx: &mpsc::Sender<BytesMut>,
        reserved: usize,
        seq: Arc<AtomicU64>,
        env: Arc<Env>,
    ) -> ClientConn {
        ClientConn {
            inner: Arc::new(ConnShared {
                id,
                peer,
                identity,
                tx: tx.downgrade(),
                reserved,
                closed: CancellationToken::new(),
                seq,
                env,
                pushes: AtomicU64::new(0),
                bytes_in: AtomicU64::new(0),
                bytes_out: Arc::new(AtomicU64::new(0)),
            }),
        }
    }

    /// A number that tells this connection from the server's other connections (unique for
    /// the server's lifetime).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The client's address.
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.inner.peer
    }

    /// What the client's TLS or QUIC handshake showed (certificate, SNI, ALPN), if anything.
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.inner.identity.as_deref()
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    /// Resolves once the connection has closed (e.g. to stop a task that pushes to it).
    pub async fn closed(&self) {
        self.inner.closed.cancelled().await
    }

    /// Pushes queued on this connection so far.
    pub fn pushes(&self) -> u64 {
        self.inner.pushes.load(Ordering::Relaxed)
    }

    /// Bytes read from this connection so far.
    pub fn bytes_in(&self) -> u64 {
        self.inner.bytes_in.load(Ordering::Relaxed)
    }

    /// Bytes written to this connection so far (replies and pushes).
    pub fn bytes_out(&self) -> u64 {
        self.inner.bytes_out.load(Ordering::Relaxed)
    }

    pub(super) fn add_bytes_in(&self, n: usize) {
        self.inner.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(super) fn bytes_out_counter(&self) -> Arc<AtomicU64> {
        self.inner.bytes_out.clone()
    }

    pub(super) fn mark_closed(&self) {
        self.inner.closed.cancel();
    }

    /// Sends a message to the client (rpcx's `Server.SendMessage`): `payload` as it is, with
    /// serialize type none. `service_path`, `service_method` and `metadata` may be empty.
    ///
    /// Returns once the message is queued for writing, or fails at once with [`Error::Push`]
    /// when the connection is closed or its push queue is full. Same as
    /// [`Server::send_message`](super::Server::send_message).
    pub fn send_message(
        &self,
        service_path: &str,
        service_method: &str,
        metadata: &Metadata,
        payload: &[u8],
    ) -> Result<()> {
        let frame = self.frame(
            SerializeType::NONE,
            service_path,
            service_method,
            metadata,
            payload.len(),
            |b| {
                b.put_slice(payload);
                Ok(())
            },
        )?;
        self.queue(frame)
    }

    /// Like [`send_message`](ClientConn::send_message), with `value` encoded by the codec of
    /// `serialize_type` (the server's codecs, custom ones included), which the message's header
    /// names so the client can decode it.
    pub fn send_message_encoded<T: Encode + ?Sized>(
        &self,
        service_path: &str,
        service_method: &str,
        metadata: &Metadata,
        value: &T,
        serialize_type: SerializeType,
    ) -> Result<()> {
        let codecs = &self.inner.env.codecs;
        let frame = self.frame(
            serialize_type,
            service_path,
            service_method,
            metadata,
            value.size_hint().max(64),
            |b| value.encode(serialize_type, codecs, b).map_err(Error::from),
        )?;
        self.queue(frame)
    }

    fn frame(
        &self,
        serialize_type: SerializeType,
        service_path: &str,
        service_method: &str,
        metadata: &Metadata,
        size_hint: usize,
        payload: impl FnOnce(&mut BytesMut) -> Result<()>,
    ) -> Result<BytesMut> {
        if self.is_closed() {
            return Err(self.error(PushError::Closed));
        }
        let mut header = Header::new();
        header.set_message_type(MessageType::Request);
        header.set_seq(self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1);
        header.set_oneway(true);
        header.set_serialize_type(serialize_type);
        let mut buf = BytesMut::new();
        FrameHead::new(&header, service_path, service_method, metadata).encode(
            &mut buf,
            CompressType::NONE,
            size_hint,
            payload,
        )?;
        Ok(buf)
    }

    /// Queues a frame on the connection's writer if the push share of its queue has room.
    fn queue(&self, frame: BytesMut) -> Result<()> {
        let Some(tx) = self.inner.tx.upgrade() else {
            return Err(self.error(PushError::Closed));
        };
        let permit = match tx.try_reserve() {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Full(())) => return Err(self.error(PushError::Full)),
            Err(mpsc::error::TrySendError::Closed(())) => return Err(self.error(PushError::Closed)),
        };
        // With this push's slot taken, the slots the replies need must still be free; checked
        // after reserving, so concurrent pushes can never take them together.
        if tx.capacity() < self.inner.reserved {
            return Err(self.error(PushError::Full));
        }
        permit.send(frame);
        self.inner.pushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn error(&self, reason: PushError) -> Error {
        Error::Push {
            peer: self.inner.peer.to_string().into(),
            reason,
        }
    }
}

impl PartialEq for ClientConn {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id && Arc::ptr_eq(&self.inner.seq, &other.inner.seq)
    }
}

impl Eq for ClientConn {}

impl Hash for ClientConn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.id.hash(state)
    }
}

impl fmt::Debug for ClientConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConn")
            .field("id", &self.inner.id)
            .field("peer", &self.inner.peer)
            .field("closed", &self.is_closed())
            .finish()
    }
}
