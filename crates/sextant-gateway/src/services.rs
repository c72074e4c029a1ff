//! The XClients of the gateway, one per service path, made on first use and bounded.
//!
//! - A service path gets a slot in the table when it is first asked for; the first request
//!   makes its XClient (the template discovery's `clone_for`, then the XClient) while later ones
//!   wait for it. A failed attempt leaves no slot behind.
//! - A discovery that lists no server is closed and not kept: the request is answered "no
//!   server", and random service paths leave nothing behind when a registry has no servers
//!   for them.
//! - At most `max` slots; past that, new service paths are refused.
//! - A slot unused for `idle` (no call running, none started since) is closed by
//!   [`Services::sweep`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sextant::{FailMode, SelectMode, ServiceDiscovery, XClient, XClientOptions};
use tokio::sync::OnceCell;

/// Why a request could not get the XClient of its service.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The table is full.
    TooMany(usize),
    /// The gateway is shutting down.
    Closed,
    /// The discovery lists no server of the service.
    NoServer,
    /// The template discovery could not be cloned, or the XClient not built.
    Create(sextant::Error),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooMany(max) => write!(
                f,
                "too many service paths: the gateway serves at most {max} services at once; \
                 new ones are refused until idle ones are dropped"
            ),
            Refusal::Closed => f.write_str("the gateway is shutting down"),
            Refusal::NoServer => f.write_str("no server available"),
            Refusal::Create(e) => write!(f, "cannot discover the service: {e}"),
        }
    }
}

/// What an XClient is made with.
pub(crate) struct XClientSettings {
    pub(crate) fail_mode: FailMode,
    pub(crate) select_mode: SelectMode,
    pub(crate) options: XClientOptions,
}

struct Entry {
    xclient: XClient,
    discovery: Arc<dyn ServiceDiscovery>,
}

impl Entry {
    fn close(&self) {
        self.xclient.close();
        self.discovery.close();
    }
}

struct Slot {
    entry: OnceCell<Entry>,
    /// Milliseconds since the table's epoch when a call last ended here.
    last_used: AtomicU64,
    /// Requests holding a [`Lease`] on this slot.
    in_flight: AtomicUsize,
}

struct State {
    slots: HashMap<Arc<str>, Arc<Slot>>,
    closed: bool,
}

/// The table of XClients.
pub(crate) struct Services {
    template: Arc<dyn ServiceDiscovery>,
    settings: XClientSettings,
    max: usize,
    idle: Duration,
    epoch: Instant,
    state: Mutex<State>,
}

/// A request's hold on its service's XClient: while held, the XClient is not dropped for
/// idleness.
pub(crate) struct Lease<'a> {
    services: &'a Services,
    slot: Arc<Slot>,
}

impl Lease<'_> {
    /// The XClient (the slot is initialized before a lease is handed out).
    pub(crate) fn xclient(&self) -> Option<&XClient> {
        self.slot.entry.get().map(|e| &e.xclient)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.slot
            .last_used
            .store(self.services.now_ms(), Ordering::Relaxed);
        self.slot.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Services {
    pub(crate) fn new(
        template: Arc<dyn ServiceDiscovery>,
        settings: XClientSettings,
        max: usize,
        idle: Duration,
    ) -> Services {
        Services {
            template,
            settings,
            max,
            idle,
            epoch: Instant::now(),
            state: Mutex::new(State {
                slots: HashMap::new(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The number of service paths in the table (being made included).
    pub(crate) fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// The service paths that have an XClient, sorted.
    pub(crate) fn paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .lock()
            .slots
            .iter()
            .filter(|(_, s)| s.entry.initialized())
            .map(|(k, _)| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// The XClient of `path`, made if needed.
    pub(crate) async fn get(&self, path: &str) -> Result<Lease<'_>, Refusal> {
        let slot = {
            let mut st = self.lock();
            if st.closed {
                return Err(Refusal::Closed);
            }
            let slot = match st.slots.get(path) {
                Some(s) => s.clone(),
                None => {
                    if st.slots.len() >= self.max {
                        return Err(Refusal::TooMany(self.max));
                    }
                    let s = Arc::new(Slot {
                        entry: OnceCell::new(),
                        last_used: AtomicU64::new(self.now_ms()),
                        in_flight: AtomicUsize::new(0),
                    });
                    st.slots.insert(Arc::from(path), s.clone());
                    s
                }
            };
            slot.in_flight.fetch_add(1, Ordering::AcqRel);
            slot
        };
        let lease = Lease {
            services: self,
            slot: slot.clone(),
        };
        match slot.entry.get_or_try_init(|| self.create(path)).await {
            Ok(entry) => {
                if self.lock().closed {
                    // Made while the gateway shut down: close_all may have missed it.
                    entry.close();
                    return Err(Refusal::Closed);
                }
                Ok(lease)
            }
            Err(e) => {
                drop(lease);
                let mut st = self.lock();
                let ours = st.slots.get(path).is_some_and(|s| Arc::ptr_eq(s, &slot));
                if ours && !slot.entry.initialized() && slot.in_flight.load(Ordering::Acquire) == 0
                {
                    st.slots.remove(path);
                }
                Err(e)
            }
        }
    }

    async fn create(&self, path: &str) -> Result<Entry, Refusal> {
        let discovery = self
            .template
            .clone_for(path)
            .await
            .map_err(Refusal::Create)?;
        if discovery.get_services().is_empty() {
            discovery.close();
            return Err(Refusal::NoServer);
        }
        let s = &self.settings;
        let built = XClient::builder(path)
            .fail_mode(s.fail_mode)
            .select_mode(s.select_mode)
            .discovery(discovery.clone())
            .options(s.options.clone())
            .build();
        match built {
            Ok(xclient) => {
                tracing::debug!(service = path, "gateway: new XClient");
                Ok(Entry { xclient, discovery })
            }
            Err(e) => {
                discovery.close();
                Err(Refusal::Create(e))
            }
        }
    }

    /// Closes the XClients unused for the idle timeout; returns how many.
    pub(crate) fn sweep(&self) -> usize {
        let now = self.now_ms();
        let idle = self.idle.as_millis() as u64;
        let mut gone = Vec::new();
        {
            let mut st = self.lock();
            st.slots.retain(|path, s| {
                let unused = s.in_flight.load(Ordering::Acquire) == 0;
                let old = now.saturating_sub(s.last_used.load(Ordering::Relaxed)) >= idle;
                if unused && (old || !s.entry.initialized()) {
                    gone.push((path.clone(), s.clone()));
                    false
                } else {
                    true
                }
            });
        }
        for (path, s) in &gone {
            if let Some(e) = s.entry.get() {
                tracing::debug!(service = &**path, "gateway: closing an idle XClient");
                e.close();
            }
        }
        gone.len()
    }

    /// Refuses new requests and closes every XClient and its discovery.
    pub(crate) fn close_all(&self) {
        let slots: Vec<Arc<Slot>> = {
            let mut st = self.lock();
            st.closed = true;
            st.slots.drain().map(|(_, s)| s).collect()
        };
        for s in slots {
            if let Some(e) = s.entry.get() {
                e.close();
            }
        }
    }
}
