//! The in-flight table of one connection: which call waits for which message id, and why the
//! connection closed once it has.
//!
//! Shared by the client handles (which insert and cancel calls), the reader task (which hands
//! each reply to its waiter) and whoever closes the connection (which fails every waiter at
//! once). The lock is only held for a map operation, never across an await.

use std::collections::HashMap;
use std::sync::Mutex;

use sextant_protocol::Message;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::util::lock;

/// Where the reply to one call is delivered.
pub(crate) type Waiter = oneshot::Sender<Result<Message>>;

#[derive(Default)]
struct Table {
    calls: HashMap<u64, Waiter>,
    /// Set once the connection is gone; new calls fail with it.
    closed: Option<Error>,
}

/// The calls waiting on one connection, and the connection's stop signal.
#[derive(Default)]
pub(crate) struct InFlight {
    table: Mutex<Table>,
    /// Fired when the connection closes, for whatever reason: stops the reader, the writer and
    /// the heartbeat.
    pub(crate) stop: CancellationToken,
}

impl InFlight {
    /// Registers the waiter of call `seq`; fails with the close reason if the connection is
    /// closed.
    pub(crate) fn insert(&self, seq: u64, waiter: Waiter) -> Result<()> {
        let mut t = lock(&self.table);
        if let Some(reason) = &t.closed {
            return Err(reason.clone());
        }
        t.calls.insert(seq, waiter);
        Ok(())
    }

    /// Takes the waiter of call `seq` (its reply arrived).
    pub(crate) fn take(&self, seq: u64) -> Option<Waiter> {
        lock(&self.table).calls.remove(&seq)
    }

    /// Forgets call `seq` (cancelled or timed out): a reply that still comes is dropped.
    pub(crate) fn remove(&self, seq: u64) {
        lock(&self.table).calls.remove(&seq);
    }

    /// Why the connection is closed, if it is.
    pub(crate) fn closed(&self) -> Option<Error> {
        lock(&self.table).closed.clone()
    }

    /// The close reason, or [`Error::Closed`] when the connection went away without one.
    pub(crate) fn close_reason(&self) -> Error {
        self.closed().unwrap_or(Error::Closed)
    }

    /// Marks the connection closed with `reason` (the first reason wins) and fails every call
    /// waiting on it.
    pub(crate) fn close(&self, reason: Error) {
        let waiters: Vec<Waiter> = {
            let mut t = lock(&self.table);
            if t.closed.is_none() {
                t.closed = Some(reason.clone());
            }
            t.calls.drain().map(|(_, w)| w).collect()
        };
        for w in waiters {
            let _ = w.send(Err(reason.clone()));
        }
        self.stop.cancel();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.table).calls.len()
    }
}

/// Removes a call from the table when dropped, however the wait for it ends.
pub(crate) struct RemoveOnDrop<'a> {
    pub(crate) in_flight: &'a InFlight,
    pub(crate) seq: u64,
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        self.in_flight.remove(self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_to_their_waiter_once() {
        let t = InFlight::default();
        let (tx, mut rx) = oneshot::channel();
        t.insert(1, tx).unwrap();
        assert!(t.take(2).is_none());
        let w = t.take(1).unwrap();
        assert!(t.take(1).is_none());
        w.send(Ok(Message::new())).unwrap();
        assert!(rx.try_recv().unwrap().is_ok());
    }

    #[test]
    fn close_fails_every_waiter_and_every_later_call() {
        let t = InFlight::default();
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        t.insert(1, tx1).unwrap();
        t.insert(2, tx2).unwrap();
        t.close(Error::lost("eof"));
        t.close(Error::Closed); // the first reason stays
        assert!(t.stop.is_cancelled());
        for rx in [&mut rx1, &mut rx2] {
            let e = rx.try_recv().unwrap().unwrap_err();
            assert!(matches!(e, Error::ConnectionLost(_)), "{e}");
        }
        let (tx3, _rx3) = oneshot::channel();
        assert!(matches!(t.insert(3, tx3), Err(Error::ConnectionLost(_))));
        assert!(matches!(t.close_reason(), Error::ConnectionLost(_)));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn cancelled_calls_leave_the_table() {
        let t = InFlight::default();
        let (tx, _rx) = oneshot::channel();
        t.insert(7, tx).unwrap();
        {
            let _guard = RemoveOnDrop {
                in_flight: &t,
                seq: 7,
            };
        }
        assert_eq!(t.len(), 0);
        assert!(t.closed().is_none());
        assert!(matches!(t.close_reason(), Error::Closed));
    }
}
