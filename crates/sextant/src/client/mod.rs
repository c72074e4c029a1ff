//! The rpcx client: one multiplexed connection to one server.
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

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use sextant_protocol::codec::Codecs;
use sextant_protocol::compress::{compress_into, decompress, should_compress};
use sextant_protocol::{
    begin_frame, finish_frame, keys, ByteStr, CompressType, Decode, Decoder, Encode, Header,
    Limits, Message, MessageStatusType, MessageType, Metadata, SerializeType,
};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result, ServiceError};
use crate::transport::{Address, ReadHalf, Stream};

/// Client settings, named after rpcx's `client.Option`. Every field states its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// How long dialling may take. Default: 1 s (rpcx's `ConnectTimeout`).
    pub connect_timeout: Duration,
    /// How arguments are serialized. Default: msgpack (rpcx's `SerializeType`).
    pub serialize_type: SerializeType,
    /// How arguments over 1024 bytes are compressed. Default: none (rpcx's `CompressType`).
    pub compress_type: CompressType,
    /// Sent as `__AUTH` with every call when set. Default: none.
    pub auth_token: Option<String>,
    /// Deadline applied to calls that do not set one. Default: none.
    pub default_timeout: Option<Duration>,
    /// Send heartbeats and close the connection when one is not answered (rpcx's `Heartbeat`).
    /// Default: false.
    pub heartbeat: bool,
    /// Time between heartbeats (rpcx's `HeartbeatInterval`). Default: 10 s.
    pub heartbeat_interval: Duration,
    /// How long to wait for a heartbeat's answer before declaring the connection dead (rpcx's
    /// `MaxWaitForHeartbeat`). Default: 30 s.
    pub max_wait_for_heartbeat: Duration,
    /// Size limits for replies. Default: 16 MiB each.
    pub limits: Limits,
    /// Codecs, for custom serialize types. Default: the built-in ones.
    pub codecs: Codecs,
    /// Capacity of the queue of messages pushed by the server (see
    /// [`Client::server_messages`]); 0 disables it. Default: 0.
    pub server_message_capacity: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(1),
            serialize_type: SerializeType::MSGPACK,
            compress_type: CompressType::NONE,
            auth_token: None,
            default_timeout: None,
            heartbeat: false,
            heartbeat_interval: Duration::from_secs(10),
            max_wait_for_heartbeat: Duration::from_secs(30),
            limits: Limits::default(),
            codecs: Codecs::default(),
            server_message_capacity: 0,
        }
    }
}

impl ClientOptions {
    /// Sets the serialize type.
    pub fn serialize_type(mut self, st: SerializeType) -> Self {
        self.serialize_type = st;
        self
    }

    /// Sets the compress type.
    pub fn compress_type(mut self, ct: CompressType) -> Self {
        self.compress_type = ct;
        self
    }

    /// Sets the auth token.
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.auth_token = Some(token.into());
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets the default call deadline.
    pub fn default_timeout(mut self, t: Duration) -> Self {
        self.default_timeout = Some(t);
        self
    }

    /// Turns heartbeats on with this interval.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = true;
        self.heartbeat_interval = interval;
        self
    }

    /// Sets how long a heartbeat may go unanswered.
    pub fn max_wait_for_heartbeat(mut self, t: Duration) -> Self {
        self.max_wait_for_heartbeat = t;
        self
    }

    /// Sets the codecs.
    pub fn codecs(mut self, codecs: Codecs) -> Self {
        self.codecs = codecs;
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Keeps up to `capacity` server-pushed messages for [`Client::server_messages`].
    pub fn server_message_capacity(mut self, capacity: usize) -> Self {
        self.server_message_capacity = capacity;
        self
    }
}

/// Per-call settings: metadata, deadline, and overrides of the client's codec choices.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Metadata sent with the request (rpcx's `share.ReqMetaDataKey`).
    pub metadata: Metadata,
    /// The call's deadline, counted from when it is sent; also sent to the server as
    /// `__ServerTimeout`. Default: the client's `default_timeout`.
    pub timeout: Option<Duration>,
    /// Serialize type for this call. Default: the client's.
    pub serialize_type: Option<SerializeType>,
    /// Compress type for this call. Default: the client's.
    pub compress_type: Option<CompressType>,
    /// Routing key for the XClient's consistent-hash selector: calls with the same key go to the
    /// same server, whatever their arguments. Not sent to the server; a plain [`Client`] ignores
    /// it, and an XClient whose selector does not hash rejects it. Default: none (the selector
    /// hashes service path, method and arguments).
    pub hash_key: Option<String>,
}

impl CallOptions {
    /// Default per-call options.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Adds a metadata pair.
    pub fn metadata(
        mut self,
        key: impl Into<sextant_protocol::ByteStr>,
        value: impl Into<sextant_protocol::ByteStr>,
    ) -> Self {
        self.metadata.insert(key, value);
        self
    }

    /// Sets the deadline.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Sets the serialize type.
    pub fn serialize_type(mut self, st: SerializeType) -> Self {
        self.serialize_type = Some(st);
        self
    }

    /// Sets the compress type.
    pub fn compress_type(mut self, ct: CompressType) -> Self {
        self.compress_type = Some(ct);
        self
    }

    /// Sets the consistent-hash routing key (see [`hash_key`](CallOptions::hash_key)).
    pub fn hash_key(mut self, key: impl Into<String>) -> Self {
        self.hash_key = Some(key.into());
        self
    }
}

/// A reply with the response's metadata (rpcx's `share.ResMetaDataKey`).
#[derive(Debug, Clone)]
pub struct Response<R> {
    /// The decoded reply.
    pub reply: R,
    /// Metadata the server set, plus `__ServerAddress`.
    pub metadata: Metadata,
}

type Waiter = oneshot::Sender<Result<Message>>;

struct Pending {
    calls: HashMap<u64, Waiter>,
    /// Set once the connection is gone; new calls fail with it.
    closed: Option<Error>,
}

/// State shared by the client handles and its reader, writer and heartbeat tasks.
struct Shared {
    pending: Mutex<Pending>,
    stop: CancellationToken,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the connection closed with `reason` and fails every call waiting on it.
    fn close(&self, reason: Error) {
        let waiters: Vec<Waiter> = {
            let mut p = self.lock();
            if p.closed.is_none() {
                p.closed = Some(reason.clone());
            }
            p.calls.drain().map(|(_, w)| w).collect()
        };
        for w in waiters {
            let _ = w.send(Err(reason.clone()));
        }
        self.stop.cancel();
    }

    fn remove(&self, seq: u64) {
        self.lock().calls.remove(&seq);
    }
}

struct ClientInner {
    address: Address,
    /// `address` as text, for `__ServerAddress` without formatting per call.
    address_text: sextant_protocol::ByteStr,
    options: ClientOptions,
    seq: AtomicU64,
    tx: mpsc::Sender<BytesMut>,
    shared: Arc<Shared>,
    server_messages: Mutex<Option<mpsc::Receiver<Message>>>,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.shared.close(Error::Closed);
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
    /// Connects to `address` (`tcp@host:port`, `unix@/path`, or `host:port`).
    pub async fn connect<A>(address: A, options: ClientOptions) -> Result<Client>
    where
        A: TryInto<Address, Error = Error>,
    {
        let address = address.try_into()?;
        let stream = Stream::connect(&address, options.connect_timeout).await?;
        Ok(Client::from_stream(address, stream, options))
    }

    /// A client over an already connected stream.
    pub fn from_stream(address: Address, stream: Stream, options: ClientOptions) -> Client {
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel::<BytesMut>(1024);
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                calls: HashMap::new(),
                closed: None,
            }),
            stop: CancellationToken::new(),
        });
        let (push_tx, push_rx) = if options.server_message_capacity > 0 {
            let (t, r) = mpsc::channel(options.server_message_capacity);
            (Some(t), Some(r))
        } else {
            (None, None)
        };

        let s = shared.clone();
        tokio::spawn(async move {
            let err = crate::io::write_loop(wr, rx, None, s.stop.clone()).await;
            s.close(match err {
                Some(e) => Error::lost(format!("write failed: {e}")),
                None => Error::Closed,
            });
        });
        tokio::spawn(read_loop(rd, shared.clone(), options.limits, push_tx));

        let client = Client {
            inner: Arc::new(ClientInner {
                address_text: address.to_string().into(),
                address,
                options,
                seq: AtomicU64::new(0),
                tx,
                shared,
                server_messages: Mutex::new(push_rx),
            }),
        };
        if client.inner.options.heartbeat {
            tokio::spawn(heartbeat_loop(
                Arc::downgrade(&client.inner),
                client.inner.shared.stop.clone(),
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
        self.inner.shared.lock().closed.is_some()
    }

    /// Why the client is closed, if it is.
    pub fn close_reason(&self) -> Option<Error> {
        self.inner.shared.lock().closed.clone()
    }

    /// Closes the connection. Every pending call fails at once with [`Error::Closed`].
    pub fn close(&self) {
        self.inner.shared.close(Error::Closed);
    }

    /// Resolves when the connection is closed, for whatever reason.
    pub async fn closed(&self) {
        self.inner.shared.stop.cancelled().await;
    }

    /// Messages the server pushed to this client (rpcx's `ServerMessageChan`), if enabled with
    /// [`ClientOptions::server_message_capacity`]. Can be taken once.
    pub fn server_messages(&self) -> Option<mpsc::Receiver<Message>> {
        self.inner
            .server_messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
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
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode_request(
            seq,
            service_path,
            service_method,
            args,
            &options,
            timeout,
            false,
        )?;
        let rx = self.send_frame(seq, frame).await?;
        Ok(PendingCall {
            rx,
            seq,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
            client: self.inner.clone(),
            done: false,
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
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode_request(
            seq,
            service_path,
            service_method,
            args,
            &options,
            None,
            true,
        )?;
        if let Some(reason) = self.close_reason() {
            return Err(reason);
        }
        self.inner
            .tx
            .send(frame)
            .await
            .map_err(|_| self.close_reason().unwrap_or(Error::Closed))
    }

    /// Sends one heartbeat and waits for its echo. Heartbeats carry the current time in
    /// nanoseconds as a msgpack int64, as Go's client does.
    pub async fn heartbeat(&self) -> Result<()> {
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let mut m = Message::new();
        m.header.set_seq(seq);
        m.header.set_heartbeat(true);
        m.header.set_serialize_type(SerializeType::MSGPACK);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let mut p = [0u8; 9];
        p[0] = 0xd3;
        p[1..].copy_from_slice(&nanos.to_be_bytes());
        m.payload = Bytes::copy_from_slice(&p);
        let mut frame = BytesMut::with_capacity(m.encoded_len());
        m.encode(&mut frame)?;
        let rx = self.send_frame(seq, frame).await?;
        let wait = self.inner.options.max_wait_for_heartbeat;
        let guard = RemoveOnDrop {
            shared: &self.inner.shared,
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

        let mut meta_owned;
        let mut meta = &options.metadata;
        if o.auth_token.is_some() || timeout.is_some() {
            meta_owned = options.metadata.clone();
            if let Some(t) = &o.auth_token {
                meta_owned.insert(keys::AUTH, t.clone());
            }
            if let Some(t) = timeout {
                meta_owned.insert(keys::SERVER_TIMEOUT, t.as_millis().to_string());
            }
            meta = &meta_owned;
        }

        let mut buf = BytesMut::with_capacity(
            64 + service_path.len()
                + service_method.len()
                + meta.encoded_len()
                + args.size_hint().max(64),
        );
        let frame = begin_frame(&mut buf, &header, service_path, service_method, meta)?;
        args.encode(st, &o.codecs, &mut buf)?;
        if should_compress(ct, buf.len() - frame.payload_offset()) {
            let plain = buf.split_off(frame.payload_offset());
            compress_into(ct, &plain, &mut buf)?;
            header.set_compress_type(ct);
            let at = frame.frame_offset();
            buf[at..at + 12].copy_from_slice(header.as_bytes());
        }
        finish_frame(&mut buf, frame)?;
        Ok(buf)
    }

    async fn send_frame(
        &self,
        seq: u64,
        frame: BytesMut,
    ) -> Result<oneshot::Receiver<Result<Message>>> {
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.inner.shared.lock();
            if let Some(reason) = &p.closed {
                return Err(reason.clone());
            }
            p.calls.insert(seq, tx);
        }
        if self.inner.tx.send(frame).await.is_err() {
            self.inner.shared.remove(seq);
            return Err(self.close_reason().unwrap_or(Error::Closed));
        }
        Ok(rx)
    }
}

struct RemoveOnDrop<'a> {
    shared: &'a Shared,
    seq: u64,
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        self.shared.remove(self.seq);
    }
}

/// A call in flight, returned by [`Client::go`]. Await it for the reply; drop it to cancel.
#[must_use = "a call is cancelled when its handle is dropped"]
pub struct PendingCall<R> {
    rx: oneshot::Receiver<Result<Message>>,
    seq: u64,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    client: Arc<ClientInner>,
    done: bool,
    /// Whether to add `__ServerAddress` to the response metadata (the XClient's `call` skips it).
    pub(crate) want_metadata: bool,
    _reply: PhantomData<fn() -> R>,
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
            self.client.shared.remove(self.seq);
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
                Err(_) => {
                    return Poll::Ready(Err(this
                        .client
                        .shared
                        .lock()
                        .closed
                        .clone()
                        .unwrap_or(Error::Closed)))
                }
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
            this.client.shared.remove(this.seq);
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
    let mut metadata = msg.metadata;
    if msg.header.status() == MessageStatusType::Error {
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

async fn read_loop(
    mut rd: ReadHalf,
    shared: Arc<Shared>,
    limits: Limits,
    push: Option<mpsc::Sender<Message>>,
) {
    let mut decoder = Decoder::new(limits);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let reason = 'read: loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(msg)) => dispatch(&shared, msg, push.as_ref()),
                Ok(None) => break,
                Err(e) if e.closes_connection() => break 'read Error::from(e),
                Err(e) => {
                    tracing::warn!(error = %e, "discarding an unreadable message from the server")
                }
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break Error::Closed,
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => break Error::lost("the server closed the connection"),
                Ok(_) => {}
                Err(e) => break Error::lost(format!("read failed: {e}")),
            },
        }
    };
    shared.close(reason);
}

fn dispatch(shared: &Shared, msg: Message, push: Option<&mpsc::Sender<Message>>) {
    if msg.header.message_type() == MessageType::Request {
        // A server push (rpcx's server.SendMessage): a oneway request from the server.
        match push {
            Some(p) => {
                if p.try_send(msg).is_err() {
                    tracing::warn!(
                        "server message queue full or closed; dropping a pushed message"
                    );
                }
            }
            None => {
                tracing::debug!("dropping a server-pushed message (server_message_capacity is 0)")
            }
        }
        return;
    }
    let waiter = shared.lock().calls.remove(&msg.header.seq());
    match waiter {
        Some(w) => {
            let _ = w.send(Ok(msg));
        }
        None => tracing::debug!(
            seq = msg.header.seq(),
            "reply for a call that is no longer waiting"
        ),
    }
}

async fn heartbeat_loop(client: std::sync::Weak<ClientInner>, stop: CancellationToken) {
    loop {
        let interval = match client.upgrade() {
            Some(c) => c.options.heartbeat_interval,
            None => return,
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let Some(inner) = client.upgrade() else {
            return;
        };
        let c = Client { inner };
        match c.heartbeat().await {
            Ok(()) => {}
            Err(Error::DeadlineExceeded) => {
                tracing::warn!(address = %c.address(), "heartbeat not answered: closing the connection");
                c.inner.shared.close(Error::lost(format!(
                    "heartbeat not answered within {:?}",
                    c.inner.options.max_wait_for_heartbeat
                )));
                return;
            }
            Err(_) => return,
        }
    }
}
