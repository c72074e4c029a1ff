//! [`ConsecutiveBreaker`]: opens after N failures in a row.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::gate::Gate;
use super::{Breaker, BreakerState};
use crate::util::lock;

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
    gate: Gate,
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
        lock(&self.state)
    }

    /// Consecutive failures counted so far.
    pub fn failures(&self) -> u32 {
        self.lock().failures
    }
}

impl Breaker for ConsecutiveBreaker {
    fn ready(&self) -> bool {
        self.lock().gate.ready(self.window, Instant::now())
    }

    fn try_acquire(&self) -> bool {
        self.lock().gate.try_acquire(self.window, Instant::now())
    }

    fn success(&self) {
        *self.lock() = State::default();
    }

    fn fail(&self) {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        s.gate.release_trial();
        if s.failures >= self.failure_threshold {
            s.gate.open(Instant::now());
        }
    }

    fn release(&self) {
        self.lock().gate.release_trial();
    }

    fn state(&self) -> BreakerState {
        self.lock().gate.state(self.window, Instant::now())
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
