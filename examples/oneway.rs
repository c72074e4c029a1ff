//! Oneway calls: the server runs the handler and sends nothing back (rpcx sets the oneway bit
//! when the reply is nil).
//!
//! Run: `cargo run --example oneway`

use std::time::Duration;

use sextant::{CallOptions, Client, ClientOptions, Context, Server, ServiceError};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let (tx, mut rx) = mpsc::channel::<String>(8);
    let server = Server::new();
    server.register_fn("Log", "Write", move |_cx: Context, line: String| {
        let tx = tx.clone();
        async move {
            tx.send(line).await.ok();
            Ok::<_, ServiceError>(())
        }
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    let client = Client::connect(&address, ClientOptions::default()).await?;

    client
        .send_oneway("Log", "Write", "fire and forget", CallOptions::new())
        .await?;
    println!("client: sent, not waiting for any reply");
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("handler never ran");
    println!("server handler received: {:?}", got.unwrap_or_default());

    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
