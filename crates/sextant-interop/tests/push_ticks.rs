//! `interop-server --push N` against `interop-client --bidirectional`, in process: after the
//! first call on a connection the server pushes `N` well-formed `Push.Tick` messages, once per
//! connection.

use std::time::Duration;

use sextant::{Client, ClientOptions, SerializeType, Server};
use sextant_interop::{is_tick, Args, PushTicks, Reply};

#[tokio::test]
async fn the_interop_server_pushes_n_ticks_after_the_first_call() {
    let builder = Server::builder().plugin(PushTicks::new(50));
    let server = sextant_interop::interop_server_from(builder, None).unwrap();
    let addr = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let client = Client::connect(
        addr.as_str(),
        ClientOptions::default().server_message_capacity(128),
    )
    .await
    .unwrap();
    let mut pushes = client.server_messages().unwrap();
    let r: Reply = client
        .call("Arith", "Mul", &Args { a: 6, b: 7 })
        .await
        .unwrap();
    assert_eq!(r.c, 42);
    for i in 1..=50u32 {
        let m = tokio::time::timeout(Duration::from_secs(10), pushes.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(is_tick(&m), "{m:?}");
        assert_eq!(m.metadata().get("seq"), Some(i.to_string().as_str()));
        assert_eq!(m.serialize_type(), SerializeType::NONE);
    }
    // A second call on the same connection pushes nothing more.
    let _: Reply = client
        .call("Arith", "Add", &Args { a: 1, b: 2 })
        .await
        .unwrap();
    let more = tokio::time::timeout(Duration::from_millis(300), pushes.recv()).await;
    assert!(more.is_err(), "no more pushes expected: {more:?}");
    client.close();
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}
