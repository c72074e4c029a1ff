//! Failfast (rpcx-examples `failmode/failfast`): a failed call returns its error at once. One of
//! the two servers is down, so every other call fails.
//!
//! Run: `cargo run --example failfast`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::discovery::MultipleServersDiscovery;
use sextant::{Context, FailMode, KVPair, SelectMode, Server, ServiceError, XClient};

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    pub a: i64,
    pub b: i64,
}

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Reply {
    pub c: i64,
}

/// A port nobody listens on: bound, then released.
fn unused_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("reserve a port on 127.0.0.1");
    format!("tcp@{}", l.local_addr().expect("a bound address"))
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let server = Server::new();
    server.register_fn("Arith", "Mul", |_cx: Context, a: Args| async move {
        Ok::<_, ServiceError>(Reply { c: a.a * a.b })
    })?;
    let live = server.start("tcp@127.0.0.1:0").await?.to_string();
    let down = unused_address();

    let xclient = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .select_mode(SelectMode::RoundRobin)
        .discovery(MultipleServersDiscovery::new(vec![
            KVPair::new(&live, ""),
            KVPair::new(&down, ""),
        ])?)
        .build()?;

    let (mut ok, mut failed) = (0, 0);
    for i in 1..=4 {
        match xclient
            .call::<_, Reply>("Mul", &Args { a: 10, b: 20 })
            .await
        {
            Ok(r) => {
                ok += 1;
                println!("call {i}: 10 * 20 = {}", r.c)
            }
            Err(e) => {
                failed += 1;
                println!("call {i} failed at once: {e}")
            }
        }
    }
    println!("failfast: {ok} succeeded, {failed} failed without a retry");
    assert_eq!((ok, failed), (2, 2));

    xclient.close();
    server.shutdown(Duration::from_secs(1)).await
}
