//! File download (rpcx-examples' `file_download`): the client calls `_filetransfer.DownloadFile`
//! with a name, gets a token and the side listener's address, sends the token there and reads the
//! file until the server closes. The server serves a directory with the ready-made `ServeDir`
//! handler, which refuses names that lead outside it.
//!
//! Run: `cargo run --example file-download`

use std::collections::HashMap;
use std::time::Duration;

use sextant::discovery::Peer2PeerDiscovery;
use sextant::transfer::{FileTransfer, ServeDir};
use sextant::{Server, XClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let served = std::env::temp_dir().join(format!("sextant-served-{}", std::process::id()));
    std::fs::create_dir_all(&served)?;
    let text = "rpcx moves files over a side connection.\n".repeat(1000);
    std::fs::write(served.join("notes.txt"), &text)?;

    let server = Server::new();
    let side = server
        .enable_file_transfer(
            "",
            FileTransfer::new("127.0.0.1:0").download(ServeDir::new(&served)),
        )
        .await?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    println!("rpcx on {address}, file transfer on {}", side.local_addr());

    let xclient = XClient::builder("_filetransfer")
        .discovery(Peer2PeerDiscovery::new(address, "")?)
        .build()?;

    // Into memory here; any AsyncWrite works (a tokio::fs::File, a socket...).
    let mut got = Vec::new();
    let n = xclient
        .download_file("notes.txt", &mut got, HashMap::new())
        .await?;
    println!(
        "downloaded notes.txt: {n} bytes, identical: {}",
        got == text.as_bytes()
    );
    assert_eq!(got, text.as_bytes());

    // A name outside the served directory is the call's error; no token, no connection.
    let mut nothing = Vec::new();
    match xclient
        .download_file("../../etc/passwd", &mut nothing, HashMap::new())
        .await
    {
        Err(e) => println!("../../etc/passwd: {e}"),
        Ok(_) => unreachable!("ServeDir refuses paths outside its directory"),
    }

    xclient.close();
    server.shutdown(Duration::from_secs(1)).await?;
    std::fs::remove_dir_all(&served)?;
    Ok(())
}
