//! Exponential backoff with jitter, for redialling a server and reconnecting to a registry.

use std::time::Duration;

/// Delays that double from `min` up to `max`, each shortened by up to 20% at random so that many
/// clients of a server or registry that restarted do not all come back at the same instant.
///
/// ```
/// use std::time::Duration;
/// use sextant::util::Backoff;
///
/// let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// let first = b.next_delay();
/// assert!(first <= Duration::from_millis(100) && first >= Duration::from_millis(80));
/// let second = b.next_delay();
/// assert!(second <= Duration::from_millis(200) && second >= Duration::from_millis(160));
/// b.reset();
/// assert!(b.next_delay() <= Duration::from_millis(100));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff starting at `min` and never longer than `max` (raised to `min` if lower). A zero
    /// `min` means no wait at all (zero doubled stays zero): for a loop that must not spin, pass
    /// a minimum above zero.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            next: min,
            failures: 0,
        }
    }

    /// The next delay; each call doubles the following one, up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        self.failures = self.failures.saturating_add(1);
        // Up to 20% shorter, in tenths of a percent.
        let cut = fastrand::u32(0..200);
        base - (base / 1000) * cut
    }

    /// How many delays were handed out since the last [`reset`](Backoff::reset): the failures in
    /// a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Starts over from the minimum (after a success).
    pub fn reset(&mut self) {
        self.next = self.min;
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_max_with_bounded_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let mut last_base = Duration::ZERO;
        for i in 0..10 {
            let d = b.next_delay();
            let base = Duration::from_millis((100u64 << i.min(4)).min(1000));
            assert!(d <= base && d >= base * 8 / 10, "{i}: {d:?} vs {base:?}");
            last_base = base;
        }
        assert_eq!(last_base, Duration::from_millis(1000));
        assert_eq!(b.failures(), 10);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn degenerate_bounds_are_fixed_up() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(b.next_delay(), Duration::ZERO);
        assert_eq!(b.next_delay(), Duration::ZERO);
        let mut b = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        for _ in 0..5 {
            assert!(b.next_delay() <= Duration::from_secs(2));
        }
    }

    #[test]
    fn huge_bounds_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(u64::MAX / 4), Duration::MAX);
        for _ in 0..5 {
            b.next_delay();
        }
    }
}
