//! Messages servers push to clients (rpcx's `Server.SendMessage`), as the client receives them:
//! [`ServerMessage`], the [`ServerMessages`] stream, and what happens when it is full
//! ([`PushOverflow`]).
//!
//! A server push is an rpcx request with the oneway bit set that arrives on a client's connection
//! without having been asked for (Go's client tells it the same way: a request, oneway, not a
//! heartbeat). With [`ClientOptions::server_message_capacity`](super::ClientOptions) above zero
//! a [`Client`](super::Client) keeps them in a bounded queue, read through
//! [`Client::server_messages`](super::Client::server_messages); an
//! [`XClient`](crate::XClient) built with
//! [`bidirectional`](crate::XClientBuilder::bidirectional) merges those of all its servers
//! into one (rpcx's `NewBidirectionalXClient`).
//!
//! One difference from Go: when a connection closes, Go's client puts a made-up message on
//! `ServerMessageChan` (status error, metadata `server` = the address). sextant does not mix such
//! events into the pushes: a [`Client`](super::Client)'s stream simply ends, and
//! [`Client::closed`](super::Client::closed) says when and
//! [`close_reason`](super::Client::close_reason) why.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use sextant_protocol::codec::Codecs;
use sextant_protocol::compress::decompress;
use sextant_protocol::{ByteStr, Decode, Limits, Message, Metadata, SerializeType};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::error::Result;

/// What a client does with a server push when its queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushOverflow {
    /// Drop the push and count it ([`ServerMessages::dropped`]), so the connection's replies
    /// keep flowing: rpcx's default (`BidirectionalBlock: false`), which logs instead of
    /// counting.
    #[default]
    Drop,
    /// Stop reading the connection until there is room (rpcx's `BidirectionalBlock: true`):
    /// nothing is lost, but the connection's replies wait too.
    Block,
}

/// A message a server pushed (rpcx's `*protocol.Message` on `ServerMessageChan`).
#[derive(Clone)]
pub struct ServerMessage {
    server: ByteStr,
    message: Message,
}

impl ServerMessage {
    /// The address of the server that sent it, as the client dialled it (e.g.
    /// `tcp@127.0.0.1:8972`).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The service path the server gave (may be empty).
    pub fn service_path(&self) -> &str {
        &self.message.service_path
    }

    /// The method the server gave (may be empty).
    pub fn service_method(&self) -> &str {
        &self.message.service_method
    }

    /// The metadata the server gave.
    pub fn metadata(&self) -> &Metadata {
        &self.message.metadata
    }

    /// The payload as it came (Go's `SendMessage` sends raw bytes with serialize type none).
    pub fn payload(&self) -> &Bytes {
        &self.message.payload
    }

    /// How the payload is serialized (none for Go's `SendMessage`).
    pub fn serialize_type(&self) -> SerializeType {
        self.message.header.serialize_type()
    }

    /// The message id the server gave it.
    pub fn seq(&self) -> u64 {
        self.message.header.seq()
    }

    /// Decodes the payload with the codec its header names (decompressing first if needed), as a
    /// call's reply is decoded; `codecs` are the client's ([`ClientOptions::codecs`](super::ClientOptions)).
    pub fn decode<T: Decode>(&self, codecs: &Codecs) -> Result<T> {
        let payload = decompress(
            self.message.header.compress_type(),
            self.message.payload.clone(),
            Limits::default().max_decompressed_size,
        )?;
        Ok(T::decode(self.serialize_type(), codecs, &payload)?)
    }

    /// The whole message: header, names, metadata and payload.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Takes the whole message.
    pub fn into_message(self) -> Message {
        self.message
    }
}

impl fmt::Debug for ServerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerMessage")
            .field("server", &self.server())
            .field("service_path", &self.service_path())
            .field("service_method", &self.service_method())
            .field("metadata", self.metadata())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

/// The messages servers pushed to a [`Client`](super::Client) or an [`XClient`](crate::XClient),
/// in the order each connection received them: a [`Stream`], or [`recv`](ServerMessages::recv).
///
/// It ends when the client (every connection of the XClient) is closed and the messages already
/// queued have been read.
pub struct ServerMessages {
    rx: mpsc::Receiver<ServerMessage>,
    dropped: Arc<AtomicU64>,
    /// The XClient's close: its connections' readers may outlive it for a moment.
    stop: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    stopped: bool,
}

impl ServerMessages {
    pub(crate) fn new(
        rx: mpsc::Receiver<ServerMessage>,
        dropped: Arc<AtomicU64>,
        stop: Option<CancellationToken>,
    ) -> ServerMessages {
        ServerMessages {
            rx,
            dropped,
            stop: stop.map(|s| Box::pin(s.cancelled_owned())),
            stopped: false,
        }
    }

    /// The next message; `None` once the client is closed and the queue read.
    pub async fn recv(&mut self) -> Option<ServerMessage> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Messages dropped so far because the queue was full ([`PushOverflow::Drop`]).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<ServerMessage>> {
        if self.stopped {
            return Poll::Ready(self.rx.try_recv().ok());
        }
        if let Poll::Ready(m) = self.rx.poll_recv(cx) {
            return Poll::Ready(m);
        }
        if let Some(stop) = &mut self.stop {
            if stop.as_mut().poll(cx).is_ready() {
                self.stopped = true;
                return Poll::Ready(self.rx.try_recv().ok());
            }
        }
        Poll::Pending
    }
}

impl Stream for ServerMessages {
    type Item = ServerMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ServerMessage>> {
        self.get_mut().poll_recv(cx)
    }
}

impl fmt::Debug for ServerMessages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerMessages")
            .field("queued", &self.rx.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// Where a connection's reader puts server pushes: a queue shared by every connection of an
/// XClient (or a client's own), with its overflow policy.
#[derive(Clone)]
pub(crate) struct PushSink {
    tx: mpsc::Sender<ServerMessage>,
    overflow: PushOverflow,
    dropped: Arc<AtomicU64>,
}

impl PushSink {
    /// A queue of `capacity` messages and the stream that reads it.
    pub(crate) fn channel(
        capacity: usize,
        overflow: PushOverflow,
        stop: Option<CancellationToken>,
    ) -> (PushSink, ServerMessages) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let sink = PushSink {
            tx,
            overflow,
            dropped: dropped.clone(),
        };
        (sink, ServerMessages::new(rx, dropped, stop))
    }

    /// Delivers a push from `server`. Under [`PushOverflow::Block`] this waits for room (or for
    /// `stop`); under [`PushOverflow::Drop`] it never waits.
    pub(crate) async fn deliver(
        &self,
        server: &ByteStr,
        message: Message,
        stop: &CancellationToken,
    ) {
        let m = ServerMessage {
            server: server.clone(),
            message,
        };
        match self.overflow {
            PushOverflow::Drop => match self.tx.try_send(m) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(m)) => {
                    let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(
                        server = %m.server(),
                        seq = m.seq(),
                        dropped = n,
                        "server message queue full: dropping a pushed message"
                    );
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::debug!("server messages are no longer read: dropping a push");
                }
            },
            PushOverflow::Block => {
                tokio::select! {
                    _ = self.tx.send(m) => {}
                    _ = stop.cancelled() => {}
                }
            }
        }
    }
}
