//! The plugin API end to end: the order of the hooks, renaming before routing, unknown methods
//! through the hooks, replacing outcomes, panicking and never-returning plugins, context
//! extensions, tower layers, and the client's hooks (writable metadata, wrapped connections and
//! selectors).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sextant::discovery::Peer2PeerDiscovery;
use sextant::protocol::{Decoder, Limits, Message};
use sextant::selector::{Selector, ServerNode};
use sextant::transport::Stream;
use sextant::xclient::{CallInfo, ClientPlugin};
use sextant::{
    CallHooks, CallOptions, CallOutcome, Client, ClientOptions, Context, Error, PeerAddr,
    SerializeType, Server, ServerPlugin, ServiceError, Verdict, XClient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Log = Arc<Mutex<Vec<String>>>;

fn echo_server(builder: sextant::ServerBuilder) -> Server {
    let server = builder.build();
    server
        .register_fn("Svc", "Echo", |_cx: Context, s: String| async move {
            Ok::<_, ServiceError>(s)
        })
        .unwrap();
    server
        .register_fn("Svc", "Fail", |_cx: Context, _: String| async move {
            Err::<String, _>(ServiceError::new("it failed"))
        })
        .unwrap();
    server
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test step took too long")
}

/// Waits (bounded) until `cond` holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..400 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not reached within 4 s");
}

struct Recorder(Log);

impl Recorder {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
}

impl ServerPlugin for Recorder {
    fn on_conn_accept(&self, _: &PeerAddr) -> bool {
        self.push("on_conn_accept");
        true
    }
    fn wrap_conn(&self, _: &PeerAddr, stream: Stream) -> Stream {
        self.push("wrap_conn");
        stream
    }
    fn on_conn_close(&self, _: &PeerAddr) {
        self.push("on_conn_close");
    }
    fn on_heartbeat(&self, _: &PeerAddr, _: &Message) {
        self.push("on_heartbeat");
    }
    fn post_read_request(&self, req: &mut Message, _: &PeerAddr) -> Result<(), String> {
        self.push(format!("post_read_request {}", req.service_method));
        Ok(())
    }
    fn pre_call(&self, ctx: &Context, payload: &Bytes) -> Verdict {
        self.push(format!(
            "pre_call {} {}",
            ctx.service_method(),
            payload.len()
        ));
        Verdict::Continue
    }
    fn post_call(&self, ctx: &Context, outcome: &mut CallOutcome) {
        self.push(format!(
            "post_call {} routed={} error={:?}",
            ctx.service_method(),
            outcome.routed(),
            outcome.error()
        ));
    }
    fn pre_write_response(&self, _: &Context, o: &CallOutcome) {
        self.push(format!("pre_write_response {}", o.response_len() > 0));
    }
    fn post_write_response(&self, _: &Context, _: &CallOutcome, written: bool) {
        self.push(format!("post_write_response {written}"));
    }
}

#[tokio::test]
async fn hooks_run_in_the_documented_order() {
    let log: Log = Default::default();
    let server = echo_server(Server::builder().plugin(Recorder(log.clone())));
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let r: String = bounded(client.call("Svc", "Echo", "hi")).await.unwrap();
    assert_eq!(r, "hi");
    bounded(client.heartbeat()).await.unwrap();
    let e = bounded(client.call::<_, String>("Svc", "Nope", "x"))
        .await
        .unwrap_err();
    assert_eq!(
        e.as_service_error().unwrap().message(),
        "rpcx: can't find method Nope"
    );
    client.close();
    eventually("the connection closed", || {
        log.lock().unwrap().last().map(String::as_str) == Some("on_conn_close")
    })
    .await;
    let seen = log.lock().unwrap().clone();
    // The default codec is msgpack: "hi" is 3 bytes, "x" 2.
    assert_eq!(
        seen,
        vec![
            "on_conn_accept",
            "wrap_conn",
            "post_read_request Echo",
            "pre_call Echo 3",
            "post_call Echo routed=true error=None",
            "pre_write_response true",
            "post_write_response true",
            "on_heartbeat",
            "post_read_request Nope",
            "pre_call Nope 2",
            "post_call Nope routed=false error=Some(\"rpcx: can't find method Nope\")",
            "pre_write_response true",
            "post_write_response true",
            "on_conn_close",
        ]
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// A [`Recorder`] that declares only some per-call hooks.
struct Declared(Recorder, CallHooks);

impl ServerPlugin for Declared {
    fn call_hooks(&self) -> CallHooks {
        self.1
    }
    fn on_conn_accept(&self, peer: &PeerAddr) -> bool {
        self.0.on_conn_accept(peer)
    }
    fn on_conn_close(&self, peer: &PeerAddr) {
        self.0.on_conn_close(peer)
    }
    fn post_read_request(&self, req: &mut Message, peer: &PeerAddr) -> Result<(), String> {
        self.0.post_read_request(req, peer)
    }
    fn pre_call(&self, ctx: &Context, payload: &Bytes) -> Verdict {
        self.0.pre_call(ctx, payload)
    }
    fn post_call(&self, ctx: &Context, outcome: &mut CallOutcome) {
        self.0.post_call(ctx, outcome)
    }
    fn pre_write_response(&self, ctx: &Context, o: &CallOutcome) {
        self.0.pre_write_response(ctx, o)
    }
    fn post_write_response(&self, ctx: &Context, o: &CallOutcome, written: bool) {
        self.0.post_write_response(ctx, o, written)
    }
}

#[tokio::test]
async fn only_the_declared_call_hooks_are_called() {
    let (a, b): (Log, Log) = Default::default();
    let server = echo_server(
        Server::builder()
            .plugin(Declared(
                Recorder(a.clone()),
                CallHooks::PRE_CALL | CallHooks::POST_WRITE_RESPONSE,
            ))
            .plugin(Declared(Recorder(b.clone()), CallHooks::POST_READ_REQUEST)),
    );
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let r: String = bounded(client.call("Svc", "Echo", "hi")).await.unwrap();
    assert_eq!(r, "hi");
    bounded(client.call::<_, String>("Svc", "Fail", "x"))
        .await
        .unwrap_err();
    client.close();
    eventually("the connection closed", || {
        b.lock().unwrap().last().map(String::as_str) == Some("on_conn_close")
    })
    .await;
    // Connection hooks are always called; per-call ones only when declared.
    assert_eq!(
        *a.lock().unwrap(),
        [
            "on_conn_accept",
            "pre_call Echo 3",
            "post_write_response true",
            "pre_call Fail 2",
            "post_write_response true",
            "on_conn_close",
        ]
    );
    assert_eq!(
        *b.lock().unwrap(),
        [
            "on_conn_accept",
            "post_read_request Echo",
            "post_read_request Fail",
            "on_conn_close",
        ]
    );
    assert_eq!(
        format!("{:?}", CallHooks::PRE_CALL | CallHooks::POST_CALL),
        "{PRE_CALL, POST_CALL}"
    );
    assert!(CallHooks::ALL.contains(CallHooks::PRE_WRITE_RESPONSE));
    assert!(!CallHooks::NONE.intersects(CallHooks::ALL));
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// Renames `Svc.Alias` to `Svc.Echo` before routing.
struct Rename;

impl ServerPlugin for Rename {
    fn post_read_request(&self, req: &mut Message, _: &PeerAddr) -> Result<(), String> {
        if &*req.service_method == "Alias" {
            req.service_method = "Echo".into();
            req.metadata.insert("renamed", "yes");
        }
        if &*req.service_method == "Forbidden" {
            return Err("not here".into());
        }
        Ok(())
    }
}

/// Sends one msgpack request frame on a raw socket and reads the response frame.
async fn raw_call(addr: &str, path: &str, method: &str, arg: &str) -> Message {
    let mut sock = tokio::net::TcpStream::connect(addr.trim_start_matches("tcp@"))
        .await
        .unwrap();
    let mut m = Message::new();
    m.header.set_serialize_type(SerializeType::MSGPACK);
    m.header.set_seq(7);
    m.service_path = path.into();
    m.service_method = method.into();
    let mut payload = BytesMut::new();
    sextant::protocol::Encode::encode(
        arg,
        SerializeType::MSGPACK,
        &Default::default(),
        &mut payload,
    )
    .unwrap();
    m.payload = payload.freeze();
    let mut frame = BytesMut::new();
    m.encode(&mut frame).unwrap();
    sock.write_all(&frame).await.unwrap();
    let mut decoder = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    loop {
        if let Some(res) = decoder.decode(&mut buf).unwrap() {
            return res;
        }
        let n = bounded(sock.read_buf(&mut buf)).await.unwrap();
        assert!(n > 0, "connection closed before the response");
    }
}

#[tokio::test]
async fn post_read_request_renames_before_routing_and_the_response_keeps_the_sent_names() {
    let server = Server::builder().plugin(Rename).build();
    server
        .register_fn("Svc", "Echo", |cx: Context, s: String| async move {
            let tag = cx.metadata().get("renamed").unwrap_or("no").to_string();
            Ok::<_, ServiceError>(format!("{s}/{}/{tag}", cx.service_method()))
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let res = raw_call(&addr, "Svc", "Alias", "a").await;
    assert_eq!(&*res.service_path, "Svc");
    assert_eq!(&*res.service_method, "Alias");
    let text: String = sextant::protocol::Decode::decode(
        SerializeType::MSGPACK,
        &Default::default(),
        &res.payload,
    )
    .unwrap();
    assert_eq!(text, "a/Echo/yes");

    // The real name still works, and a refusal in post_read_request is the call's error.
    let client = Client::connect(addr.as_str(), ClientOptions::default())
        .await
        .unwrap();
    let r: String = bounded(client.call("Svc", "Echo", "b")).await.unwrap();
    assert_eq!(r, "b/Echo/no");
    let e = bounded(client.call::<_, String>("Svc", "Forbidden", "c"))
        .await
        .unwrap_err();
    assert_eq!(e.as_service_error().unwrap().message(), "not here");
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// Replaces outcomes: `Fail` succeeds with a fixed reply, `Echo` of "secret" fails.
struct Replace;

impl ServerPlugin for Replace {
    fn post_call(&self, ctx: &Context, outcome: &mut CallOutcome) {
        if ctx.service_method() == "Fail" {
            assert_eq!(outcome.error(), Some("it failed"));
            let mut b = BytesMut::new();
            sextant::protocol::Encode::encode(
                "replaced",
                ctx.serialize_type(),
                &Default::default(),
                &mut b,
            )
            .unwrap();
            outcome.set_reply(b.freeze());
        } else if outcome.is_ok() && ctx.metadata().get("deny") == Some("1") {
            outcome.set_error("denied after the fact");
        }
    }
}

#[tokio::test]
async fn post_call_replaces_the_reply_or_the_error() {
    let server = echo_server(Server::builder().plugin(Replace));
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let r: String = bounded(client.call("Svc", "Fail", "x")).await.unwrap();
    assert_eq!(r, "replaced");
    let e = bounded(client.call_with::<_, String>(
        "Svc",
        "Echo",
        "x",
        CallOptions::new().metadata("deny", "1"),
    ))
    .await
    .unwrap_err();
    assert_eq!(
        e.as_service_error().unwrap().message(),
        "denied after the fact"
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// Replaces every reply, and records the response metadata the write hooks see.
struct ReplaceAndWatch(Log);

impl ServerPlugin for ReplaceAndWatch {
    fn post_call(&self, ctx: &Context, outcome: &mut CallOutcome) {
        let mut b = BytesMut::new();
        sextant::protocol::Encode::encode(
            "replaced",
            ctx.serialize_type(),
            &Default::default(),
            &mut b,
        )
        .unwrap();
        outcome.set_reply(b.freeze());
    }
    fn pre_write_response(&self, ctx: &Context, _: &CallOutcome) {
        let m = ctx.response_metadata();
        self.0
            .lock()
            .unwrap()
            .push(format!("pre_write {:?}", m.get("handler")));
    }
    fn post_write_response(&self, ctx: &Context, _: &CallOutcome, _: bool) {
        let m = ctx.response_metadata();
        self.0
            .lock()
            .unwrap()
            .push(format!("post_write {:?}", m.get("handler")));
    }
}

#[tokio::test]
async fn write_hooks_and_replaced_replies_keep_the_handlers_response_metadata() {
    let log = Log::default();
    let server = Server::builder()
        .plugin(ReplaceAndWatch(log.clone()))
        .build();
    server
        .register_fn("Svc", "Meta", |cx: Context, s: String| async move {
            cx.set_response_metadata("handler", "set-it");
            Ok::<_, ServiceError>(s)
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let addr = addr.to_string();
    let r = raw_call(&addr, "Svc", "Meta", "x").await;
    assert_eq!(
        r.metadata.get("handler"),
        Some("set-it"),
        "the replaced reply keeps it"
    );
    let reply: String =
        sextant::protocol::Decode::decode(SerializeType::MSGPACK, &Default::default(), &r.payload)
            .unwrap();
    assert_eq!(reply, "replaced");
    eventually("both write hooks ran", || log.lock().unwrap().len() == 2).await;
    assert_eq!(
        *log.lock().unwrap(),
        ["pre_write Some(\"set-it\")", "post_write Some(\"set-it\")"]
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// Panics in the hook named by the request's `panic_in` metadata.
struct Panicky;

impl ServerPlugin for Panicky {
    fn post_read_request(&self, req: &mut Message, _: &PeerAddr) -> Result<(), String> {
        if req.metadata.get("panic_in") == Some("post_read_request") {
            panic!("boom in post_read_request");
        }
        Ok(())
    }
    fn pre_call(&self, ctx: &Context, _: &Bytes) -> Verdict {
        match ctx.metadata().get("panic_in") {
            Some("pre_call") => panic!("boom in pre_call"),
            Some("wait") => Verdict::Wait(Box::pin(async { panic!("boom in a wait") })),
            _ => Verdict::Continue,
        }
    }
    fn post_call(&self, ctx: &Context, _: &mut CallOutcome) {
        if ctx.metadata().get("panic_in") == Some("post_call") {
            panic!("boom in post_call");
        }
    }
    fn post_write_response(&self, ctx: &Context, _: &CallOutcome, _: bool) {
        if ctx.metadata().get("panic_in") == Some("post_write_response") {
            panic!("boom in post_write_response");
        }
    }
}

#[tokio::test]
async fn a_panicking_plugin_fails_the_call_and_nothing_else() {
    let server = echo_server(Server::builder().plugin(Panicky));
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    for (hook, text) in [
        ("post_read_request", "boom in post_read_request"),
        ("pre_call", "boom in pre_call"),
        ("wait", "boom in a wait"),
        ("post_call", "boom in post_call"),
    ] {
        let e = bounded(client.call_with::<_, String>(
            "Svc",
            "Echo",
            "x",
            CallOptions::new().metadata("panic_in", hook),
        ))
        .await
        .unwrap_err();
        assert_eq!(
            e.as_service_error().unwrap().message(),
            format!("rpcx: plugin panicked: {text}"),
            "{hook}"
        );
    }
    // After the response is written a panic can only be logged: the call succeeded.
    let r = bounded(client.call_with::<_, String>(
        "Svc",
        "Echo",
        "y",
        CallOptions::new().metadata("panic_in", "post_write_response"),
    ))
    .await
    .unwrap();
    assert_eq!(r.reply, "y");
    // The same connection goes on.
    let r: String = bounded(client.call("Svc", "Echo", "z")).await.unwrap();
    assert_eq!(r, "z");
    assert_eq!(server.stats().total_connections, 1);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// Never lets a call go on.
struct Never;

impl ServerPlugin for Never {
    fn pre_call(&self, ctx: &Context, _: &Bytes) -> Verdict {
        if ctx.service_method() == "Echo" {
            Verdict::Wait(Box::pin(futures::future::pending()))
        } else {
            Verdict::Continue
        }
    }
}

#[tokio::test]
async fn a_never_returning_plugin_is_bounded_by_the_deadline() {
    let server = echo_server(
        Server::builder()
            .plugin(Never)
            .max_plugin_wait(Duration::from_millis(300)),
    );
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    // With a deadline: the server answers with its deadline error once it passes (the client
    // waits a little longer than the deadline it sends, so the server's answer is what comes).
    let raw = client
        .send_raw(
            {
                let mut m = Message::new();
                m.header.set_serialize_type(SerializeType::MSGPACK);
                m.service_path = "Svc".into();
                m.service_method = "Echo".into();
                m.metadata.insert(sextant::keys::SERVER_TIMEOUT, "200");
                m.payload = Bytes::from_static(&[0xa1, b'x']);
                m
            },
            CallOptions::new().timeout(Duration::from_secs(10)),
        )
        .await;
    let e = raw.unwrap_err();
    let text = e.as_service_error().unwrap().message().to_string();
    assert!(
        text.contains("exceeded its deadline of 200 ms"),
        "got {text:?}"
    );
    // Without one: bounded by max_plugin_wait.
    let e = bounded(client.call::<_, String>("Svc", "Echo", "x"))
        .await
        .unwrap_err();
    assert_eq!(
        e.as_service_error().unwrap().message(),
        "rpcx: a plugin held call Svc.Echo longer than 300 ms"
    );
    // Other calls were never held up.
    let e = bounded(client.call::<_, String>("Svc", "Fail", "x"))
        .await
        .unwrap_err();
    assert_eq!(e.as_service_error().unwrap().message(), "it failed");
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// Leaves an identity in the context for the handler.
#[derive(Clone, Debug, PartialEq)]
struct Identity(String);

struct Authenticate;

impl ServerPlugin for Authenticate {
    fn pre_call(&self, ctx: &Context, _: &Bytes) -> Verdict {
        match ctx.metadata().get("user") {
            Some(u) => {
                ctx.insert_extension(Identity(u.to_string()));
                Verdict::Continue
            }
            None => Verdict::Reject("who are you?".into()),
        }
    }
    fn post_call(&self, ctx: &Context, outcome: &mut CallOutcome) {
        // The handler's own extension is visible here too.
        if let Some(n) = ctx.remove_extension::<u32>() {
            assert_eq!(n, 42);
            assert!(outcome.is_ok());
        }
    }
}

#[tokio::test]
async fn plugins_and_handlers_share_context_extensions() {
    let server = Server::builder().plugin(Authenticate).build();
    server
        .register_fn("Svc", "WhoAmI", |cx: Context, _: ()| async move {
            cx.insert_extension(42u32);
            let id = cx.extension::<Identity>().expect("set by the plugin");
            Ok::<_, ServiceError>(id.0)
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let r = bounded(client.call_with::<_, String>(
        "Svc",
        "WhoAmI",
        &(),
        CallOptions::new().metadata("user", "ana"),
    ))
    .await
    .unwrap();
    assert_eq!(r.reply, "ana");
    let e = bounded(client.call::<_, String>("Svc", "WhoAmI", &()))
        .await
        .unwrap_err();
    assert_eq!(e.as_service_error().unwrap().message(), "who are you?");
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn tower_layers_wrap_every_handler() {
    use sextant::server::{CallRequest, CallResponse, HandlerService};
    use tower::Service;

    #[derive(Clone)]
    struct Gate<S> {
        inner: S,
        seen: Arc<AtomicUsize>,
    }
    impl<S> Service<CallRequest> for Gate<S>
    where
        S: Service<CallRequest, Response = CallResponse> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        type Response = CallResponse;
        type Error = S::Error;
        type Future = futures::future::BoxFuture<'static, Result<CallResponse, S::Error>>;
        fn poll_ready(
            &mut self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), S::Error>> {
            self.inner.poll_ready(cx)
        }
        fn call(&mut self, req: CallRequest) -> Self::Future {
            self.seen.fetch_add(1, Ordering::SeqCst);
            if req.context().metadata().get("block") == Some("1") {
                let r = CallResponse::error_reply(&req, "blocked by a layer");
                return Box::pin(async move { Ok(r) });
            }
            Box::pin(self.inner.call(req))
        }
    }
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    let layer = tower::layer::layer_fn(move |inner: HandlerService| Gate {
        inner,
        seen: seen2.clone(),
    });
    let server = Server::builder()
        .layer(layer)
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
            200,
        )))
        .build();
    server
        .register_fn("Svc", "Echo", |_cx: Context, s: String| async move {
            Ok::<_, ServiceError>(s)
        })
        .unwrap();
    server
        .register_fn("Svc", "Slow", |_cx: Context, s: String| async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, ServiceError>(s)
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let r: String = bounded(client.call("Svc", "Echo", "x")).await.unwrap();
    assert_eq!(r, "x");
    let e = bounded(client.call_with::<_, String>(
        "Svc",
        "Echo",
        "x",
        CallOptions::new().metadata("block", "1"),
    ))
    .await
    .unwrap_err();
    assert_eq!(
        e.as_service_error().unwrap().message(),
        "blocked by a layer"
    );
    // tower's Timeout's error becomes the call's error text.
    let e = bounded(client.call::<_, String>("Svc", "Slow", "x"))
        .await
        .unwrap_err();
    assert_eq!(e.as_service_error().unwrap().message(), "request timed out");
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// Counts the bytes a wrapped server or client stream reads.
struct CountingIo<T> {
    inner: T,
    read: Arc<AtomicU64>,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for CountingIo<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for CountingIo<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

struct WrapServer(Arc<AtomicU64>);

impl ServerPlugin for WrapServer {
    fn wrap_conn(&self, _: &PeerAddr, stream: Stream) -> Stream {
        Stream::from_io(CountingIo {
            inner: stream,
            read: self.0.clone(),
        })
    }
}

/// What post_call saw: the attempt, the request id in the metadata, the error.
type PostCall = (u32, Option<String>, Option<String>);

/// The client side: metadata written in pre_call reaches the server, wrap_conn wraps, a
/// panicking pre_call fails the call and the XClient goes on.
#[derive(Default)]
struct ClientSide {
    read: Arc<AtomicU64>,
    wrapped: AtomicUsize,
    post: Mutex<Vec<PostCall>>,
}

struct ClientHooks(Arc<ClientSide>);

impl ClientPlugin for ClientHooks {
    fn pre_call(&self, call: &mut CallInfo<'_>) -> sextant::Result<()> {
        if call.metadata.get("panic") == Some("1") {
            panic!("client boom");
        }
        call.metadata.insert("request-id", "r-1");
        Ok(())
    }
    fn post_call(&self, call: &CallInfo<'_>, error: Option<&Error>, _: Duration) {
        self.0.post.lock().unwrap().push((
            call.attempt,
            call.metadata.get("request-id").map(str::to_string),
            error.map(|e| e.to_string()),
        ));
    }
    fn wrap_conn(&self, _: &str, stream: Stream) -> Stream {
        self.0.wrapped.fetch_add(1, Ordering::SeqCst);
        Stream::from_io(CountingIo {
            inner: stream,
            read: self.0.read.clone(),
        })
    }
}

/// Records the servers a wrapped selector was asked about, and delegates.
struct Recording {
    inner: Arc<dyn Selector>,
    picks: Arc<AtomicUsize>,
}

impl Selector for Recording {
    fn select(&self, key: &sextant::selector::SelectContext<'_>) -> Option<Arc<str>> {
        self.picks.fetch_add(1, Ordering::SeqCst);
        self.inner.select(key)
    }
    fn update_servers(&self, servers: &[ServerNode]) {
        self.inner.update_servers(servers)
    }
    fn uses_call_key(&self) -> bool {
        self.inner.uses_call_key()
    }
    fn name(&self) -> &str {
        "recording"
    }
}

#[tokio::test]
async fn client_hooks_write_metadata_wrap_connections_and_selectors() {
    let server_read = Arc::new(AtomicU64::new(0));
    let server = Server::builder()
        .plugin(WrapServer(server_read.clone()))
        .build();
    server
        .register_fn("Svc", "Rid", |cx: Context, _: ()| async move {
            Ok::<_, ServiceError>(cx.metadata().get("request-id").unwrap_or("").to_string())
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let side = Arc::new(ClientSide::default());
    let picks = Arc::new(AtomicUsize::new(0));
    let picks2 = picks.clone();
    let x = XClient::builder("Svc")
        .discovery(Peer2PeerDiscovery::new(&addr, "").unwrap())
        .plugin(ClientHooks(side.clone()))
        .wrap_selector(move |inner| {
            Arc::new(Recording {
                inner,
                picks: picks2.clone(),
            })
        })
        .build()
        .unwrap();
    let r: String = bounded(x.call("Rid", &())).await.unwrap();
    assert_eq!(r, "r-1");
    let e =
        bounded(x.call_with::<_, String>("Rid", &(), CallOptions::new().metadata("panic", "1")))
            .await
            .unwrap_err();
    assert!(e.to_string().contains("client plugin panicked"), "{e}");
    let r: String = bounded(x.call("Rid", &())).await.unwrap();
    assert_eq!(r, "r-1");
    assert_eq!(side.wrapped.load(Ordering::SeqCst), 1);
    assert!(side.read.load(Ordering::Relaxed) > 0);
    assert!(server_read.load(Ordering::Relaxed) > 0);
    assert!(picks.load(Ordering::SeqCst) >= 2);
    let post = side.post.lock().unwrap().clone();
    // The refused attempt ends for the plugin whose pre_call ran, with the refusal.
    let refusal = "invalid configuration: a client plugin panicked before the call Svc.Rid";
    assert_eq!(
        post,
        vec![
            (0, Some("r-1".into()), None),
            (0, None, Some(refusal.into())),
            (0, Some("r-1".into()), None)
        ]
    );
    x.close();
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn a_call_the_caller_drops_still_ends_for_the_client_plugins() {
    let server = Server::builder().build();
    server
        .register_fn("Svc", "Slow", |_cx: Context, _: ()| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, ServiceError>(String::new())
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let side = Arc::new(ClientSide::default());
    let x = XClient::builder("Svc")
        .discovery(Peer2PeerDiscovery::new(&addr, "").unwrap())
        .plugin(ClientHooks(side.clone()))
        .build()
        .unwrap();
    // The caller gives up (its own timeout, not the call's deadline): the future is dropped.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(200), x.call::<_, String>("Slow", &())).await;
    assert!(gave_up.is_err(), "the slow call should still be running");
    let post = side.post.lock().unwrap().clone();
    assert_eq!(
        post,
        vec![(0, Some("r-1".into()), Some("call cancelled".into()))],
        "post_call ran once, from the drop, with Error::Canceled"
    );
    x.close();
    let _ = server.shutdown(Duration::from_millis(100)).await;
}

/// Refuses connections by panicking.
struct PanicOnAccept(AtomicUsize);

impl ServerPlugin for PanicOnAccept {
    fn on_conn_accept(&self, _: &PeerAddr) -> bool {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("accept boom");
        }
        true
    }
}

#[tokio::test]
async fn a_panicking_connection_hook_refuses_that_connection_only() {
    let server = echo_server(Server::builder().plugin(PanicOnAccept(AtomicUsize::new(0))));
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let first = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    assert!(bounded(first.call::<_, String>("Svc", "Echo", "x"))
        .await
        .is_err());
    let second = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let r: String = bounded(second.call("Svc", "Echo", "x")).await.unwrap();
    assert_eq!(r, "x");
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn stats_count_bytes_and_pushes() {
    let server = Server::new();
    server
        .register_fn("Svc", "Push", |cx: Context, _: ()| async move {
            cx.conn()
                .unwrap()
                .send_message("Svc", "Tick", &Default::default(), b"tick")
                .map_err(|e| ServiceError::new(e.to_string()))?;
            Ok::<_, ServiceError>(())
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default().server_message_capacity(8))
        .await
        .unwrap();
    bounded(client.call::<_, ()>("Svc", "Push", &()))
        .await
        .unwrap();
    let s = server.stats();
    assert_eq!(s.pushes, 1);
    assert!(s.bytes_in > 0);
    eventually("the reply and the push are counted as written", || {
        server.stats().bytes_out >= server.stats().bytes_in
    })
    .await;
    client.close();
    eventually("the connection closed", || server.stats().connections == 0).await;
    // Closed connections still count.
    let after = server.stats();
    assert_eq!(after.pushes, 1);
    assert!(after.bytes_in >= s.bytes_in);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// Counts the calls whose hooks ran to the end.
struct Ended(Arc<AtomicUsize>);

impl ServerPlugin for Ended {
    fn post_write_response(&self, _: &Context, _: &CallOutcome, _: bool) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_http_call_whose_client_left_still_runs_every_hook() {
    let ended = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let server = Server::builder().plugin(Ended(ended.clone())).build();
    let h = handled.clone();
    server
        .register_fn("Svc", "Slow", move |_cx: Context, s: String| {
            let h = h.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                h.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ServiceError>(s)
            }
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let mut sock = tokio::net::TcpStream::connect(addr.trim_start_matches("tcp@"))
        .await
        .unwrap();
    let body = "\"x\"";
    let req = format!(
        "POST / HTTP/1.1\r\nHost: sextant\r\nX-RPCX-ServicePath: Svc\r\n\
         X-RPCX-ServiceMethod: Slow\r\nX-RPCX-SerializeType: 1\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(sock);
    eventually("the handler finished", || {
        handled.load(Ordering::SeqCst) == 1
    })
    .await;
    eventually("post_write_response ran", || {
        ended.load(Ordering::SeqCst) == 1
    })
    .await;
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}
