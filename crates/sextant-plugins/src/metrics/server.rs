//! The server side: [`MetricsPlugin`]'s [`ServerPlugin`] hooks and the per-method label sets they
//! count on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures::future::BoxFuture;
use sextant::{
    Address, CallHooks, CallOutcome, Context, Server, ServerPlugin, ServerStats, Verdict,
};

use super::in_flight::InFlight;
use super::stats::{MethodMap, MethodStats};
use super::{lock, MetricsPlugin, UNKNOWN};

/// What the plugin knows of the server it is installed on.
enum Attached {
    /// Not listening yet.
    None,
    /// Listening: a clone, held until shutdown starts (see the module docs on reference cycles).
    Live(Server),
    /// Shut down: its last figures.
    Gone(ServerStats),
}

pub(crate) struct ServerState {
    /// The registered methods' label sets, replaced wholesale on (un)registration so that the
    /// call path reads them without a lock.
    methods: ArcSwap<MethodMap>,
    /// The one label set of every call to an unknown service or method.
    unknown: Arc<MethodStats>,
    in_flight: InFlight,
    /// Set once the plugin has seen a server (a registration or a listener): until then the
    /// server families are not exported.
    installed: AtomicBool,
    server: Mutex<Attached>,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("services", &self.methods.load().services())
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

/// The call's id: unique among the calls in flight, the same in every hook of one call.
fn call_key(ctx: &Context) -> usize {
    ctx.call_id()
}

impl ServerState {
    pub(crate) fn new(in_flight_capacity: usize) -> ServerState {
        ServerState {
            methods: ArcSwap::from_pointee(MethodMap::default()),
            unknown: Arc::new(MethodStats::new(UNKNOWN, UNKNOWN)),
            in_flight: InFlight::new(in_flight_capacity),
            installed: AtomicBool::new(false),
            server: Mutex::new(Attached::None),
        }
    }

    pub(crate) fn is_installed(&self) -> bool {
        self.installed.load(Ordering::Relaxed)
    }

    fn new_stats(&self, service: &str, method: &str) -> Arc<MethodStats> {
        if service == UNKNOWN && method == UNKNOWN {
            // A service really named so shares the unknown label set rather than export a
            // second series with the same labels.
            return self.unknown.clone();
        }
        Arc::new(MethodStats::new(service, method))
    }

    /// Makes the label sets of `service` match the methods registered under it now: new ones
    /// added, gone ones removed, the figures of the others kept.
    fn sync_service(&self, service: &str, methods: &[String]) {
        self.methods.rcu(|cur| {
            let mut map = MethodMap::clone(cur);
            let old = map.remove_service(service);
            for m in methods {
                let stats = old
                    .get(m.as_str())
                    .cloned()
                    .unwrap_or_else(|| self.new_stats(service, m));
                map.insert(service, m, stats);
            }
            map
        });
    }

    /// The label set of a call that was routed to a method registered after the plugin last
    /// looked (a registration racing with the call): added once.
    fn add_method(&self, service: &str, method: &str) -> Arc<MethodStats> {
        let mut added = None;
        self.methods.rcu(|cur| {
            let mut map = MethodMap::clone(cur);
            let stats = match map.get(service, method) {
                Some(s) => s.clone(),
                None => {
                    let s = self.new_stats(service, method);
                    map.insert(service, method, s.clone());
                    s
                }
            };
            added = Some(stats);
            map
        });
        added.unwrap_or_else(|| self.unknown.clone())
    }

    /// Runs `f` on the label set of `service.method`, or on the unknown one.
    fn with_stats<R>(
        &self,
        service: &str,
        method: &str,
        f: impl FnOnce(&Arc<MethodStats>) -> R,
    ) -> R {
        let map = self.methods.load();
        let stats = map.get(service, method).unwrap_or(&self.unknown);
        f(stats)
    }

    fn pre_call(&self, ctx: &Context) {
        let key = call_key(ctx);
        self.with_stats(ctx.service_path(), ctx.service_method(), |s| {
            self.in_flight.enter(key, s)
        });
    }

    fn finish(&self, ctx: &Context, outcome: &CallOutcome) {
        let (elapsed, failed) = (outcome.elapsed(), !outcome.is_ok());
        // A call pre_call counted is finished on the label set it was counted on, even if its
        // service was unregistered meanwhile.
        if let Some(stats) = self.in_flight.leave(call_key(ctx)) {
            stats.record(elapsed, failed);
            return;
        }
        let (service, method) = (ctx.service_path(), ctx.service_method());
        let missing = {
            let map = self.methods.load();
            match map.get(service, method) {
                Some(stats) => {
                    stats.record(elapsed, failed);
                    false
                }
                None if outcome.routed() => true,
                None => {
                    self.unknown.record(elapsed, failed);
                    false
                }
            }
        };
        if missing {
            self.add_method(service, method).record(elapsed, failed);
        }
    }

    /// Every label set, sorted by service and method, the unknown one last.
    pub(crate) fn all_stats(&self) -> Vec<Arc<MethodStats>> {
        let map = self.methods.load();
        let mut v: Vec<Arc<MethodStats>> = map
            .values()
            .filter(|s| !Arc::ptr_eq(s, &self.unknown))
            .cloned()
            .collect();
        v.sort_by(|a, b| (&a.service, &a.method).cmp(&(&b.service, &b.method)));
        v.push(self.unknown.clone());
        v
    }

    /// The server's counters: live while it listens, the last ones once it has shut down.
    pub(crate) fn server_stats(&self) -> Option<ServerStats> {
        match &*lock(&self.server) {
            Attached::None => None,
            Attached::Live(s) => Some(s.stats()),
            Attached::Gone(stats) => Some(*stats),
        }
    }

    /// A clone of the server while it listens.
    pub(crate) fn server(&self) -> Option<Server> {
        match &*lock(&self.server) {
            Attached::Live(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Calls not counted as in flight because the in-flight table was full.
    pub(crate) fn untracked(&self) -> u64 {
        self.in_flight.untracked.load(Ordering::Relaxed)
    }
}

impl ServerPlugin for MetricsPlugin {
    fn call_hooks(&self) -> CallHooks {
        CallHooks::PRE_CALL | CallHooks::POST_WRITE_RESPONSE
    }

    fn on_listen(&self, server: &Server, _address: &Address) {
        let state = &self.shared.server;
        state.installed.store(true, Ordering::Relaxed);
        // Held from here until on_shutdown: a listening server lives until it is shut down
        // anyway (its accept loop holds it), so this clone keeps nothing alive longer.
        *lock(&state.server) = Attached::Live(server.clone());
    }

    fn on_register(&self, server: &Server, service_path: &str, _metadata: &str) {
        let state = &self.shared.server;
        state.installed.store(true, Ordering::Relaxed);
        state.sync_service(service_path, &server.method_names(service_path));
    }

    fn on_unregister(&self, _server: &Server, service_path: &str) {
        self.shared.server.sync_service(service_path, &[]);
    }

    fn on_shutdown(&self, server: &Server) -> BoxFuture<'static, ()> {
        // Lets go of the server (breaking the cycle server → plugin → server) and keeps its
        // last figures for the scrapes that may still come.
        *lock(&self.shared.server.server) = Attached::Gone(server.stats());
        Box::pin(async {})
    }

    fn pre_call(&self, ctx: &Context, _payload: &Bytes) -> Verdict {
        self.shared.server.pre_call(ctx);
        Verdict::Continue
    }

    fn post_write_response(&self, ctx: &Context, outcome: &CallOutcome, _written: bool) {
        self.shared.server.finish(ctx, outcome);
    }
}
