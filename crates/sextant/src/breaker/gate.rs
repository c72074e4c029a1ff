//! The open / half-open / trial bookkeeping both breakers share; they differ only in when they
//! decide to open.

use std::time::{Duration, Instant};

use super::BreakerState;

/// When the breaker opened and whether its one trial call is out.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Gate {
    opened_at: Option<Instant>,
    trial_since: Option<Instant>,
}

impl Gate {
    /// Closed, open for `window` after opening, then half-open.
    pub(super) fn state(&self, window: Duration, now: Instant) -> BreakerState {
        match self.opened_at {
            None => BreakerState::Closed,
            Some(t) if now.duration_since(t) >= window => BreakerState::HalfOpen,
            Some(_) => BreakerState::Open,
        }
    }

    /// Whether a call would be let through now (without taking the trial slot).
    pub(super) fn ready(&self, window: Duration, now: Instant) -> bool {
        match self.state(window, now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => self.trial_free(window, now),
        }
    }

    /// Lets a call through if closed, or takes the trial slot if half-open and free.
    pub(super) fn try_acquire(&mut self, window: Duration, now: Instant) -> bool {
        match self.state(window, now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen if self.trial_free(window, now) => {
                self.trial_since = Some(now);
                true
            }
            BreakerState::HalfOpen => false,
        }
    }

    /// A trial with no outcome after another `window` is presumed lost.
    fn trial_free(&self, window: Duration, now: Instant) -> bool {
        self.trial_since
            .is_none_or(|t| now.duration_since(t) >= window)
    }

    /// Whether the breaker has opened (open or half-open).
    pub(super) fn is_tripped(&self) -> bool {
        self.opened_at.is_some()
    }

    /// Opens (again) from `now`.
    pub(super) fn open(&mut self, now: Instant) {
        self.opened_at = Some(now);
        self.trial_since = None;
    }

    /// Frees the trial slot (a trial ended with no verdict).
    pub(super) fn release_trial(&mut self) {
        self.trial_since = None;
    }
}
