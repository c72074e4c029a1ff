//! Selection as an iterator of candidate servers: every fail mode is "take the next one".
//!
//! A call asks its [`Candidates`] for a server, tries it, and on a retryable failure reports it
//! ([`Candidates::failed`]) and asks for the next. What "next" means is the fail mode's only
//! business:
//!
//! | mode | candidates |
//! |---|---|
//! | `Failfast` | one server |
//! | `Failover` | up to `retries + 1` servers, each not yet tried for this call while there is one (then any again) |
//! | `Failtry` | the first server, up to `retries + 1` times (after waiting out its redial backoff, bounded by the deadline) |
//! | `Failbackup` | two different servers (the second is sent when the first is slow or fails) |
//!
//! Every candidate comes with its circuit breaker's permit ([`Permit`]); a server whose breaker
//! is open is never a candidate.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use super::pool::{Endpoint, Permit};
use super::{FailMode, Inner};
use crate::error::{Error, Result};
use crate::selector::{SelectContext, Selector};

/// What a hashing selector routes a call by.
#[derive(Default, Clone, Copy)]
pub(super) struct CallKey<'a> {
    pub(super) args: &'a [u8],
    pub(super) hash_key: Option<&'a str>,
}

/// The servers one call may try, in order.
pub(super) struct Candidates<'a> {
    inner: &'a Inner,
    selector: &'a dyn Selector,
    method: &'a str,
    key: CallKey<'a>,
    mode: FailMode,
    /// Candidates still to hand out.
    left: usize,
    /// Servers handed out for this call before the last one (they are not picked again while
    /// others remain).
    tried: Vec<Arc<Endpoint>>,
    /// The server handed out last; kept apart from `tried` so that a call that succeeds at once
    /// allocates nothing.
    last: Option<Arc<Endpoint>>,
    /// The last retryable error, returned when no candidate is left.
    last_error: Option<Error>,
}

impl<'a> Candidates<'a> {
    pub(super) fn new(
        inner: &'a Inner,
        selector: &'a dyn Selector,
        method: &'a str,
        key: CallKey<'a>,
        mode: FailMode,
    ) -> Candidates<'a> {
        let left = match mode {
            FailMode::Failfast => 1,
            FailMode::Failover | FailMode::Failtry => inner.options.retries.saturating_add(1),
            FailMode::Failbackup => 2,
        };
        Candidates {
            inner,
            selector,
            method,
            key,
            mode,
            left,
            tried: Vec::new(),
            last: None,
            last_error: None,
        }
    }

    /// Whether the candidate handed out last was the last one.
    pub(super) fn is_last(&self) -> bool {
        self.left == 0
    }

    /// Records that `error` (retryable) ended the attempt on the last candidate.
    pub(super) fn failed(&mut self, error: Error) {
        self.last_error = Some(error);
    }

    /// The next server to try, with its breaker's permit; when none is left, the last error (or
    /// why no server could be found at all).
    pub(super) async fn next(&mut self, deadline: Option<Instant>) -> Result<Permit> {
        if let Some(ep) = self.last.take() {
            self.tried.push(ep);
        }
        if self.left == 0 {
            return Err(self.exhausted());
        }
        self.left -= 1;
        if self.mode == FailMode::Failtry {
            if let Some(ep) = self.tried.first().cloned() {
                // Same server again: wait out its redial backoff rather than fail again at once.
                let wait = ep.backoff_remaining();
                if !wait.is_zero() {
                    let until = Instant::now() + wait;
                    match deadline {
                        Some(d) if d <= until => {
                            tokio::time::sleep_until(d.into()).await;
                            return Err(Error::DeadlineExceeded);
                        }
                        _ => tokio::time::sleep_until(until.into()).await,
                    }
                }
                let permit = ep.acquire().ok_or_else(|| self.exhausted())?;
                self.last = Some(ep);
                return Ok(permit);
            }
        }
        let permit = match self.pick() {
            Ok(p) => p,
            Err(e) if self.tried.is_empty() || self.mode != FailMode::Failover => {
                return Err(self.last_error.take().unwrap_or(e))
            }
            // Every server failed this call once: with retries left, any may go again.
            Err(_) => {
                self.tried.clear();
                match self.pick() {
                    Ok(p) => p,
                    Err(e) => return Err(self.last_error.take().unwrap_or(e)),
                }
            }
        };
        self.last = Some(permit.endpoint.clone());
        Ok(permit)
    }

    fn exhausted(&mut self) -> Error {
        self.last_error
            .take()
            .unwrap_or_else(|| self.inner.no_server(&self.tried))
    }

    /// Asks the selector for a server not tried yet whose breaker lets the call through.
    fn pick(&self) -> Result<Permit> {
        let inner = self.inner;
        let tried = &self.tried[..];
        let snap = inner.servers.load();
        let refused: RefCell<Vec<Arc<Endpoint>>> = RefCell::new(Vec::new());
        let excluded = |ep: &Arc<Endpoint>| {
            tried.iter().any(|t| Arc::ptr_eq(t, ep))
                || refused.borrow().iter().any(|t| Arc::ptr_eq(t, ep))
        };
        let available = |a: &str| {
            snap.endpoints
                .get(a)
                .is_some_and(|ep| ep.breaker_ready() && !excluded(ep))
        };
        // Each round either returns or refuses one more endpoint, so this ends.
        for _ in 0..=snap.endpoints.len() {
            let call = SelectContext::new(&inner.service_path, self.method)
                .with_args(self.key.args)
                .with_hash_key(self.key.hash_key)
                .with_filter(&available);
            let Some(address) = self.selector.select(&call) else {
                break;
            };
            // The breaker is checked again by `acquire` below (its state may have changed since
            // the selector looked); here only what a selector must never return.
            let Some(ep) = snap.endpoints.get(&*address).filter(|ep| !excluded(ep)) else {
                return Err(Error::NoServer(format!(
                    "{}: the {} selector chose {address}, which is not an available server \
                     (a selector must pick among the servers for which is_available is true)",
                    inner.service_path,
                    self.selector.name()
                )));
            };
            match ep.acquire() {
                Some(p) => return Ok(p),
                // Another call took the half-open breaker's trial slot meanwhile.
                None => refused.borrow_mut().push(ep.clone()),
            }
        }
        Err(snap.no_server(&inner.service_path, &inner.options.group, tried))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::MultipleServersDiscovery;
    use crate::{KVPair, XClient};

    fn xclient(n: usize, mode: FailMode) -> XClient {
        let pairs: Vec<KVPair> = (1..=n)
            .map(|i| KVPair::new(format!("tcp@127.0.0.1:{i}"), ""))
            .collect();
        XClient::builder("Arith")
            .fail_mode(mode)
            .select_mode(crate::SelectMode::RoundRobin)
            .discovery(MultipleServersDiscovery::new(pairs).unwrap())
            .retries(3)
            .build()
            .unwrap()
    }

    /// The servers the candidates of one call hand out, each attempt failing.
    async fn walk(x: &XClient) -> (Vec<String>, Error) {
        let inner = &*x.inner;
        let selector = inner.selector().unwrap();
        let mut c = Candidates::new(
            inner,
            &*selector,
            "Mul",
            CallKey::default(),
            inner.fail_mode,
        );
        let mut seen = Vec::new();
        for i in 0..10 {
            match c.next(None).await {
                Ok(p) => {
                    seen.push(p.endpoint.key.to_string());
                    p.finish(None);
                    c.failed(Error::lost(format!("attempt {i}")));
                }
                Err(e) => return (seen, e),
            }
        }
        panic!("more than 10 candidates");
    }

    #[tokio::test]
    async fn every_fail_mode_is_take_the_next_one() {
        let (seen, e) = walk(&xclient(3, FailMode::Failfast)).await;
        assert_eq!(seen.len(), 1);
        assert_eq!(e.to_string(), "connection lost: attempt 0");

        // Failover: every server once, then any again, retries + 1 in all.
        let (seen, e) = walk(&xclient(3, FailMode::Failover)).await;
        assert_eq!(seen.len(), 4);
        let mut first3 = seen[..3].to_vec();
        first3.sort();
        first3.dedup();
        assert_eq!(first3.len(), 3, "{seen:?}");
        assert_eq!(e.to_string(), "connection lost: attempt 3");

        // Failtry: the same server, retries + 1 times.
        let (seen, _) = walk(&xclient(3, FailMode::Failtry)).await;
        assert_eq!(seen.len(), 4);
        assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");

        // Failbackup: two different servers.
        let (seen, _) = walk(&xclient(3, FailMode::Failbackup)).await;
        assert_eq!(seen.len(), 2);
        assert_ne!(seen[0], seen[1]);

        // One server and Failbackup: no second candidate.
        let (seen, e) = walk(&xclient(1, FailMode::Failbackup)).await;
        assert_eq!(seen.len(), 1);
        assert_eq!(e.to_string(), "connection lost: attempt 0");

        // No server at all: why.
        let (seen, e) = walk(&xclient(0, FailMode::Failover)).await;
        assert!(seen.is_empty());
        assert!(e.to_string().contains("discovery lists no servers"), "{e}");
    }
}
