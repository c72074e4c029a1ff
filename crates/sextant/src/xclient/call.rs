//! The call path of an XClient: one loop for every fail mode, for typed calls (`call`,
//! `call_with`) and raw ones (`send_raw`) alike; the race of `Failbackup`; one attempt on one
//! server; and `go` and `oneway`.
//!
//! The loop ([`Inner::run`]) asks [`Candidates`] for a server, makes one
//! [attempt](Inner::attempt) there, and returns the reply, or an error that is not retryable (a
//! service error, an expired deadline, a cancelled call), or, after a retryable failure, asks for
//! the next candidate. When none is left the last error is returned.
//!
//! What differs between a typed and a raw call is only what is sent and what comes back: a
//! [`Body`] ([`Typed`] or [`RawRequest`]) says that, and how a hashing selector routes the call.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sextant_protocol::{keys, ByteStr, Decode, Encode, Message};

use super::candidates::{CallKey, Candidates};
use super::pool::Permit;
use super::{ClientPlugin, FailMode, Inner, XClient};
use crate::client::{CallOptions, Client, ClientOptions, PendingCall, RawReply, Response};
use crate::error::{Error, Result};
use crate::selector::Selector;
use crate::xclient::plugin::CallInfo;

/// What a call routes by: its method, and the bytes a hashing selector hashes when the call has
/// no hash key.
pub(super) trait Route {
    /// The method called (rpcx's `serviceMethod`).
    fn method(&self) -> &str;

    /// The bytes a hashing selector routes by: the encoded arguments, written to `buf` if they
    /// must be encoded first.
    fn route_bytes<'a>(
        &'a self,
        options: &CallOptions,
        client: &ClientOptions,
        buf: &'a mut BytesMut,
    ) -> Result<&'a [u8]>;
}

/// What a call sends, the same on every attempt, and what it gets back. A small borrowing view,
/// copied into each attempt.
pub(super) trait Body: Route + Copy {
    /// The reply of a successful call.
    type Reply;

    /// Sends the call on `client` and waits for its reply.
    fn send(
        &self,
        client: &Client,
        service_path: &str,
        options: CallOptions,
    ) -> impl Future<Output = Result<Self::Reply>>;
}

/// A typed call: arguments encoded by the client, reply decoded into `R`.
pub(super) struct Typed<'a, A: ?Sized, R> {
    method: &'a str,
    args: &'a A,
    /// Whether the caller wants the response metadata (`call` does not: it saves building it).
    want_metadata: bool,
    _reply: PhantomData<fn() -> R>,
}

impl<'a, A: ?Sized, R> Typed<'a, A, R> {
    pub(super) fn new(method: &'a str, args: &'a A, want_metadata: bool) -> Self {
        Typed {
            method,
            args,
            want_metadata,
            _reply: PhantomData,
        }
    }
}

// Only references inside.
impl<A: ?Sized, R> Clone for Typed<'_, A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A: ?Sized, R> Copy for Typed<'_, A, R> {}

impl<A: Encode + ?Sized, R> Route for Typed<'_, A, R> {
    fn method(&self) -> &str {
        self.method
    }

    fn route_bytes<'b>(
        &'b self,
        options: &CallOptions,
        client: &ClientOptions,
        buf: &'b mut BytesMut,
    ) -> Result<&'b [u8]> {
        let st = options.serialize_type.unwrap_or(client.serialize_type);
        self.args.encode(st, &client.codecs, buf)?;
        Ok(&buf[..])
    }
}

impl<A: Encode + ?Sized, R: Decode> Body for Typed<'_, A, R> {
    type Reply = Response<R>;

    async fn send(
        &self,
        client: &Client,
        service_path: &str,
        options: CallOptions,
    ) -> Result<Response<R>> {
        let mut pending = client
            .go(service_path, self.method, self.args, options)
            .await?;
        pending.want_metadata = self.want_metadata;
        pending.await
    }
}

/// A raw call: a message the caller encoded, sent as it is; the reply as it came.
#[derive(Clone, Copy)]
pub(super) struct RawRequest<'a>(pub(super) &'a Message);

impl Route for RawRequest<'_> {
    fn method(&self) -> &str {
        &self.0.service_method
    }

    /// The payload, as rpcx's `SendRaw` selects by it.
    fn route_bytes<'b>(
        &'b self,
        _: &CallOptions,
        _: &ClientOptions,
        _: &'b mut BytesMut,
    ) -> Result<&'b [u8]> {
        Ok(&self.0.payload[..])
    }
}

impl Body for RawRequest<'_> {
    type Reply = RawReply;

    async fn send(&self, client: &Client, _: &str, options: CallOptions) -> Result<RawReply> {
        client.send_raw_ref(self.0, options).await
    }
}

/// The parts of a call that stay the same across its attempts.
#[derive(Clone, Copy)]
pub(super) struct Call<B> {
    pub(super) body: B,
    /// Counted from the start of the call, across all attempts.
    pub(super) deadline: Option<Instant>,
}

/// Takes the options for the next attempt: a copy, or the original for the last one.
fn options_for(options: &mut CallOptions, last: bool) -> CallOptions {
    if last {
        std::mem::take(options)
    } else {
        options.clone()
    }
}

impl Inner {
    pub(super) fn check_open(&self) -> Result<()> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// The deadline of a call starting now: its own timeout, else the default one.
    pub(super) fn deadline(&self, options: &CallOptions) -> Option<Instant> {
        options
            .timeout
            .or(self.options.client.default_timeout)
            .map(|t| Instant::now() + t)
    }

    pub(super) fn add_auth(&self, options: &mut CallOptions) {
        if let Some(t) = &*self.auth.load() {
            options.metadata.insert(keys::AUTH, String::clone(t));
        }
    }

    /// What every call to one server does first: checks that the XClient is open, takes the
    /// selector, adds the auth token, and works out what a hashing selector routes by: the hash
    /// key (moved out of the options into `hash_key`) or the call's
    /// [route bytes](Route::route_bytes) (encoded into `buf` if need be).
    fn prepare<'a, B: Route>(
        &self,
        options: &mut CallOptions,
        body: &'a B,
        hash_key: &'a mut Option<String>,
        buf: &'a mut BytesMut,
    ) -> Result<(Arc<dyn Selector>, CallKey<'a>)> {
        self.check_open()?;
        let selector = self.selector()?;
        self.add_auth(options);
        *hash_key = options.hash_key.take();
        if !selector.uses_call_key() {
            if hash_key.is_some() {
                return Err(Error::Config(format!(
                    "CallOptions::hash_key is set but the {} selector does not route by key; use \
                     SelectMode::ConsistentHash (or a selector whose uses_call_key is true), or \
                     drop the key",
                    selector.name()
                )));
            }
            return Ok((selector, CallKey::default()));
        }
        if let Some(k) = hash_key.as_deref() {
            let key = CallKey {
                args: &[],
                hash_key: Some(k),
            };
            return Ok((selector, key));
        }
        let key = CallKey {
            args: body.route_bytes(options, &self.options.client, buf)?,
            hash_key: None,
        };
        Ok((selector, key))
    }

    fn plugins(&self) -> Option<Arc<Vec<Arc<dyn ClientPlugin>>>> {
        let g = self.config.plugins.load();
        (!g.is_empty()).then(|| Arc::clone(&g))
    }

    /// A call under the fail mode: the loop over its candidates (`Failbackup`: the race of two).
    /// Typed and raw calls both go through here.
    pub(super) async fn run<B: Body>(&self, body: B, mut options: CallOptions) -> Result<B::Reply> {
        let deadline = self.deadline(&options);
        let (mut hash_key, mut buf) = (None, BytesMut::new());
        let (selector, key) = self.prepare(&mut options, &body, &mut hash_key, &mut buf)?;
        let call = Call { body, deadline };
        let mut candidates = Candidates::new(self, &*selector, body.method(), key, self.fail_mode);
        if self.fail_mode == FailMode::Failbackup {
            return failbackup(self, &mut candidates, &call, options).await;
        }
        let mut attempt = 0;
        loop {
            let permit = candidates.next(deadline).await?;
            let server = permit.endpoint.key.clone();
            let o = options_for(&mut options, candidates.is_last());
            match self.attempt(permit, &call, o, attempt).await {
                Ok(r) => return Ok(r),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => {
                    tracing::debug!(service = %self.service_path, %server, error = %e, mode = %self.fail_mode, "call failed; trying the next candidate");
                    candidates.failed(e);
                }
            }
            attempt += 1;
        }
    }

    /// One attempt of a call on the server of `permit`.
    pub(super) async fn attempt<B: Body>(
        &self,
        permit: Permit,
        call: &Call<B>,
        mut options: CallOptions,
        attempt: u32,
    ) -> Result<B::Reply> {
        let (method, deadline) = (call.body.method(), call.deadline);
        let ep = permit.endpoint.clone();
        let plugins = self.plugins();
        // Armed once every pre_call ran: post_call runs when the attempt ends, or when the
        // caller drops the call (with `Error::Canceled`), so a plugin's in-flight count and
        // span always close.
        let post_call = match &plugins {
            Some(ps) => {
                let mut info = CallInfo {
                    service_path: &self.service_path,
                    service_method: method,
                    server: &ep.key,
                    attempt,
                    metadata: &mut options.metadata,
                };
                for (i, p) in ps.iter().enumerate() {
                    let hook = std::panic::AssertUnwindSafe(|| p.pre_call(&mut info));
                    let refused = match std::panic::catch_unwind(hook) {
                        Ok(Ok(())) => continue,
                        Ok(Err(e)) => e,
                        Err(_) => {
                            tracing::error!(service = %self.service_path, hook = "pre_call", "client plugin panicked");
                            Error::Config(format!(
                                "a client plugin panicked before the call {}.{method}",
                                self.service_path
                            ))
                        }
                    };
                    // The plugins whose pre_call ran (this one included) see the attempt end.
                    for p in &ps[..=i] {
                        let hook = std::panic::AssertUnwindSafe(|| {
                            p.post_call(&info, Some(&refused), Duration::ZERO)
                        });
                        if std::panic::catch_unwind(hook).is_err() {
                            tracing::error!(service = %self.service_path, hook = "post_call", "client plugin panicked");
                        }
                    }
                    return Err(refused);
                }
                Some(PostCall {
                    plugins: Arc::clone(ps),
                    service_path: &self.service_path,
                    method,
                    server: &ep.key,
                    attempt,
                    metadata: options.metadata.clone(),
                    started: Instant::now(),
                    armed: true,
                })
            }
            None => None,
        };
        let r = async {
            let client = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), ep.client())
                    .await
                    .unwrap_or(Err(Error::DeadlineExceeded))?,
                None => ep.client().await?,
            };
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::DeadlineExceeded);
                }
                options.timeout = Some(left);
            }
            let r = call.body.send(&client, &self.service_path, options).await;
            if let Err(Error::ConnectionLost(_) | Error::Io(_) | Error::Protocol(_)) = &r {
                // A broken connection is dropped; the next call redials.
                client.close();
            }
            r
        }
        .await;
        permit.finish(r.as_ref().err());
        if let Some(mut post_call) = post_call {
            post_call.armed = false;
            post_call.run(r.as_ref().err());
        }
        r
    }
}

/// The client plugins' `post_call` of one attempt, run by [`PostCall::run`] when it ends or on
/// drop when the caller gave the call up.
struct PostCall<'a> {
    plugins: Arc<Vec<Arc<dyn ClientPlugin>>>,
    service_path: &'a str,
    method: &'a str,
    server: &'a str,
    attempt: u32,
    metadata: sextant_protocol::Metadata,
    started: Instant,
    armed: bool,
}

impl PostCall<'_> {
    fn run(&mut self, error: Option<&Error>) {
        let elapsed = self.started.elapsed();
        let info = CallInfo {
            service_path: self.service_path,
            service_method: self.method,
            server: self.server,
            attempt: self.attempt,
            metadata: &mut self.metadata,
        };
        for p in self.plugins.iter() {
            let hook = std::panic::AssertUnwindSafe(|| p.post_call(&info, error, elapsed));
            if std::panic::catch_unwind(hook).is_err() {
                tracing::error!(service = %self.service_path, hook = "post_call", "client plugin panicked");
            }
        }
    }
}

impl Drop for PostCall<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.armed = false;
            self.run(Some(&Error::Canceled));
        }
    }
}

impl XClient {
    /// Calls `service_method` with `args` under the fail mode and returns the reply.
    pub async fn call<A, R>(&self, service_method: &str, args: &A) -> Result<R>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let body = Typed::<A, R>::new(service_method, args, false);
        Ok(self.inner.run(body, CallOptions::default()).await?.reply)
    }

    /// Like [`call`](XClient::call), with per-call options (metadata, deadline, codec, hash key);
    /// returns the response metadata too, including `__ServerAddress`.
    pub async fn call_with<A, R>(
        &self,
        service_method: &str,
        args: &A,
        options: CallOptions,
    ) -> Result<Response<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let body = Typed::<A, R>::new(service_method, args, true);
        self.inner.run(body, options).await
    }

    /// Sends a request whose payload the caller encoded under the fail mode, and returns the
    /// response as it came (rpcx's `XClient.SendRaw`).
    ///
    /// The call goes the way of [`call_with`](XClient::call_with): the selector picks the
    /// server (a hashing selector routes by `options.hash_key`, else by the request's payload),
    /// the fail mode and retries decide what a failure does (`Failbackup` included), breakers
    /// keep failing servers out, the XClient's auth token is added as `__AUTH`, and plugins'
    /// `pre_call`/`post_call` run around each attempt. On the chosen server the request is sent
    /// as [`Client::send_raw`](crate::Client::send_raw) sends it: with the client's own message
    /// id (the caller's is restored in the reply), its payload as it is, its own metadata pairs
    /// winning over `options.metadata`, the auth token and `__ServerTimeout`; a oneway request
    /// returns an empty reply once queued; an error response is [`Error::Service`].
    ///
    /// A request with an empty service path is sent to this XClient's service; any other
    /// service path is sent as it is (to the servers of this XClient's discovery).
    pub async fn send_raw(&self, mut request: Message, options: CallOptions) -> Result<RawReply> {
        if request.service_path.is_empty() {
            request.service_path = ByteStr::from(self.inner.service_path.as_str());
        }
        self.inner.run(RawRequest(&request), options).await
    }

    /// Sends the call to one server and returns a handle to await later (rpcx's `Go`). As in
    /// rpcx, no fail mode applies: the call is sent once. Plugins' `pre_call`/`post_call` do not
    /// run; the outcome still feeds the server's breaker. Dropping the handle cancels the call.
    pub async fn go<A, R>(
        &self,
        service_method: &str,
        args: &A,
        mut options: CallOptions,
    ) -> Result<XCall<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let inner = &*self.inner;
        if options.timeout.is_none() {
            options.timeout = inner.options.client.default_timeout;
        }
        let body = Typed::<A, R>::new(service_method, args, true);
        let (mut hash_key, mut buf) = (None, BytesMut::new());
        let (selector, key) = inner.prepare(&mut options, &body, &mut hash_key, &mut buf)?;
        let mut candidates =
            Candidates::new(inner, &*selector, service_method, key, FailMode::Failfast);
        let permit = candidates.next(None).await?;
        let client = match permit.endpoint.client().await {
            Ok(c) => c,
            Err(e) => {
                permit.finish(Some(&e));
                return Err(e);
            }
        };
        match client
            .go(&inner.service_path, service_method, args, options)
            .await
        {
            Ok(pending) => Ok(XCall {
                pending,
                permit: Some(permit),
            }),
            Err(e) => {
                permit.finish(Some(&e));
                Err(e)
            }
        }
    }

    /// Sends a oneway call: the server runs it and answers nothing. Returns once the request is
    /// queued for writing. The fail mode decides what happens when a server cannot be reached:
    /// `Failfast` tries one server, `Failtry` retries the same server and the other modes
    /// another one, up to `retries` times.
    pub async fn oneway<A>(
        &self,
        service_method: &str,
        args: &A,
        mut options: CallOptions,
    ) -> Result<()>
    where
        A: Encode + ?Sized,
    {
        let inner = &*self.inner;
        let body = Typed::<A, ()>::new(service_method, args, false);
        let (mut hash_key, mut buf) = (None, BytesMut::new());
        let (selector, key) = inner.prepare(&mut options, &body, &mut hash_key, &mut buf)?;
        // Nothing comes back to race for: a oneway call under Failbackup fails over.
        let mode = match inner.fail_mode {
            FailMode::Failbackup => FailMode::Failover,
            m => m,
        };
        let mut candidates = Candidates::new(inner, &*selector, service_method, key, mode);
        loop {
            let permit = candidates.next(None).await?;
            let o = options_for(&mut options, candidates.is_last());
            let r = match permit.endpoint.client().await {
                Ok(c) => {
                    c.send_oneway(&inner.service_path, service_method, args, o)
                        .await
                }
                Err(e) => Err(e),
            };
            permit.finish(r.as_ref().err());
            match r {
                Ok(()) => return Ok(()),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => candidates.failed(e),
            }
        }
    }
}

/// `Failbackup`: the first candidate; if it has not answered after `backup_latency` (or failed
/// retryably), the second too. The first answer wins and the other call is dropped (cancelled).
async fn failbackup<B: Body>(
    inner: &Inner,
    candidates: &mut Candidates<'_>,
    call: &Call<B>,
    options: CallOptions,
) -> Result<B::Reply> {
    let first = candidates.next(call.deadline).await?;
    let mut call1 = std::pin::pin!(inner.attempt(first, call, options.clone(), 0));
    let mut error1 = None;
    tokio::select! {
        r = &mut call1 => match r {
            Err(e) if e.is_retryable() => error1 = Some(e),
            r => return r,
        },
        _ = tokio::time::sleep(inner.options.backup_latency) => {}
    }
    let second = match candidates.next(call.deadline).await {
        Ok(p) => p,
        // No second server: the first one's answer is all there is.
        Err(e) => {
            return match error1 {
                Some(e1) => Err(e1),
                None => {
                    tracing::debug!(service = %inner.service_path, error = %e, "no server for a backup request");
                    call1.await
                }
            }
        }
    };
    let mut call2 = std::pin::pin!(inner.attempt(second, call, options, 1));
    if let Some(e1) = error1 {
        return call2
            .await
            .map_err(|e2| if e2.is_retryable() { e1 } else { e2 });
    }
    // Both in flight: the first answer wins and the other call is dropped (cancelled). A
    // retryable failure of one leaves the other to answer.
    let (mut done1, mut done2) = (false, false);
    loop {
        tokio::select! {
            r = &mut call1, if !done1 => match r {
                Err(e) if e.is_retryable() && !done2 => done1 = true,
                r => return r,
            },
            r = &mut call2, if !done2 => match r {
                Err(e) if e.is_retryable() && !done1 => done2 = true,
                r => return r,
            },
        }
    }
}

/// A call sent by [`XClient::go`]. Await it for the reply; drop it to cancel.
#[must_use = "a call is cancelled when its handle is dropped"]
pub struct XCall<R> {
    pending: PendingCall<R>,
    permit: Option<Permit>,
}

impl<R> fmt::Debug for XCall<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XCall")
            .field("server", &self.permit.as_ref().map(|p| &*p.endpoint.key))
            .field("seq", &self.pending.seq())
            .finish()
    }
}

impl<R> XCall<R> {
    /// The server the call went to.
    pub fn server(&self) -> Option<&str> {
        self.permit.as_ref().map(|p| &*p.endpoint.key)
    }
}

impl<R: Decode> Future for XCall<R> {
    type Output = Result<Response<R>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match Pin::new(&mut this.pending).poll(cx) {
            Poll::Ready(r) => {
                if let Some(p) = this.permit.take() {
                    p.finish(r.as_ref().err());
                }
                Poll::Ready(r)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
