//! A call in flight: [`PendingCall`], the future that waits for its reply under its deadline
//! and decodes it into a [`Response`]; the wait itself, shared with raw calls ([`RawReply`]); and
//! the one place where an error response becomes [`Error::Service`].

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Poll};

use bytes::Bytes;
use sextant_protocol::compress::decompress;
use sextant_protocol::{keys, ByteStr, Decode, Header, Message, Metadata};
use tokio::sync::oneshot;

use super::ClientInner;
use crate::error::{Error, Result, ServiceError};

/// A reply with the response's metadata (rpcx's `share.ResMetaDataKey`).
#[derive(Debug, Clone)]
pub struct Response<R> {
    /// The decoded reply.
    pub reply: R,
    /// Metadata the server set, plus `__ServerAddress`.
    pub metadata: Metadata,
}

/// A raw call's reply ([`Client::send_raw`](super::Client::send_raw)): the response message as it
/// came off the wire, for callers that encode and decode payloads themselves.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RawReply {
    /// The response header: serialize type, compress type, status. Its message id is the
    /// caller's own (the request's), not the one the client used on the wire.
    pub header: Header,
    /// Metadata the server set, plus `__ServerAddress`.
    pub metadata: Metadata,
    /// The payload as on the wire: compressed when [`header`](RawReply::header) says so.
    pub payload: Bytes,
}

/// The wait for the reply to one request: its receiver, its deadline, and its place in the
/// in-flight table (removed when the wait is dropped before the reply came).
pub(super) struct ReplyWait {
    pub(super) rx: oneshot::Receiver<Result<Message>>,
    pub(super) seq: u64,
    pub(super) deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    pub(super) client: Arc<ClientInner>,
    pub(super) done: bool,
}

impl ReplyWait {
    /// Polls for the reply and turns it into `T` with `decode`, under the deadline.
    #[inline]
    pub(super) fn poll_with<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        decode: impl FnOnce(Message, &ClientInner) -> Result<T>,
    ) -> Poll<Result<T>> {
        if self.done {
            return Poll::Ready(Err(Error::Canceled));
        }
        if let Poll::Ready(r) = Pin::new(&mut self.rx).poll(cx) {
            self.done = true;
            let msg = match r {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_) => return Poll::Ready(Err(self.client.in_flight.close_reason())),
            };
            let result = decode(msg, &self.client);
            // The caller's deadline has passed: an error that arrives now (typically the server
            // enforcing the same deadline a moment before this side's timer was polled) is the
            // deadline, whatever its text. A reply that made it is still returned.
            let expired = self
                .deadline
                .as_ref()
                .is_some_and(|d| d.deadline() <= tokio::time::Instant::now());
            if expired && result.is_err() {
                return Poll::Ready(Err(Error::DeadlineExceeded));
            }
            return Poll::Ready(result);
        }
        if let Some(d) = self.deadline.as_mut() {
            ready!(d.as_mut().poll(cx));
            self.done = true;
            self.client.in_flight.remove(self.seq);
            return Poll::Ready(Err(Error::DeadlineExceeded));
        }
        Poll::Pending
    }
}

impl Drop for ReplyWait {
    fn drop(&mut self) {
        if !self.done {
            self.client.in_flight.remove(self.seq);
        }
    }
}

/// A call in flight, returned by [`Client::go`](super::Client::go). Await it for the reply; drop it to cancel.
#[must_use = "a call is cancelled when its handle is dropped"]
pub struct PendingCall<R> {
    pub(super) wait: ReplyWait,
    /// Whether to add `__ServerAddress` to the response metadata (the XClient's `call` skips it).
    pub(crate) want_metadata: bool,
    pub(super) _reply: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for PendingCall<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingCall")
            .field("seq", &self.wait.seq)
            .finish()
    }
}

impl<R> PendingCall<R> {
    /// The message id of the request.
    pub fn seq(&self) -> u64 {
        self.wait.seq
    }

    /// Cancels the call: its reply, if it comes, is discarded.
    pub fn cancel(self) {}
}

impl<R: Decode> Future for PendingCall<R> {
    type Output = Result<Response<R>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let want_metadata = this.want_metadata;
        this.wait.poll_with(cx, |msg, client| {
            decode_response(msg, want_metadata, client)
        })
    }
}

/// `__ServerAddress` and the address of `client`'s server.
fn server_address(client: &ClientInner) -> (ByteStr, ByteStr) {
    (
        ByteStr::from_static(keys::SERVER_ADDRESS),
        client.address_text.clone(),
    )
}

/// The response unless it is an error response, which becomes [`Error::Service`] with the
/// server's text and the response metadata, plus `__ServerAddress`. Every kind of call (typed or
/// raw) maps error responses here.
fn check_status(msg: Message, client: &ClientInner) -> Result<Message> {
    if !msg.is_error() {
        return Ok(msg);
    }
    let mut metadata = msg.metadata;
    let text = metadata
        .get(keys::SERVICE_ERROR)
        .unwrap_or("unknown service error")
        .to_string();
    let (k, v) = server_address(client);
    metadata.insert(k, v);
    Err(Error::Service(ServiceError::with_metadata(text, metadata)))
}

fn decode_response<R: Decode>(
    msg: Message,
    want_metadata: bool,
    client: &ClientInner,
) -> Result<Response<R>> {
    let msg = check_status(msg, client)?;
    let mut metadata = msg.metadata;
    let payload = decompress(
        msg.header.compress_type(),
        msg.payload,
        client.options.limits.max_decompressed_size,
    )?;
    let reply = R::decode(
        msg.header.serialize_type(),
        &client.options.codecs,
        &payload,
    )?;
    if want_metadata {
        let (k, v) = server_address(client);
        metadata.insert(k, v);
    }
    Ok(Response { reply, metadata })
}

/// A raw call's reply: the response as it came, with the caller's message id `seq` restored.
pub(super) fn raw_reply(msg: Message, seq: u64, client: &ClientInner) -> Result<RawReply> {
    let msg = check_status(msg, client)?;
    let mut header = msg.header;
    header.set_seq(seq);
    let mut metadata = msg.metadata;
    let (k, v) = server_address(client);
    metadata.insert(k, v);
    Ok(RawReply {
        header,
        metadata,
        payload: msg.payload,
    })
}
