//! Which calls the server plugin counted as in flight, so that each `+1` gets exactly one `-1`.
//!
//! The server's hooks do not tell a plugin whether its own `pre_call` ran for the call that
//! reaches `post_write_response`: a refusal in `post_read_request`, a payload that does not
//! decompress, or an earlier plugin's `pre_call` refusal skip it, while the write hooks always
//! run. Counting `+1` in `post_read_request` instead would not work either: a later plugin
//! (an alias) may rename the call after that, so the `-1` would land on another label set.
//!
//! So `pre_call` records the call here, keyed by an address that is unique among live calls
//! (that of the call's [`Context`](sextant::Context) data), together with the label set it
//! counted on; `post_write_response` takes the record back and decrements that same label set,
//! or does nothing when there is no record. The table is a fixed array of slots, claimed and
//! released with compare-and-swap: no allocation and no lock. A call whose probe window is full
//! (many thousands of calls in flight at once) is simply not counted as in flight.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::stats::MethodStats;

/// Slots a call may probe, from its hash on.
const WINDOW: usize = 16;

struct Slot {
    /// 0 when free, else the key of the call that holds it.
    key: AtomicUsize,
    /// The label set the call counted on: an `Arc` turned into a raw pointer, owned by the slot
    /// while `key` is set.
    stats: AtomicPtr<MethodStats>,
}

pub(crate) struct InFlight {
    slots: Box<[Slot]>,
    mask: usize,
    /// Calls not counted as in flight because their probe window was full.
    pub(crate) untracked: AtomicU64,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("capacity", &self.slots.len())
            .field("untracked", &self.untracked.load(Ordering::Relaxed))
            .finish()
    }
}

impl InFlight {
    /// A table of at least `capacity` slots (rounded up to a power of two, at least the probe
    /// window).
    pub(crate) fn new(capacity: usize) -> InFlight {
        let n = capacity.max(WINDOW).next_power_of_two();
        InFlight {
            slots: (0..n)
                .map(|_| Slot {
                    key: AtomicUsize::new(0),
                    stats: AtomicPtr::new(ptr::null_mut()),
                })
                .collect(),
            mask: n - 1,
            untracked: AtomicU64::new(0),
        }
    }

    fn start(&self, key: usize) -> usize {
        // Fibonacci hashing of the address without its always-zero low bits.
        let h = ((key as u64) >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 32) as usize & self.mask
    }

    /// Counts the call `key` as in flight on `stats`. Returns false (and counts nothing) when no
    /// slot is free in its window. `key` must not be 0.
    pub(crate) fn enter(&self, key: usize, stats: &Arc<MethodStats>) -> bool {
        debug_assert_ne!(key, 0);
        let start = self.start(key);
        for i in 0..WINDOW {
            let slot = &self.slots[(start + i) & self.mask];
            if slot.key.load(Ordering::Relaxed) == 0
                && slot
                    .key
                    .compare_exchange(0, key, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // The slot is this call's until `leave` frees it: nobody else writes `stats`.
                slot.stats
                    .store(Arc::into_raw(stats.clone()).cast_mut(), Ordering::Release);
                stats.enter();
                return true;
            }
        }
        self.untracked.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Ends the in-flight count of call `key`, if `enter` counted it: decrements the label set
    /// it counted on and returns it.
    pub(crate) fn leave(&self, key: usize) -> Option<Arc<MethodStats>> {
        let start = self.start(key);
        // Every slot of the window is looked at: slots freed in between do not end the search.
        for i in 0..WINDOW {
            let slot = &self.slots[(start + i) & self.mask];
            if slot.key.load(Ordering::Acquire) != key {
                continue;
            }
            let p = slot.stats.swap(ptr::null_mut(), Ordering::Acquire);
            slot.key.store(0, Ordering::Release);
            if p.is_null() {
                continue;
            }
            // SAFETY: `p` came from `Arc::into_raw` in `enter` and was swapped out of the slot
            // just now, so this is the one place that turns it back into the `Arc` it was.
            let stats = unsafe { Arc::from_raw(p) };
            stats.leave();
            return Some(stats);
        }
        None
    }

    /// Calls counted as in flight now (for tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.key.load(Ordering::Relaxed) != 0)
            .count()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Records of calls that never reached `post_write_response` (their task was dropped).
        for slot in self.slots.iter() {
            let p = slot.stats.swap(ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: as in `leave`: the pointer came from `Arc::into_raw` and has just been
                // taken out of its only owner, the slot.
                drop(unsafe { Arc::from_raw(p) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_enter_has_one_leave() {
        let t = InFlight::new(64);
        let a = Arc::new(MethodStats::new("A", "a"));
        let b = Arc::new(MethodStats::new("B", "b"));
        let keys: Vec<usize> = (1..=40).map(|i| i * 0x40).collect();
        for (i, &k) in keys.iter().enumerate() {
            assert!(t.enter(k, if i % 2 == 0 { &a } else { &b }));
        }
        assert_eq!(a.in_flight(), 20);
        assert_eq!(b.in_flight(), 20);
        assert_eq!(t.held(), 40);
        for &k in &keys {
            assert!(t.leave(k).is_some());
            assert!(t.leave(k).is_none(), "a second leave finds nothing");
        }
        assert_eq!(a.in_flight(), 0);
        assert_eq!(b.in_flight(), 0);
        assert_eq!(t.held(), 0);
        assert_eq!(Arc::strong_count(&a), 1);
        assert!(t.leave(0x12340).is_none());
    }

    #[test]
    fn a_full_window_leaves_calls_untracked() {
        let t = InFlight::new(16);
        let a = Arc::new(MethodStats::new("A", "a"));
        for k in 1..=16usize {
            assert!(t.enter(k << 4, &a));
        }
        assert!(!t.enter(17 << 4, &a));
        assert_eq!(t.untracked.load(Ordering::Relaxed), 1);
        assert_eq!(a.in_flight(), 16);
        assert!(t.leave(17 << 4).is_none());
        drop(t);
        assert_eq!(
            Arc::strong_count(&a),
            1,
            "dropping the table frees its records"
        );
    }

    #[test]
    fn concurrent_enter_and_leave_balance() {
        let t = Arc::new(InFlight::new(1024));
        let a = Arc::new(MethodStats::new("A", "a"));
        let threads: Vec<_> = (0..4usize)
            .map(|n| {
                let (t, a) = (t.clone(), a.clone());
                std::thread::spawn(move || {
                    for i in 0..10_000usize {
                        let key = ((n * 1_000_000 + i % 50) + 1) << 6;
                        if t.enter(key, &a) {
                            assert!(t.leave(key).is_some());
                        }
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert_eq!(a.in_flight(), 0);
        assert_eq!(t.held(), 0);
    }
}
