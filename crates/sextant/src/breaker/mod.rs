//! Circuit breakers: stop calling a server that keeps failing, try it again later.
//!
//! The XClient keeps one [`Breaker`] per server when its options have a breaker generator
//! (rpcx's `GenBreaker`; off by default, as in rpcx). Selection skips a server whose breaker is
//! not [`ready`](Breaker::ready); when every server's breaker is open a call fails at once with
//! [`Error::NoServer`](crate::Error::NoServer) saying so.
//!
//! ## What feeds a breaker
//!
//! | outcome of one attempt on the server | recorded as |
//! |---|---|
//! | a reply | [`success`](Breaker::success) |
//! | a service error (`__rpcx_error__`) | `success`: the server is alive and answered (rpcx counts no call result at all). This includes the server's own "exceeded its deadline" reply, which often beats the client's timer since the server gets the remaining time |
//! | a failed dial, a lost connection, an I/O or protocol error (retryable errors) | [`fail`](Breaker::fail) |
//! | the call's deadline passed | `fail`: the server did not answer in time |
//! | cancelled, encoding failed, client closed | [`release`](Breaker::release): no verdict |
//!
//! Built in: [`ConsecutiveBreaker`] (rpcx's `ConsecCircuitBreaker`) and [`RateBreaker`] (a failure
//! rate over a window, like the `circuit.NewRateBreaker` rpcx's docs describe).

use std::fmt;
use std::sync::Arc;

mod consecutive;
mod gate;
mod rate;

pub use consecutive::ConsecutiveBreaker;
pub use rate::RateBreaker;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the breaker's window has passed.
    Open,
    /// The window has passed: one trial call may go through; its outcome closes or re-opens the
    /// breaker.
    HalfOpen,
}

/// A circuit breaker for one server (rpcx's `Breaker`).
///
/// The XClient calls [`try_acquire`](Breaker::try_acquire) before sending a call to the server
/// and then exactly one of [`success`](Breaker::success), [`fail`](Breaker::fail) or
/// [`release`](Breaker::release) when it ends. Implementations must be cheap and must not block:
/// they are called on the call path, possibly from many tasks at once.
pub trait Breaker: Send + Sync + 'static {
    /// Whether a call could go through now. No side effects: selection asks this of every
    /// candidate server.
    fn ready(&self) -> bool;

    /// Takes permission for one call (in the half-open state: the one trial call). Returns false
    /// when the call must not be sent. The default is [`ready`](Breaker::ready).
    fn try_acquire(&self) -> bool {
        self.ready()
    }

    /// A call succeeded (rpcx's `Success`).
    fn success(&self);

    /// A call failed (rpcx's `Fail`).
    fn fail(&self);

    /// A call ended with no verdict (cancelled): give back what `try_acquire` took. The default
    /// does nothing.
    fn release(&self) {}

    /// The current state, for logs and tests.
    fn state(&self) -> BreakerState {
        if self.ready() {
            BreakerState::Closed
        } else {
            BreakerState::Open
        }
    }
}

impl fmt::Debug for dyn Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("state", &self.state())
            .finish()
    }
}

/// Makes a new breaker for each server (rpcx's `Option.GenBreaker`).
pub type GenBreaker = Arc<dyn Fn() -> Box<dyn Breaker> + Send + Sync>;
