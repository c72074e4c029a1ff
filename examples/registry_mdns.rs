//! mDNS registry (rpcx-examples `registry/mdns`): two servers announce `Arith` over mDNS/DNS-SD
//! (`_rpcxservices._tcp.local.`), an XClient browses for them, one leaves with goodbye packets.
//!
//! Run: `cargo run --example registry-mdns`. By default everything stays on this machine: the
//! loopback interface and a private UDP port. `MDNS_LAN=1` uses every interface and port 5353,
//! so other machines on the LAN see the servers too (multicast must be allowed there).

#[path = "registry_common.rs"]
mod common;

use std::time::Duration;

use sextant_mdns::{MdnsOptions, MdnsStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = if std::env::var("MDNS_LAN").is_ok_and(|v| v == "1") {
        MdnsOptions::default()
    } else {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        MdnsOptions::default().port(port).loopback_only(true)
    }
    .verify(Duration::from_secs(5), Duration::from_secs(1));
    println!(
        "mDNS on udp port {}, loopback only: {}",
        options.port, options.loopback_only
    );
    common::run("mDNS", || MdnsStore::new(options.clone())).await
}
