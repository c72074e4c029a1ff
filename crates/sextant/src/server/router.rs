//! Routing `(service path, method)` to handlers, and the typed handler adapter.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::FutureExt;
use sextant_protocol::codec::Codecs;
use sextant_protocol::compress::{compress_into, should_compress};
use sextant_protocol::{
    begin_frame, finish_frame, keys, Decode, Encode, Header, MessageStatusType, Metadata,
};

use crate::context::Context;

/// What every handler shares: the server's codecs.
#[derive(Debug, Default)]
pub(crate) struct Env {
    pub(crate) codecs: Codecs,
}

/// A type-erased handler: decodes the argument, runs the user's function and encodes the whole
/// response frame (or nothing, for oneway calls).
pub(crate) trait Handler: Send + Sync + 'static {
    fn call(
        &self,
        ctx: Context,
        payload: Bytes,
        env: &Arc<Env>,
    ) -> BoxFuture<'static, Option<BytesMut>>;
}

/// One method of a service: its wire name and its handler.
///
/// Built with [`Method::new`] from an async function or closure; the
/// [`#[sextant::service]`](crate::service) macro builds these for every method of an impl block.
#[derive(Clone)]
pub struct Method {
    name: String,
    handler: Arc<dyn Handler>,
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Method").field("name", &self.name).finish()
    }
}

impl Method {
    /// A method named `name` (as it appears on the wire, e.g. `Mul`) served by `f`.
    ///
    /// `f` takes the call's [`Context`] and the decoded argument and returns the reply or an
    /// error whose text is sent to the caller. The reply type implements `Default` because, like Go
    /// rpcx, an error response still carries an (empty) encoded reply.
    pub fn new<F, Fut, A, R, E>(name: impl Into<String>, f: F) -> Method
    where
        F: Fn(Context, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        A: Decode + Send + 'static,
        R: Encode + Default + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        Method {
            name: name.into(),
            handler: Arc::new(TypedHandler {
                f,
                _types: PhantomData,
            }),
        }
    }

    /// The wire name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn handler(&self) -> &Arc<dyn Handler> {
        &self.handler
    }
}

struct TypedHandler<F, A, R, E> {
    f: F,
    _types: PhantomData<fn(A) -> (R, E)>,
}

impl<F, Fut, A, R, E> Handler for TypedHandler<F, A, R, E>
where
    F: Fn(Context, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    A: Decode + Send + 'static,
    R: Encode + Default + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    fn call(
        &self,
        ctx: Context,
        payload: Bytes,
        env: &Arc<Env>,
    ) -> BoxFuture<'static, Option<BytesMut>> {
        let args = match A::decode(ctx.serialize_type(), &env.codecs, &payload) {
            Ok(a) => a,
            Err(e) => return futures::future::ready(error_frame(&ctx, &e.to_string())).boxed(),
        };
        let fut = (self.f)(ctx.clone(), args);
        let env = env.clone();
        async move {
            let result = fut.await;
            if ctx.is_oneway() {
                return None;
            }
            Some(match result {
                Ok(reply) => reply_frame(&ctx, &env.codecs, None, &reply),
                Err(e) => reply_frame(&ctx, &env.codecs, Some(&e.to_string()), &R::default()),
            })
        }
        .boxed()
    }
}

/// The response frame for a call whose handler ran: the reply encoded with the request's
/// serialize type, compressed when the request was and the payload is over 1024 bytes; with
/// `error`, status error and `__rpcx_error__` set (the reply is still encoded, as rpcx does).
fn reply_frame<R: Encode>(
    ctx: &Context,
    codecs: &Codecs,
    error: Option<&str>,
    reply: &R,
) -> BytesMut {
    let req_header = ctx.header();
    let mut header = req_header.response_header();
    let metadata = response_metadata(ctx, error);
    if error.is_some() {
        header.set_status(MessageStatusType::Error);
    }
    let mut buf = BytesMut::with_capacity(
        64 + ctx.service_path().len()
            + ctx.service_method().len()
            + metadata.encoded_len()
            + reply.size_hint().max(64),
    );
    let frame = match begin_frame(
        &mut buf,
        &header,
        ctx.service_path(),
        ctx.service_method(),
        &metadata,
    ) {
        Ok(f) => f,
        Err(e) => {
            return error_frame_with(ctx, &e.to_string(), Metadata::new()).unwrap_or_default()
        }
    };
    if let Err(e) = reply.encode(header.serialize_type(), codecs, &mut buf) {
        // The reply cannot be encoded: answer with the codec error instead, as rpcx does.
        return error_frame_with(ctx, &e.to_string(), Metadata::new()).unwrap_or_default();
    }
    let ct = req_header.compress_type();
    if should_compress(ct, buf.len() - frame.payload_offset()) {
        let plain = buf.split_off(frame.payload_offset());
        if compress_into(ct, &plain, &mut buf).is_ok() {
            header.set_compress_type(ct);
            let at = frame.frame_offset();
            buf[at..at + 12].copy_from_slice(header.as_bytes());
        } else {
            buf.truncate(frame.payload_offset());
            buf.extend_from_slice(&plain);
        }
    }
    match finish_frame(&mut buf, frame) {
        Ok(()) => buf,
        Err(e) => error_frame_with(ctx, &e.to_string(), Metadata::new()).unwrap_or_default(),
    }
}

fn response_metadata(ctx: &Context, error: Option<&str>) -> Metadata {
    let handler_meta = ctx.take_response_metadata();
    match error {
        None => handler_meta,
        Some(text) => {
            let mut m = Metadata::new();
            m.insert(keys::SERVICE_ERROR, text.to_string());
            m.merge_missing(&handler_meta);
            m
        }
    }
}

/// An error response with an empty payload, or `None` for a oneway request.
pub(crate) fn error_frame(ctx: &Context, text: &str) -> Option<BytesMut> {
    let meta = ctx.take_response_metadata();
    error_frame_with(ctx, text, meta)
}

fn error_frame_with(ctx: &Context, text: &str, extra: Metadata) -> Option<BytesMut> {
    error_frame_for(
        ctx.header(),
        ctx.service_path(),
        ctx.service_method(),
        text,
        &extra,
    )
}

/// An error response to the request with `header`, echoing path and method; `None` if oneway.
pub(crate) fn error_frame_for(
    header: &Header,
    service_path: &str,
    service_method: &str,
    text: &str,
    extra: &Metadata,
) -> Option<BytesMut> {
    if header.is_oneway() {
        return None;
    }
    let mut h = header.response_header();
    h.set_status(MessageStatusType::Error);
    let mut meta = Metadata::new();
    meta.insert(keys::SERVICE_ERROR, text.to_string());
    meta.merge_missing(extra);
    let mut buf =
        BytesMut::with_capacity(64 + text.len() + service_path.len() + service_method.len());
    let frame = begin_frame(&mut buf, &h, service_path, service_method, &meta).ok()?;
    finish_frame(&mut buf, frame).ok()?;
    Some(buf)
}

/// A registered service: its metadata string and its methods.
#[derive(Clone, Default)]
pub(crate) struct ServiceEntry {
    pub(crate) metadata: String,
    pub(crate) methods: HashMap<String, Arc<dyn Handler>>,
}

/// The routing table. Replaced wholesale on registration so that lookups take no lock.
#[derive(Clone, Default)]
pub(crate) struct Router {
    pub(crate) services: HashMap<String, ServiceEntry>,
}

impl Router {
    /// The handler for a call, or rpcx's error text.
    pub(crate) fn lookup(
        &self,
        service_path: &str,
        service_method: &str,
    ) -> Result<Arc<dyn Handler>, String> {
        let service = self
            .services
            .get(service_path)
            .ok_or_else(|| format!("rpcx: can't find service {service_path}"))?;
        service
            .methods
            .get(service_method)
            .cloned()
            .ok_or_else(|| format!("rpcx: can't find method {service_method}"))
    }
}
