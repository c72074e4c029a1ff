//! One call, from a decoded request to its response frame: the deadline from
//! `__ServerTimeout`, routing, decompression, the handler (under the deadline, panics caught),
//! and, when plugins are installed, their per-call hooks around all of it (see
//! [`plugin`](super::plugin) for the order).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use sextant_protocol::compress::decompress;
use sextant_protocol::{keys, Message};
use tracing::Instrument;

use super::handler::{error_outcome, raw_reply_outcome, Handler, Outcome};
use super::plugin::{CallHooks, CallOutcome, PluginSet, Verdict};
use super::ServerInner;
use crate::context::{Context, Origin};

pub(crate) type Plugins = Arc<PluginSet>;

/// A served request: the response frame (`None` when nothing is to be sent: oneway), and the
/// plugins' write hooks to run once it has been handed to the writer.
pub(crate) struct Processed {
    pub(crate) frame: Option<BytesMut>,
    pub(crate) after: Option<AfterWrite>,
}

/// The plugins' `post_write_response`, run by whoever queues the frame.
pub(crate) struct AfterWrite {
    plugins: Plugins,
    ctx: Context,
    outcome: CallOutcome,
}

impl AfterWrite {
    /// Runs the hooks; `written` tells whether the frame reached the connection's writer.
    pub(crate) fn done(self, written: bool) {
        for (_, p) in self.plugins.with_hook(CallHooks::POST_WRITE_RESPONSE) {
            let r = guard(|| p.post_write_response(&self.ctx, &self.outcome, written));
            if let Err(text) = r {
                log_panic("post_write_response", &self.ctx, &text);
            }
        }
    }
}

/// Serves one request (the HTTP side's entry; rpcx connections pick their path when they spawn
/// the call's task, so that a call without plugins carries none of the plugin path's state).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) async fn process(server: &Arc<ServerInner>, msg: Message, origin: Origin) -> Processed {
    match plugins_of(server) {
        None => Processed {
            frame: process_plain(server, msg, origin).await,
            after: None,
        },
        Some(plugins) => Box::pin(process_with_plugins(server, plugins, msg, origin)).await,
    }
}

/// The server's plugins, if it has any.
pub(crate) fn plugins_of(server: &ServerInner) -> Option<Plugins> {
    let plugins = server.plugins();
    (!plugins.is_empty()).then(|| arc_swap::Guard::into_inner(plugins))
}

/// The path with no plugin: no hook, nothing kept for after the write.
pub(crate) async fn process_plain(
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
    let payload = match decompress_payload(server, &ctx, payload) {
        Ok(p) => p,
        Err(o) => return o.frame,
    };
    run_handler(server, &ctx, handler, payload, timeout)
        .await
        .frame
}

/// The path with plugins: every hook, in the documented order, each guarded against panics.
///
/// Everything before and after the handler is synchronous, so the future awaits only the
/// handler (as the plain path does); a plugin's wait goes to a boxed future of its own.
pub(crate) async fn process_with_plugins(
    server: &Arc<ServerInner>,
    plugins: Plugins,
    msg: Message,
    origin: Origin,
) -> Processed {
    let started = Instant::now();
    let (ctx, routed, step) = prepare(server, &plugins, msg, origin, started);
    // Taken apart before any await, so that the future holds no more than it needs.
    let Run {
        handler,
        payload,
        timeout,
    } = match step {
        Step::Run(run) => run,
        Step::Done(o) => return finish(plugins, ctx, o, started, routed),
        Step::Wait(pending) => {
            let o = Box::pin(pending.finish(server, &plugins, &ctx)).await;
            return finish(plugins, ctx, o, started, routed);
        }
    };
    let outcome = match ctx.extension::<tracing::Span>() {
        // A span a plugin left in the context covers the handler (boxed, so that calls
        // without one carry none of its state).
        Some(span) => {
            Box::pin(run_handler(server, &ctx, handler, payload, timeout).instrument(span)).await
        }
        None => run_handler(server, &ctx, handler, payload, timeout).await,
    };
    finish(plugins, ctx, outcome, started, routed)
}

/// Whether a plugin changed a name: the same bytes (the usual case) need no comparison.
fn changed(now: &sextant_protocol::ByteStr, sent: &sextant_protocol::ByteStr) -> bool {
    let (a, b): (&str, &str) = (now, sent);
    !(a.as_ptr() == b.as_ptr() && a.len() == b.len()) && a != b
}

/// What is left to do after [`prepare`].
enum Step {
    /// The call was refused or failed: its outcome.
    Done(Outcome),
    /// Run the handler.
    Run(Run),
    /// A plugin's `pre_call` asked to wait (boxed: rare, and it keeps the call's future small).
    Wait(Box<Pending>),
}

struct Run {
    handler: Arc<dyn Handler>,
    payload: Bytes,
    timeout: Option<Duration>,
}

/// A call held by a plugin's wait: the wait, the plugins whose `pre_call` is still to run, and
/// what running the handler takes.
struct Pending {
    wait: futures::future::BoxFuture<'static, Result<(), String>>,
    next: usize,
    handler: Result<Arc<dyn Handler>, String>,
    payload: Bytes,
    timeout: Option<Duration>,
}

impl Pending {
    async fn finish(
        self: Box<Self>,
        server: &Arc<ServerInner>,
        plugins: &Plugins,
        ctx: &Context,
    ) -> Outcome {
        let Pending {
            mut wait,
            mut next,
            handler,
            payload,
            timeout,
        } = *self;
        loop {
            if let Err(o) = wait_for(server, ctx, wait, timeout).await {
                return o;
            }
            match pre_calls(plugins, next, ctx, &payload) {
                PreCalls::Passed => break,
                PreCalls::Refused(o) => return o,
                PreCalls::Wait(w, n) => {
                    wait = w;
                    next = n;
                }
            }
        }
        let handler = match handler {
            Ok(h) => h,
            Err(text) => return error_outcome(ctx, text),
        };
        match ctx.extension::<tracing::Span>() {
            Some(span) => {
                run_handler(server, ctx, handler, payload, timeout)
                    .instrument(span)
                    .await
            }
            None => run_handler(server, ctx, handler, payload, timeout).await,
        }
    }
}

/// The hooks and steps before the handler: `post_read_request`, the context, routing,
/// decompression, `pre_call`.
fn prepare(
    server: &Arc<ServerInner>,
    plugins: &Plugins,
    mut msg: Message,
    origin: Origin,
    started: Instant,
) -> (Context, bool, Step) {
    let mut refused = None;
    // The names as sent, kept only when a plugin may rename the call.
    let mut sent = None;
    if plugins.has(CallHooks::POST_READ_REQUEST) {
        sent = Some((msg.service_path.clone(), msg.service_method.clone()));
        let peer = origin.peer_addr();
        for (_, p) in plugins.with_hook(CallHooks::POST_READ_REQUEST) {
            match guard(|| p.post_read_request(&mut msg, peer)) {
                Ok(Ok(())) => {}
                Ok(Err(text)) => {
                    refused = Some(text);
                    break;
                }
                Err(panic) => {
                    tracing::error!(hook = "post_read_request", service = %msg.service_path, method = %msg.service_method, panic = %panic, "plugin panicked");
                    refused = Some(format!("rpcx: plugin panicked: {panic}"));
                    break;
                }
            }
        }
    }
    let sent = sent.filter(|(path, method)| {
        changed(&msg.service_path, path) || changed(&msg.service_method, method)
    });
    let Message {
        header,
        service_path,
        service_method,
        metadata,
        payload,
    } = msg;
    let timeout = server_timeout(metadata.get(keys::SERVER_TIMEOUT));
    let deadline = timeout.map(|t| started + t);
    let ctx = Context::new(
        header,
        service_path,
        service_method,
        metadata,
        origin,
        deadline,
    )
    .with_reply_names(sent)
    .keeping_response_metadata();
    server.calls.fetch_add(1, Ordering::Relaxed);
    if let Some(text) = refused {
        let o = error_outcome(&ctx, text);
        return (ctx, false, Step::Done(o));
    }
    let handler = server
        .router
        .load()
        .lookup(ctx.service_path(), ctx.service_method());
    let routed = handler.is_ok();
    let payload = match decompress_payload(server, &ctx, payload) {
        Ok(p) => p,
        Err(o) => return (ctx, routed, Step::Done(o)),
    };
    let step = match pre_calls(plugins, 0, &ctx, &payload) {
        PreCalls::Refused(o) => Step::Done(o),
        PreCalls::Wait(wait, next) => Step::Wait(Box::new(Pending {
            wait,
            next,
            handler,
            payload,
            timeout,
        })),
        PreCalls::Passed => match handler {
            Ok(handler) => Step::Run(Run {
                handler,
                payload,
                timeout,
            }),
            Err(text) => Step::Done(error_outcome(&ctx, text)),
        },
    };
    (ctx, routed, step)
}

enum PreCalls {
    Passed,
    Refused(Outcome),
    /// Plugin `n - 1` asked to wait; the plugins from `n` on are still to be asked.
    Wait(
        futures::future::BoxFuture<'static, Result<(), String>>,
        usize,
    ),
}

/// The plugins' `pre_call`, from plugin `from` on, until one refuses or asks to wait.
fn pre_calls(plugins: &Plugins, from: usize, ctx: &Context, payload: &Bytes) -> PreCalls {
    if !plugins.has(CallHooks::PRE_CALL) {
        return PreCalls::Passed;
    }
    for (i, p) in plugins.with_hook(CallHooks::PRE_CALL) {
        if i < from {
            continue;
        }
        match guard(|| p.pre_call(ctx, payload)) {
            Ok(Verdict::Continue) => {}
            Ok(Verdict::Reject(text)) => return PreCalls::Refused(error_outcome(ctx, text)),
            Ok(Verdict::Wait(wait)) => return PreCalls::Wait(wait, i + 1),
            Err(panic) => {
                log_panic("pre_call", ctx, &panic);
                let text = format!("rpcx: plugin panicked: {panic}");
                return PreCalls::Refused(error_outcome(ctx, text));
            }
        }
    }
    PreCalls::Passed
}

/// The hooks after the handler: `post_call` (and a replaced outcome), `pre_write_response`.
fn finish(
    plugins: Plugins,
    ctx: Context,
    outcome: Outcome,
    started: Instant,
    routed: bool,
) -> Processed {
    let Outcome { mut frame, error } = outcome;
    let mut out = CallOutcome {
        error,
        response_len: frame.as_ref().map_or(0, |f| f.len()),
        elapsed: started.elapsed(),
        routed,
        replaced: None,
    };
    for (_, p) in plugins.with_hook(CallHooks::POST_CALL) {
        if let Err(panic) = guard(|| p.post_call(&ctx, &mut out)) {
            log_panic("post_call", &ctx, &panic);
            out.set_error(format!("rpcx: plugin panicked: {panic}"));
        }
    }
    if let Some(replacement) = out.replaced.take() {
        let o = match replacement {
            Ok(_) if ctx.is_oneway() => Outcome {
                frame: None,
                error: None,
            },
            Ok(payload) => raw_reply_outcome(&ctx, &payload),
            Err(text) => error_outcome(&ctx, text),
        };
        frame = o.frame;
        out.error = o.error;
        out.response_len = frame.as_ref().map_or(0, |f| f.len());
    }
    for (_, p) in plugins.with_hook(CallHooks::PRE_WRITE_RESPONSE) {
        if let Err(panic) = guard(|| p.pre_write_response(&ctx, &out)) {
            log_panic("pre_write_response", &ctx, &panic);
        }
    }
    let after = plugins
        .has(CallHooks::POST_WRITE_RESPONSE)
        .then(|| AfterWrite {
            plugins,
            ctx,
            outcome: out,
        });
    Processed { frame, after }
}

/// A plugin's [`Verdict::Wait`], bounded by the call's deadline or by `max_plugin_wait`.
async fn wait_for(
    server: &Arc<ServerInner>,
    ctx: &Context,
    wait: futures::future::BoxFuture<'static, Result<(), String>>,
    timeout: Option<Duration>,
) -> Result<(), Outcome> {
    let max = server.options.max_plugin_wait;
    let bound = ctx.deadline().unwrap_or_else(|| Instant::now() + max);
    let waited = tokio::time::timeout_at(bound.into(), AssertUnwindSafe(wait).catch_unwind()).await;
    match waited {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(text))) => Err(error_outcome(ctx, text)),
        Ok(Err(panic)) => {
            let panic = panic_message(&panic);
            log_panic("pre_call", ctx, &panic);
            Err(error_outcome(
                ctx,
                format!("rpcx: plugin panicked: {panic}"),
            ))
        }
        Err(_) if ctx.deadline().is_some() => Err(error_outcome(ctx, deadline_text(ctx, timeout))),
        Err(_) => {
            let text = format!(
                "rpcx: a plugin held call {}.{} longer than {} ms",
                ctx.service_path(),
                ctx.service_method(),
                max.as_millis()
            );
            Err(error_outcome(ctx, text))
        }
    }
}

/// Runs a hook, turning a panic into its message.
fn guard<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(&p))
}

fn log_panic(hook: &str, ctx: &Context, panic: &str) {
    tracing::error!(
        hook,
        service = ctx.service_path(),
        method = ctx.service_method(),
        panic,
        "plugin panicked"
    );
}

/// The deadline a request carries: `__ServerTimeout` in milliseconds (negative means none left).
fn server_timeout(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|ms| Duration::from_millis(ms.max(0) as u64))
}

fn deadline_text(ctx: &Context, timeout: Option<Duration>) -> String {
    let ms = timeout.unwrap_or_default().as_millis();
    format!(
        "rpcx: call {}.{} exceeded its deadline of {ms} ms",
        ctx.service_path(),
        ctx.service_method()
    )
}

/// Decompresses the argument, within the server's limit.
fn decompress_payload(
    server: &Arc<ServerInner>,
    ctx: &Context,
    payload: Bytes,
) -> Result<Bytes, Outcome> {
    let limit = server.options.limits.max_decompressed_size;
    decompress(ctx.header().compress_type(), payload, limit)
        .map_err(|e| error_outcome(ctx, e.to_string()))
}

/// Runs the handler under the call's deadline, catching panics.
async fn run_handler(
    server: &Arc<ServerInner>,
    ctx: &Context,
    handler: Arc<dyn Handler>,
    payload: Bytes,
    timeout: Option<Duration>,
) -> Outcome {
    let env = server.env.clone();
    let ctx2 = ctx.clone();
    // The handler is created inside the guarded future, so a panic while decoding or in the
    // handler's synchronous prologue is caught as well.
    let call =
        AssertUnwindSafe(async move { handler.call(ctx2, payload, &env).await }).catch_unwind();
    let outcome = match ctx.deadline() {
        Some(d) => match tokio::time::timeout_at(d.into(), call).await {
            Ok(r) => r,
            Err(_) => return error_outcome(ctx, deadline_text(ctx, timeout)),
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

pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
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
