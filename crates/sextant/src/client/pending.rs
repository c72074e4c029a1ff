//! A call in flight: [`PendingCall`], the future that waits for its reply under its deadline
//! and decodes it into a [`Response`].

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Poll};

use sextant_protocol::compress::decompress;
use sextant_protocol::{keys, ByteStr, Decode, Message, Metadata};
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

/// A call in flight, returned by [`Client::go`](super::Client::go). Await it for the reply; drop it to cancel.
#[must_use = "a call is cancelled when its handle is dropped"]
pub struct PendingCall<R> {
    pub(super) rx: oneshot::Receiver<Result<Message>>,
    pub(super) seq: u64,
    pub(super) deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    pub(super) client: Arc<ClientInner>,
    pub(super) done: bool,
    /// Whether to add `__ServerAddress` to the response metadata (the XClient's `call` skips it).
    pub(crate) want_metadata: bool,
    pub(super) _reply: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for PendingCall<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingCall")
            .field("seq", &self.seq)
            .finish()
    }
}

impl<R> PendingCall<R> {
    /// The message id of the request.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Cancels the call: its reply, if it comes, is discarded.
    pub fn cancel(self) {}
}

impl<R> Drop for PendingCall<R> {
    fn drop(&mut self) {
        if !self.done {
            self.client.in_flight.remove(self.seq);
        }
    }
}

impl<R: Decode> Future for PendingCall<R> {
    type Output = Result<Response<R>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(Err(Error::Canceled));
        }
        if let Poll::Ready(r) = Pin::new(&mut this.rx).poll(cx) {
            this.done = true;
            let msg = match r {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_) => return Poll::Ready(Err(this.client.in_flight.close_reason())),
            };
            let result = decode_response(msg, this.want_metadata, &this.client);
            // The caller's deadline has passed: an error that arrives now (typically the server
            // enforcing the same deadline a moment before this side's timer was polled) is the
            // deadline, whatever its text. A reply that made it is still returned.
            let expired = this
                .deadline
                .as_ref()
                .is_some_and(|d| d.deadline() <= tokio::time::Instant::now());
            if expired && result.is_err() {
                return Poll::Ready(Err(Error::DeadlineExceeded));
            }
            return Poll::Ready(result);
        }
        if let Some(d) = this.deadline.as_mut() {
            ready!(d.as_mut().poll(cx));
            this.done = true;
            this.client.in_flight.remove(this.seq);
            return Poll::Ready(Err(Error::DeadlineExceeded));
        }
        Poll::Pending
    }
}

fn decode_response<R: Decode>(
    msg: Message,
    want_metadata: bool,
    client: &ClientInner,
) -> Result<Response<R>> {
    let server_address = || {
        (
            ByteStr::from_static(keys::SERVER_ADDRESS),
            client.address_text.clone(),
        )
    };
    let is_error = msg.is_error();
    let mut metadata = msg.metadata;
    if is_error {
        let text = metadata
            .get(keys::SERVICE_ERROR)
            .unwrap_or("unknown service error")
            .to_string();
        let (k, v) = server_address();
        metadata.insert(k, v);
        return Err(Error::Service(ServiceError::with_metadata(text, metadata)));
    }
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
        let (k, v) = server_address();
        metadata.insert(k, v);
    }
    Ok(Response { reply, metadata })
}
