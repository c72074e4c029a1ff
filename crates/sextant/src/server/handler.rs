//! The typed handler adapter: [`Method`] wraps a user's async function into a type-erased
//! [`Handler`] that decodes the argument, runs the function and encodes the response frame.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::FutureExt;
use sextant_protocol::codec::Codecs;
use sextant_protocol::{
    encode_error_reply, keys, Decode, Encode, FrameHead, Header, MessageStatusType, Metadata,
};

use crate::context::Context;
use crate::error::Error;

/// What every handler shares: the server's codecs.
#[derive(Debug, Default)]
pub(crate) struct Env {
    pub(crate) codecs: Codecs,
}

/// How a call ended, as the server sends it and as plugins see it.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The response frame; `None` for a oneway call (nothing is sent back).
    pub(crate) frame: Option<BytesMut>,
    /// The error text when the call failed, whether or not a frame carries it.
    pub(crate) error: Option<String>,
}

impl Outcome {
    fn ok(frame: Option<BytesMut>) -> Outcome {
        Outcome { frame, error: None }
    }
}

/// A type-erased handler: decodes the argument, runs the user's function and encodes the whole
/// response frame (or nothing, for oneway calls).
pub(crate) trait Handler: Send + Sync + 'static {
    fn call(&self, ctx: Context, payload: Bytes, env: &Arc<Env>) -> BoxFuture<'static, Outcome>;
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
    fn call(&self, ctx: Context, payload: Bytes, env: &Arc<Env>) -> BoxFuture<'static, Outcome> {
        let args = match A::decode(ctx.serialize_type(), &env.codecs, &payload) {
            Ok(a) => a,
            Err(e) => return futures::future::ready(error_outcome(&ctx, e.to_string())).boxed(),
        };
        let fut = (self.f)(ctx.clone(), args);
        let env = env.clone();
        async move {
            match fut.await {
                Ok(reply) if ctx.is_oneway() => {
                    drop(reply);
                    Outcome::ok(None)
                }
                Ok(reply) => reply_outcome(&ctx, &env.codecs, None, &reply),
                Err(e) => {
                    let text = e.to_string();
                    if ctx.is_oneway() {
                        return Outcome {
                            frame: None,
                            error: Some(text),
                        };
                    }
                    reply_outcome(&ctx, &env.codecs, Some(text), &R::default())
                }
            }
        }
        .boxed()
    }
}

/// The response to a call whose handler ran: the reply encoded with the request's serialize type,
/// compressed when the request was and the payload is over 1024 bytes; with `error`, status
/// error and `__rpcx_error__` set (the reply is still encoded, as rpcx does).
fn reply_outcome<R: Encode>(
    ctx: &Context,
    codecs: &Codecs,
    error: Option<String>,
    reply: &R,
) -> Outcome {
    let req_header = ctx.header();
    let mut header = req_header.response_header();
    let metadata = response_metadata(ctx, error.as_deref());
    if error.is_some() {
        header.set_status(MessageStatusType::Error);
    }
    let st = header.serialize_type();
    let head = FrameHead::new(
        &header,
        ctx.reply_service_path(),
        ctx.reply_service_method(),
        &metadata,
    );
    let mut buf = BytesMut::new();
    let encoded = head.encode(
        &mut buf,
        req_header.compress_type(),
        reply.size_hint().max(64),
        |b| reply.encode(st, codecs, b).map_err(Error::from),
    );
    match encoded {
        Ok(()) => Outcome {
            frame: Some(buf),
            error,
        },
        // The reply cannot be encoded: answer with that error instead, as rpcx does.
        Err(e) => {
            let text = match e {
                Error::Codec(e) => e.to_string(),
                Error::Protocol(e) => e.to_string(),
                e => e.to_string(),
            };
            error_outcome_with(ctx, text, &Metadata::new())
        }
    }
}

/// The response carrying `payload` as it is (already encoded with the request's serialize
/// type), compressed as [`reply_outcome`] would: a plugin's replacement reply.
pub(crate) fn raw_reply_outcome(ctx: &Context, payload: &[u8]) -> Outcome {
    let req_header = ctx.header();
    let header = req_header.response_header();
    let metadata = ctx.take_response_metadata();
    let head = FrameHead::new(
        &header,
        ctx.reply_service_path(),
        ctx.reply_service_method(),
        &metadata,
    );
    let mut buf = BytesMut::new();
    let encoded = head.encode(&mut buf, req_header.compress_type(), payload.len(), |b| {
        b.extend_from_slice(payload);
        Ok::<_, Error>(())
    });
    match encoded {
        Ok(()) => Outcome::ok(Some(buf)),
        Err(e) => error_outcome_with(ctx, e.to_string(), &Metadata::new()),
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

/// An error response with an empty payload (nothing for a oneway request), carrying the
/// response metadata the handler set.
pub(crate) fn error_outcome(ctx: &Context, text: String) -> Outcome {
    let meta = ctx.take_response_metadata();
    error_outcome_with(ctx, text, &meta)
}

fn error_outcome_with(ctx: &Context, text: String, extra: &Metadata) -> Outcome {
    Outcome {
        frame: error_frame(
            ctx.header(),
            ctx.reply_service_path(),
            ctx.reply_service_method(),
            &text,
            extra,
        ),
        error: Some(text),
    }
}

/// An error response to the request with `header`, echoing path and method; `None` if oneway.
pub(crate) fn error_frame(
    header: &Header,
    service_path: &str,
    service_method: &str,
    text: &str,
    extra: &Metadata,
) -> Option<BytesMut> {
    if header.is_oneway() {
        return None;
    }
    let mut buf =
        BytesMut::with_capacity(64 + text.len() + service_path.len() + service_method.len());
    encode_error_reply(&mut buf, header, service_path, service_method, text, extra).ok()?;
    Some(buf)
}
