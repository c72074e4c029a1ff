//! A stream (rpcx-examples' `stream`): the client calls `_streamservice.Stream`, gets a token and
//! the side listener's address, dials it, and from then on both ends exchange raw bytes. The
//! server's acceptor refuses callers without a `user` in the metadata (Go's `StreamAcceptor`).
//!
//! Run: `cargo run --example stream`

use std::collections::HashMap;
use std::time::Duration;

use sextant::discovery::Peer2PeerDiscovery;
use sextant::transfer::{StreamService, StreamServiceArgs};
use sextant::{Server, XClient};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::new();
    let side = server
        .enable_stream_service(
            "",
            StreamService::new("127.0.0.1:0")
                .acceptor(|_cx, args: &StreamServiceArgs| args.meta.contains_key("user"))
                .handler(|conn: TcpStream, args: StreamServiceArgs| async move {
                    // Answers each line with it in upper case, until the client closes.
                    let user = args.meta.get("user").cloned().unwrap_or_default();
                    let (rd, mut wr) = conn.into_split();
                    let mut lines = BufReader::new(rd).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let answer = format!("{user}> {}\n", line.to_uppercase());
                        if wr.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                }),
        )
        .await?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    println!("rpcx on {address}, streams on {}", side.local_addr());

    let xclient = XClient::builder("_streamservice")
        .discovery(Peer2PeerDiscovery::new(address, "")?)
        .build()?;

    // Without a user the acceptor refuses, with Go's error text.
    match xclient.stream(HashMap::new()).await {
        Err(e) => println!("without a user: {e}"),
        Ok(_) => unreachable!("the acceptor refuses streams without a user"),
    }

    let meta = HashMap::from([("user".to_string(), "alice".to_string())]);
    let conn = xclient.stream(meta).await?;
    let (rd, mut wr) = conn.into_split();
    let mut answers = BufReader::new(rd).lines();
    for line in ["hello", "streams carry raw bytes", "bye"] {
        wr.write_all(format!("{line}\n").as_bytes()).await?;
        let answer = answers.next_line().await?.ok_or("the stream ended")?;
        println!("{answer}");
    }
    drop(wr);

    xclient.close();
    server.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}
