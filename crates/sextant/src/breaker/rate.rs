//! [`RateBreaker`]: opens when too large a share of recent calls failed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::gate::Gate;
use super::{Breaker, BreakerState};
use crate::util::lock;

const BUCKETS: usize = 10;

/// Opens when, over the last `window`, at least `min_samples` calls were made and the share of
/// failures reached `rate` (like `circuit.NewRateBreaker(0.95, 100)`, which rpcx's docs describe).
/// It stays open for `window`, then lets one trial call through: a success closes it with a clean
/// slate, a failure opens it again.
///
/// Calls are counted in ten buckets of `window / 10`, so old calls age out smoothly.
#[derive(Debug)]
pub struct RateBreaker {
    rate: f64,
    min_samples: u64,
    window: Duration,
    start: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// (bucket number, successes, failures)
    buckets: [(u64, u64, u64); BUCKETS],
    gate: Gate,
}

impl RateBreaker {
    /// Opens at a failure share of `rate` (clamped to 0..=1; NaN means 1) over at least
    /// `min_samples` calls (at least 1) in the last `window`.
    pub fn new(rate: f64, min_samples: u64, window: Duration) -> RateBreaker {
        let rate = if rate.is_nan() {
            1.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        RateBreaker {
            rate,
            min_samples: min_samples.max(1),
            window: window.max(Duration::from_millis(BUCKETS as u64)),
            start: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn bucket_no(&self, now: Instant) -> u64 {
        let width = self.window.as_nanos() / BUCKETS as u128;
        // +1 so that bucket number 0 always means "empty".
        (now.duration_since(self.start).as_nanos() / width.max(1)) as u64 + 1
    }

    fn record(&self, s: &mut State, now: Instant, ok: bool) {
        let no = self.bucket_no(now);
        let b = &mut s.buckets[no as usize % BUCKETS];
        if b.0 != no {
            *b = (no, 0, 0);
        }
        if ok {
            b.1 += 1;
        } else {
            b.2 += 1;
        }
    }

    /// (calls, failures) in the window.
    fn totals(&self, s: &State, now: Instant) -> (u64, u64) {
        let no = self.bucket_no(now);
        s.buckets
            .iter()
            .filter(|b| b.0 != 0 && b.0 + (BUCKETS as u64) > no)
            .fold((0, 0), |(c, f), b| (c + b.1 + b.2, f + b.2))
    }

    /// The share of failed calls in the window (0 when there were none).
    pub fn failure_rate(&self) -> f64 {
        let s = self.lock();
        let (c, f) = self.totals(&s, Instant::now());
        if c == 0 {
            0.0
        } else {
            f as f64 / c as f64
        }
    }
}

impl Breaker for RateBreaker {
    fn ready(&self) -> bool {
        self.lock().gate.ready(self.window, Instant::now())
    }

    fn try_acquire(&self) -> bool {
        self.lock().gate.try_acquire(self.window, Instant::now())
    }

    fn success(&self) {
        let mut s = self.lock();
        let now = Instant::now();
        if s.gate.is_tripped() {
            // The trial answered: start over with a clean slate.
            *s = State::default();
            return;
        }
        self.record(&mut s, now, true);
    }

    fn fail(&self) {
        let mut s = self.lock();
        let now = Instant::now();
        if s.gate.is_tripped() {
            s.gate.open(now);
            return;
        }
        self.record(&mut s, now, false);
        let (calls, failures) = self.totals(&s, now);
        if calls >= self.min_samples && failures as f64 >= self.rate * calls as f64 {
            s.gate.open(now);
            s.buckets = Default::default();
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
    fn opens_on_rate_with_enough_samples() {
        let b = RateBreaker::new(0.5, 10, Duration::from_millis(200));
        for _ in 0..4 {
            b.fail();
        }
        // 4 of 4 failed, but fewer than 10 samples.
        assert_eq!(b.state(), BreakerState::Closed);
        for _ in 0..5 {
            b.success();
        }
        assert!((b.failure_rate() - 4.0 / 9.0).abs() < 1e-9);
        b.fail(); // 5 of 10
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.try_acquire());
        std::thread::sleep(Duration::from_millis(220));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.try_acquire());
        assert!(!b.try_acquire());
        b.fail();
        assert_eq!(b.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(220));
        assert!(b.try_acquire());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.failure_rate(), 0.0);
    }

    #[test]
    fn old_calls_age_out() {
        let b = RateBreaker::new(0.9, 3, Duration::from_millis(100));
        b.fail();
        b.fail();
        std::thread::sleep(Duration::from_millis(130));
        b.fail(); // the first two have aged out: 1 sample
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(RateBreaker::new(f64::NAN, 0, Duration::ZERO).ready());
    }
}
