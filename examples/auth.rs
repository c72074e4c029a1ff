//! Auth: the server's auth function checks the token the client sends as `__AUTH`; a wrong token
//! gets an error and the connection is closed, as in rpcx.
//!
//! Run: `cargo run --example auth`

use std::time::Duration;

use sextant::{Client, ClientOptions, Server};
use sextant_interop::{Args, Reply};

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let server = Server::builder()
        .auth_fn(|req, token| {
            println!(
                "auth: {}.{} with token {token:?}",
                req.service_path, req.service_method
            );
            let ok = token == "bearer tGzv3JOkF0XG5Qx2TlKWIA";
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("invalid token".to_string())
                }
            }
        })
        .build();
    sextant_interop::register_all(&server)?;
    let address = server.start("tcp@127.0.0.1:0").await?;

    let good = Client::connect(
        &address,
        ClientOptions::default().auth_token("bearer tGzv3JOkF0XG5Qx2TlKWIA"),
    )
    .await?;
    let r: Reply = good.call("Arith", "Mul", &Args { a: 10, b: 20 }).await?;
    println!("with the right token: 10 * 20 = {}", r.c);

    let bad = Client::connect(&address, ClientOptions::default().auth_token("wrong")).await?;
    let err = bad
        .call::<_, Reply>("Arith", "Mul", &Args { a: 10, b: 20 })
        .await
        .unwrap_err();
    println!("with a wrong token: {err}");
    bad.closed().await;
    println!("and the server closed that connection");

    good.close();
    server.shutdown(Duration::from_secs(1)).await
}
