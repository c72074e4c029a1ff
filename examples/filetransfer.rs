//! File upload (rpcx-examples' `filetransfer`): the client calls `_filetransfer.TransferFile`
//! with the file's name and size, gets a token and the side listener's address, and sends the
//! token and the file's bytes there. The server stores it with the ready-made `SaveToDir`
//! handler (a temporary file, renamed once every byte arrived).
//!
//! Run: `cargo run --example filetransfer`

use std::collections::HashMap;
use std::time::Duration;

use sextant::discovery::Peer2PeerDiscovery;
use sextant::transfer::{FileTransfer, SaveToDir};
use sextant::{Server, XClient};
use tokio::sync::oneshot;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let incoming = std::env::temp_dir().join(format!("sextant-upload-{}", std::process::id()));
    std::fs::create_dir_all(&incoming)?;

    let (stored_tx, stored) = oneshot::channel();
    let stored_tx = std::sync::Mutex::new(Some(stored_tx));
    let save = SaveToDir::new(&incoming).on_done(move |args, result| {
        let report = match result {
            Ok(path) => format!(
                "stored {} ({} bytes) at {}",
                args.file_name,
                args.file_size,
                path.display()
            ),
            Err(e) => format!("upload of {} failed: {e}", args.file_name),
        };
        if let Some(tx) = stored_tx.lock().unwrap().take() {
            let _ = tx.send(report);
        }
    });
    let server = Server::new();
    let side = server
        .enable_file_transfer("", FileTransfer::new("127.0.0.1:0").upload(save))
        .await?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    println!("rpcx on {address}, file transfer on {}", side.local_addr());

    // A 4 MiB file to send.
    let local = std::env::temp_dir().join(format!("sextant-example-{}.bin", std::process::id()));
    let data: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(&local, &data)?;

    let xclient = XClient::builder("_filetransfer")
        .discovery(Peer2PeerDiscovery::new(address, "")?)
        .build()?;
    let meta = HashMap::from([("owner".to_string(), "example".to_string())]);
    // 0: no bandwidth cap (Go's rateInBytesPerSecond).
    xclient.send_file(&local, 0, meta).await?;
    println!(
        "{}",
        tokio::time::timeout(Duration::from_secs(5), stored).await??
    );

    let name = local.file_name().ok_or("no file name")?;
    let copy = std::fs::read(incoming.join(name))?;
    println!("the stored copy is identical: {}", copy == data);
    assert_eq!(copy, data);

    xclient.close();
    server.shutdown(Duration::from_secs(1)).await?;
    std::fs::remove_file(&local)?;
    std::fs::remove_dir_all(&incoming)?;
    Ok(())
}
