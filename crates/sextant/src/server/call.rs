//! One call, from a decoded request to its response frame: the deadline from
//! `__ServerTimeout`, routing, the plugins' `pre_call`/`post_call`, decompression, the handler
//! (under the deadline, panics caught).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use sextant_protocol::compress::decompress;
use sextant_protocol::{keys, Message};

use super::handler::{error_outcome, Handler, Outcome};
use super::ServerInner;
use crate::context::{Context, Origin};

/// Serves one request; returns the response frame, or `None` when nothing is to be sent
/// (oneway).
pub(crate) async fn process(
    server: &Arc<ServerInner>,
    msg: Message,
    origin: Origin,
) -> Option<BytesMut> {
    let Message {
        header,
        service_path,
        service_method,
        metadata,
        payload,
    } = msg;
    let timeout = server_timeout(metadata.get(keys::SERVER_TIMEOUT));
    let deadline = timeout.map(|t| Instant::now() + t);
    let ctx = Context::new(
        header,
        service_path,
        service_method,
        metadata,
        origin,
        deadline,
    );

    server.calls.fetch_add(1, Ordering::Relaxed);
    let handler = match server
        .router
        .load()
        .lookup(ctx.service_path(), ctx.service_method())
    {
        Ok(h) => h,
        Err(text) => return error_outcome(&ctx, text).frame,
    };
    let plugins = server.plugins();
    if plugins.is_empty() {
        return run_handler(server, &ctx, handler, payload, timeout)
            .await
            .frame;
    }
    for p in plugins.iter() {
        if let Err(text) = p.pre_call(&ctx) {
            return error_outcome(&ctx, text).frame;
        }
    }
    let started = Instant::now();
    let outcome = run_handler(server, &ctx, handler, payload, timeout).await;
    let elapsed = started.elapsed();
    for p in plugins.iter() {
        p.post_call(&ctx, outcome.error.as_deref(), elapsed);
    }
    outcome.frame
}

/// The deadline a request carries: `__ServerTimeout` in milliseconds (negative means none left).
fn server_timeout(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|ms| Duration::from_millis(ms.max(0) as u64))
}

/// Decompresses the argument and runs the handler under the call's deadline, catching panics.
async fn run_handler(
    server: &Arc<ServerInner>,
    ctx: &Context,
    handler: Arc<dyn Handler>,
    payload: Bytes,
    timeout: Option<Duration>,
) -> Outcome {
    let limit = server.options.limits.max_decompressed_size;
    let payload = match decompress(ctx.header().compress_type(), payload, limit) {
        Ok(p) => p,
        Err(e) => return error_outcome(ctx, e.to_string()),
    };
    let env = server.env.clone();
    let ctx2 = ctx.clone();
    // The handler is created inside the guarded future, so a panic while decoding or in the
    // handler's synchronous prologue is caught as well.
    let call =
        AssertUnwindSafe(async move { handler.call(ctx2, payload, &env).await }).catch_unwind();
    let outcome = match ctx.deadline() {
        Some(d) => match tokio::time::timeout_at(d.into(), call).await {
            Ok(r) => r,
            Err(_) => {
                let ms = timeout.unwrap_or_default().as_millis();
                let text = format!(
                    "rpcx: call {}.{} exceeded its deadline of {ms} ms",
                    ctx.service_path(),
                    ctx.service_method()
                );
                return error_outcome(ctx, text);
            }
        },
        None => call.await,
    };
    match outcome {
        Ok(outcome) => outcome,
        Err(panic) => {
            let text = panic_message(&panic);
            tracing::error!(service = ctx.service_path(), method = ctx.service_method(), panic = %text, "handler panicked");
            error_outcome(ctx, format!("rpcx: handler panicked: {text}"))
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timeout_parsing() {
        assert_eq!(server_timeout(None), None);
        assert_eq!(
            server_timeout(Some("250")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(server_timeout(Some(" 7 ")), Some(Duration::from_millis(7)));
        assert_eq!(server_timeout(Some("-5")), Some(Duration::ZERO));
        assert_eq!(server_timeout(Some("soon")), None);
    }

    #[test]
    fn panic_messages() {
        let p: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(panic_message(&p), "boom");
        let p: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_message(&p), "bang");
        let p: Box<dyn std::any::Any + Send> = Box::new(7u8);
        assert_eq!(panic_message(&p), "unknown panic");
    }
}
