//! Bad input never panics: it gives a clear error or a documented default.
//!
//! | input | outcome |
//! |---|---|
//! | unknown network in an address given to a discovery | `Error::InvalidAddress` from the discovery |
//! | unknown network from another discovery (a registry) | the server is left out; `NoServer` says so |
//! | malformed metadata string | parsed leniently; defaults apply (weight 1, no group) |
//! | weight that is not a number | weight 1 |
//! | empty server list | `NoServer`: "discovery lists no servers" |
//! | hash key with a selector that does not hash | `Error::Config` |
//! | hash key on fork/broadcast/inform | `Error::Config` |
//! | Closest without a position, SelectByUser without a selector | `Error::Config` on the call |
//! | builder without discovery or service path, or outside a runtime | `Error::Config` from `build` |

#[path = "xclient_common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::*;
use sextant::discovery::{
    KVPair, MultipleServersDiscovery, Peer2PeerDiscovery, ServerList, Servers, ServiceDiscovery,
};
use sextant::selector::SelectMode;
use sextant::xclient::{FailMode, XClient, XClientOptions};
use sextant::{CallOptions, Error};

/// A discovery that passes on whatever it is given, like a registry would.
struct Raw(ServerList);

impl ServiceDiscovery for Raw {
    fn get_services(&self) -> Servers {
        self.0.get()
    }
    fn watch_services(&self) -> tokio::sync::watch::Receiver<Servers> {
        self.0.subscribe()
    }
}

fn raw(pairs: Vec<KVPair>) -> Raw {
    Raw(ServerList::new(pairs))
}

#[tokio::test]
async fn unknown_network_in_an_address() {
    let e = Peer2PeerDiscovery::new("carrier-pigeon@1.2.3.4:5", "").unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e}");
    assert!(
        e.to_string().contains("unknown network \"carrier-pigeon\""),
        "{e}"
    );
    let e = MultipleServersDiscovery::new(vec![KVPair::new("utp@1.2.3.4:5", "")]).unwrap_err();
    assert!(e.to_string().contains("sextant does not speak"), "{e}");
    let d = MultipleServersDiscovery::new(vec![]).unwrap();
    let e = d.update(vec![KVPair::new("tcp@no-port", "")]).unwrap_err();
    assert!(e.to_string().contains("host:port"), "{e}");

    // From a registry: left out, and the error says why when nothing is left.
    let s = start(0).await;
    let x = XClient::builder("Arith")
        .discovery(raw(vec![
            KVPair::new("carrier-pigeon@1.2.3.4:5", ""),
            KVPair::new(&s.address, ""),
        ]))
        .build()
        .unwrap();
    assert_eq!(x.servers().len(), 1);
    assert_eq!(x.call::<_, u32>("Who", &()).await.unwrap(), 0);
    x.close();
    let x = XClient::builder("Arith")
        .discovery(raw(vec![KVPair::new("carrier-pigeon@1.2.3.4:5", "")]))
        .build()
        .unwrap();
    let e = x.call::<_, u32>("Who", &()).await.unwrap_err();
    assert!(matches!(e, Error::NoServer(_)), "{e}");
    assert!(e.to_string().contains("1 with an invalid address"), "{e}");
    x.close();
    s.stop().await;
}

#[tokio::test]
async fn malformed_metadata_and_bad_weights_use_defaults() {
    let s = vec![start(0).await, start(1).await];
    let x = XClient::builder("Arith")
        .fail_mode(FailMode::Failfast)
        .select_mode(SelectMode::WeightedRoundRobin)
        .discovery(raw(vec![
            // Not a number, stray separators, a bad escape, a key without '='.
            KVPair::new(&s[0].address, "weight=heavy&&=x&%zz&group"),
            KVPair::new(&s[1].address, "weight=-7&latitude=north"),
        ]))
        .build()
        .unwrap();
    let nodes = x.servers();
    assert_eq!(nodes.len(), 2);
    assert!(nodes.iter().all(|n| n.weight() == 1));
    assert!(nodes
        .iter()
        .all(|n| n.group().is_none() && n.position().is_none()));
    let mut counts = HashMap::new();
    for _ in 0..100 {
        *counts
            .entry(x.call::<_, u32>("Who", &()).await.unwrap())
            .or_insert(0) += 1;
    }
    assert_eq!(counts[&0], 50);
    assert_eq!(counts[&1], 50);
    x.close();
    for s in &s {
        s.stop().await;
    }
}

#[tokio::test]
async fn empty_server_list() {
    for mode in [
        FailMode::Failover,
        FailMode::Failfast,
        FailMode::Failtry,
        FailMode::Failbackup,
    ] {
        let x = XClient::builder("Arith")
            .fail_mode(mode)
            .discovery(MultipleServersDiscovery::new(vec![]).unwrap())
            .build()
            .unwrap();
        let e = x.call::<_, u32>("Who", &()).await.unwrap_err();
        assert!(matches!(e, Error::NoServer(_)), "{mode}: {e}");
        assert!(e.to_string().contains("discovery lists no servers"), "{e}");
        let e = x
            .go::<_, u32>("Who", &(), CallOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NoServer(_)), "{e}");
        let e = x.oneway("Who", &(), CallOptions::new()).await.unwrap_err();
        assert!(matches!(e, Error::NoServer(_)), "{e}");
        for e in [
            x.fork::<_, u32>("Who", &(), CallOptions::new())
                .await
                .unwrap_err(),
            x.broadcast::<_, u32>("Who", &(), CallOptions::new())
                .await
                .unwrap_err(),
            x.inform::<_, u32>("Who", &(), CallOptions::new())
                .await
                .unwrap_err(),
        ] {
            assert!(matches!(e, Error::NoServer(_)), "{e}");
        }
        x.close();
    }
}

#[tokio::test]
async fn hash_key_on_a_selector_that_does_not_hash() {
    let s = start(0).await;
    for mode in [
        SelectMode::Random,
        SelectMode::RoundRobin,
        SelectMode::WeightedRoundRobin,
        SelectMode::WeightedIcmp,
    ] {
        let x = XClient::builder("Arith")
            .select_mode(mode)
            .discovery(Peer2PeerDiscovery::new(&s.address, "").unwrap())
            .build()
            .unwrap();
        let e = x
            .call_with::<_, u32>("Who", &(), CallOptions::new().hash_key("k"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{mode}: {e}");
        assert!(e.to_string().contains("ConsistentHash"), "{e}");
        x.close();
    }
    let x = XClient::builder("Arith")
        .select_mode(SelectMode::ConsistentHash)
        .discovery(Peer2PeerDiscovery::new(&s.address, "").unwrap())
        .build()
        .unwrap();
    let e = x
        .broadcast::<_, u32>("Who", &(), CallOptions::new().hash_key("k"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    let r = x
        .call_with::<_, u32>("Who", &(), CallOptions::new().hash_key("k"))
        .await
        .unwrap();
    assert_eq!(r.reply, 0);
    x.close();
    s.stop().await;
}

#[tokio::test]
async fn selector_modes_that_need_setup() {
    let s = start(0).await;
    let x = XClient::new(
        "Arith",
        FailMode::Failover,
        SelectMode::Closest,
        Peer2PeerDiscovery::new(&s.address, "").unwrap(),
        XClientOptions::default(),
    )
    .unwrap();
    let e = x.call::<_, u32>("Who", &()).await.unwrap_err();
    assert!(e.to_string().contains("config_geo_selector"), "{e}");
    x.config_geo_selector(0.0, 0.0);
    // No server has a position: it still takes the call (documented).
    assert_eq!(x.call::<_, u32>("Who", &()).await.unwrap(), 0);
    x.close();

    let x = XClient::new(
        "Arith",
        FailMode::Failover,
        SelectMode::SelectByUser,
        Peer2PeerDiscovery::new(&s.address, "").unwrap(),
        XClientOptions::default(),
    )
    .unwrap();
    let e = x.call::<_, u32>("Who", &()).await.unwrap_err();
    assert!(e.to_string().contains("set_selector"), "{e}");
    x.set_selector(sextant::selector::RoundRobinSelector::new());
    assert_eq!(x.call::<_, u32>("Who", &()).await.unwrap(), 0);
    x.close();
    s.stop().await;
}

#[tokio::test]
async fn builder_errors() {
    let e = XClient::builder("Arith").build().unwrap_err();
    assert!(e.to_string().contains("needs a discovery"), "{e}");
    let e = XClient::builder("")
        .discovery(MultipleServersDiscovery::new(vec![]).unwrap())
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("service path"), "{e}");
}

#[test]
fn build_outside_a_runtime() {
    let d = Arc::new(MultipleServersDiscovery::new(vec![]).unwrap());
    let e = XClient::builder("Arith").discovery(d).build().unwrap_err();
    assert!(e.to_string().contains("tokio runtime"), "{e}");
}
