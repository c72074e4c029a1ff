//! The rpcx client: one multiplexed connection to one server.
//!
//! Modules: [options](ClientOptions), the in-flight table (which call waits for which message
//! id), the connection's reader and heartbeat tasks, and [`PendingCall`] (with the wait for a
//! reply that typed and raw calls share); this one holds [`Client`] and the encoding of requests.
//!
//! Many tasks can call through one [`Client`] (it is cheap to clone) and replies may come back in
//! any order. For discovery, load balancing and fail modes across several servers, see the
//! XClient, which is built on this.
//!
//! ```no_run
//! # #[derive(serde::Serialize)] #[serde(rename_all = "PascalCase")] struct Args { a: i64, b: i64 }
//! # #[derive(serde::Deserialize)] #[serde(rename_all = "PascalCase")] struct Reply { c: i64 }
//! # async fn run() -> sextant::Result<()> {
//! use sextant::{Client, ClientOptions};
//!
//! let client = Client::connect("tcp@127.0.0.1:8972", ClientOptions::default()).await?;
//! let reply: Reply = client.call("Arith", "Mul", &Args { a: 10, b: 20 }).await?;
//! assert_eq!(reply.c, 200);
//! client.close();
//! # Ok(()) }
//! ```
//!
//! [`Client::send_raw`] sends a request whose payload the caller encoded (rpcx's `SendRaw`), for
//! proxies and gateways that pass messages through without knowing their types.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use sextant_protocol::{
    keys, CompressType, Decode, Encode, FrameHead, Header, Message, MessageType, Metadata,
};
use tokio::sync::{mpsc, oneshot};

mod connection;
mod inflight;
mod options;
mod pending;
mod push;

use inflight::{InFlight, RemoveOnDrop};
pub use options::{CallOptions, ClientOptions, SharedConnector};
use pending::ReplyWait;
pub use pending::{PendingCall, RawReply, Response};
pub(crate) use push::PushSink;
pub use push::{PushOverflow, ServerMessage, ServerMessages};

use crate::error::{Error, Result};
use crate::transport::{Address, Stream, ToAddress};
use crate::util::lock;

struct ClientInner {
    address: Address,
    /// `address` as text, for `__ServerAddress` without formatting per call.
    address_text: sextant_protocol::ByteStr,
    options: ClientOptions,
    seq: AtomicU64,
    tx: mpsc::Sender<BytesMut>,
    in_flight: Arc<InFlight>,
    server_messages: Mutex<Option<ServerMessages>>,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.in_flight.close(Error::Closed);
    }
}

/// A connection to one rpcx server that carries many concurrent calls.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.inner.address)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Client {
    /// Connects to `address` (`tcp@host:port`, `unix@/path`, `inprocess@name`, `host:port` or a
    /// `SocketAddr`).
    pub async fn connect(address: impl ToAddress, options: ClientOptions) -> Result<Client> {
        Client::connect_with(address.to_address()?, options, None).await
    }

    /// Connects; server pushes go to `push` (an XClient's shared queue) when given.
    pub(crate) async fn connect_with(
        address: Address,
        options: ClientOptions,
        push: Option<PushSink>,
    ) -> Result<Client> {
        Client::connect_wrapped(address, options, push, Ok).await
    }

    /// Connects, passing the stream through `wrap` (the XClient plugins' `wrap_conn`) first.
    pub(crate) async fn connect_wrapped(
        address: Address,
        options: ClientOptions,
        push: Option<PushSink>,
        wrap: impl FnOnce(Stream) -> Result<Stream>,
    ) -> Result<Client> {
        address.check_dialable()?;
        let stream = wrap(Stream::connect_with(&address, &options).await?)?;
        Ok(Client::from_stream_with(address, stream, options, push))
    }

    /// A client over an already connected stream.
    pub fn from_stream(address: Address, stream: Stream, options: ClientOptions) -> Client {
        Client::from_stream_with(address, stream, options, None)
    }

    fn from_stream_with(
        address: Address,
        stream: Stream,
        options: ClientOptions,
        push: Option<PushSink>,
    ) -> Client {
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel::<BytesMut>(1024);
        let in_flight = Arc::new(InFlight::default());
        let (push, server_messages) = match push {
            Some(p) => (Some(p), None),
            None if options.server_message_capacity > 0 => {
                let (p, m) = PushSink::channel(
                    options.server_message_capacity,
                    options.server_message_overflow,
                    None,
                );
                (Some(p), Some(m))
            }
            None => (None, None),
        };
        let address_text: sextant_protocol::ByteStr = address.to_string().into();

        let s = in_flight.clone();
        tokio::spawn(async move {
            let err = crate::io::write_loop(wr, rx, None, s.stop.clone(), None).await;
            s.close(match err {
                Some(e) => Error::lost(format!("write failed: {e}")),
                None => Error::Closed,
            });
        });
        tokio::spawn(connection::read_loop(
            rd,
            in_flight.clone(),
            options.limits,
            options.idle_timeout,
            push.map(|p| (p, address_text.clone())),
        ));

        let client = Client {
            inner: Arc::new(ClientInner {
                address_text,
                address,
                options,
                seq: AtomicU64::new(0),
                tx,
                in_flight,
                server_messages: Mutex::new(server_messages),
            }),
        };
        if client.inner.options.heartbeat {
            tokio::spawn(connection::heartbeat_loop(
                Arc::downgrade(&client.inner),
                client.inner.in_flight.stop.clone(),
            ));
        }
        client
    }

    /// The server's address.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Whether the connection is closed (by [`close`](Client::close), the server, an I/O error or
    /// a missed heartbeat). A closed client fails every call at once.
    pub fn is_closed(&self) -> bool {
        self.inner.in_flight.closed().is_some()
    }

    /// Why the client is closed, if it is.
    pub fn close_reason(&self) -> Option<Error> {
        self.inner.in_flight.closed()
    }

    /// Closes the connection. Every pending call fails at once with [`Error::Closed`].
    pub fn close(&self) {
        self.inner.in_flight.close(Error::Closed);
    }

    /// Resolves when the connection is closed, for whatever reason.
    pub async fn closed(&self) {
        self.inner.in_flight.stop.cancelled().await;
    }

    /// Messages the server pushes to this client (rpcx's `ServerMessageChan`), when enabled with
    /// [`ClientOptions::server_message_capacity`]; `None` otherwise, and after the first time
    /// (there is one stream per client). The stream ends when the connection closes.
    pub fn server_messages(&self) -> Option<ServerMessages> {
        lock(&self.inner.server_messages).take()
    }

    /// Calls `service_path.service_method` with `args` and waits for the reply.
    pub async fn call<A, R>(&self, service_path: &str, service_method: &str, args: &A) -> Result<R>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let mut call = self
            .go(service_path, service_method, args, CallOptions::default())
            .await?;
        // The caller only wants the reply: skip building response metadata.
        call.want_metadata = false;
        Ok(call.await?.reply)
    }

    /// Like [`call`](Client::call), with per-call options; returns the response metadata too.
    pub async fn call_with<A, R>(
        &self,
        service_path: &str,
        service_method: &str,
        args: &A,
        options: CallOptions,
    ) -> Result<Response<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        self.go(service_path, service_method, args, options)
            .await?
            .await
    }

    /// Sends the call now and returns a handle to await its reply later (rpcx's `Go`). Dropping the
    /// handle cancels the call on the client side.
    pub async fn go<A, R>(
        &self,
        service_path: &str,
        service_method: &str,
        args: &A,
        options: CallOptions,
    ) -> Result<PendingCall<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let timeout = options.timeout.or(self.inner.options.default_timeout);
        let deadline = timeout.map(|t| Instant::now() + t);
        let seq = self.next_seq();
        let frame = self.encode_request(
            seq,
            service_path,
            service_method,
            args,
            &options,
            timeout,
            false,
        )?;
        Ok(PendingCall {
            wait: self.send_and_wait(seq, frame, deadline).await?,
            want_metadata: true,
            _reply: PhantomData,
        })
    }

    /// Sends a oneway call: the server runs it and sends nothing back (rpcx sets the oneway bit
    /// when the reply is nil). Returns once the request is queued for writing.
    pub async fn send_oneway<A>(
        &self,
        service_path: &str,
        service_method: &str,
        args: &A,
        options: CallOptions,
    ) -> Result<()>
    where
        A: Encode + ?Sized,
    {
        let seq = self.next_seq();
        let frame = self.encode_request(
            seq,
            service_path,
            service_method,
            args,
            &options,
            None,
            true,
        )?;
        self.queue(frame).await
    }

    /// Sends a request whose payload the caller encoded, and returns the response as it came
    /// (rpcx's `SendRaw`): for proxies and gateways that pass messages on without knowing their
    /// types.
    ///
    /// `request` carries the service path, the method, the metadata, and in its header the
    /// serialize type, the compress type and the oneway and heartbeat bits. Its payload is sent
    /// as it is: already encoded, and already compressed if the header says so. The message
    /// type is set to request.
    ///
    /// - **Message id**: the client numbers the request with its own id, so it cannot clash with
    ///   the connection's other calls; the caller's id is not sent, but is put back in the
    ///   reply's header.
    /// - **Metadata**: the request's pairs, plus those of `options.metadata`, the client's auth
    ///   token (`__AUTH`) and the deadline (`__ServerTimeout`) whose key the request does not
    ///   set: the request's own pairs win (as rpcx copies the context's metadata, then the
    ///   message's).
    /// - **Deadline**: `options.timeout`, else the client's default timeout, bounds the wait and
    ///   is sent as `__ServerTimeout`, as for [`call_with`](Client::call_with); past it the call
    ///   fails with [`Error::DeadlineExceeded`].
    /// - **Oneway** (the header's oneway bit): returns once the request is queued for writing,
    ///   with an empty reply (the request's header made a response, no metadata, no payload).
    /// - **Heartbeat** (the header's heartbeat bit): sent as a heartbeat as it is, nothing added
    ///   to its metadata, and the server's echo returned; the wait is bounded by the deadline,
    ///   else [`ClientOptions::max_wait_for_heartbeat`].
    ///
    /// An error response fails the call with [`Error::Service`], its text and the response
    /// metadata in the [`ServiceError`](crate::ServiceError), as for typed calls. Otherwise the
    /// [`RawReply`] holds the response's header, metadata (plus `__ServerAddress`) and payload
    /// as they came: decompress it if its header says it is compressed.
    /// `options.serialize_type`, `options.compress_type` and `options.hash_key` play no part.
    pub async fn send_raw(&self, request: Message, options: CallOptions) -> Result<RawReply> {
        self.send_raw_ref(&request, options).await
    }

    /// [`send_raw`](Client::send_raw) without taking the request (the XClient sends one request
    /// on each attempt).
    pub(crate) async fn send_raw_ref(
        &self,
        request: &Message,
        options: CallOptions,
    ) -> Result<RawReply> {
        let header = &request.header;
        let caller_seq = header.seq();
        let seq = self.next_seq();
        if header.is_heartbeat() {
            let wait = options
                .timeout
                .or(self.inner.options.default_timeout)
                .unwrap_or(self.inner.options.max_wait_for_heartbeat);
            let frame = encode_raw(seq, request, &request.metadata)?;
            return self
                .wait_raw(seq, frame, Some(Instant::now() + wait), caller_seq)
                .await;
        }
        if header.is_oneway() {
            let metadata = self.raw_metadata(request, &options.metadata, None);
            let frame = encode_raw(seq, request, &metadata)?;
            self.queue(frame).await?;
            let mut header = header.response_header();
            header.set_seq(caller_seq);
            return Ok(RawReply {
                header,
                ..RawReply::default()
            });
        }
        let timeout = options.timeout.or(self.inner.options.default_timeout);
        let deadline = timeout.map(|t| Instant::now() + t);
        let metadata = self.raw_metadata(request, &options.metadata, timeout);
        let frame = encode_raw(seq, request, &metadata)?;
        self.wait_raw(seq, frame, deadline, caller_seq).await
    }

    /// Sends a raw request's frame and waits for its reply.
    async fn wait_raw(
        &self,
        seq: u64,
        frame: BytesMut,
        deadline: Option<Instant>,
        caller_seq: u64,
    ) -> Result<RawReply> {
        let mut wait = self.send_and_wait(seq, frame, deadline).await?;
        std::future::poll_fn(|cx| {
            wait.poll_with(cx, |msg, client| {
                pending::raw_reply(msg, caller_seq, client)
            })
        })
        .await
    }

    /// The metadata a raw request goes out with: its own pairs, then those the client would add
    /// to a typed call ([`call_metadata`](Client::call_metadata)) whose key it does not set.
    fn raw_metadata<'m>(
        &self,
        request: &'m Message,
        options: &'m Metadata,
        timeout: Option<Duration>,
    ) -> Cow<'m, Metadata> {
        let added = self.call_metadata(options, timeout);
        if added.is_empty() {
            return Cow::Borrowed(&request.metadata);
        }
        if request.metadata.is_empty() {
            return added;
        }
        let mut merged = request.metadata.clone();
        merged.merge_missing(&added);
        Cow::Owned(merged)
    }

    /// Sends one heartbeat and waits for its echo. Heartbeats carry the current time in
    /// nanoseconds as a msgpack int64, as Go's client does.
    pub async fn heartbeat(&self) -> Result<()> {
        let seq = self.next_seq();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let m = Message::heartbeat(seq, nanos);
        let mut frame = BytesMut::with_capacity(m.encoded_len());
        m.encode(&mut frame)?;
        let rx = self.send_frame(seq, frame).await?;
        let wait = self.inner.options.max_wait_for_heartbeat;
        let guard = RemoveOnDrop {
            in_flight: &self.inner.in_flight,
            seq,
        };
        let r = match tokio::time::timeout(wait, rx).await {
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(self.close_reason().unwrap_or(Error::Closed)),
            Err(_) => Err(Error::DeadlineExceeded),
        };
        drop(guard);
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn encode_request<A: Encode + ?Sized>(
        &self,
        seq: u64,
        service_path: &str,
        service_method: &str,
        args: &A,
        options: &CallOptions,
        timeout: Option<Duration>,
        oneway: bool,
    ) -> Result<BytesMut> {
        let o = &self.inner.options;
        let st = options.serialize_type.unwrap_or(o.serialize_type);
        let ct = options.compress_type.unwrap_or(o.compress_type);
        let mut header = Header::new();
        header.set_seq(seq);
        header.set_serialize_type(st);
        header.set_oneway(oneway);

        let meta = self.call_metadata(&options.metadata, timeout);

        let mut buf = BytesMut::new();
        FrameHead::new(&header, service_path, service_method, &meta).encode(
            &mut buf,
            ct,
            args.size_hint().max(64),
            |b| args.encode(st, &o.codecs, b).map_err(Error::from),
        )?;
        Ok(buf)
    }

    /// The metadata of a call: the caller's, plus the client's auth token (`__AUTH`) and the
    /// deadline (`__ServerTimeout`); borrowed when there is nothing to add.
    fn call_metadata<'m>(
        &self,
        metadata: &'m Metadata,
        timeout: Option<Duration>,
    ) -> Cow<'m, Metadata> {
        let auth = &self.inner.options.auth_token;
        if auth.is_none() && timeout.is_none() {
            return Cow::Borrowed(metadata);
        }
        let mut m = metadata.clone();
        if let Some(t) = auth {
            m.insert(keys::AUTH, t.clone());
        }
        if let Some(t) = timeout {
            m.insert(keys::SERVER_TIMEOUT, t.as_millis().to_string());
        }
        Cow::Owned(m)
    }

    /// The next message id of this connection.
    fn next_seq(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues a frame that expects no reply (a oneway request).
    async fn queue(&self, frame: BytesMut) -> Result<()> {
        if let Some(reason) = self.close_reason() {
            return Err(reason);
        }
        self.inner
            .tx
            .send(frame)
            .await
            .map_err(|_| self.close_reason().unwrap_or(Error::Closed))
    }

    /// Sends the frame of request `seq` and returns the wait for its reply, bounded by
    /// `deadline`.
    async fn send_and_wait(
        &self,
        seq: u64,
        frame: BytesMut,
        deadline: Option<Instant>,
    ) -> Result<ReplyWait> {
        let rx = self.send_frame(seq, frame).await?;
        Ok(ReplyWait {
            rx,
            seq,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
            client: self.inner.clone(),
            done: false,
        })
    }

    async fn send_frame(
        &self,
        seq: u64,
        frame: BytesMut,
    ) -> Result<oneshot::Receiver<Result<Message>>> {
        let (tx, rx) = oneshot::channel();
        self.inner.in_flight.insert(seq, tx)?;
        if self.inner.tx.send(frame).await.is_err() {
            self.inner.in_flight.remove(seq);
            return Err(self.inner.in_flight.close_reason());
        }
        Ok(rx)
    }
}

/// The frame of a raw request: its header with message id `seq` and the request bit, its names,
/// `metadata`, and its payload as it is (no compression applied: the header's compress bits are
/// the caller's).
fn encode_raw(seq: u64, request: &Message, metadata: &Metadata) -> Result<BytesMut> {
    let mut header = request.header;
    header.set_seq(seq);
    header.set_message_type(MessageType::Request);
    let mut buf = BytesMut::new();
    FrameHead::new(
        &header,
        &request.service_path,
        &request.service_method,
        metadata,
    )
    .encode(&mut buf, CompressType::NONE, request.payload.len(), |b| {
        b.put_slice(&request.payload);
        Ok::<_, Error>(())
    })?;
    Ok(buf)
}
