//! [`ClosestSelector`]: the nearest server by great-circle distance.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{SelectContext, Selector, ServerNode};

/// A server and its position, if it has one.
type Located = (Arc<str>, Option<(f64, f64)>);

/// Picks the server nearest to the client (rpcx's `Closest`, set up by `ConfigGeoSelector`): the
/// shortest great-circle (haversine) distance from the client's latitude and longitude to each
/// server's `latitude`/`longitude` metadata. Ties are broken at random.
///
/// rpcx ignores servers without a position; here they count as infinitely far, so they take
/// calls only when no server with a position is available.
#[derive(Debug)]
pub struct ClosestSelector {
    latitude: f64,
    longitude: f64,
    servers: ArcSwap<Vec<Located>>,
}

impl ClosestSelector {
    /// A selector for a client at `latitude`, `longitude` (degrees).
    pub fn new(latitude: f64, longitude: f64) -> ClosestSelector {
        ClosestSelector {
            latitude,
            longitude,
            servers: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// The client's position.
    pub fn position(&self) -> (f64, f64) {
        (self.latitude, self.longitude)
    }
}

impl Selector for ClosestSelector {
    fn select(&self, call: &SelectContext<'_>) -> Option<Arc<str>> {
        let servers = self.servers.load();
        let mut best: Option<&Arc<str>> = None;
        let mut best_d = f64::INFINITY;
        let mut ties = 0u32;
        for (a, pos) in servers.iter() {
            if !call.is_available(a) {
                continue;
            }
            let d = match pos {
                Some((lat, lon)) => distance_meters(self.latitude, self.longitude, *lat, *lon),
                None => f64::INFINITY,
            };
            if best.is_none() || d < best_d {
                best = Some(a);
                best_d = d;
                ties = 1;
            } else if d == best_d {
                // Reservoir sampling: each of the tied servers ends up chosen with equal chance.
                ties += 1;
                if fastrand::u32(..ties) == 0 {
                    best = Some(a);
                }
            }
        }
        best.cloned()
    }

    fn update_servers(&self, servers: &[ServerNode]) {
        let v = servers
            .iter()
            .map(|s| (s.address().clone(), s.position()))
            .collect();
        self.servers.store(Arc::new(v));
    }

    fn name(&self) -> &str {
        "Closest"
    }
}

/// Great-circle distance in meters (haversine, with rpcx's Earth radius of 6,378,100 m).
pub(crate) fn distance_meters(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (la1, lo1, la2, lo2) = (
        lat1.to_radians(),
        lon1.to_radians(),
        lat2.to_radians(),
        lon2.to_radians(),
    );
    let hsin = |t: f64| (t / 2.0).sin().powi(2);
    let h = hsin(la2 - la1) + la1.cos() * la2.cos() * hsin(lo2 - lo1);
    2.0 * 6_378_100.0 * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        // Beijing to Shanghai: about 1,070 km.
        let d = distance_meters(39.9042, 116.4074, 31.2304, 121.4737);
        assert!((1_050_000.0..1_100_000.0).contains(&d), "{d}");
        assert_eq!(distance_meters(1.0, 2.0, 1.0, 2.0), 0.0);
    }

    #[test]
    fn nearest_then_ties_at_random() {
        let s = ClosestSelector::new(39.9, 116.4); // Beijing
        s.update_servers(&[
            ServerNode::new("tcp@sv:1", "latitude=37.4&longitude=-122.1"), // Silicon Valley
            ServerNode::new("tcp@sh:1", "latitude=31.2&longitude=121.5"),  // Shanghai
            ServerNode::new("tcp@sh:2", "latitude=31.2&longitude=121.5"),
            ServerNode::new("tcp@nowhere:1", "latitude=x"),
        ]);
        let mut seen = std::collections::HashMap::new();
        for _ in 0..400 {
            let a = s.select(&SelectContext::new("A", "M")).unwrap();
            *seen.entry(a.to_string()).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen["tcp@sh:1"] > 120 && seen["tcp@sh:2"] > 120, "{seen:?}");
        let not_sh = |a: &str| !a.starts_with("tcp@sh");
        let a = s
            .select(&SelectContext::new("A", "M").with_filter(&not_sh))
            .unwrap();
        assert_eq!(&*a, "tcp@sv:1");
        let only_nowhere = |a: &str| a == "tcp@nowhere:1";
        let a = s
            .select(&SelectContext::new("A", "M").with_filter(&only_nowhere))
            .unwrap();
        assert_eq!(&*a, "tcp@nowhere:1");
    }
}
