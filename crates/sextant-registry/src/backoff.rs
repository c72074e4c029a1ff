//! Exponential backoff with jitter, for reconnecting to a registry.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Delays that double from `min` up to `max`, each shortened by up to 20% at random so that many
/// clients of a registry that restarted do not all come back at the same instant.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// A backoff starting at `min` and never longer than `max` (`max` is raised to `min` if lower).
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        let seed = RandomState::new().build_hasher().finish() | 1;
        Backoff {
            min,
            max: max.max(min),
            next: min,
            rng: seed,
        }
    }

    /// The next delay; each call doubles the following one, up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // xorshift64: cheap, and good enough for jitter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let cut = (self.rng % 200) as u32; // 0..20.0% in tenths of a percent
        base - base * cut / 1000
    }

    /// Starts over from the minimum (after a success).
    pub fn reset(&mut self) {
        self.next = self.min;
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
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
