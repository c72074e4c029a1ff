//! reuseport (rpcx-examples' `reuseport`): two servers listen on one port with `SO_REUSEPORT`
//! and the kernel spreads connections over them, so a new process can start on the port before
//! the old one stops (a restart without refused connections).
//!
//! Run: `cargo run --example reuseport`

use std::collections::BTreeMap;
use std::time::Duration;

use sextant::transport::Network;
use sextant::{Client, ClientOptions, Context, Server, ServiceError};

fn server(name: &'static str) -> sextant::Result<Server> {
    let s = Server::new();
    s.register_fn("Who", "Am", move |_cx: Context, _: ()| async move {
        Ok::<_, ServiceError>(name.to_string())
    })?;
    Ok(s)
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let old = server("old")?;
    let address = old.start("reuseport@127.0.0.1:0").await?;
    let new = server("new")?;
    new.start(address.clone()).await?;
    println!("two servers on {address}");

    // Clients dial it as plain TCP.
    let tcp = address.with_network(Network::Tcp);
    let mut seen = BTreeMap::<String, u32>::new();
    for _ in 0..40 {
        let c = Client::connect(&tcp, ClientOptions::default()).await?;
        let who: String = c.call("Who", "Am", &()).await?;
        *seen.entry(who).or_default() += 1;
        c.close();
    }
    println!("connections served: {seen:?}");

    // The old one leaves; the port keeps serving.
    old.shutdown(Duration::from_secs(1)).await?;
    let c = Client::connect(&tcp, ClientOptions::default()).await?;
    let who: String = c.call("Who", "Am", &()).await?;
    println!("after the old server stopped: served by {who}");
    assert_eq!(who, "new");
    c.close();
    new.shutdown(Duration::from_secs(1)).await
}
