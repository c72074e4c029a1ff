//! Rate limits on connections and on requests, as token buckets (governor's GCRA).
//!
//! - [`RateLimitingPlugin`] (rpcx's `serverplugin.RateLimitingPlugin`) limits how fast the
//!   server accepts connections: in [`on_conn_accept`](ServerPlugin::on_conn_accept), a
//!   connection that finds no token is closed at once (the client sees its connection closed;
//!   the server goes on serving the others).
//! - [`ReqRateLimitingPlugin`] (rpcx's `serverplugin.ReqRateLimitingPlugin`) limits how fast the
//!   server takes requests: for the whole server and, if configured, per service and per
//!   service method. A request over a limit is refused with rpcx's own error text
//!   [`ERR_REQ_REACH_LIMIT`] (`request reached rate limit`, rpcx's `server.ErrReqReachLimit`),
//!   or, in blocking mode (rpcx's `block` flag), made to wait for a token; that wait ends at the
//!   call's deadline (`__ServerTimeout`), or after
//!   [`ServerOptions::max_plugin_wait`](sextant::ServerOptions::max_plugin_wait) for a call
//!   without one, and the call then fails with the deadline error.
//!
//! A limit is a [`Rate`]: so many tokens per period, and a burst (rpcx's `Capacity`): how many
//! tokens the bucket holds when nobody has used it for a while.
//!
//! ```
//! use std::time::Duration;
//! use sextant::Server;
//! use sextant_plugins::ratelimit::{Rate, RateLimitingPlugin, ReqRateLimitingPlugin};
//!
//! # fn main() -> sextant::Result<()> {
//! let server = Server::builder()
//!     // at most 10 new connections a second, 20 at once after a quiet spell
//!     .plugin(RateLimitingPlugin::new(Rate::per_second(10).with_burst(20))?)
//!     // 1000 calls a second in all, of which 100 for Arith.Mul; waiting rather than refusing
//!     .plugin(
//!         ReqRateLimitingPlugin::builder()
//!             .rate(Rate::per_second(1000))
//!             .per_method("Arith", "Mul", Rate::per_second(100))
//!             .block(true)
//!             .build()?,
//!     )
//!     .build();
//! # drop(server);
//! # Ok(())
//! # }
//! ```
//!
//! ## Accuracy, and what the burst does
//!
//! A limit of `R` per second with a burst of `b` lets at most `b + R·t` calls through in any
//! stretch of `t` seconds: a full bucket first, then one token every `1/R` s. Under a steady
//! flood the rate achieved over `t` is thus `R + b/t`: within 5% of `R` over 10 s as long as
//! `b ≤ R/2`, and the larger `t`, the less the burst counts. A burst of 1 (the default) spaces
//! calls exactly `1/R` apart, but a token nobody is there to take at its instant is lost, so
//! bursty traffic gets a little less than `R`; a burst of a few tokens absorbs that jitter
//! (the `rate_holds_over_ten_seconds` test in `tests/ratelimit.rs`, run with `--ignored`,
//! measures it: 32 callers flooding a limit of 1000/s with a burst of 10 got 1000.9/s over
//! 10 s, +0.09%, in both modes).
//!
//! ## Several limits on one call
//!
//! A call to `Arith.Mul` takes a token from each limit that applies to it, the most specific
//! first: `Arith.Mul`'s, then `Arith`'s, then the server's. A call refused by the method's limit
//! so takes nothing from the service's or the server's; one refused by the server's limit has
//! spent its method's and service's tokens (a bucket cannot be asked without taking). Only the
//! services and methods configured get a bucket of their own, so the limiter's memory does not
//! grow with the names callers send.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sextant::{CallHooks, Context, Error, PeerAddr, ServerPlugin, Verdict};

/// The error text of a request refused by a [`ReqRateLimitingPlugin`]: rpcx's
/// `server.ErrReqReachLimit`, which Go clients compare against.
pub const ERR_REQ_REACH_LIMIT: &str = "request reached rate limit";

/// A token bucket's settings: `count` tokens every `period`, and a bucket of `burst` tokens.
///
/// rpcx configures its buckets with a fill interval and a capacity
/// (`NewRateLimitingPlugin(fillInterval, capacity)`): that is
/// `Rate::every(fill_interval).with_burst(capacity)`. A rate is checked when a plugin is built
/// from it: a count, period or burst of 0 is an error then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    count: u32,
    period: Duration,
    burst: u32,
}

impl Rate {
    /// `count` tokens every `period`, with a burst of 1.
    pub const fn new(count: u32, period: Duration) -> Rate {
        Rate {
            count,
            period,
            burst: 1,
        }
    }

    /// `count` tokens a second, with a burst of 1.
    pub const fn per_second(count: u32) -> Rate {
        Rate::new(count, Duration::from_secs(1))
    }

    /// `count` tokens a minute, with a burst of 1.
    pub const fn per_minute(count: u32) -> Rate {
        Rate::new(count, Duration::from_secs(60))
    }

    /// One token every `fill_interval` (rpcx's `FillInterval`), with a burst of 1.
    pub const fn every(fill_interval: Duration) -> Rate {
        Rate::new(1, fill_interval)
    }

    /// The same rate with a bucket of `burst` tokens (rpcx's `Capacity`): how many calls may
    /// come at once after a quiet spell. See the [module docs](self) for how it bears on the
    /// rate achieved.
    pub const fn with_burst(mut self, burst: u32) -> Rate {
        self.burst = burst;
        self
    }

    /// Tokens per [`period`](Rate::period).
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// The period in which [`count`](Rate::count) tokens are added.
    pub const fn period(&self) -> Duration {
        self.period
    }

    /// The bucket's size.
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// The time between two tokens (`period / count`); zero for a count of 0.
    pub fn interval(&self) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        self.period / self.count
    }

    /// Tokens per second.
    pub fn tokens_per_second(&self) -> f64 {
        if self.period.is_zero() {
            return f64::INFINITY;
        }
        f64::from(self.count) / self.period.as_secs_f64()
    }

    /// governor's quota for this rate, or an error naming `what` and the bad setting.
    fn quota(&self, what: &str) -> Result<Quota, Error> {
        if self.count == 0 {
            return Err(Error::Config(format!(
                "{what}: a rate of 0 per {:?} lets nothing through (use a count of at least 1)",
                self.period
            )));
        }
        if self.period.is_zero() {
            return Err(Error::Config(format!(
                "{what}: a rate of {} per 0 s is no limit (use a period longer than zero)",
                self.count
            )));
        }
        let Some(burst) = NonZeroU32::new(self.burst) else {
            return Err(Error::Config(format!(
                "{what}: a burst of 0 lets nothing through (use a burst of at least 1)"
            )));
        };
        let quota = Quota::with_period(self.interval()).ok_or_else(|| {
            Error::Config(format!(
                "{what}: a rate of {} per {:?} is more than one token a nanosecond",
                self.count, self.period
            ))
        })?;
        Ok(quota.allow_burst(burst))
    }

    fn limiter(&self, what: &str) -> Result<Arc<DefaultDirectRateLimiter>, Error> {
        Ok(Arc::new(RateLimiter::direct(self.quota(what)?)))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} per {:?}, burst {}",
            self.count, self.period, self.burst
        )
    }
}

/// Waits until `limiter` has a token, and takes it. Dropping the future takes nothing.
async fn take_token(limiter: &DefaultDirectRateLimiter) {
    loop {
        match limiter.check() {
            Ok(()) => return,
            Err(not_until) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Limits how fast a server accepts connections (rpcx's `serverplugin.RateLimitingPlugin`):
/// a connection that finds the bucket empty is closed before its handshake.
///
/// Cloning gives a handle on the same bucket (to read [`refused`](Self::refused) after adding
/// the plugin to a server).
///
/// ```
/// use sextant::Server;
/// use sextant_plugins::ratelimit::{Rate, RateLimitingPlugin};
///
/// # fn main() -> sextant::Result<()> {
/// let limit = RateLimitingPlugin::new(Rate::per_second(100).with_burst(10))?;
/// let server = Server::builder().plugin(limit.clone()).build();
/// assert_eq!(limit.refused(), 0);
/// # drop(server);
/// assert!(RateLimitingPlugin::new(Rate::per_second(0)).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RateLimitingPlugin {
    limiter: Arc<DefaultDirectRateLimiter>,
    rate: Rate,
    refused: Arc<AtomicU64>,
}

impl RateLimitingPlugin {
    /// A limit of `rate` connections (rpcx's `NewRateLimitingPlugin(fillInterval, capacity)` is
    /// `Rate::every(fill_interval).with_burst(capacity)`). A count, period or burst of 0 is an
    /// [`Error::Config`].
    pub fn new(rate: Rate) -> Result<RateLimitingPlugin, Error> {
        Ok(RateLimitingPlugin {
            limiter: rate.limiter("RateLimitingPlugin")?,
            rate,
            refused: Arc::default(),
        })
    }

    /// The limit.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for RateLimitingPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitingPlugin")
            .field("rate", &self.rate)
            .field("refused", &self.refused())
            .finish()
    }
}

impl ServerPlugin for RateLimitingPlugin {
    fn call_hooks(&self) -> CallHooks {
        CallHooks::NONE
    }

    fn on_conn_accept(&self, peer: &PeerAddr) -> bool {
        if self.limiter.check().is_ok() {
            return true;
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, rate = %self.rate, "connection refused: connection rate limit reached");
        false
    }
}

/// One limit: its bucket and the rate it was made from.
struct Limit {
    limiter: Arc<DefaultDirectRateLimiter>,
    rate: Rate,
}

impl Limit {
    fn new(rate: Rate, what: &str) -> Result<Limit, Error> {
        Ok(Limit {
            limiter: rate.limiter(what)?,
            rate,
        })
    }
}

/// The limits of one service: its own and its methods'.
#[derive(Default)]
struct ServiceLimits {
    service: Option<Limit>,
    methods: HashMap<Box<str>, Limit>,
}

struct ReqInner {
    server: Option<Limit>,
    services: HashMap<Box<str>, ServiceLimits>,
    block: bool,
    rejected: AtomicU64,
    delayed: AtomicU64,
}

/// Limits how fast a server takes requests (rpcx's `serverplugin.ReqRateLimitingPlugin`): for
/// the whole server, and per service and per service method if configured; a request over a
/// limit is refused with [`ERR_REQ_REACH_LIMIT`] or, with [`block`](ReqRateLimitingBuilder::block),
/// waits for a token (never past the call's deadline). See the [module docs](self).
///
/// Every request counts, heartbeats excepted: unknown services and methods take a token from
/// the server's limit too, as in rpcx, which limits in `PostReadRequest`. Cloning gives a
/// handle on the same buckets.
///
/// ```
/// use sextant_plugins::ratelimit::{Rate, ReqRateLimitingPlugin};
///
/// # fn main() -> sextant::Result<()> {
/// // rpcx's NewReqRateLimitingPlugin(time.Second/100, 10, false)
/// let plain = ReqRateLimitingPlugin::new(Rate::per_second(100).with_burst(10), false)?;
/// // Arith.Mul limited on its own, nothing else
/// let mul_only = ReqRateLimitingPlugin::builder()
///     .per_method("Arith", "Mul", Rate::per_second(5))
///     .build()?;
/// let err = ReqRateLimitingPlugin::builder().per_service("", Rate::per_second(5)).build();
/// assert!(err.unwrap_err().to_string().contains("empty service name"));
/// # drop((plain, mul_only));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ReqRateLimitingPlugin {
    inner: Arc<ReqInner>,
}

impl ReqRateLimitingPlugin {
    /// One limit for the whole server (rpcx's `NewReqRateLimitingPlugin(fillInterval, capacity,
    /// block)`): with `block`, a request over the limit waits for a token rather than being
    /// refused.
    pub fn new(rate: Rate, block: bool) -> Result<ReqRateLimitingPlugin, Error> {
        ReqRateLimitingPlugin::builder()
            .rate(rate)
            .block(block)
            .build()
    }

    /// A builder, for limits per service and per method.
    pub fn builder() -> ReqRateLimitingBuilder {
        ReqRateLimitingBuilder::default()
    }

    /// Whether requests over a limit wait (rpcx's `block`) rather than being refused.
    pub fn is_blocking(&self) -> bool {
        self.inner.block
    }

    /// The server-wide limit, if any.
    pub fn rate(&self) -> Option<Rate> {
        self.inner.server.as_ref().map(|l| l.rate)
    }

    /// The limit of `service_path` as a whole, if it has one.
    pub fn service_rate(&self, service_path: &str) -> Option<Rate> {
        self.inner
            .services
            .get(service_path)
            .and_then(|s| s.service.as_ref())
            .map(|l| l.rate)
    }

    /// The limit of `service_path.service_method`, if it has one of its own.
    pub fn method_rate(&self, service_path: &str, service_method: &str) -> Option<Rate> {
        self.inner
            .services
            .get(service_path)
            .and_then(|s| s.methods.get(service_method))
            .map(|l| l.rate)
    }

    /// Requests refused so far (non-blocking mode).
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Ordering::Relaxed)
    }

    /// Requests that had to wait for a token so far (blocking mode).
    pub fn delayed(&self) -> u64 {
        self.inner.delayed.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for ReqRateLimitingPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut services: Vec<String> = Vec::new();
        for (name, s) in &self.inner.services {
            if let Some(l) = &s.service {
                services.push(format!("{name}: {}", l.rate));
            }
            for (m, l) in &s.methods {
                services.push(format!("{name}.{m}: {}", l.rate));
            }
        }
        services.sort();
        f.debug_struct("ReqRateLimitingPlugin")
            .field("rate", &self.rate())
            .field("limits", &services)
            .field("block", &self.inner.block)
            .field("rejected", &self.rejected())
            .field("delayed", &self.delayed())
            .finish()
    }
}

impl ServerPlugin for ReqRateLimitingPlugin {
    fn call_hooks(&self) -> CallHooks {
        CallHooks::PRE_CALL
    }

    fn pre_call(&self, ctx: &Context, _payload: &Bytes) -> Verdict {
        let inner = &*self.inner;
        let (method, service) = match inner.services.get(ctx.service_path()) {
            Some(s) => (s.methods.get(ctx.service_method()), s.service.as_ref()),
            None => (None, None),
        };
        let chain = [method, service, inner.server.as_ref()];
        for (i, limit) in chain.iter().enumerate() {
            let Some(limit) = limit else { continue };
            if limit.limiter.check().is_ok() {
                continue;
            }
            if !inner.block {
                inner.rejected.fetch_add(1, Ordering::Relaxed);
                return Verdict::Reject(ERR_REQ_REACH_LIMIT.to_string());
            }
            inner.delayed.fetch_add(1, Ordering::Relaxed);
            // This limit and the ones after it are still to take a token from; the ones before
            // already gave theirs.
            let rest: [Option<Arc<DefaultDirectRateLimiter>>; 3] =
                std::array::from_fn(|j| match chain[j] {
                    Some(l) if j >= i => Some(l.limiter.clone()),
                    _ => None,
                });
            return Verdict::Wait(Box::pin(async move {
                for limiter in rest.iter().flatten() {
                    take_token(limiter).await;
                }
                Ok(())
            }));
        }
        Verdict::Continue
    }
}

/// Builds a [`ReqRateLimitingPlugin`]: a server-wide [`rate`](Self::rate), limits
/// [`per_service`](Self::per_service) and [`per_method`](Self::per_method), and whether to
/// [`block`](Self::block). [`build`](Self::build) checks it all.
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ReqRateLimitingBuilder {
    server: Option<Rate>,
    services: Vec<(String, Rate)>,
    methods: Vec<(String, String, Rate)>,
    block: bool,
}

impl ReqRateLimitingBuilder {
    /// The limit for all requests to the server together (rpcx's one bucket).
    pub fn rate(mut self, rate: Rate) -> Self {
        self.server = Some(rate);
        self
    }

    /// A limit for the requests to `service_path`, all its methods together.
    pub fn per_service(mut self, service_path: impl Into<String>, rate: Rate) -> Self {
        self.services.push((service_path.into(), rate));
        self
    }

    /// A limit for the requests to `service_path.service_method`.
    pub fn per_method(
        mut self,
        service_path: impl Into<String>,
        service_method: impl Into<String>,
        rate: Rate,
    ) -> Self {
        self.methods
            .push((service_path.into(), service_method.into(), rate));
        self
    }

    /// Whether a request over a limit waits for a token (`true`, rpcx's `block`) or is refused
    /// at once with [`ERR_REQ_REACH_LIMIT`] (`false`, the default). A wait ends at the call's
    /// deadline, or after
    /// [`ServerOptions::max_plugin_wait`](sextant::ServerOptions::max_plugin_wait) for a call
    /// without one.
    pub fn block(mut self, block: bool) -> Self {
        self.block = block;
        self
    }

    /// The plugin, or an [`Error::Config`] saying what is wrong: a rate with a count, period or
    /// burst of 0, an empty service or method name, two limits for one service or method, or no
    /// limit at all.
    pub fn build(self) -> Result<ReqRateLimitingPlugin, Error> {
        const WHAT: &str = "ReqRateLimitingPlugin";
        if self.server.is_none() && self.services.is_empty() && self.methods.is_empty() {
            return Err(Error::Config(format!(
                "{WHAT}: no limit configured (set `rate`, `per_service` or `per_method`)"
            )));
        }
        let server = match self.server {
            Some(r) => Some(Limit::new(r, WHAT)?),
            None => None,
        };
        let mut services: HashMap<Box<str>, ServiceLimits> = HashMap::new();
        for (name, rate) in self.services {
            if name.is_empty() {
                return Err(Error::Config(format!(
                    "{WHAT}: per_service with an empty service name"
                )));
            }
            let limit = Limit::new(rate, &format!("{WHAT}: service {name}"))?;
            let entry = services.entry(name.as_str().into()).or_default();
            if let Some(old) = &entry.service {
                return Err(Error::Config(format!(
                    "{WHAT}: service {name} has two limits ({} and {rate})",
                    old.rate
                )));
            }
            entry.service = Some(limit);
        }
        for (name, method, rate) in self.methods {
            if name.is_empty() {
                return Err(Error::Config(format!(
                    "{WHAT}: per_method with an empty service name (method {method:?})"
                )));
            }
            if method.is_empty() {
                return Err(Error::Config(format!(
                    "{WHAT}: per_method with an empty method name (service {name})"
                )));
            }
            let limit = Limit::new(rate, &format!("{WHAT}: method {name}.{method}"))?;
            let entry = services.entry(name.as_str().into()).or_default();
            if let Some(old) = entry.methods.get(method.as_str()) {
                return Err(Error::Config(format!(
                    "{WHAT}: method {name}.{method} has two limits ({} and {rate})",
                    old.rate
                )));
            }
            entry.methods.insert(method.into(), limit);
        }
        Ok(ReqRateLimitingPlugin {
            inner: Arc::new(ReqInner {
                server,
                services,
                block: self.block,
                rejected: AtomicU64::new(0),
                delayed: AtomicU64::new(0),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_error(r: Result<impl fmt::Debug, Error>) -> String {
        match r {
            Err(Error::Config(text)) => text,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn zero_rates_and_bursts_are_refused_with_a_message() {
        let e = config_error(RateLimitingPlugin::new(Rate::per_second(0)));
        assert!(
            e.contains("rate of 0") && e.contains("RateLimitingPlugin"),
            "{e}"
        );
        let e = config_error(RateLimitingPlugin::new(Rate::per_second(5).with_burst(0)));
        assert!(e.contains("burst of 0"), "{e}");
        let e = config_error(RateLimitingPlugin::new(Rate::every(Duration::ZERO)));
        assert!(e.contains("period longer than zero"), "{e}");
        let e = config_error(ReqRateLimitingPlugin::new(Rate::per_second(0), true));
        assert!(e.contains("rate of 0"), "{e}");
        let e = config_error(
            ReqRateLimitingPlugin::builder()
                .per_method("Arith", "Mul", Rate::per_second(3).with_burst(0))
                .build(),
        );
        assert!(
            e.contains("method Arith.Mul") && e.contains("burst of 0"),
            "{e}"
        );
        let e = config_error(RateLimitingPlugin::new(Rate::new(
            2,
            Duration::from_nanos(1),
        )));
        assert!(e.contains("nanosecond"), "{e}");
    }

    #[test]
    fn names_must_be_given_once() {
        let e = config_error(
            ReqRateLimitingPlugin::builder()
                .per_service("", Rate::per_second(1))
                .build(),
        );
        assert!(e.contains("empty service name"), "{e}");
        let e = config_error(
            ReqRateLimitingPlugin::builder()
                .per_method("", "Mul", Rate::per_second(1))
                .build(),
        );
        assert!(e.contains("empty service name"), "{e}");
        let e = config_error(
            ReqRateLimitingPlugin::builder()
                .per_method("Arith", "", Rate::per_second(1))
                .build(),
        );
        assert!(e.contains("empty method name"), "{e}");
        let e = config_error(
            ReqRateLimitingPlugin::builder()
                .per_service("Arith", Rate::per_second(1))
                .per_service("Arith", Rate::per_second(2))
                .build(),
        );
        assert!(e.contains("service Arith has two limits"), "{e}");
        let e = config_error(
            ReqRateLimitingPlugin::builder()
                .per_method("Arith", "Mul", Rate::per_second(1))
                .per_method("Arith", "Mul", Rate::per_second(1))
                .build(),
        );
        assert!(e.contains("method Arith.Mul has two limits"), "{e}");
        let e = config_error(ReqRateLimitingPlugin::builder().block(true).build());
        assert!(e.contains("no limit configured"), "{e}");
    }

    #[test]
    fn rates_read_back() {
        let p = ReqRateLimitingPlugin::builder()
            .rate(Rate::per_second(100).with_burst(10))
            .per_service("Arith", Rate::per_minute(60))
            .per_method("Arith", "Mul", Rate::every(Duration::from_millis(250)))
            .build()
            .unwrap();
        assert_eq!(p.rate(), Some(Rate::per_second(100).with_burst(10)));
        assert_eq!(p.service_rate("Arith"), Some(Rate::per_minute(60)));
        assert_eq!(p.service_rate("Echo"), None);
        assert_eq!(
            p.method_rate("Arith", "Mul").map(|r| r.interval()),
            Some(Duration::from_millis(250))
        );
        assert_eq!(p.method_rate("Arith", "Add"), None);
        assert!(!p.is_blocking());
        assert_eq!(Rate::per_minute(60).tokens_per_second(), 1.0);
        assert_eq!(
            Rate::per_second(4).with_burst(2).to_string(),
            "4 per 1s, burst 2"
        );
        let dbg = format!("{p:?}");
        assert!(dbg.contains("Arith.Mul: 1 per 250ms, burst 1"), "{dbg}");
    }

    #[test]
    fn a_connection_bucket_gives_its_burst_then_refuses() {
        let p = RateLimitingPlugin::new(Rate::per_minute(1).with_burst(3)).unwrap();
        let peer = PeerAddr::Other("test".into());
        let admitted = (0..5).filter(|_| p.on_conn_accept(&peer)).count();
        assert_eq!(admitted, 3);
        assert_eq!(p.refused(), 2);
    }
}
