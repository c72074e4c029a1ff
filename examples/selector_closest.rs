//! Closest selector (rpcx-examples `selector/geo`): servers publish `latitude`/`longitude`
//! metadata; the client picks the nearest one by great-circle distance (ties at random).
//!
//! Run: `cargo run --example selector-closest`

use std::collections::HashMap;
use std::time::Duration;

use sextant::discovery::MultipleServersDiscovery;
use sextant::{CallOptions, Context, KVPair, SelectMode, Server, ServiceError, XClient};

async fn start_server() -> sextant::Result<(Server, String)> {
    let server = Server::new();
    server.register_fn(
        "Arith",
        "Mul",
        |_cx: Context, (a, b): (i64, i64)| async move { Ok::<_, ServiceError>(a * b) },
    )?;
    let address = server.start("tcp@127.0.0.1:0").await?.to_string();
    Ok((server, address))
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let places = [
        ("Shanghai", "latitude=31.23&longitude=121.47"),
        ("Silicon Valley", "latitude=37.39&longitude=-122.08"),
        ("Frankfurt", "latitude=50.11&longitude=8.68"),
    ];
    let mut servers = Vec::new();
    let mut city = HashMap::new();
    for (name, meta) in places {
        let (s, a) = start_server().await?;
        city.insert(a.clone(), name);
        servers.push((s, a, meta));
    }
    let xclient = XClient::new(
        "Arith",
        sextant::FailMode::Failover,
        SelectMode::Closest,
        MultipleServersDiscovery::new(
            servers.iter().map(|(_, a, m)| KVPair::new(a, *m)).collect(),
        )?,
        sextant::XClientOptions::default(),
    )?;

    let mut line = Vec::new();
    for (client_city, lat, lon) in [
        ("Beijing", 39.90, 116.40),
        ("San Francisco", 37.77, -122.42),
        ("Paris", 48.86, 2.35),
    ] {
        // rpcx's ConfigGeoSelector: the client's own position.
        xclient.config_geo_selector(lat, lon);
        let r = xclient
            .call_with::<_, i64>("Mul", &(10, 20), CallOptions::new())
            .await?;
        let from = city[r.metadata.get("__ServerAddress").unwrap_or("?")];
        println!(
            "client in {client_city}: 10 * 20 = {} from the {from} server",
            r.reply
        );
        line.push(format!("{client_city}->{from}"));
    }
    println!("selector-closest: {}", line.join(", "));

    xclient.close();
    for (s, _, _) in &servers {
        s.shutdown(Duration::from_secs(1)).await?;
    }
    Ok(())
}
