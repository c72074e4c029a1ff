//! Metadata both ways: the client sends pairs with a call, the handler reads them and sets pairs
//! on the response (rpcx's `share.ReqMetaDataKey` / `share.ResMetaDataKey`).
//!
//! Run: `cargo run --example metadata`

use std::time::Duration;

use sextant::{CallOptions, Client, ClientOptions, Context, Server, ServiceError};
use sextant_interop::{Args, Reply};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let server = Server::new();
    server.register_fn("Arith", "Mul", |cx: Context, args: Args| async move {
        println!("server got metadata: {:?}", cx.metadata());
        cx.set_response_metadata("echo", cx.metadata().get("aaa").unwrap_or("").to_string());
        cx.set_response_metadata("served-by", "sextant");
        Ok::<_, ServiceError>(Reply { c: args.a * args.b })
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?;

    let client = Client::connect(&address, ClientOptions::default()).await?;
    let opts = CallOptions::new().metadata("aaa", "from client");
    let resp = client
        .call_with::<_, Reply>("Arith", "Mul", &Args { a: 10, b: 20 }, opts)
        .await?;
    println!(
        "reply: {}, response metadata: {:?}",
        resp.reply.c, resp.metadata
    );
    assert_eq!(resp.metadata.get("echo"), Some("from client"));

    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
