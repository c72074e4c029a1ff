//! Selectors through a real XClient: counts over 10,000 calls against real servers.

#[path = "xclient_common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use sextant::discovery::MultipleServersDiscovery;
use sextant::selector::{
    Probe, SelectContext, SelectMode, Selector, ServerNode, WeightedIcmpSelector,
};
use sextant::xclient::{FailMode, XClient};
use sextant::{CallOptions, KVPair};

async fn servers(n: u32) -> Vec<TestServer> {
    let mut v = Vec::new();
    for id in 0..n {
        v.push(start(id).await);
    }
    v
}

async fn stop_all(v: &[TestServer]) {
    for s in v {
        s.stop().await;
    }
}

fn xclient(mode: SelectMode, pairs: Vec<KVPair>) -> XClient {
    XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .select_mode(mode)
        .discovery(MultipleServersDiscovery::new(pairs).unwrap())
        .build()
        .unwrap()
}

/// Calls `Who` `n` times, 8 at a time, and counts the answers by server id.
async fn count(x: &XClient, n: usize) -> HashMap<u32, usize> {
    let mut counts = HashMap::new();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let per = n / 8 + usize::from(i < n % 8);
            let x = x.clone();
            tokio::spawn(async move {
                let mut v = Vec::with_capacity(per);
                for _ in 0..per {
                    v.push(x.call::<_, u32>("Who", &()).await.unwrap());
                }
                v
            })
        })
        .collect();
    for t in tasks {
        for id in t.await.unwrap() {
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_spreads_evenly_over_10000_calls() {
    let s = servers(3).await;
    let x = xclient(
        SelectMode::Random,
        s.iter().map(|s| KVPair::new(&s.address, "")).collect(),
    );
    let counts = count(&x, 10_000).await;
    // Expected 3,333 each; binomial sd ≈ 47, so ±10% is over 7 sd.
    for id in 0..3 {
        let c = counts[&id];
        assert!((3000..=3667).contains(&c), "{counts:?}");
    }
    x.close();
    stop_all(&s).await;
}

#[tokio::test]
async fn round_robin_takes_turns_exactly() {
    let s = servers(3).await;
    let x = xclient(
        SelectMode::RoundRobin,
        s.iter().map(|s| KVPair::new(&s.address, "")).collect(),
    );
    let counts = count(&x, 10_000).await;
    let mut c: Vec<usize> = counts.values().copied().collect();
    c.sort();
    assert_eq!(c, vec![3333, 3333, 3334]);
    x.close();
    stop_all(&s).await;
}

#[tokio::test]
async fn weighted_round_robin_follows_weights() {
    let s = servers(3).await;
    let weights = [5, 3, 2];
    let x = xclient(
        SelectMode::WeightedRoundRobin,
        s.iter()
            .zip(weights)
            .map(|(s, w)| KVPair::new(&s.address, format!("weight={w}")))
            .collect(),
    );
    let counts = count(&x, 10_000).await;
    // Smooth weighted round robin is exact over each cycle of 10 calls.
    assert_eq!(counts[&0], 5000, "{counts:?}");
    assert_eq!(counts[&1], 3000, "{counts:?}");
    assert_eq!(counts[&2], 2000, "{counts:?}");
    x.close();
    stop_all(&s).await;
}

#[tokio::test]
async fn weighted_round_robin_is_smooth_5_1_1() {
    let s = servers(3).await;
    // The selector orders servers by address: give the first one weight 5.
    let mut by_addr: Vec<&TestServer> = s.iter().collect();
    by_addr.sort_by(|a, b| a.address.cmp(&b.address));
    let names: HashMap<u32, char> = by_addr
        .iter()
        .zip(['a', 'b', 'c'])
        .map(|(s, n)| (s.id, n))
        .collect();
    let x = xclient(
        SelectMode::WeightedRoundRobin,
        by_addr
            .iter()
            .zip([5, 1, 1])
            .map(|(s, w)| KVPair::new(&s.address, format!("weight={w}")))
            .collect(),
    );
    let mut seq = String::new();
    for _ in 0..7 {
        let id: u32 = x.call("Who", &()).await.unwrap();
        seq.push(names[&id]);
    }
    assert_eq!(seq, "aabacaa");
    x.close();
    stop_all(&s).await;
}

#[tokio::test]
async fn weighted_icmp_measures_and_weighs() {
    let s = servers(2).await;
    let x = xclient(
        SelectMode::WeightedIcmp,
        s.iter().map(|s| KVPair::new(&s.address, "")).collect(),
    );
    // Loopback connects take well under 10 ms: both servers weigh 191 and share the calls.
    let counts = count(&x, 1_000).await;
    assert_eq!(counts.values().sum::<usize>(), 1_000);
    assert!(counts[&0] >= 400 && counts[&1] >= 400, "{counts:?}");

    // With a probe that reports 5 ms for server 0 and 150 ms for server 1, the weights are
    // 191 and 51, and smooth weighted round robin splits 2,420 calls exactly 1,910 / 510.
    let slow = s[1].address.clone();
    let probe: Probe = Arc::new(move |a: Arc<str>| {
        let slow = slow.clone();
        Box::pin(async move {
            Some(if *a == *slow {
                Duration::from_millis(150)
            } else {
                Duration::from_millis(5)
            })
        })
    });
    let icmp = Arc::new(WeightedIcmpSelector::with_probe(
        Duration::from_secs(60),
        probe,
    ));
    x.set_selector(icmp.clone());
    eventually(Duration::from_secs(5), "a measurement round", || {
        icmp.rounds() > 0
    })
    .await;
    let mut counts = HashMap::new();
    for _ in 0..2_420 {
        let id: u32 = x.call("Who", &()).await.unwrap();
        *counts.entry(id).or_insert(0) += 1;
    }
    assert_eq!(counts[&0], 1_910, "{counts:?}");
    assert_eq!(counts[&1], 510, "{counts:?}");
    x.close();
    stop_all(&s).await;
}

#[tokio::test]
async fn consistent_hash_routes_by_args_and_by_key() {
    let s = servers(4).await;
    let x = xclient(
        SelectMode::ConsistentHash,
        s.iter().map(|s| KVPair::new(&s.address, "")).collect(),
    );
    let mut seen = std::collections::HashSet::new();
    for i in 0..64 {
        let args = Args { a: i, b: 1 };
        let first = x
            .call_with::<_, Reply>("Mul", &args, CallOptions::new())
            .await
            .unwrap()
            .metadata
            .get("__ServerAddress")
            .unwrap()
            .to_string();
        for _ in 0..3 {
            let again = x
                .call_with::<_, Reply>("Mul", &args, CallOptions::new())
                .await
                .unwrap();
            assert_eq!(again.metadata.get("__ServerAddress"), Some(first.as_str()));
        }
        seen.insert(first);
    }
    assert!(seen.len() >= 3, "64 keys landed on only {seen:?}");

    // An explicit key pins calls whatever their arguments.
    let who = |i: i64| {
        let x = x.clone();
        async move {
            x.call_with::<_, Reply>(
                "Mul",
                &Args { a: i, b: 2 },
                CallOptions::new().hash_key("user-42"),
            )
            .await
            .unwrap()
            .metadata
            .get("__ServerAddress")
            .unwrap()
            .to_string()
        }
    };
    let pinned = who(0).await;
    for i in 1..20 {
        assert_eq!(who(i).await, pinned);
    }
    x.close();
    stop_all(&s).await;
}

#[tokio::test]
async fn closest_prefers_the_nearest_and_breaks_ties_at_random() {
    let s = servers(3).await;
    let metas = [
        "latitude=37.4&longitude=-122.1", // Silicon Valley
        "latitude=31.2&longitude=121.5",  // Shanghai
        "latitude=31.2&longitude=121.5",  // Shanghai again
    ];
    let x = XClient::builder("Arith")
        .geo_position(39.9, 116.4) // Beijing
        .discovery(
            MultipleServersDiscovery::new(
                s.iter()
                    .zip(metas)
                    .map(|(s, m)| KVPair::new(&s.address, m))
                    .collect(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    assert_eq!(x.select_mode(), SelectMode::Closest);
    let counts = count(&x, 800).await;
    assert_eq!(counts.get(&0), None, "{counts:?}");
    assert!(counts[&1] > 250 && counts[&2] > 250, "{counts:?}");

    // Move the client to California.
    x.config_geo_selector(37.3, -121.9);
    for _ in 0..20 {
        assert_eq!(x.call::<_, u32>("Who", &()).await.unwrap(), 0);
    }
    x.close();
    stop_all(&s).await;
}

/// Routes to the server whose metadata has `dc=<hash key>`.
struct DataCenterSelector {
    servers: std::sync::RwLock<Vec<(Arc<str>, String)>>,
}

impl Selector for DataCenterSelector {
    fn select(&self, call: &SelectContext<'_>) -> Option<Arc<str>> {
        let dc = call.hash_key().unwrap_or("east");
        self.servers
            .read()
            .unwrap()
            .iter()
            .find(|(a, d)| d == dc && call.is_available(a))
            .map(|(a, _)| a.clone())
    }
    fn update_servers(&self, servers: &[ServerNode]) {
        *self.servers.write().unwrap() = servers
            .iter()
            .map(|s| (s.address().clone(), s.get("dc").unwrap_or("").to_string()))
            .collect();
    }
    fn uses_call_key(&self) -> bool {
        true
    }
    fn name(&self) -> &str {
        "DataCenter"
    }
}

#[tokio::test]
async fn custom_selector_and_discovery_updates() {
    let s = servers(3).await;
    let d = Arc::new(
        MultipleServersDiscovery::new(vec![
            KVPair::new(&s[0].address, "dc=east"),
            KVPair::new(&s[1].address, "dc=west"),
        ])
        .unwrap(),
    );
    let x = XClient::builder("Arith")
        .selector(DataCenterSelector {
            servers: Default::default(),
        })
        .discovery(d.clone())
        .build()
        .unwrap();
    assert_eq!(x.select_mode(), SelectMode::SelectByUser);
    let at = |dc: &'static str| {
        let x = x.clone();
        async move {
            x.call_with::<_, u32>("Who", &(), CallOptions::new().hash_key(dc))
                .await
                .map(|r| r.reply)
        }
    };
    assert_eq!(at("east").await.unwrap(), 0);
    assert_eq!(at("west").await.unwrap(), 1);
    assert!(at("north").await.is_err());
    // The selector hears about new servers.
    d.update(vec![
        KVPair::new(&s[0].address, "dc=east"),
        KVPair::new(&s[2].address, "dc=north"),
    ])
    .unwrap();
    eventually(Duration::from_secs(5), "the new list", || {
        x.servers().iter().any(|n| n.get("dc") == Some("north"))
    })
    .await;
    assert_eq!(at("north").await.unwrap(), 2);
    assert!(at("west").await.is_err());
    x.close();
    stop_all(&s).await;
}
