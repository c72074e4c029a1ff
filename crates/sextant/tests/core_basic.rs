//! Server and client end to end on loopback: registration styles, codecs, metadata, errors.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::{
    CallOptions, Client, ClientOptions, Context, Error, RegisterOptions, SerializeType, Server,
    ServiceError,
};

#[derive(Serialize, Deserialize, Default, Debug, Clone, Copy)]
#[serde(rename_all = "PascalCase")]
struct Args {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    c: i64,
}

struct Arith;

#[sextant::service]
impl Arith {
    async fn mul(&self, _cx: Context, args: Args) -> Result<Reply, ServiceError> {
        Ok(Reply { c: args.a * args.b })
    }

    async fn add(&self, _cx: Context, args: Args) -> Result<Reply, ServiceError> {
        Ok(Reply { c: args.a + args.b })
    }

    async fn div(&self, _cx: Context, args: Args) -> Result<Reply, ServiceError> {
        if args.b == 0 {
            return Err("divide by zero".into());
        }
        Ok(Reply { c: args.a / args.b })
    }

    async fn echo_meta(&self, cx: Context, _args: Args) -> Result<Reply, ServiceError> {
        let v = cx.metadata().get("trace").unwrap_or("none").to_string();
        cx.set_response_metadata("echo", v);
        Ok(Reply { c: 1 })
    }

    #[sextant(name = "Sleep")]
    async fn slow(&self, _cx: Context, ms: u64) -> Result<u64, ServiceError> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }

    async fn boom(&self, _cx: Context, _a: ()) -> Result<(), ServiceError> {
        panic!("kaboom")
    }
}

async fn start() -> (Server, Client) {
    let server = Server::new();
    server.register(Arith).unwrap();
    server
        .register_fn("ArithFn", "Mul", |_cx: Context, a: Args| async move {
            Ok::<_, ServiceError>(Reply { c: a.a * a.b })
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    (server, client)
}

#[tokio::test]
async fn quickstart_mul() {
    let (server, client) = start().await;
    let r: Reply = client
        .call("Arith", "Mul", &Args { a: 10, b: 20 })
        .await
        .unwrap();
    assert_eq!(r.c, 200);
    let r: Reply = client
        .call("ArithFn", "Mul", &Args { a: 3, b: 4 })
        .await
        .unwrap();
    assert_eq!(r.c, 12);
    client.close();
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn json_codec_and_metadata() {
    let (server, client) = start().await;
    let opts = CallOptions::new()
        .serialize_type(SerializeType::JSON)
        .metadata("trace", "abc123");
    let resp = client
        .call_with::<_, Reply>("Arith", "EchoMeta", &Args { a: 1, b: 2 }, opts)
        .await
        .unwrap();
    assert_eq!(resp.reply.c, 1);
    assert_eq!(resp.metadata.get("echo"), Some("abc123"));
    assert_eq!(
        resp.metadata.get("__ServerAddress"),
        Some(client.address().to_string().as_str())
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn errors_are_typed() {
    let (server, client) = start().await;
    let e = client
        .call::<_, Reply>("Arith", "Div", &Args { a: 1, b: 0 })
        .await
        .unwrap_err();
    assert_eq!(e.as_service_error().unwrap().message(), "divide by zero");
    assert!(!e.is_retryable());
    let e = client
        .call::<_, Reply>("Nope", "Mul", &Args::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.as_service_error().unwrap().message(),
        "rpcx: can't find service Nope"
    );
    let e = client
        .call::<_, Reply>("Arith", "Foo", &Args::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.as_service_error().unwrap().message(),
        "rpcx: can't find method Foo"
    );
    let e = client
        .call::<_, ()>("Arith", "Boom", &())
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().message().contains("kaboom"),
        "{e}"
    );
    // The connection survives all of that.
    let r: Reply = client
        .call("Arith", "Add", &Args { a: 1, b: 2 })
        .await
        .unwrap();
    assert_eq!(r.c, 3);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn deadline_is_enforced_on_both_sides() {
    let (server, client) = start().await;
    let e = client
        .call_with::<_, u64>(
            "Arith",
            "Sleep",
            &10_000u64,
            CallOptions::new().timeout(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DeadlineExceeded), "{e}");
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn concurrent_calls_answer_out_of_order() {
    let (server, client) = start().await;
    let slow = client
        .go::<_, u64>("Arith", "Sleep", &300u64, CallOptions::new())
        .await
        .unwrap();
    let fast = client
        .go::<_, u64>("Arith", "Sleep", &1u64, CallOptions::new())
        .await
        .unwrap();
    let first = tokio::select! {
        r = fast => r.unwrap().reply,
        _ = tokio::time::sleep(Duration::from_secs(5)) => panic!("fast call stuck behind slow one"),
    };
    assert_eq!(first, 1);
    assert_eq!(slow.await.unwrap().reply, 300);
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn register_only_chosen_methods_and_unregister() {
    let server = Server::new();
    server
        .register_with(
            Arith,
            RegisterOptions::default().name("OnlyMul").methods(["Mul"]),
        )
        .unwrap();
    assert_eq!(server.method_names("OnlyMul"), vec!["Mul".to_string()]);
    assert!(server
        .register_with(Arith, RegisterOptions::default().methods(["Nope"]))
        .is_err());
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let e = client
        .call::<_, Reply>("OnlyMul", "Add", &Args::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.as_service_error().unwrap().message(),
        "rpcx: can't find method Add"
    );
    server.unregister("OnlyMul").unwrap();
    let e = client
        .call::<_, Reply>("OnlyMul", "Mul", &Args::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.as_service_error().unwrap().message(),
        "rpcx: can't find service OnlyMul"
    );
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn an_error_arriving_after_the_deadline_is_the_deadline() {
    // The handler fails at about the moment the caller's deadline passes: whichever comes
    // first on the wire, the caller sees `DeadlineExceeded`, never the late service error.
    let server = Server::new();
    server
        .register_fn("Late", "Fail", |_cx: Context, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Err::<(), _>(ServiceError::new("too late"))
        })
        .unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap();
    let client = Client::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    for ms in [100u64, 101, 102, 103, 104, 105] {
        let e = client
            .call_with::<_, ()>(
                "Late",
                "Fail",
                &(ms + 1),
                CallOptions::new().timeout(Duration::from_millis(ms)),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::DeadlineExceeded), "{ms} ms: {e}");
    }
    server.shutdown(Duration::from_secs(2)).await.unwrap();
}
