//! IP blacklists and whitelists (rpcx's `serverplugin.BlacklistPlugin` and `WhitelistPlugin`).
//!
//! Both decide in [`on_conn_accept`](ServerPlugin::on_conn_accept), from the peer's address,
//! before any handshake: a refused connection is closed at once, and the client sees its
//! connection closed. Entries are exact addresses (`192.168.1.7`, `::1`) or CIDR ranges
//! (`10.0.0.0/8`, `fd00::/8`), IPv4 or IPv6, parsed into an [`IpList`]; an entry that is
//! neither is an [`Error::Config`] naming it.
//!
//! - [`BlacklistPlugin`]: refuses the addresses on its list, admits every other.
//! - [`WhitelistPlugin`]: admits the addresses on its list, refuses every other.
//!
//! An IPv4 address a dual-stack socket reports as IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is
//! matched as the IPv4 address it is, against IPv4 entries; an entry written in that form
//! (`::ffff:10.0.0.0/104`) is taken as the IPv4 one (`10.0.0.0/8`).
//!
//! Peers without an IP address (unix sockets, in-process clients, or a
//! [`PeerAddr::Other`] name that does not parse as an IP address or socket address) are
//! handled as rpcx handles a remote address it cannot split: the blacklist admits them, the
//! whitelist refuses them unless told otherwise with [`WhitelistPlugin::allow_non_ip`].
//!
//! The lists can change while the server runs ([`set`](BlacklistPlugin::set),
//! [`add`](BlacklistPlugin::add)): keep a clone of the plugin, which shares its list; the
//! change applies to connections accepted afterwards, and costs a connection being accepted
//! nothing (the list is swapped, never locked).
//!
//! ```
//! use sextant::{PeerAddr, Server};
//! use sextant_plugins::iplist::{BlacklistPlugin, WhitelistPlugin};
//!
//! # fn main() -> sextant::Result<()> {
//! let blacklist = BlacklistPlugin::new(["10.0.0.0/8", "::1", "192.168.1.7"])?;
//! let server = Server::builder().plugin(blacklist.clone()).build();
//! # drop(server);
//! blacklist.add(["172.16.0.0/12"])?;
//! assert!(!blacklist.allows(&PeerAddr::Tcp("172.17.0.2:5000".parse().unwrap())));
//! assert!(blacklist.allows(&PeerAddr::Tcp("8.8.8.8:5000".parse().unwrap())));
//!
//! let whitelist = WhitelistPlugin::new(["127.0.0.1", "fd00::/8"])?;
//! assert!(whitelist.allows(&PeerAddr::Tcp("[::ffff:127.0.0.1]:5000".parse().unwrap())));
//!
//! let err = WhitelistPlugin::new(["10.0.0.0/33"]).unwrap_err();
//! assert!(err.to_string().contains("\"10.0.0.0/33\""));
//! # Ok(())
//! # }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use ipnet::{IpNet, Ipv4Net};
use sextant::{CallHooks, Error, PeerAddr, ServerPlugin};

/// A set of IP addresses and CIDR ranges, IPv4 and IPv6 (what rpcx keeps as a `map[string]bool`
/// of addresses and a list of `*net.IPNet`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpList {
    exact: HashSet<IpAddr>,
    ranges: Vec<IpNet>,
}

impl IpList {
    /// An empty list.
    pub fn new() -> IpList {
        IpList::default()
    }

    /// A list of `entries`, each an address (`192.168.1.7`, `::1`) or a CIDR range
    /// (`10.0.0.0/8`, `fd00::/8`); surrounding spaces are ignored. The first entry that is
    /// neither is an [`Error::Config`] naming it.
    pub fn parse<I, S>(entries: I) -> Result<IpList, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        IpList::parse_for("IP list", entries)
    }

    fn parse_for<I, S>(what: &str, entries: I) -> Result<IpList, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = IpList::new();
        for entry in entries {
            list.insert_for(what, entry.as_ref())?;
        }
        Ok(list)
    }

    /// Adds one entry (an address or a CIDR range), or fails with an [`Error::Config`] naming
    /// it.
    pub fn insert(&mut self, entry: &str) -> Result<(), Error> {
        self.insert_for("IP list", entry)
    }

    fn insert_for(&mut self, what: &str, entry: &str) -> Result<(), Error> {
        let text = entry.trim();
        if text.contains('/') {
            let net: IpNet = text.parse().map_err(|_| {
                Error::Config(format!(
                    "{what}: {entry:?} is not a CIDR range (an address, a slash and a prefix \
                     length of at most 32 for IPv4 or 128 for IPv6, like 10.0.0.0/8 or fd00::/8)"
                ))
            })?;
            self.insert_net(net);
        } else {
            let ip: IpAddr = text.parse().map_err(|_| {
                Error::Config(format!(
                    "{what}: {entry:?} is neither an IP address nor a CIDR range (like \
                     192.168.1.7, ::1, 10.0.0.0/8 or fd00::/8)"
                ))
            })?;
            self.insert_ip(ip);
        }
        Ok(())
    }

    /// Adds one address.
    pub fn insert_ip(&mut self, ip: IpAddr) {
        self.exact.insert(canonical(ip));
    }

    /// Adds one range (a full-length prefix is an address).
    pub fn insert_net(&mut self, net: IpNet) {
        let net = canonical_net(net.trunc());
        if net.prefix_len() == net.max_prefix_len() {
            self.exact.insert(net.addr());
        } else if !self.ranges.contains(&net) {
            self.ranges.push(net);
        }
    }

    /// Adds every entry of `other`.
    pub fn extend(&mut self, other: &IpList) {
        self.exact.extend(other.exact.iter().copied());
        for net in &other.ranges {
            self.insert_net(*net);
        }
    }

    /// Whether `ip` is one of the addresses or in one of the ranges (an IPv4-mapped IPv6
    /// address is looked up as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.exact.contains(&ip) || self.ranges.iter().any(|net| net.contains(&ip))
    }

    /// The entries, addresses as full-length prefixes (`/32`, `/128`), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.exact
            .iter()
            .map(|ip| IpNet::from(*ip))
            .chain(self.ranges.iter().copied())
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.exact.len() + self.ranges.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.ranges.is_empty()
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address; others as they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// A range inside `::ffff:0:0/96` as the IPv4 range it maps.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if v6.prefix_len() >= 96 {
            if let Some(v4) = v6.network().to_ipv4_mapped() {
                if let Ok(n) = Ipv4Net::new(v4, v6.prefix_len() - 96) {
                    return IpNet::V4(n);
                }
            }
        }
    }
    net
}

/// The IP address of a peer, if it has one: the socket's for TCP, QUIC and KCP; for a peer
/// the user named ([`PeerAddr::Other`]), the name read as a socket address or an IP address.
pub fn peer_ip(peer: &PeerAddr) -> Option<IpAddr> {
    if let Some(a) = peer.socket_addr() {
        return Some(a.ip());
    }
    match peer {
        PeerAddr::Other(name) => {
            let name = name.trim();
            name.parse::<SocketAddr>()
                .map(|a| a.ip())
                .or_else(|_| name.parse::<IpAddr>())
                .ok()
        }
        _ => None,
    }
}

/// What both plugins share with their clones.
struct Shared {
    list: ArcSwap<IpList>,
    refused: AtomicU64,
}

impl Shared {
    fn new(list: IpList) -> Arc<Shared> {
        Arc::new(Shared {
            list: ArcSwap::from_pointee(list),
            refused: AtomicU64::new(0),
        })
    }

    /// Replaces the list with `entries` (named for `plugin` in errors); on an error the list is
    /// left as it was.
    fn set<I, S>(&self, plugin: &str, entries: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list = IpList::parse_for(plugin, entries)?;
        self.list.store(Arc::new(list));
        Ok(())
    }

    /// Adds `entries` to the list; on an error the list is left as it was.
    fn add<I, S>(&self, plugin: &str, entries: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let more = IpList::parse_for(plugin, entries)?;
        self.list.rcu(|old| {
            let mut l = IpList::clone(old);
            l.extend(&more);
            l
        });
        Ok(())
    }

    fn decide(&self, plugin: &str, peer: &PeerAddr, admit: bool) -> bool {
        if !admit {
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, plugin, "connection refused by the IP list");
        }
        admit
    }
}

/// Refuses connections from the addresses and ranges on its list (rpcx's
/// `serverplugin.BlacklistPlugin`); see the [module docs](self). Peers without an IP address
/// are admitted. Cloning gives a handle on the same list.
#[derive(Clone)]
pub struct BlacklistPlugin {
    shared: Arc<Shared>,
}

impl BlacklistPlugin {
    /// A blacklist of `entries` (addresses and CIDR ranges); an entry that is neither is an
    /// [`Error::Config`] naming it.
    pub fn new<I, S>(entries: I) -> Result<BlacklistPlugin, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(BlacklistPlugin::from_list(IpList::parse_for(
            "BlacklistPlugin",
            entries,
        )?))
    }

    /// A blacklist of `list`.
    pub fn from_list(list: IpList) -> BlacklistPlugin {
        BlacklistPlugin {
            shared: Shared::new(list),
        }
    }

    /// Replaces the list with `entries`, for connections accepted from now on; on an error the
    /// list is left as it was.
    pub fn set<I, S>(&self, entries: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.shared.set("BlacklistPlugin", entries)
    }

    /// Adds `entries` to the list; on an error the list is left as it was.
    pub fn add<I, S>(&self, entries: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.shared.add("BlacklistPlugin", entries)
    }

    /// The list as it is now.
    pub fn list(&self) -> Arc<IpList> {
        self.shared.list.load_full()
    }

    /// Whether a connection from `peer` is admitted (it is unless its IP address is listed).
    pub fn allows(&self, peer: &PeerAddr) -> bool {
        match peer_ip(peer) {
            Some(ip) => !self.shared.list.load().contains(ip),
            None => true,
        }
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for BlacklistPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlacklistPlugin")
            .field("entries", &self.shared.list.load().len())
            .field("refused", &self.refused())
            .finish()
    }
}

impl ServerPlugin for BlacklistPlugin {
    fn call_hooks(&self) -> CallHooks {
        CallHooks::NONE
    }

    fn on_conn_accept(&self, peer: &PeerAddr) -> bool {
        self.shared
            .decide("BlacklistPlugin", peer, self.allows(peer))
    }
}

/// Admits connections only from the addresses and ranges on its list (rpcx's
/// `serverplugin.WhitelistPlugin`); see the [module docs](self). Peers without an IP address
/// are refused, unless [`allow_non_ip`](Self::allow_non_ip). Cloning gives a handle on the
/// same list.
#[derive(Clone)]
pub struct WhitelistPlugin {
    shared: Arc<Shared>,
    allow_non_ip: bool,
}

impl WhitelistPlugin {
    /// A whitelist of `entries` (addresses and CIDR ranges); an entry that is neither is an
    /// [`Error::Config`] naming it.
    pub fn new<I, S>(entries: I) -> Result<WhitelistPlugin, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(WhitelistPlugin::from_list(IpList::parse_for(
            "WhitelistPlugin",
            entries,
        )?))
    }

    /// A whitelist of `list`.
    pub fn from_list(list: IpList) -> WhitelistPlugin {
        WhitelistPlugin {
            shared: Shared::new(list),
            allow_non_ip: false,
        }
    }

    /// Whether peers without an IP address (unix sockets, in-process clients) are admitted;
    /// `false` by default, as rpcx refuses an address it cannot split.
    pub fn allow_non_ip(mut self, allow: bool) -> WhitelistPlugin {
        self.allow_non_ip = allow;
        self
    }

    /// Replaces the list with `entries`, for connections accepted from now on; on an error the
    /// list is left as it was.
    pub fn set<I, S>(&self, entries: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.shared.set("WhitelistPlugin", entries)
    }

    /// Adds `entries` to the list; on an error the list is left as it was.
    pub fn add<I, S>(&self, entries: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.shared.add("WhitelistPlugin", entries)
    }

    /// The list as it is now.
    pub fn list(&self) -> Arc<IpList> {
        self.shared.list.load_full()
    }

    /// Whether a connection from `peer` is admitted (only if its IP address is listed).
    pub fn allows(&self, peer: &PeerAddr) -> bool {
        match peer_ip(peer) {
            Some(ip) => self.shared.list.load().contains(ip),
            None => self.allow_non_ip,
        }
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for WhitelistPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhitelistPlugin")
            .field("entries", &self.shared.list.load().len())
            .field("allow_non_ip", &self.allow_non_ip)
            .field("refused", &self.refused())
            .finish()
    }
}

impl ServerPlugin for WhitelistPlugin {
    fn call_hooks(&self) -> CallHooks {
        CallHooks::NONE
    }

    fn on_conn_accept(&self, peer: &PeerAddr) -> bool {
        self.shared
            .decide("WhitelistPlugin", peer, self.allows(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tcp(s: &str) -> PeerAddr {
        PeerAddr::Tcp(s.parse().unwrap())
    }

    #[test]
    fn v4_addresses_and_ranges() {
        let l = IpList::parse(["10.0.0.0/8", " 192.168.1.7 ", "172.16.5.9/12"]).unwrap();
        assert_eq!(l.len(), 3);
        assert!(l.contains(ip("10.1.2.3")));
        assert!(l.contains(ip("10.255.255.255")));
        assert!(!l.contains(ip("11.0.0.0")));
        assert!(l.contains(ip("192.168.1.7")));
        assert!(!l.contains(ip("192.168.1.8")));
        // host bits in a range are ignored, as Go's net.ParseCIDR masks them
        assert!(l.contains(ip("172.31.255.1")));
        assert!(!l.contains(ip("172.32.0.1")));
        // an IPv4 rule does not match an IPv6 address that is not IPv4-mapped
        assert!(!l.contains(ip("::a01:203")));
    }

    #[test]
    fn v6_addresses_and_ranges() {
        let l = IpList::parse(["::1", "fd00::/8", "2001:db8::/32"]).unwrap();
        assert!(l.contains(ip("::1")));
        assert!(!l.contains(ip("::2")));
        assert!(l.contains(ip("fd12:3456::1")));
        assert!(l.contains(ip("2001:db8:ffff::1")));
        assert!(!l.contains(ip("2001:db9::1")));
        assert!(!l.contains(ip("127.0.0.1")));
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_rules() {
        let l = IpList::parse(["127.0.0.0/8", "192.168.1.7"]).unwrap();
        assert!(l.contains(ip("::ffff:127.0.0.1")));
        assert!(l.contains(ip("::ffff:192.168.1.7")));
        assert!(!l.contains(ip("::ffff:192.168.1.8")));
        // and rules written in the mapped form are IPv4 rules
        let l = IpList::parse(["::ffff:10.0.0.0/104", "::ffff:1.2.3.4"]).unwrap();
        assert!(l.contains(ip("10.9.8.7")));
        assert!(l.contains(ip("1.2.3.4")));
        assert!(l.contains(ip("::ffff:1.2.3.4")));
        assert!(l.iter().any(|n| n.to_string() == "10.0.0.0/8"));
        assert!(l.iter().any(|n| n.to_string() == "1.2.3.4/32"));
    }

    #[test]
    fn bad_entries_are_named_in_the_error() {
        for (bad, needle) in [
            ("10.0.0.0/33", "is not a CIDR range"),
            ("10.0.0/8", "is not a CIDR range"),
            ("::1/129", "is not a CIDR range"),
            ("300.1.1.1", "neither an IP address nor a CIDR range"),
            ("localhost", "neither an IP address nor a CIDR range"),
            ("", "neither an IP address nor a CIDR range"),
        ] {
            let e = match IpList::parse(["10.0.0.1", bad]) {
                Err(Error::Config(text)) => text,
                other => panic!("{bad:?}: expected a configuration error, got {other:?}"),
            };
            assert!(e.contains(&format!("{bad:?}")), "{e}");
            assert!(e.contains(needle), "{e}");
        }
        let e = BlacklistPlugin::new(["nope"]).unwrap_err().to_string();
        assert!(
            e.contains("BlacklistPlugin") && e.contains("\"nope\""),
            "{e}"
        );
        let e = WhitelistPlugin::new(["1.2.3.4/40"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("WhitelistPlugin") && e.contains("\"1.2.3.4/40\""),
            "{e}"
        );
    }

    #[test]
    fn peers_without_an_ip_follow_rpcx() {
        let black = BlacklistPlugin::new(["0.0.0.0/0", "::/0"]).unwrap();
        let white = WhitelistPlugin::new(["0.0.0.0/0", "::/0"]).unwrap();
        for peer in [
            PeerAddr::Unix(None),
            PeerAddr::InProcess("arith".into()),
            PeerAddr::Other("pipe-7".into()),
        ] {
            assert!(black.allows(&peer), "{peer}");
            assert!(!white.allows(&peer), "{peer}");
        }
        let white = white.allow_non_ip(true);
        assert!(white.allows(&PeerAddr::Unix(None)));
        // a user-named peer that is an address is matched as one
        assert!(!black.allows(&PeerAddr::Other("10.1.1.1:80".into())));
        assert!(!black.allows(&PeerAddr::Other("10.1.1.1".into())));
        assert_eq!(peer_ip(&PeerAddr::Other("[::1]:9".into())), Some(ip("::1")));
    }

    #[test]
    fn lists_change_at_run_time() {
        let black = BlacklistPlugin::new(["10.0.0.0/8"]).unwrap();
        let handle = black.clone();
        assert!(black.on_conn_accept(&tcp("192.168.0.1:1")));
        handle.add(["192.168.0.0/16"]).unwrap();
        assert!(!black.on_conn_accept(&tcp("192.168.0.1:1")));
        assert!(!black.on_conn_accept(&tcp("10.0.0.1:1")));
        assert_eq!(black.refused(), 2);
        assert!(handle.add(["bad"]).is_err());
        assert_eq!(black.list().len(), 2);
        handle.set(["::1"]).unwrap();
        assert!(black.on_conn_accept(&tcp("10.0.0.1:1")));
        assert!(!black.on_conn_accept(&tcp("[::1]:1")));
        assert!(handle.set(["10.0.0.0/8", "x"]).is_err());
        assert_eq!(black.list().len(), 1);

        let white = WhitelistPlugin::new(Vec::<String>::new()).unwrap();
        assert!(!white.on_conn_accept(&tcp("127.0.0.1:1")));
        white.set(vec!["127.0.0.1".to_string()]).unwrap();
        assert!(white.on_conn_accept(&tcp("127.0.0.1:1")));
        assert!(white.on_conn_accept(&tcp("[::ffff:127.0.0.1]:1")));
        assert_eq!(white.refused(), 1);
        let mut l = IpList::new();
        l.insert("127.0.0.1/32").unwrap();
        assert_eq!(*white.list(), l);
    }
}
