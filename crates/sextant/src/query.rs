//! Server metadata as rpcx reads and writes it: URL query strings (Go's `url.Values`).
//!
//! A server's metadata is a query string, `group=test&state=inactive&weight=10`: it is what a
//! service is registered with, what a registry entry holds and what discovery hands to the
//! selectors. rpcx parses it with `url.ParseQuery` and writes it back with `Values.Encode`, which
//! sorts the keys and escapes with `QueryEscape` (space as `+`). [`QueryValues`] does the same, so
//! values written by sextant and by Go are byte-identical.
//!
//! Two ways to read one: [`QueryValues::parse`] is strict (the first bad pair is an error: for
//! registries deciding whether an entry is garbage) and [`QueryValues::parse_lenient`] never
//! fails (for selectors, which must route whatever a registry holds).

use std::collections::BTreeMap;
use std::fmt;

/// A parsed query string: every key with its values in order (Go's `url.Values`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryValues {
    map: BTreeMap<String, Vec<String>>,
}

/// Why a string is not a valid query string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-escape in {0:?}")]
    BadEscape(String),
    /// A `;` separator, which Go (1.17 and later) rejects.
    #[error("invalid semicolon separator in {0:?}")]
    Semicolon(String),
    /// Unescaped bytes that are not UTF-8.
    #[error("{0:?} is not UTF-8 once unescaped")]
    NotUtf8(String),
    /// A control character, which no metadata legitimately holds.
    #[error("control character in {0:?}")]
    Control(String),
}

impl QueryValues {
    /// An empty set of values.
    pub fn new() -> QueryValues {
        QueryValues::default()
    }

    /// Parses `s` as Go's `url.ParseQuery` does, but strictly: the first bad pair is an error.
    ///
    /// Pairs are separated by `&`; empty pairs are skipped; a pair without `=` has an empty value;
    /// `+` means space and `%XX` a byte.
    pub fn parse(s: &str) -> Result<QueryValues, QueryError> {
        let mut v = QueryValues::new();
        for pair in s.split('&') {
            if pair.is_empty() {
                continue;
            }
            if pair.contains(';') {
                return Err(QueryError::Semicolon(pair.to_string()));
            }
            if pair.chars().any(char::is_control) {
                return Err(QueryError::Control(pair.to_string()));
            }
            let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
            let k = unescape(k)?;
            let val = unescape(val)?;
            v.map.entry(k).or_default().push(val);
        }
        Ok(v)
    }

    /// Parses `s` leniently: never fails. Pairs are split on `&`; a pair without `=` is a key
    /// with an empty value; a pair with an empty key is skipped; an invalid percent escape is
    /// kept as written; bytes that are not UTF-8 once unescaped are replaced (U+FFFD).
    pub fn parse_lenient(s: &str) -> QueryValues {
        let mut v = QueryValues::new();
        for pair in s.split('&').filter(|p| !p.is_empty()) {
            let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
            let k = unescape_lenient(k);
            if !k.is_empty() {
                v.map.entry(k).or_default().push(unescape_lenient(val));
            }
        }
        v
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Replaces every value of `key` with `value`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.map.insert(key.into(), vec![value.into()]);
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The keys and their values, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Encodes as Go's `Values.Encode`: sorted by key, `key=value` pairs joined by `&`, escaped
    /// with `QueryEscape`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (k, vs) in &self.map {
            for v in vs {
                if !out.is_empty() {
                    out.push('&');
                }
                escape_into(k, &mut out);
                out.push('=');
                escape_into(v, &mut out);
            }
        }
        out
    }
}

impl fmt::Display for QueryValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

fn unescape(s: &str) -> Result<String, QueryError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => return Err(QueryError::BadEscape(s.to_string())),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| QueryError::NotUtf8(s.to_string()))
}

fn unescape_lenient(s: &str) -> String {
    if !s.contains(['%', '+']) {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `url.QueryEscape`: unreserved characters stay, space becomes `+`, the rest `%XX`.
fn escape_into(s: &str, out: &mut String) {
    for &c in s.as_bytes() {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(c as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(c >> 4) as usize] as char);
                out.push(HEX[(c & 15) as usize] as char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_encodes_like_go() {
        let v = QueryValues::parse("weight=10&group=test&state=inactive&x=a+b%21").unwrap();
        assert_eq!(v.get("group"), Some("test"));
        assert_eq!(v.get("x"), Some("a b!"));
        // Go's Encode sorts keys and escapes '!' as %21 and space as '+'.
        assert_eq!(v.encode(), "group=test&state=inactive&weight=10&x=a+b%21");
    }

    #[test]
    fn empty_pairs_and_bare_keys() {
        let v = QueryValues::parse("&a&&b=").unwrap();
        assert_eq!(v.get("a"), Some(""));
        assert_eq!(v.get("b"), Some(""));
        assert_eq!(v.encode(), "a=&b=");
        assert!(QueryValues::parse("").unwrap().is_empty());
    }

    #[test]
    fn repeated_keys_keep_order_and_set_replaces() {
        let mut v = QueryValues::parse("t=1&t=2").unwrap();
        assert_eq!(v.encode(), "t=1&t=2");
        v.set("t", "3");
        assert_eq!(v.encode(), "t=3");
        v.remove("t");
        assert!(v.is_empty());
    }

    #[test]
    fn lenient_parsing_never_fails() {
        let v = QueryValues::parse_lenient("weight=abc&group=&&=x&state=inactive&flag&n=%zz%41+b");
        assert_eq!(v.get("weight"), Some("abc"));
        assert_eq!(v.get("group"), Some(""));
        assert_eq!(v.get("flag"), Some(""));
        assert_eq!(v.get("n"), Some("%zzA b"));
        assert_eq!(v.get(""), None);
        assert_eq!(QueryValues::parse_lenient("%").get("%"), Some(""));
        assert_eq!(QueryValues::parse_lenient("a=%4").get("a"), Some("%4"));
        assert_eq!(
            QueryValues::parse_lenient("a=%ff").get("a"),
            Some("\u{fffd}")
        );
        assert_eq!(
            QueryValues::parse_lenient("a=1;b=2").get("a"),
            Some("1;b=2")
        );
        assert_eq!(QueryValues::parse_lenient("t=1&t=2").get("t"), Some("1"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            QueryValues::parse("a=%zz"),
            Err(QueryError::BadEscape(_))
        ));
        assert!(matches!(
            QueryValues::parse("a=1;b=2"),
            Err(QueryError::Semicolon(_))
        ));
        assert!(matches!(
            QueryValues::parse("a=%ff%fe"),
            Err(QueryError::NotUtf8(_))
        ));
        assert!(matches!(
            QueryValues::parse("a=\u{1}"),
            Err(QueryError::Control(_))
        ));
        assert!(matches!(
            QueryValues::parse("a=%4"),
            Err(QueryError::BadEscape(_))
        ));
    }
}
