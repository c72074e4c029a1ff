//! The web UI's login, sessions, CSRF tokens and failed-login rate limit.
//!
//! - Passwords are checked against an argon2id PHC string (`--password-hash`); an unknown user
//!   name is checked against a dummy hash made with the same parameters, so that both take the
//!   same time.
//! - A session is a random 256-bit token in an `HttpOnly; SameSite=Strict` cookie; each has its
//!   own CSRF token. Without a login, one CSRF token serves the whole process.
//! - Failed logins are counted per client IP: [`MAX_FAILURES`] within [`FAILURE_WINDOW`], then
//!   every try is refused (429) until the window has passed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::CliError;

/// The session cookie's name.
pub const COOKIE: &str = "sextant_ui_session";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; past that the oldest goes.
const MAX_SESSIONS: usize = 10_000;
/// Failed logins allowed per client IP within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The window failed logins are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Client IPs whose failures are remembered at most.
const MAX_TRACKED: usize = 10_000;

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| format!("no random numbers from the system: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Hashes a password as an argon2id PHC string (argon2's default parameters, a random salt).
pub fn hash_password(password: &str) -> Result<String, CliError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| CliError::transport(format!("no random numbers from the system: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| CliError::usage(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CliError::usage(format!("cannot hash the password: {e}")))
}

/// The configured user and password hash, with a dummy hash of the same cost.
#[derive(Debug)]
pub struct Credentials {
    user: String,
    hash: String,
    dummy: String,
}

impl Credentials {
    /// Checks the PHC string and makes the dummy hash.
    pub fn new(user: String, hash: String) -> Result<Credentials, CliError> {
        let parsed = PasswordHash::new(&hash).map_err(|e| {
            CliError::usage(format!(
                "--password-hash is not a PHC string ({e}): make one with `sextant ui --hash-password`"
            ))
        })?;
        if parsed.algorithm.as_str() != "argon2id" {
            return Err(CliError::usage(format!(
                "--password-hash uses {}; an argon2id hash is expected (`sextant ui --hash-password`)",
                parsed.algorithm
            )));
        }
        let params = Params::try_from(&parsed)
            .map_err(|e| CliError::usage(format!("--password-hash has bad parameters: {e}")))?;
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)
            .map_err(|e| CliError::transport(format!("no random numbers from the system: {e}")))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| CliError::usage(e.to_string()))?;
        let filler = random_hex(16).map_err(CliError::transport)?;
        let dummy = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(filler.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CliError::usage(format!("cannot make the dummy hash: {e}")))?;
        Ok(Credentials { user, hash, dummy })
    }

    /// Whether `user` and `password` are the configured ones. Always runs one argon2
    /// verification (CPU-bound: call it from a blocking task).
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let user_ok = constant_time_eq(user.as_bytes(), self.user.as_bytes());
        let hash = if user_ok { &self.hash } else { &self.dummy };
        let password_ok = match PasswordHash::new(hash) {
            Ok(h) => Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok(),
            Err(_) => false,
        };
        user_ok & password_ok
    }
}

/// A logged-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The CSRF token the session's pages carry.
    pub csrf: String,
    expires: Instant,
}

/// The sessions, by token.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session: its cookie token and session.
    pub fn create(&self) -> Result<(String, Session), String> {
        let token = random_hex(32)?;
        let session = Session {
            csrf: random_hex(32)?,
            expires: Instant::now() + SESSION_TTL,
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(token.clone(), session.clone());
        Ok((token, session))
    }

    /// The session of a cookie token, if it is live.
    pub fn get(&self, token: &str) -> Option<Session> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(token)
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    /// Ends a session.
    pub fn remove(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }
}

/// Failed logins per client IP.
#[derive(Debug, Default)]
pub struct Failures {
    map: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Failures {
    /// Whether `ip` has used up its tries for now.
    pub fn blocked(&self, ip: IpAddr) -> bool {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip)
            .is_some_and(|(since, n)| since.elapsed() < FAILURE_WINDOW && *n >= MAX_FAILURES)
    }

    /// Counts a failure of `ip`.
    pub fn fail(&self, ip: IpAddr) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
        }
        if map.len() >= MAX_TRACKED {
            return; // flooded from many addresses: those already counted stay counted
        }
        let entry = map.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    /// Forgets `ip`'s failures (after a good login).
    pub fn clear(&self, ip: IpAddr) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ip);
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        let c = Credentials::new("admin".into(), phc).unwrap();
        assert!(c.verify("admin", "correct horse"));
        assert!(!c.verify("admin", "wrong"));
        assert!(!c.verify("root", "correct horse"));
        assert!(Credentials::new("a".into(), "nope".into()).is_err());
    }

    #[test]
    fn failures_block_then_clear() {
        let f = Failures::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(!f.blocked(ip));
            f.fail(ip);
        }
        assert!(f.blocked(ip));
        f.clear(ip);
        assert!(!f.blocked(ip));
    }

    #[test]
    fn cookies_and_tokens() {
        assert_eq!(cookie("a=1; sextant_ui_session=xy", COOKIE), Some("xy"));
        assert_eq!(cookie("a=1", COOKIE), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(random_hex(32).unwrap().len(), 64);
        let s = Sessions::default();
        let (t, session) = s.create().unwrap();
        assert_eq!(s.get(&t).unwrap().csrf, session.csrf);
        s.remove(&t);
        assert!(s.get(&t).is_none());
    }
}
