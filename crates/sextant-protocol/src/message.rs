//! Whole rpcx messages: encode into a buffer, parse a frame, and decode incrementally from a
//! byte stream under size limits.
//!
//! Decoding is zero-copy: a [`Message`] keeps the frame it was read from as [`Bytes`], and its
//! service path, method, metadata and payload are slices of it.

use std::fmt;
use std::ops::Deref;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::frame::FrameHead;
use crate::header::{CompressType, Header, HEADER_LEN, MAGIC_NUMBER};

/// Default maximum size of one message on the wire, header included: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;
/// Default maximum size of a payload after decompression: 16 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 16 << 20;

/// Size limits applied when reading messages.
///
/// rpcx itself limits neither; sextant always does, so that a peer cannot make it allocate more
/// than these bounds per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest message accepted, in bytes, including the 16-byte header.
    /// Default: [`DEFAULT_MAX_MESSAGE_SIZE`] (16 MiB).
    pub max_message_size: usize,
    /// Largest payload accepted after gzip decompression, in bytes.
    /// Default: [`DEFAULT_MAX_DECOMPRESSED_SIZE`] (16 MiB).
    pub max_decompressed_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
        }
    }
}

impl Limits {
    /// Limits with the given message size and decompressed size.
    pub fn new(max_message_size: usize, max_decompressed_size: usize) -> Limits {
        Limits {
            max_message_size,
            max_decompressed_size,
        }
    }
}

/// An immutable UTF-8 string backed by [`Bytes`], so that strings decoded from a frame share its
/// memory instead of being copied.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteStr(Bytes);

impl ByteStr {
    /// An empty string.
    pub const fn new() -> ByteStr {
        ByteStr(Bytes::new())
    }

    /// A string borrowed from static memory, without allocating.
    pub const fn from_static(s: &'static str) -> ByteStr {
        ByteStr(Bytes::from_static(s.as_bytes()))
    }

    /// Checks that `bytes` are UTF-8 and wraps them.
    pub fn from_utf8(bytes: Bytes) -> Result<ByteStr, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(ByteStr(bytes))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor either checks UTF-8 or starts from a `str`/`String`.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for ByteStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ByteStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for ByteStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for ByteStr {
    fn from(s: String) -> Self {
        ByteStr(Bytes::from(s))
    }
}

impl From<&str> for ByteStr {
    fn from(s: &str) -> Self {
        ByteStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl PartialEq<str> for ByteStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ByteStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for ByteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ByteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// String key/value pairs carried with a message (rpcx's `map[string]string`).
///
/// Kept as a small vector in arrival order: messages carry a handful of pairs, for which a scan is
/// faster than hashing, and an empty `Metadata` does not allocate. Like a Go map, a key has one
/// value: [`insert`](Metadata::insert) replaces, and if a peer sends a key twice
/// [`get`](Metadata::get) sees the last one.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata(Vec<(ByteStr, ByteStr)>);

impl Metadata {
    /// Empty metadata.
    pub const fn new() -> Metadata {
        Metadata(Vec::new())
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, replacing any previous value. Returns the previous value.
    pub fn insert(
        &mut self,
        key: impl Into<ByteStr>,
        value: impl Into<ByteStr>,
    ) -> Option<ByteStr> {
        let key = key.into();
        let value = value.into();
        if let Some(slot) = self.0.iter_mut().rev().find(|(k, _)| *k == key) {
            return Some(std::mem::replace(&mut slot.1, value));
        }
        self.0.push((key, value));
        None
    }

    /// Removes every pair with `key`, returning the last value.
    pub fn remove(&mut self, key: &str) -> Option<ByteStr> {
        let mut last = None;
        self.0.retain(|(k, v)| {
            if k.as_str() == key {
                last = Some(v.clone());
                false
            } else {
                true
            }
        });
        last
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Removes all pairs.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Adds every pair of `other` whose key is not present yet (how rpcx merges handler metadata
    /// into an error response).
    pub fn merge_missing(&mut self, other: &Metadata) {
        for (k, v) in &other.0 {
            if !self.contains_key(k) {
                self.0.push((k.clone(), v.clone()));
            }
        }
    }

    fn push_unchecked(&mut self, k: ByteStr, v: ByteStr) {
        self.0.push((k, v));
    }

    /// Bytes this metadata takes on the wire, its own u32 length excluded.
    pub fn encoded_len(&self) -> usize {
        self.0.iter().map(|(k, v)| 8 + k.len() + v.len()).sum()
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<ByteStr>, V: Into<ByteStr>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Metadata::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

/// One rpcx message: request, response, heartbeat or server push.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The 12-byte header.
    pub header: Header,
    /// The service (rpcx's `ServicePath`), e.g. `Arith`.
    pub service_path: ByteStr,
    /// The method (rpcx's `ServiceMethod`), e.g. `Mul`.
    pub service_method: ByteStr,
    /// Metadata pairs.
    pub metadata: Metadata,
    /// The payload as on the wire: compressed when the header says so.
    pub payload: Bytes,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("header", &self.header)
            .field("service_path", &self.service_path)
            .field("service_method", &self.service_method)
            .field("metadata", &self.metadata)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl Message {
    /// An empty request with a default header (msgpack, id 0).
    pub fn new() -> Message {
        Message::default()
    }

    /// Number of bytes [`encode`](Message::encode) writes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + 16
            + self.service_path.len()
            + self.service_method.len()
            + self.metadata.encoded_len()
            + self.payload.len()
    }

    /// Appends the message in rpcx's wire format to `dst`, payload as it is (no compression is
    /// applied: the payload is already in its wire form).
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        let head = FrameHead::new(
            &self.header,
            &self.service_path,
            &self.service_method,
            &self.metadata,
        );
        head.encode(dst, CompressType::NONE, self.payload.len(), |b| {
            b.put_slice(&self.payload);
            Ok(())
        })
    }

    /// The message in rpcx's wire format.
    pub fn to_bytes(&self) -> Result<Bytes, ProtocolError> {
        let mut b = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut b)?;
        Ok(b.freeze())
    }

    /// Parses one complete frame (header included). Every inner length is checked against the
    /// bytes present; strings are checked to be UTF-8.
    pub fn parse(mut frame: Bytes) -> Result<Message, ProtocolError> {
        if frame.is_empty() {
            return Err(ProtocolError::UnexpectedEof(0));
        }
        if frame[0] != MAGIC_NUMBER {
            return Err(ProtocolError::BadMagic(frame[0]));
        }
        if frame.len() < HEADER_LEN {
            return Err(ProtocolError::UnexpectedEof(frame.len()));
        }
        let mut hb = [0u8; 12];
        hb.copy_from_slice(&frame[..12]);
        let header = Header::from_bytes(hb);
        let total = u32::from_be_bytes([frame[12], frame[13], frame[14], frame[15]]) as usize;
        frame.advance(HEADER_LEN);
        if total > frame.len() {
            return Err(ProtocolError::Truncated {
                field: "message",
                needed: total as u64,
                remaining: frame.len(),
            });
        }
        if total < frame.len() {
            return Err(ProtocolError::TrailingBytes(frame.len() - total));
        }

        let path = take_field(&mut frame, "service path")?;
        let method = take_field(&mut frame, "service method")?;
        let mut meta_bytes = take_field(&mut frame, "metadata")?;
        let payload = take_field(&mut frame, "payload")?;
        if !frame.is_empty() {
            return Err(ProtocolError::TrailingBytes(frame.len()));
        }

        let utf8 = |b: Bytes, field: &'static str| {
            ByteStr::from_utf8(b).map_err(|_| ProtocolError::InvalidUtf8 { field, header })
        };
        let service_path = utf8(path, "service path")?;
        let service_method = utf8(method, "service method")?;
        let mut metadata = Metadata::new();
        while !meta_bytes.is_empty() {
            let k = take_field(&mut meta_bytes, "metadata key")?;
            let v = take_field(&mut meta_bytes, "metadata value")?;
            metadata.push_unchecked(utf8(k, "metadata key")?, utf8(v, "metadata value")?);
        }
        Ok(Message {
            header,
            service_path,
            service_method,
            metadata,
            payload,
        })
    }
}

fn take_field(buf: &mut Bytes, field: &'static str) -> Result<Bytes, ProtocolError> {
    if buf.len() < 4 {
        return Err(ProtocolError::Truncated {
            field,
            needed: 4,
            remaining: buf.len(),
        });
    }
    let len = buf.get_u32() as usize;
    if len > buf.len() {
        return Err(ProtocolError::Truncated {
            field,
            needed: len as u64,
            remaining: buf.len(),
        });
    }
    Ok(buf.split_to(len))
}

/// Incremental decoder: feed it whatever bytes arrived, take out whole messages.
///
/// It never buffers more than [`Limits::max_message_size`] for one message: the declared length
/// is checked as soon as the 16-byte header is in, and a wrong magic byte is reported as soon as
/// the first byte is.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    limits: Limits,
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Decoder {
        Decoder { limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes one message out of `buf` if a whole one is there, returns `Ok(None)` if more bytes
    /// are needed. On `Err` with [`ProtocolError::closes_connection`] the stream is unusable; on
    /// other errors the bad frame has been consumed and decoding can go on.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        match self.next_frame(buf)? {
            Some(frame) => Message::parse(frame).map(Some),
            None => Ok(None),
        }
    }

    /// Takes one whole raw frame out of `buf` without parsing its inside.
    pub fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        if buf.is_empty() {
            return Ok(None);
        }
        if buf[0] != MAGIC_NUMBER {
            return Err(ProtocolError::BadMagic(buf[0]));
        }
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let total = u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]) as u64;
        let size = HEADER_LEN as u64 + total;
        if size > self.limits.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge {
                size,
                limit: self.limits.max_message_size,
            });
        }
        let size = size as usize;
        if buf.len() < size {
            buf.reserve(size - buf.len());
            return Ok(None);
        }
        Ok(Some(buf.split_to(size).freeze()))
    }

    /// Called when the stream has ended: an error if a partial message is left in `buf`.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        match self.decode(buf)? {
            Some(m) => Ok(Some(m)),
            None if buf.is_empty() => Ok(None),
            None => Err(ProtocolError::UnexpectedEof(buf.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        let mut m = Message::new();
        m.header.set_seq(42);
        m.service_path = ByteStr::from_static("Arith");
        m.service_method = ByteStr::from_static("Mul");
        m.metadata.insert("trace", "abc123");
        m.payload = Bytes::from_static(&[0x82, 0xa1, 0x41, 0x0a, 0xa1, 0x42, 0x14]);
        m
    }

    #[test]
    fn encode_then_parse() {
        let m = sample();
        let b = m.to_bytes().unwrap();
        assert_eq!(b.len(), m.encoded_len());
        assert_eq!(b.len(), 66);
        assert_eq!(Message::parse(b).unwrap(), m);
    }

    #[test]
    fn decoder_waits_for_whole_frames() {
        let b = sample().to_bytes().unwrap();
        let mut d = Decoder::default();
        let mut buf = BytesMut::new();
        for (i, byte) in b.iter().enumerate() {
            assert!(d.decode(&mut buf).unwrap().is_none(), "early at {i}");
            buf.put_u8(*byte);
        }
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), sample());
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_declared_length_is_rejected_before_buffering() {
        let mut buf = BytesMut::from(
            &[
                0x08, 0, 0, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
            ][..],
        );
        let err = Decoder::new(Limits::new(1024, 1024))
            .decode(&mut buf)
            .unwrap_err();
        assert!(
            matches!(err, ProtocolError::MessageTooLarge { size, .. } if size == 16 + u32::MAX as u64)
        );
        assert!(err.closes_connection());
        assert!(buf.capacity() < 1 << 20);
    }

    #[test]
    fn metadata_insert_replaces_and_get_sees_last() {
        let mut m = Metadata::new();
        m.insert("a", "1");
        m.insert("a", "2");
        assert_eq!(m.len(), 1);
        assert_eq!(m.get("a"), Some("2"));
        m.push_unchecked("b".into(), "x".into());
        m.push_unchecked("b".into(), "y".into());
        assert_eq!(m.get("b"), Some("y"));
        assert_eq!(m.remove("b").as_deref(), Some("y"));
        assert!(!m.contains_key("b"));
    }
}
