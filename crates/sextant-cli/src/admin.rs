//! `sextant list`, `describe`, `set` and `watch`: a registry's services and servers as an
//! operator sees them (rpcx-ui's views, on the command line), on any registry a URL names.
//!
//! Everything is read from the registry itself, laid out as rpcx lays it out:
//! `{base}/{service}/{network}@{host}:{port}` holding the server's metadata query string. `set`
//! edits a server's entry as rpcx-ui does (read the query string, set the keys, write it back),
//! through [`AdminStore::update`], which keeps the entry's lease or session the server's: the
//! server's own refreshes keep every key they do not own (`state`, `weight`, ...), so the edit
//! stays until someone changes it again, and the entry still goes when the server does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use sextant_registry::{Listing, QueryValues};

use crate::duration::parse as parse_duration;
use crate::registry_url::{self, AdminStore, Opened};
use crate::CliError;

/// How long one registry request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the registry is, for every command of this module.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// The registry: `etcd://h:p[,h:p]/base`, zookeeper://…, redis://…, consul://…, or
    /// http://h:p for the embedded registry (`sextant registry`). Also $SEXTANT_REGISTRY.
    #[arg(
        long,
        env = "SEXTANT_REGISTRY",
        default_value = "http://127.0.0.1:9980"
    )]
    pub registry: String,
    /// The base path services are under, when the registry URL has none.
    #[arg(long, default_value = "/rpcx")]
    pub base_path: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `sextant list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Only services whose name contains this text (case-insensitive).
    #[arg(long)]
    filter: Option<String>,
}

/// `sextant describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The service (its path: `Arith`).
    service: String,
}

/// `sextant set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The service (`Arith`).
    service: String,
    /// The server: its registry key (`tcp@127.0.0.1:8972`), or `host:port` if one network has it.
    server: String,
    /// `key=value` pairs to set (`state=inactive`, `weight=5`); `key=` sets an empty value.
    #[arg(value_name = "KEY=VALUE")]
    pairs: Vec<String>,
    /// Keys to remove (repeatable).
    #[arg(long = "unset", value_name = "KEY")]
    unset: Vec<String>,
}

/// `sextant watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Only this service (default: every service under the base path).
    service: Option<String>,
    /// Stop after this many changes.
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this long (`30s`, `5m`).
    #[arg(long = "for", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Do not report changes that touch only the rate figures a server refreshes (`calls`,
    /// `connections`, `tps`).
    #[arg(long)]
    no_rates: bool,
}

/// One server as the registry lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerEntry {
    /// The registry key's last part: `tcp@127.0.0.1:8972`.
    pub address: String,
    /// The value as stored (or why it could not be read).
    pub value: String,
    /// Whether the value is a metadata query string; if not, it is shown raw and flagged.
    pub valid: bool,
    /// The metadata, parsed (empty when not valid).
    pub metadata: BTreeMap<String, String>,
}

impl ServerEntry {
    fn new(address: String, value: Result<String, String>) -> ServerEntry {
        match value {
            Ok(value) => match QueryValues::parse(&value) {
                Ok(q) => ServerEntry {
                    address,
                    metadata: q
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.join(",")))
                        .collect(),
                    value,
                    valid: true,
                },
                Err(_) => ServerEntry {
                    address,
                    value,
                    valid: false,
                    metadata: BTreeMap::new(),
                },
            },
            Err(why) => ServerEntry {
                address,
                value: format!("<unreadable: {why}>"),
                valid: false,
                metadata: BTreeMap::new(),
            },
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Whether rpcx clients call it: everything but `state=inactive`.
    pub fn active(&self) -> bool {
        self.get("state") != Some("inactive")
    }
}

/// Every service under a base path with its servers, sorted by name.
pub type Services = BTreeMap<String, Vec<ServerEntry>>;

async fn timed<T>(
    store: &dyn AdminStore,
    what: &str,
    f: impl std::future::Future<Output = sextant_registry::Result<T>>,
) -> Result<T, CliError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CliError::transport(format!("{what}: {e}"))),
        Err(_) => Err(CliError::transport(format!(
            "{what}: the {} registry at {} did not answer within {}s",
            store.engine(),
            store.endpoints(),
            REQUEST_TIMEOUT.as_secs()
        ))),
    }
}

/// Reads every service and server under `base` (or only `service`).
///
/// Engines that list by prefix (etcd, Redis, Consul, the embedded registry) give
/// `service/server` children in one listing; ZooKeeper gives the service nodes, each then listed
/// on its own. Keys deeper than `service/server` are not servers and are left out.
pub async fn browse(
    store: &dyn AdminStore,
    base: &str,
    service: Option<&str>,
) -> Result<Services, CliError> {
    let mut services = Services::new();
    if let Some(service) = service {
        let dir = format!("{base}/{service}");
        let listing = timed(store, &format!("list {dir}"), store.list(&dir)).await?;
        let servers = services.entry(service.to_string()).or_default();
        for e in listing.entries {
            if !e.child.is_empty() && !e.child.contains('/') {
                servers.push(ServerEntry::new(e.child, e.value));
            }
        }
        servers.sort_by(|a, b| a.address.cmp(&b.address));
        return Ok(services);
    }
    let listing = timed(store, &format!("list {base}"), store.list(base)).await?;
    let mut directories = Vec::new();
    for e in listing.entries {
        match e.child.split_once('/') {
            Some((svc, server))
                if !svc.is_empty() && !server.is_empty() && !server.contains('/') =>
            {
                services
                    .entry(svc.to_string())
                    .or_default()
                    .push(ServerEntry::new(server.to_string(), e.value));
            }
            Some(_) => {}
            None if !e.child.is_empty() => directories.push(e.child),
            None => {}
        }
    }
    for svc in directories {
        if services.contains_key(&svc) {
            continue; // a directory key (rpcx's etcd plugin writes one) whose servers are listed
        }
        let dir = format!("{base}/{svc}");
        let listing = timed(store, &format!("list {dir}"), store.list(&dir)).await?;
        let servers = services.entry(svc).or_default();
        for e in listing.entries {
            if !e.child.is_empty() && !e.child.contains('/') {
                servers.push(ServerEntry::new(e.child, e.value));
            }
        }
    }
    for servers in services.values_mut() {
        servers.sort_by(|a, b| a.address.cmp(&b.address));
    }
    Ok(services)
}

/// Text from a registry made safe for a terminal: control characters (an ANSI escape a registry
/// value smuggles in) are shown escaped.
pub fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    out
}

async fn open(args: &RegistryArgs) -> Result<Opened, CliError> {
    registry_url::open(&args.registry, &args.base_path).await
}

fn json_line(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// `sextant list`: the services with their server counts.
pub async fn list(args: ListArgs) -> Result<(), CliError> {
    let opened = open(&args.registry).await?;
    let mut services = browse(opened.store.as_ref(), &opened.base, None).await?;
    if let Some(f) = &args.filter {
        let f = f.to_lowercase();
        services.retain(|name, _| name.to_lowercase().contains(&f));
    }
    print!("{}", render_list(&services, args.registry.json));
    Ok(())
}

#[derive(Serialize)]
struct ListRow<'a> {
    service: &'a str,
    servers: usize,
    active: usize,
}

fn render_list(services: &Services, json: bool) -> String {
    if json {
        let rows: Vec<ListRow<'_>> = services
            .iter()
            .map(|(name, servers)| ListRow {
                service: name,
                servers: servers.len(),
                active: servers.iter().filter(|s| s.active()).count(),
            })
            .collect();
        return json_line(&rows) + "\n";
    }
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|(name, servers)| {
            vec![
                printable(name),
                servers.len().to_string(),
                servers.iter().filter(|s| s.active()).count().to_string(),
            ]
        })
        .collect();
    let mut out = table(&["SERVICE", "SERVERS", "ACTIVE"], &rows);
    let _ = writeln!(
        out,
        "{} services, {} servers",
        services.len(),
        services.values().map(Vec::len).sum::<usize>()
    );
    out
}

/// `sextant describe SERVICE`: its servers with address, group, weight, state, rates and
/// metadata.
pub async fn describe(args: DescribeArgs) -> Result<(), CliError> {
    let opened = open(&args.registry).await?;
    let services = browse(opened.store.as_ref(), &opened.base, Some(&args.service)).await?;
    let servers = services.get(&args.service).cloned().unwrap_or_default();
    if servers.is_empty() {
        return Err(CliError::not_found(format!(
            "no server of {:?} under {} in the {} registry at {}",
            args.service,
            opened.base,
            opened.store.engine(),
            opened.store.endpoints()
        )));
    }
    print!(
        "{}",
        render_describe(&args.service, &servers, args.registry.json)
    );
    Ok(())
}

#[derive(Serialize)]
struct Described<'a> {
    service: &'a str,
    servers: &'a [ServerEntry],
}

fn render_describe(service: &str, servers: &[ServerEntry], json: bool) -> String {
    if json {
        return json_line(&Described { service, servers }) + "\n";
    }
    let dash = |v: Option<&str>| v.filter(|v| !v.is_empty()).unwrap_or("-").to_string();
    let rows: Vec<Vec<String>> = servers
        .iter()
        .map(|s| {
            let value = if s.valid {
                printable(&s.value)
            } else {
                format!("{} (not a metadata query string)", printable(&s.value))
            };
            vec![
                printable(&s.address),
                printable(&dash(s.get("group"))),
                printable(&dash(s.get("weight"))),
                if s.active() { "active" } else { "inactive" }.to_string(),
                printable(&dash(s.get("calls"))),
                printable(&dash(s.get("tps"))),
                value,
            ]
        })
        .collect();
    let mut out = format!("{} ({} servers)\n", printable(service), servers.len());
    out.push_str(&table(
        &[
            "ADDRESS", "GROUP", "WEIGHT", "STATE", "CALLS", "TPS", "METADATA",
        ],
        &rows,
    ));
    out
}

/// The registry key of `server` under `service`: `server` as given if it is listed, else the
/// one listed address whose `host:port` it is.
fn resolve_server(
    service: &str,
    servers: &[ServerEntry],
    server: &str,
) -> Result<String, CliError> {
    if servers.iter().any(|s| s.address == server) {
        return Ok(server.to_string());
    }
    let matches: Vec<&ServerEntry> = servers
        .iter()
        .filter(|s| s.address.split_once('@').is_some_and(|(_, a)| a == server))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.address.clone()),
        [] => {
            let known: Vec<&str> = servers.iter().map(|s| s.address.as_str()).collect();
            Err(CliError::not_found(format!(
                "{service:?} has no server {server:?}{}",
                if known.is_empty() {
                    " (it has no servers)".to_string()
                } else {
                    format!("; its servers are {}", known.join(", "))
                }
            )))
        }
        many => Err(CliError::usage(format!(
            "{server:?} is listed under several networks ({}): give the whole key",
            many.iter()
                .map(|s| s.address.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The edits of `sextant set`, parsed: pairs to set and keys to remove.
pub fn parse_edits(
    pairs: &[String],
    unset: &[String],
) -> Result<Vec<(String, Option<String>)>, CliError> {
    if pairs.is_empty() && unset.is_empty() {
        return Err(CliError::usage(
            "nothing to set: give key=value pairs (state=inactive weight=5) or --unset KEY",
        ));
    }
    let mut edits = Vec::new();
    for p in pairs {
        let Some((k, v)) = p.split_once('=') else {
            return Err(CliError::usage(format!(
                "{p:?} is not key=value (write state=inactive, or --unset {p})"
            )));
        };
        check_key(k)?;
        if v.chars().any(char::is_control) {
            return Err(CliError::usage(format!(
                "the value of {k:?} holds a control character"
            )));
        }
        edits.push((k.to_string(), Some(v.to_string())));
    }
    for k in unset {
        check_key(k)?;
        edits.push((k.to_string(), None));
    }
    Ok(edits)
}

fn check_key(k: &str) -> Result<(), CliError> {
    if k.is_empty() || k.chars().any(char::is_control) {
        return Err(CliError::usage(format!(
            "{k:?} is not a metadata key (a non-empty name without control characters)"
        )));
    }
    Ok(())
}

/// The largest metadata value `set` writes: rpcx metadata is a few short pairs.
pub const MAX_VALUE: usize = 64 * 1024;

/// Applies `edits` to the query string `current` (rewritten as Go's `Values.Encode` does).
pub fn apply_edits(current: &str, edits: &[(String, Option<String>)]) -> Result<String, CliError> {
    let mut q = QueryValues::parse(current).map_err(|e| {
        CliError::not_found(format!(
            "the entry's value is not a metadata query string ({e}); not editing it"
        ))
    })?;
    for (k, v) in edits {
        match v {
            Some(v) => q.set(k.clone(), v.clone()),
            None => q.remove(k),
        }
    }
    let value = q.encode();
    if value.len() > MAX_VALUE {
        return Err(CliError::usage(format!(
            "the metadata would be {} bytes; at most {MAX_VALUE} are written",
            value.len()
        )));
    }
    Ok(value)
}

/// `sextant set SERVICE SERVER key=value…`: edits one server's metadata in the registry.
pub async fn set(args: SetArgs) -> Result<(), CliError> {
    let edits = parse_edits(&args.pairs, &args.unset)?;
    let opened = open(&args.registry).await?;
    let store = opened.store.as_ref();
    let services = browse(store, &opened.base, Some(&args.service)).await?;
    let servers = services.get(&args.service).cloned().unwrap_or_default();
    let address = resolve_server(&args.service, &servers, &args.server)?;
    let key = format!("{}/{}/{}", opened.base, args.service, address);
    let current = timed(store, &format!("get {key}"), store.get(&key))
        .await?
        .ok_or_else(|| CliError::not_found(format!("{key} is gone from the registry")))?;
    let value = apply_edits(&current, &edits)?;
    if !timed(store, &format!("update {key}"), store.update(&key, &value)).await? {
        return Err(CliError::not_found(format!(
            "{key} went from the registry while it was being edited"
        )));
    }
    if args.registry.json {
        let entry = ServerEntry::new(address, Ok(value));
        println!(
            "{}",
            json_line(&Described {
                service: &args.service,
                servers: std::slice::from_ref(&entry),
            })
        );
    } else {
        println!("{} {}", printable(&key), printable(&value));
    }
    Ok(())
}

/// One change `sextant watch` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Change {
    /// A server appeared.
    Added {
        /// The service.
        service: String,
        /// The server's address.
        address: String,
        /// Its value.
        value: String,
    },
    /// A server's value changed.
    Changed {
        /// The service.
        service: String,
        /// The server's address.
        address: String,
        /// The value before.
        old: String,
        /// The value now.
        value: String,
    },
    /// A server went.
    Removed {
        /// The service.
        service: String,
        /// The server's address.
        address: String,
    },
}

impl Change {
    fn render(&self, json: bool) -> String {
        if json {
            return json_line(self);
        }
        match self {
            Change::Added {
                service,
                address,
                value,
            } => format!(
                "+ {} {} {}",
                printable(service),
                printable(address),
                printable(value)
            ),
            Change::Changed {
                service,
                address,
                value,
                ..
            } => format!(
                "~ {} {} {}",
                printable(service),
                printable(address),
                printable(value)
            ),
            Change::Removed { service, address } => {
                format!("- {} {}", printable(service), printable(address))
            }
        }
    }
}

/// The metadata without the figures a server's refresh rewrites.
fn without_rates(value: &str) -> String {
    match QueryValues::parse(value) {
        Ok(mut q) => {
            for k in ["calls", "connections", "tps"] {
                q.remove(k);
            }
            q.encode()
        }
        Err(_) => value.to_string(),
    }
}

/// What changed from `before` to `after`, in service and address order.
pub fn diff(before: &Services, after: &Services, no_rates: bool) -> Vec<Change> {
    let flat = |s: &Services| -> BTreeMap<(String, String), String> {
        s.iter()
            .flat_map(|(svc, servers)| {
                servers
                    .iter()
                    .map(move |e| ((svc.clone(), e.address.clone()), e.value.clone()))
            })
            .collect()
    };
    let (a, b) = (flat(before), flat(after));
    let mut changes = Vec::new();
    for ((service, address), old) in &a {
        match b.get(&(service.clone(), address.clone())) {
            None => changes.push(Change::Removed {
                service: service.clone(),
                address: address.clone(),
            }),
            Some(value) if value != old => {
                if !no_rates || without_rates(value) != without_rates(old) {
                    changes.push(Change::Changed {
                        service: service.clone(),
                        address: address.clone(),
                        old: old.clone(),
                        value: value.clone(),
                    });
                }
            }
            Some(_) => {}
        }
    }
    for ((service, address), value) in &b {
        if !a.contains_key(&(service.clone(), address.clone())) {
            changes.push(Change::Added {
                service: service.clone(),
                address: address.clone(),
                value: value.clone(),
            });
        }
    }
    changes.sort_by(|x, y| key_of(x).cmp(&key_of(y)));
    changes
}

fn key_of(c: &Change) -> (&str, &str) {
    match c {
        Change::Added {
            service, address, ..
        }
        | Change::Changed {
            service, address, ..
        }
        | Change::Removed { service, address } => (service, address),
    }
}

/// `sextant watch [SERVICE]`: the servers as they are, then every change as it happens, until
/// `--count` changes, `--for` or Ctrl-C. A broken watch is started again with backoff (up to
/// 5 s); what changed meanwhile is reported once it is back.
pub async fn watch(args: WatchArgs) -> Result<(), CliError> {
    let opened = open(&args.registry).await?;
    let json = args.registry.json;
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let run = watch_loop(&opened, &args, json);
    let stopped = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = run => r,
        () = stopped => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn watch_loop(opened: &Opened, args: &WatchArgs, json: bool) -> Result<(), CliError> {
    use std::io::Write as _;
    let store = opened.store.as_ref();
    let service = args.service.as_deref();
    let dir = match service {
        Some(s) => format!("{}/{s}", opened.base),
        None => opened.base.clone(),
    };
    let mut current = browse(store, &opened.base, service).await?;
    for c in diff(&Services::new(), &current, false) {
        println!("{}", c.render(json));
    }
    let _ = std::io::stdout().flush();
    let mut reported = 0u64;
    let mut backoff = Duration::from_millis(100);
    loop {
        // The watch starts from a listing; a second look after it is in place catches what
        // changed in between on engines whose watches do not resume from a listing.
        let listing: Listing = match timed(store, &format!("list {dir}"), store.list(&dir)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("sextant watch: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let mut w = match timed(store, &format!("watch {dir}"), store.watch(&dir, &listing)).await {
            Ok(w) => w,
            Err(e) => {
                eprintln!("sextant watch: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        loop {
            let next = match browse(store, &opened.base, service).await {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("sextant watch: {e}");
                    break;
                }
            };
            for c in diff(&current, &next, args.no_rates) {
                println!("{}", c.render(json));
                reported += 1;
                if args.count.is_some_and(|n| reported >= n) {
                    let _ = std::io::stdout().flush();
                    return Ok(());
                }
            }
            let _ = std::io::stdout().flush();
            current = next;
            backoff = Duration::from_millis(100);
            if let Err(e) = w.changed().await {
                eprintln!("sextant watch: the watch broke ({e}); starting it again");
                tokio::time::sleep(backoff).await;
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(address: &str, value: &str) -> ServerEntry {
        ServerEntry::new(address.to_string(), Ok(value.to_string()))
    }

    #[test]
    fn entries_parse_or_are_flagged() {
        let e = entry("tcp@h:1", "group=a&weight=5&state=inactive");
        assert!(e.valid && !e.active());
        assert_eq!(e.get("weight"), Some("5"));
        let e = entry("tcp@h:1", "%zz not a query");
        assert!(!e.valid && e.active());
        assert_eq!(e.value, "%zz not a query");
        let e = ServerEntry::new("tcp@h:1".into(), Err("value is not UTF-8".into()));
        assert!(!e.valid);
        assert!(e.value.contains("not UTF-8"));
    }

    #[test]
    fn values_are_printed_safely() {
        assert_eq!(printable("a=b"), "a=b");
        assert_eq!(printable("x\u{1b}[31mred"), "x\\u{1b}[31mred");
        let mut s = Services::new();
        s.insert(
            "Evil\u{1b}]0;title\u{7}".into(),
            vec![entry("tcp@h:1", "x=1")],
        );
        let out = render_list(&s, false);
        assert!(!out.contains('\u{1b}'), "{out}");
        let out = render_describe("S", &[entry("tcp@h:1", "a=%zz\u{1b}")], false);
        assert!(
            !out.contains('\u{1b}') && out.contains("not a metadata query string"),
            "{out}"
        );
        // JSON escapes them its own way.
        assert!(render_list(&s, true).contains("\\u001b"));
    }

    #[test]
    fn edits() {
        let e = parse_edits(
            &["state=inactive".into(), "weight=5".into()],
            &["tps".into()],
        )
        .unwrap();
        let v = apply_edits("weight=1&tps=3&group=g", &e).unwrap();
        assert_eq!(v, "group=g&state=inactive&weight=5");
        assert_eq!(parse_edits(&[], &[]).unwrap_err().code, 2);
        assert_eq!(parse_edits(&["novalue".into()], &[]).unwrap_err().code, 2);
        assert_eq!(parse_edits(&["=x".into()], &[]).unwrap_err().code, 2);
        let big = format!("k={}", "x".repeat(MAX_VALUE + 1));
        let e = parse_edits(&[big], &[]).unwrap();
        assert_eq!(apply_edits("", &e).unwrap_err().code, 2);
        // A value that is not a query string is not edited.
        let e = parse_edits(&["a=b".into()], &[]).unwrap();
        assert_eq!(apply_edits("%zz", &e).unwrap_err().code, 1);
    }

    #[test]
    fn servers_resolve_by_key_or_address() {
        let servers = [
            entry("tcp@h:1", ""),
            entry("quic@h:2", ""),
            entry("kcp@h:2", ""),
        ];
        assert_eq!(resolve_server("S", &servers, "tcp@h:1").unwrap(), "tcp@h:1");
        assert_eq!(resolve_server("S", &servers, "h:1").unwrap(), "tcp@h:1");
        let e = resolve_server("S", &servers, "h:2").unwrap_err();
        assert!(e.message.contains("several networks"), "{}", e.message);
        let e = resolve_server("S", &servers, "h:3").unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.message.contains("tcp@h:1"), "{}", e.message);
    }

    #[test]
    fn diffs() {
        let mut a = Services::new();
        a.insert(
            "A".into(),
            vec![entry("tcp@h:1", "weight=1&tps=1"), entry("tcp@h:2", "")],
        );
        let mut b = Services::new();
        b.insert(
            "A".into(),
            vec![entry("tcp@h:1", "weight=1&tps=9"), entry("tcp@h:3", "x=1")],
        );
        let changes = diff(&a, &b, false);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(matches!(&changes[0], Change::Changed { address, .. } if address == "tcp@h:1"));
        assert!(matches!(&changes[1], Change::Removed { address, .. } if address == "tcp@h:2"));
        assert!(matches!(&changes[2], Change::Added { address, .. } if address == "tcp@h:3"));
        // Rate figures only: hidden with --no-rates.
        assert_eq!(diff(&a, &b, true).len(), 2);
        let line = changes[2].render(true);
        assert_eq!(
            line,
            r#"{"event":"added","service":"A","address":"tcp@h:3","value":"x=1"}"#
        );
    }
}
