//! Tower middleware around handlers: [`ServerBuilder::layer`](super::ServerBuilder::layer)
//! wraps every method's handler in a [`tower::Layer`], for users who already have tower
//! middleware (timeouts, concurrency limits, load shedding, their own tracing).

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use tower::{Layer, Service, ServiceExt};

use super::handler::{error_outcome, Env, Handler, Outcome};
use crate::context::Context;

/// A call as a tower service sees it: its [`Context`] and its decompressed payload.
#[derive(Debug, Clone)]
pub struct CallRequest {
    ctx: Context,
    payload: Bytes,
}

impl CallRequest {
    /// The call's context (service, method, metadata, peer, deadline, extensions).
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The request's payload, decompressed, still encoded with its serialize type.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }
}

/// What a handler produced: the response to send (or nothing, for oneway calls) and its error
/// text if it failed.
pub struct CallResponse(pub(crate) Outcome);

impl CallResponse {
    /// The error text when the call failed.
    pub fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    /// An error response to `request`, for middleware that answers without calling the handler
    /// (a refusal); the caller gets `text`.
    pub fn error_reply(request: &CallRequest, text: impl Into<String>) -> CallResponse {
        CallResponse(error_outcome(&request.ctx, text.into()))
    }
}

impl fmt::Debug for CallResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallResponse")
            .field("error", &self.error())
            .finish()
    }
}

/// One method's handler as a [`tower::Service`]: what a [`Layer`] given to
/// [`ServerBuilder::layer`](super::ServerBuilder::layer) wraps. Always ready; cheap to clone.
#[derive(Clone)]
pub struct HandlerService {
    handler: Arc<dyn Handler>,
    env: Arc<Env>,
}

impl fmt::Debug for HandlerService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HandlerService")
    }
}

impl Service<CallRequest> for HandlerService {
    type Response = CallResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<CallResponse, Infallible>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: CallRequest) -> Self::Future {
        self.handler
            .call(req.ctx, req.payload, &self.env)
            .map(|o| Ok(CallResponse(o)))
            .boxed()
    }
}

/// Wraps a handler in the server's layers.
pub(crate) type WrapHandler = dyn Fn(Arc<dyn Handler>, &Arc<Env>) -> Arc<dyn Handler> + Send + Sync;

/// The type-erased form of a [`Layer`] over [`HandlerService`].
pub(crate) fn wrapper<L>(layer: L) -> Box<WrapHandler>
where
    L: Layer<HandlerService> + Send + Sync + 'static,
    L::Service: Service<CallRequest, Response = CallResponse> + Clone + Send + Sync + 'static,
    <L::Service as Service<CallRequest>>::Error: Into<tower::BoxError>,
    <L::Service as Service<CallRequest>>::Future: Send + 'static,
{
    Box::new(move |handler, env| {
        let svc = layer.layer(HandlerService {
            handler,
            env: env.clone(),
        });
        Arc::new(Layered { svc })
    })
}

struct Layered<S> {
    svc: S,
}

impl<S> Handler for Layered<S>
where
    S: Service<CallRequest, Response = CallResponse> + Clone + Send + Sync + 'static,
    S::Error: Into<tower::BoxError>,
    S::Future: Send + 'static,
{
    fn call(&self, ctx: Context, payload: Bytes, _: &Arc<Env>) -> BoxFuture<'static, Outcome> {
        let svc = self.svc.clone();
        async move {
            let req = CallRequest {
                ctx: ctx.clone(),
                payload,
            };
            match svc.oneshot(req).await {
                Ok(r) => r.0,
                Err(e) => error_outcome(&ctx, e.into().to_string()),
            }
        }
        .boxed()
    }
}
