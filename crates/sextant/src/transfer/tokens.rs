//! The table of tokens issued and not yet used: bounded (the oldest is dropped, as Go's LRU
//! cache of `waitNum` entries), each with an expiry, each usable once.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::TOKEN_LEN;

/// A token.
pub(crate) type Token = [u8; TOKEN_LEN];

/// A new token from the operating system's CSPRNG.
pub(crate) fn new_token() -> std::io::Result<Token> {
    let mut t = [0u8; TOKEN_LEN];
    getrandom::getrandom(&mut t).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(t)
}

pub(crate) struct Tokens<T> {
    entries: HashMap<Token, (Instant, T)>,
    /// Issue order, for dropping the oldest; may hold tokens already used (skipped).
    order: VecDeque<Token>,
    capacity: usize,
    ttl: Duration,
}

impl<T> Tokens<T> {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Tokens<T> {
        Tokens {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// Forgets the expired tokens. Every token lives as long, so they are the oldest: at the
    /// front of `order`.
    fn purge_expired(&mut self) {
        let now = Instant::now();
        while let Some(front) = self.order.front() {
            match self.entries.get(front) {
                Some((expires, _)) if *expires > now => break,
                // Expired, or already used.
                _ => {
                    if let Some(old) = self.order.pop_front() {
                        self.entries.remove(&old);
                    }
                }
            }
        }
    }

    /// Remembers `value` under `token`, dropping expired tokens and the oldest ones beyond
    /// capacity.
    pub(crate) fn insert(&mut self, token: Token, value: T) {
        self.purge_expired();
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
        let now = Instant::now();
        // A TTL too long for an `Instant` (say `Duration::MAX`): about never.
        let expires = now
            .checked_add(self.ttl)
            .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
            .unwrap_or(now);
        self.entries.insert(token, (expires, value));
        self.order.push_back(token);
        // Used tokens stay in `order` until they reach its front; keep it from growing.
        if self.order.len() > 2 * self.capacity {
            let entries = &self.entries;
            self.order.retain(|t| entries.contains_key(t));
        }
    }

    /// Takes the value of `token` if it was issued, is unused and has not expired.
    pub(crate) fn take(&mut self, token: &Token) -> Option<T> {
        let (expires, value) = self.entries.remove(token)?;
        (Instant::now() < expires).then_some(value)
    }

    /// Tokens issued, unused and unexpired.
    pub(crate) fn len(&mut self) -> usize {
        self.purge_expired();
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_single_use_and_expiring() {
        let mut t = Tokens::new(3, Duration::from_secs(60));
        let keys: Vec<Token> = (0..5).map(|_| new_token().unwrap()).collect();
        for (i, k) in keys.iter().enumerate() {
            t.insert(*k, i);
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.take(&keys[0]), None, "the oldest were dropped");
        assert_eq!(t.take(&keys[4]), Some(4));
        assert_eq!(t.take(&keys[4]), None, "a token serves once");
        for _ in 0..1000 {
            t.insert(new_token().unwrap(), 0);
        }
        assert_eq!(t.len(), 3);
        assert!(t.order.len() <= 6);

        let mut t = Tokens::new(3, Duration::ZERO);
        t.insert(keys[0], 1);
        assert_eq!(t.take(&keys[0]), None, "expired");
        t.insert(keys[1], 1);
        assert_eq!(t.len(), 0, "expired tokens are not counted");
        assert!(t.order.is_empty());
    }
}
