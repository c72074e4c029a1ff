//! W3C Trace Context (`traceparent`, `tracestate`) in rpcx metadata, parsed and written as the
//! [W3C Recommendation](https://www.w3.org/TR/trace-context/) says, without the OpenTelemetry
//! SDK.

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use sextant::Metadata;

/// The metadata key of the W3C `traceparent` (version, trace id, parent span id, flags).
pub const TRACEPARENT: &str = "traceparent";

/// The metadata key of the W3C `tracestate` (vendors' key/value list).
pub const TRACESTATE: &str = "tracestate";

/// The one version this module writes, and the length of its `traceparent`.
const VERSION_LEN: usize = 55;

/// Longest `traceparent` looked at. Version 00 is exactly 55 bytes; later versions may append
/// fields, which are ignored, but nothing needs more than this, so a huge value is refused
/// before it is scanned.
const MAX_TRACEPARENT_LEN: usize = 512;

/// Most list-members a `tracestate` may have.
const MAX_TRACESTATE_MEMBERS: usize = 32;

/// The W3C Trace Context propagator (Go's `propagation.TraceContext{}`): `traceparent` and
/// `tracestate`, as Go's rpcx-plugins write them into rpcx metadata when the Go program set
/// `otel.SetTextMapPropagator(propagation.TraceContext{})`.
///
/// Extraction follows the W3C Recommendation exactly: a `traceparent` is used only when it is
/// well formed (lowercase hex, version other than `ff`, exactly 55 bytes for version `00`, a
/// later version's extra fields after a `-` ignored), and its trace id and parent id are not all
/// zeros; otherwise it is ignored and the receiver starts a new trace. Of the flags only
/// `sampled` is kept. A `tracestate` that is malformed (a bad key or value, a duplicate key,
/// more than 32 list-members) is dropped while the `traceparent` is kept; a `tracestate`
/// without a valid `traceparent` is ignored. Surrounding spaces and tabs are trimmed, as Go does.
///
/// Injection writes `traceparent` as `00-{trace id}-{span id}-{flags}` and `tracestate` when it
/// is not empty, only for a valid span context: what Go's propagator writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct W3cTraceContext {
    _private: (),
}

impl W3cTraceContext {
    /// The propagator.
    pub const fn new() -> W3cTraceContext {
        W3cTraceContext { _private: () }
    }

    /// The remote span context a `traceparent` (and `tracestate`) describe, or `None` when the
    /// `traceparent` is not valid.
    ///
    /// ```
    /// use sextant_plugins::otel::W3cTraceContext;
    ///
    /// let sc = W3cTraceContext::parse(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ///     Some("congo=t61rcWkgMzE"),
    /// )
    /// .unwrap();
    /// assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
    /// assert!(sc.is_sampled() && sc.is_remote());
    /// assert_eq!(sc.trace_state().get("congo"), Some("t61rcWkgMzE"));
    ///
    /// // An all-zero trace id, uppercase hex, an unknown version's bad separator: ignored.
    /// assert!(W3cTraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None).is_none());
    /// assert!(W3cTraceContext::parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None).is_none());
    /// assert!(W3cTraceContext::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.x", None).is_none());
    /// ```
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
        let (trace_id, span_id, flags) = parse_traceparent(traceparent)?;
        let state = tracestate.and_then(parse_tracestate).unwrap_or_default();
        Some(SpanContext::new(trace_id, span_id, flags, true, state))
    }

    /// The `traceparent` for `span_context` (`00-{trace id}-{span id}-{flags}`, lowercase hex,
    /// only the `sampled` flag), or `None` when the span context is not valid.
    ///
    /// ```
    /// use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// use sextant_plugins::otel::W3cTraceContext;
    ///
    /// let sc = SpanContext::new(
    ///     TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736),
    ///     SpanId::from(0x00f067aa0ba902b7),
    ///     TraceFlags::SAMPLED,
    ///     false,
    ///     TraceState::NONE,
    /// );
    /// assert_eq!(
    ///     W3cTraceContext::traceparent(&sc).as_deref(),
    ///     Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    /// );
    /// assert_eq!(W3cTraceContext::traceparent(&SpanContext::NONE), None);
    /// ```
    pub fn traceparent(span_context: &SpanContext) -> Option<String> {
        if !span_context.is_valid() {
            return None;
        }
        let mut s = String::with_capacity(VERSION_LEN);
        s.push_str("00-");
        push_hex(&mut s, &span_context.trace_id().to_bytes());
        s.push('-');
        push_hex(&mut s, &span_context.span_id().to_bytes());
        s.push('-');
        push_hex(
            &mut s,
            &[(span_context.trace_flags() & TraceFlags::SAMPLED).to_u8()],
        );
        Some(s)
    }

    /// Writes `span_context` into `metadata` (what [`inject_context`] does, without an
    /// [`opentelemetry::Context`]): `traceparent`, and `tracestate` when not empty. Nothing for
    /// an invalid span context.
    ///
    /// [`inject_context`]: TextMapPropagator::inject_context
    pub(crate) fn inject_span_context(span_context: &SpanContext, metadata: &mut Metadata) {
        if let Some(tp) = W3cTraceContext::traceparent(span_context) {
            metadata.insert(TRACEPARENT, tp);
            let state = span_context.trace_state().header();
            if !state.is_empty() {
                metadata.insert(TRACESTATE, state);
            }
        }
    }

    /// The remote span context in `metadata`, if its `traceparent` is valid.
    pub(crate) fn extract_span_context(metadata: &Metadata) -> Option<SpanContext> {
        W3cTraceContext::parse(metadata.get(TRACEPARENT)?, metadata.get(TRACESTATE))
    }

    /// The trace id and span id of `metadata`'s `traceparent`, without its `tracestate`.
    pub(crate) fn ids(metadata: &Metadata) -> Option<(TraceId, SpanId)> {
        parse_traceparent(metadata.get(TRACEPARENT)?).map(|(t, s, _)| (t, s))
    }
}

impl TextMapPropagator for W3cTraceContext {
    fn inject_context(&self, cx: &opentelemetry::Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if let Some(tp) = W3cTraceContext::traceparent(sc) {
            injector.set(TRACEPARENT, tp);
            let state = sc.trace_state().header();
            if !state.is_empty() {
                injector.set(TRACESTATE, state);
            }
        }
    }

    fn extract_with_context(
        &self,
        cx: &opentelemetry::Context,
        extractor: &dyn Extractor,
    ) -> opentelemetry::Context {
        match extractor
            .get(TRACEPARENT)
            .and_then(|tp| W3cTraceContext::parse(tp, extractor.get(TRACESTATE)))
        {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(fields())
    }
}

/// `["traceparent", "tracestate"]`, built once.
fn fields() -> &'static [String] {
    static CELL: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    CELL.get_or_init(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()])
}

/// Reads rpcx metadata for a propagator (Go rpcx-plugins' `metadataSupplier`, read side).
#[derive(Debug, Clone, Copy)]
pub struct MetadataExtractor<'a>(pub &'a Metadata);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k).collect()
    }
}

/// Writes into rpcx metadata for a propagator (Go rpcx-plugins' `metadataSupplier`, write
/// side); a key already there is replaced.
#[derive(Debug)]
pub struct MetadataInjector<'a>(pub &'a mut Metadata);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value);
    }
}

/// Trace id, parent id and flags of a valid `traceparent`.
fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    if value.len() > MAX_TRACEPARENT_LEN {
        return None;
    }
    // Byte-wise from here: every accepted byte is ASCII, so no slicing can split a character.
    let v = value.trim_matches([' ', '\t']).as_bytes();
    if v.len() < VERSION_LEN {
        return None;
    }
    let version = hex_byte(v[0], v[1])?;
    if version == 0xff || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    // Version 00 has nothing after the flags; a later version may, after a dash.
    if v.len() > VERSION_LEN && (version == 0 || v[VERSION_LEN] != b'-') {
        return None;
    }
    let mut trace_id = [0u8; 16];
    hex_into(&v[3..35], &mut trace_id)?;
    let mut span_id = [0u8; 8];
    hex_into(&v[36..52], &mut span_id)?;
    let flags = hex_byte(v[53], v[54])?;
    let (trace_id, span_id) = (TraceId::from_bytes(trace_id), SpanId::from_bytes(span_id));
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    Some((
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
    ))
}

/// A valid `tracestate`, or `None` (the caller then drops it).
fn parse_tracestate(value: &str) -> Option<TraceState> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    for member in value.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        if members.len() == MAX_TRACESTATE_MEMBERS {
            return None;
        }
        let (key, val) = member.split_once('=')?;
        if !valid_key(key) || !valid_value(val) || members.iter().any(|(k, _)| *k == key) {
            return None;
        }
        members.push((key, val));
    }
    TraceState::from_key_value(members).ok()
}

/// `simple-key = lcalpha 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/")`, or
/// `multi-tenant-key = tenant-id "@" system-id` with
/// `tenant-id = (lcalpha / DIGIT) 0*240(…)` and `system-id = lcalpha 0*13(…)`.
fn valid_key(key: &str) -> bool {
    fn rest(b: &[u8]) -> bool {
        b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
        })
    }
    let k = key.as_bytes();
    match key.split_once('@') {
        None => !k.is_empty() && k.len() <= 256 && k[0].is_ascii_lowercase() && rest(&k[1..]),
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            !t.is_empty()
                && t.len() <= 241
                && (t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                && rest(&t[1..])
                && !s.is_empty()
                && s.len() <= 14
                && s[0].is_ascii_lowercase()
                && rest(&s[1..])
        }
    }
}

/// `value = 0*255(chr) nblk-chr`: 1 to 256 printable ASCII characters other than `,` and `=`,
/// the last not a space.
fn valid_value(value: &str) -> bool {
    let v = value.as_bytes();
    !v.is_empty()
        && v.len() <= 256
        && v.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && v[v.len() - 1] != b' '
}

/// A lowercase hex digit's value.
fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    Some(hex_digit(hi)? << 4 | hex_digit(lo)?)
}

/// Decodes lowercase hex `src` (twice as long as `out`) into `out`.
fn hex_into(src: &[u8], out: &mut [u8]) -> Option<()> {
    for (o, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
        *o = hex_byte(pair[0], pair[1])?;
    }
    Some(())
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_examples() {
        let sc =
            W3cTraceContext::parse(TP, Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")).unwrap();
        assert_eq!(
            sc.trace_id(),
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736)
        );
        assert_eq!(sc.span_id(), SpanId::from(0x00f067aa0ba902b7));
        assert!(sc.is_sampled() && sc.is_remote() && sc.is_valid());
        assert_eq!(
            sc.trace_state().header(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        );
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert!(!W3cTraceContext::parse(unsampled, None)
            .unwrap()
            .is_sampled());
    }

    #[test]
    fn round_trips() {
        let sc = W3cTraceContext::parse(TP, None).unwrap();
        assert_eq!(W3cTraceContext::traceparent(&sc).as_deref(), Some(TP));
        let mut md = Metadata::new();
        W3cTraceContext::inject_span_context(&sc, &mut md);
        assert_eq!(md.get(TRACEPARENT), Some(TP));
        assert_eq!(
            md.get(TRACESTATE),
            None,
            "an empty tracestate is not written"
        );
        assert_eq!(W3cTraceContext::extract_span_context(&md), Some(sc));
    }

    #[test]
    fn later_versions_and_flags() {
        // A later version may carry more fields after a dash; unknown flags are cleared.
        let v = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-whatever";
        let sc = W3cTraceContext::parse(v, None).unwrap();
        assert_eq!(sc.trace_flags(), TraceFlags::SAMPLED);
        let v = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09";
        assert_eq!(
            W3cTraceContext::parse(v, None).unwrap().trace_flags(),
            TraceFlags::SAMPLED
        );
        // Surrounding spaces and tabs are trimmed (as Go's propagator does).
        assert!(W3cTraceContext::parse(&format!(" \t{TP} "), None).is_some());
    }

    #[test]
    fn refuses_malformed_traceparents() {
        let huge = "0".repeat(100 * 1024);
        let long_v0 = format!("{TP}-00");
        let cases: Vec<&str> = vec![
            "",
            "00",
            &huge,
            &long_v0,
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.x",
            // Multi-byte characters where hex digits and dashes are expected.
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é",
            "ééééééééééééééééééééééééééééééééééééééééééééééééééééééé",
        ];
        for c in cases {
            assert!(W3cTraceContext::parse(c, Some("a=b")).is_none(), "{c:?}");
        }
    }

    #[test]
    fn drops_malformed_tracestates_but_keeps_the_traceparent() {
        let too_many = (0..33)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let thirty_two = (0..32)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let huge = format!("a={}", "x".repeat(100 * 1024));
        let long_key = format!("{}=v", "k".repeat(257));
        for bad in [
            "a",
            "A=b",
            "a=b,a=c",
            "1a=b",
            "a=",
            "a=b=c",
            "a=b ,c =d",
            "t@Sys=v",
            "t@0sys=v",
            "t@systemidlonger15=v",
            "a=\u{7f}",
            "a=é",
            &too_many,
            &huge,
            &long_key,
        ] {
            let sc = W3cTraceContext::parse(TP, Some(bad)).unwrap();
            assert_eq!(sc.trace_state(), &TraceState::NONE, "{bad:?}");
        }
        for good in [
            "a=b",
            " a=b , c=d\t",
            "a=b,,c=d",
            "tenant@sys=v",
            "0tenant@s_-*/9=v",
            "a=b c",
            &thirty_two,
        ] {
            let sc = W3cTraceContext::parse(TP, Some(good)).unwrap();
            assert_ne!(sc.trace_state(), &TraceState::NONE, "{good:?}");
        }
    }

    #[test]
    fn propagator_interface() {
        let mut md = Metadata::new();
        md.insert(TRACEPARENT, TP);
        md.insert(TRACESTATE, "congo=t61rcWkgMzE");
        let p = W3cTraceContext::new();
        let cx = p.extract_with_context(&opentelemetry::Context::new(), &MetadataExtractor(&md));
        assert_eq!(
            cx.span().span_context().span_id(),
            SpanId::from(0x00f067aa0ba902b7)
        );
        let mut out = Metadata::new();
        p.inject_context(&cx, &mut MetadataInjector(&mut out));
        assert_eq!(out, md);
        assert_eq!(p.fields().collect::<Vec<_>>(), [TRACEPARENT, TRACESTATE]);
        // Nothing valid: the context comes back as it was, and nothing is injected.
        let empty = p.extract_with_context(
            &opentelemetry::Context::new(),
            &MetadataExtractor(&Metadata::new()),
        );
        assert!(!empty.has_active_span());
        let mut out = Metadata::new();
        p.inject_context(&empty, &mut MetadataInjector(&mut out));
        assert!(out.is_empty());
    }
}
