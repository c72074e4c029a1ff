//! A custom selector (rpcx-examples `selector/customized`): route each call to the data center
//! named by its hash key, using the servers' `dc` metadata. Implement [`Selector`] and pass it
//! with `.selector(..)` (rpcx's `SelectByUser` / `SetSelector`).
//!
//! Run: `cargo run --example selector-custom`

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sextant::discovery::MultipleServersDiscovery;
use sextant::selector::{SelectContext, Selector, ServerNode};
use sextant::{CallOptions, Context, KVPair, Server, ServiceError, XClient};

/// Sends a call to a server whose `dc` metadata equals the call's hash key ("east" if none).
#[derive(Default)]
struct DataCenterSelector {
    servers: RwLock<Vec<(Arc<str>, String)>>,
}

impl Selector for DataCenterSelector {
    fn select(&self, call: &SelectContext<'_>) -> Option<Arc<str>> {
        let dc = call.hash_key().unwrap_or("east");
        self.servers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(address, d)| d == dc && call.is_available(address))
            .map(|(address, _)| address.clone())
    }

    fn update_servers(&self, servers: &[ServerNode]) {
        *self.servers.write().unwrap_or_else(|p| p.into_inner()) = servers
            .iter()
            .map(|s| (s.address().clone(), s.get("dc").unwrap_or("").to_string()))
            .collect();
    }

    fn uses_call_key(&self) -> bool {
        true // reads the hash key
    }

    fn name(&self) -> &str {
        "DataCenter"
    }
}

async fn start_server(dc: &'static str) -> sextant::Result<(Server, String)> {
    let server = Server::new();
    server.register_fn("Arith", "Where", move |_cx: Context, _: ()| async move {
        Ok::<_, ServiceError>(dc.to_string())
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?.to_string();
    Ok((server, address))
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let east = start_server("east").await?;
    let west = start_server("west").await?;
    let xclient = XClient::builder("Arith")
        .selector(DataCenterSelector::default())
        .discovery(MultipleServersDiscovery::new(vec![
            KVPair::new(&east.1, "dc=east"),
            KVPair::new(&west.1, "dc=west"),
        ])?)
        .build()?;

    let mut got = Vec::new();
    for key in ["east", "west", "west"] {
        let r = xclient
            .call_with::<_, String>("Where", &(), CallOptions::new().hash_key(key))
            .await?;
        println!("hash key {key:?} -> served in {}", r.reply);
        assert_eq!(r.reply, key);
        got.push(r.reply);
    }
    println!("selector-custom: routed by data center {got:?}");

    xclient.close();
    east.0.shutdown(Duration::from_secs(1)).await?;
    west.0.shutdown(Duration::from_secs(1)).await
}
