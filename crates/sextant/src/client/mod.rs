//! The rpcx client: one multiplexed connection to one server.
//!
//! Modules: [options](ClientOptions), the in-flight table (which call waits for which message
//! id), the connection's reader and heartbeat tasks, and [`PendingCall`]; this one holds
//! [`Client`] and the encoding of requests.
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

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use sextant_protocol::{keys, Decode, Encode, FrameHead, Header, Message};
use tokio::sync::{mpsc, oneshot};

mod connection;
mod inflight;
mod options;
mod pending;

use inflight::{InFlight, RemoveOnDrop};
pub use options::{CallOptions, ClientOptions};
pub use pending::{PendingCall, Response};

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
    server_messages: Mutex<Option<mpsc::Receiver<Message>>>,
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
        let address = address.to_address()?;
        address.check_dialable()?;
        let stream = Stream::connect_in(
            &address,
            options.connect_timeout,
            options.in_process.as_ref(),
        )
        .await?;
        Ok(Client::from_stream(address, stream, options))
    }

    /// A client over an already connected stream.
    pub fn from_stream(address: Address, stream: Stream, options: ClientOptions) -> Client {
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel::<BytesMut>(1024);
        let in_flight = Arc::new(InFlight::default());
        let (push_tx, push_rx) = if options.server_message_capacity > 0 {
            let (t, r) = mpsc::channel(options.server_message_capacity);
            (Some(t), Some(r))
        } else {
            (None, None)
        };

        let s = in_flight.clone();
        tokio::spawn(async move {
            let err = crate::io::write_loop(wr, rx, None, s.stop.clone()).await;
            s.close(match err {
                Some(e) => Error::lost(format!("write failed: {e}")),
                None => Error::Closed,
            });
        });
        tokio::spawn(connection::read_loop(
            rd,
            in_flight.clone(),
            options.limits,
            push_tx,
        ));

        let client = Client {
            inner: Arc::new(ClientInner {
                address_text: address.to_string().into(),
                address,
                options,
                seq: AtomicU64::new(0),
                tx,
                in_flight,
                server_messages: Mutex::new(push_rx),
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

    /// Messages the server pushed to this client (rpcx's `ServerMessageChan`), if enabled with
    /// [`ClientOptions::server_message_capacity`]. Can be taken once.
    pub fn server_messages(&self) -> Option<mpsc::Receiver<Message>> {
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

        let mut buf = BytesMut::new();
        FrameHead::new(&header, service_path, service_method, meta).encode(
            &mut buf,
            ct,
            args.size_hint().max(64),
            |b| args.encode(st, &o.codecs, b).map_err(Error::from),
        )?;
        Ok(buf)
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
