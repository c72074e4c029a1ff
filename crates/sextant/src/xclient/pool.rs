//! One cached connection per server: dialled once however many calls want it, redialled after a
//! failure with exponential backoff, closed when the server leaves discovery.
//!
//! Each server is an [`Endpoint`]. Its state sits behind a std mutex that is only ever held for a
//! few field updates, never across an await: a dial runs in its own task and the callers waiting
//! for it share one future ([`futures::future::Shared`]), so concurrent first calls dial once and
//! a caller that gives up (timeout, cancellation) does not abort the dial for the others.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures::future::{BoxFuture, FutureExt, Shared};

use super::plugin::ClientPlugin;
use crate::breaker::{Breaker, BreakerState, GenBreaker};
use crate::client::{Client, ClientOptions, PushSink};
use crate::error::{Error, Result};
use crate::transport::{Address, Stream};
use crate::util::{lock, Backoff};

type Dial = Shared<BoxFuture<'static, Result<Client>>>;

/// What every endpoint of one XClient needs to dial and to report.
pub(crate) struct DialConfig {
    /// What each connection is made with (without the auth token: the XClient sends its own,
    /// which may change at run time).
    pub(crate) client_options: ClientOptions,
    pub(crate) reconnect_backoff: Duration,
    pub(crate) max_reconnect_backoff: Duration,
    pub(crate) gen_breaker: Option<GenBreaker>,
    pub(crate) plugins: ArcSwap<Vec<Arc<dyn ClientPlugin>>>,
    /// The queue every connection's server pushes go to (a bidirectional XClient).
    pub(crate) push: Option<PushSink>,
}

struct State {
    client: Option<Client>,
    dialing: Option<Dial>,
    /// The wait after each failed dial in a row.
    backoff: Backoff,
    /// No new dial before this; calls get `last_error` at once.
    retry_at: Option<Instant>,
    last_error: Option<Error>,
    /// Left discovery, or the XClient was closed.
    retired: bool,
}

/// One server of the service.
pub(crate) struct Endpoint {
    pub(crate) key: Arc<str>,
    address: Address,
    config: Arc<DialConfig>,
    breaker: Option<Box<dyn Breaker>>,
    state: Mutex<State>,
}

impl Endpoint {
    pub(crate) fn new(key: Arc<str>, address: Address, config: Arc<DialConfig>) -> Endpoint {
        let breaker = config.gen_breaker.as_ref().map(|g| g());
        let backoff = Backoff::new(config.reconnect_backoff, config.max_reconnect_backoff);
        Endpoint {
            key,
            address,
            config,
            breaker,
            state: Mutex::new(State {
                client: None,
                dialing: None,
                backoff,
                retry_at: None,
                last_error: None,
                retired: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Whether selection may choose this server: its breaker, if any, is ready.
    pub(crate) fn breaker_ready(&self) -> bool {
        self.breaker.as_ref().is_none_or(|b| b.ready())
    }

    pub(crate) fn breaker_state(&self) -> Option<BreakerState> {
        self.breaker.as_ref().map(|b| b.state())
    }

    /// Takes the breaker's permission for one call; see [`Breaker::try_acquire`].
    pub(crate) fn acquire(self: &Arc<Self>) -> Option<Permit> {
        if self.breaker.as_ref().is_none_or(|b| b.try_acquire()) {
            Some(Permit {
                endpoint: self.clone(),
                done: false,
            })
        } else {
            None
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.lock().client.as_ref().is_some_and(|c| !c.is_closed())
    }

    /// The connection to this server, dialling it if needed.
    pub(crate) async fn client(self: &Arc<Self>) -> Result<Client> {
        let mut closed_client = None;
        let dial = {
            let mut s = self.lock();
            if s.retired {
                return Err(Error::lost(format!(
                    "server {} left the server list",
                    self.key
                )));
            }
            match &s.client {
                Some(c) if !c.is_closed() => return Ok(c.clone()),
                Some(_) => closed_client = s.client.take(),
                None => {}
            }
            match &s.dialing {
                Some(d) => d.clone(),
                None => match (s.retry_at, &s.last_error) {
                    (Some(t), Some(e)) if Instant::now() < t => return Err(e.clone()),
                    _ => {
                        let d = self.start_dial();
                        s.dialing = Some(d.clone());
                        d
                    }
                },
            }
        };
        if closed_client.is_some() {
            self.notify_closed();
        }
        dial.await
    }

    fn start_dial(self: &Arc<Self>) -> Dial {
        let weak = Arc::downgrade(self);
        let address = self.address.clone();
        let config = self.config.clone();
        let task = tokio::spawn(async move {
            let key = weak.upgrade().map(|ep| ep.key.clone()).unwrap_or_default();
            let plugins = config.plugins.load_full();
            let wrap = |mut stream: Stream| {
                for p in plugins.iter() {
                    let hook = std::panic::AssertUnwindSafe(|| p.wrap_conn(&key, stream));
                    stream = std::panic::catch_unwind(hook).map_err(|_| {
                        tracing::error!(server = %key, hook = "wrap_conn", "client plugin panicked");
                        Error::Config(format!("a client plugin panicked wrapping the connection to {key}"))
                    })?;
                }
                Ok(stream)
            };
            let r = Client::connect_wrapped(
                address,
                config.client_options.clone(),
                config.push.clone(),
                wrap,
            )
            .await;
            if let Some(ep) = weak.upgrade() {
                ep.finish_dial(&r);
            }
            r
        });
        async move {
            task.await
                .unwrap_or_else(|e| Err(Error::lost(format!("the dialling task failed: {e}"))))
        }
        .boxed()
        .shared()
    }

    fn finish_dial(&self, r: &Result<Client>) {
        let retired = {
            let mut s = self.lock();
            s.dialing = None;
            match r {
                Ok(c) if !s.retired => {
                    s.client = Some(c.clone());
                    s.backoff.reset();
                    s.retry_at = None;
                    s.last_error = None;
                }
                Ok(_) => {}
                Err(e) => {
                    s.retry_at = Some(Instant::now() + s.backoff.next_delay());
                    s.last_error = Some(e.clone());
                }
            }
            s.retired
        };
        let plugins = self.config.plugins.load();
        match r {
            Ok(c) if retired => c.close(),
            Ok(_) => plugins.iter().for_each(|p| p.on_conn_created(&self.key)),
            Err(e) => {
                tracing::debug!(server = %self.key, error = %e, "dial failed");
                plugins
                    .iter()
                    .for_each(|p| p.on_conn_create_failed(&self.key, e))
            }
        }
    }

    /// How long until a dial may be tried again (zero when it may now).
    pub(crate) fn backoff_remaining(&self) -> Duration {
        let s = self.lock();
        match (s.retry_at, &s.client, &s.dialing) {
            (Some(t), None, None) => t.saturating_duration_since(Instant::now()),
            _ => Duration::ZERO,
        }
    }

    /// Stops using this server: new calls fail, the connection closes once the calls still on it
    /// are done (`force`: at once, failing them).
    pub(crate) fn retire(&self, force: bool) {
        let client = {
            let mut s = self.lock();
            s.retired = true;
            s.dialing = None;
            s.client.take()
        };
        if let Some(c) = client {
            if force {
                c.close();
            }
            self.notify_closed();
        }
    }

    fn notify_closed(&self) {
        for p in self.config.plugins.load().iter() {
            p.on_conn_close(&self.key);
        }
    }
}

/// How a finished call is reported to the server's breaker.
enum Verdict {
    Success,
    Fail,
    Release,
}

fn verdict(e: Option<&Error>) -> Verdict {
    match e {
        None | Some(Error::Service(_)) => Verdict::Success,
        Some(Error::DeadlineExceeded) => Verdict::Fail,
        Some(e) if e.is_retryable() => Verdict::Fail,
        Some(_) => Verdict::Release,
    }
}

/// Permission for one call on an endpoint. Reports the call's outcome to the breaker exactly
/// once: [`finish`](Permit::finish), or no verdict when dropped unfinished (cancelled).
pub(crate) struct Permit {
    pub(crate) endpoint: Arc<Endpoint>,
    done: bool,
}

impl Permit {
    pub(crate) fn finish(mut self, error: Option<&Error>) {
        self.done = true;
        if let Some(b) = &self.endpoint.breaker {
            match verdict(error) {
                Verdict::Success => b.success(),
                Verdict::Fail => b.fail(),
                Verdict::Release => b.release(),
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            if let Some(b) = &self.endpoint.breaker {
                b.release();
            }
        }
    }
}
