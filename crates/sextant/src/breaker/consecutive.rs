//! [`ConsecutiveBreaker`]: opens after N failures in a row.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Breaker, BreakerState};

/// Opens after `failure_threshold` failures in a row (rpcx's `ConsecCircuitBreaker`); after
/// `window` it lets one trial call through: a success closes it, a failure opens it for another
/// `window`. Any success while closed resets the count.
///
/// rpcx's version closes completely once the window has passed; this one sends a single trial
/// first, so a dead server gets one call per window rather than a burst. A trial that ends with
/// no verdict (cancelled) frees the slot; a trial with no outcome after another `window` is
/// presumed lost and a new one may go.
#[derive(Debug)]
pub struct ConsecutiveBreaker {
    failure_threshold: u32,
    window: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    opened_at: Option<Instant>,
    trial_since: Option<Instant>,
}

impl ConsecutiveBreaker {
    /// Opens after `failure_threshold` consecutive failures (at least 1) for `window`.
    pub fn new(failure_threshold: u32, window: Duration) -> ConsecutiveBreaker {
        ConsecutiveBreaker {
            failure_threshold: failure_threshold.max(1),
            window,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state_of(&self, s: &State, now: Instant) -> BreakerState {
        match s.opened_at {
            None => BreakerState::Closed,
            Some(t) if now.duration_since(t) >= self.window => BreakerState::HalfOpen,
            Some(_) => BreakerState::Open,
        }
    }

    fn trial_free(&self, s: &State, now: Instant) -> bool {
        s.trial_since
            .is_none_or(|t| now.duration_since(t) >= self.window)
    }

    /// Consecutive failures counted so far.
    pub fn failures(&self) -> u32 {
        self.lock().failures
    }
}

impl Breaker for ConsecutiveBreaker {
    fn ready(&self) -> bool {
        let s = self.lock();
        let now = Instant::now();
        match self.state_of(&s, now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => self.trial_free(&s, now),
        }
    }

    fn try_acquire(&self) -> bool {
        let mut s = self.lock();
        let now = Instant::now();
        match self.state_of(&s, now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => {
                if self.trial_free(&s, now) {
                    s.trial_since = Some(now);
                    true
                } else {
                    false
                }
            }
        }
    }

    fn success(&self) {
        *self.lock() = State::default();
    }

    fn fail(&self) {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        s.trial_since = None;
        if s.failures >= self.failure_threshold {
            s.opened_at = Some(Instant::now());
        }
    }

    fn release(&self) {
        self.lock().trial_since = None;
    }

    fn state(&self) -> BreakerState {
        let s = self.lock();
        self.state_of(&s, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_waits_and_trials() {
        let b = ConsecutiveBreaker::new(3, Duration::from_millis(40));
        b.fail();
        b.fail();
        b.success();
        b.fail();
        b.fail();
        assert!(b.ready());
        b.fail();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.ready() && !b.try_acquire());
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.ready());
        assert!(b.try_acquire());
        // Only one trial at a time.
        assert!(!b.ready() && !b.try_acquire());
        b.fail();
        assert_eq!(b.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(50));
        assert!(b.try_acquire());
        b.release();
        assert!(b.try_acquire());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.failures(), 0);
        assert!(ConsecutiveBreaker::new(0, Duration::from_secs(1)).ready());
    }
}
