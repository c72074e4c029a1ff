//! KCP (rpcx-examples' `kcp`): reliable UDP with kcp-go's sessions: an AES key derived from a
//! pass and salt with pbkdf2 (4096 rounds of SHA-1, 32 bytes), FEC with 10 data and 3 parity
//! shards, stream mode. Go rpcx peers with the same pass and salt talk to it.
//!
//! Run: `cargo run --example kcp`

use std::time::Duration;

use sextant::transport::KcpConfig;
use sextant::{Client, ClientOptions, Server};
use sextant_interop::{Args, Reply};

const PASS: &str = "rpcx-key";
const SALT: &str = "rpcx-salt";

#[tokio::main]
async fn main() -> sextant::Result<()> {
    // rpcx: `server.NewServer(server.WithBlockCrypt(kcp.NewAESBlockCrypt(pbkdf2.Key(...))))`.
    let config = KcpConfig::new().with_pass_salt(PASS, SALT);
    let server = sextant_interop::interop_server_from(Server::builder().kcp(config.clone()), None)?;
    let address = server.start("kcp@127.0.0.1:0").await?;

    let client = Client::connect(&address, ClientOptions::default().kcp(config)).await?;
    let reply: Reply = client.call("Arith", "Mul", &Args { a: 10, b: 20 }).await?;
    println!("{address}: 10 * 20 = {}", reply.c);
    assert_eq!(reply.c, 200);
    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
