//! The per-call [`Context`] a handler receives.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sextant_protocol::{ByteStr, Header, Metadata, SerializeType};

use crate::server::ClientConn;
use crate::transport::{PeerAddr, PeerIdentity};
use crate::util::lock;

/// Where a call came from.
#[derive(Clone)]
pub(crate) enum Origin {
    /// An rpcx connection (direct or HTTP CONNECT): pushes can go back on it.
    Conn(ClientConn),
    /// An HTTP request (HTTP invoke, JSON-RPC): no connection to push to.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    Http(PeerAddr, Option<Arc<PeerIdentity>>),
}

impl Origin {
    /// The caller's address.
    pub(crate) fn peer_addr(&self) -> &PeerAddr {
        match self {
            Origin::Conn(c) => c.peer_addr(),
            Origin::Http(p, _) => p,
        }
    }
}

/// What a handler knows about the call it is serving: who called, with which metadata, until
/// when; and where it can leave metadata for the response.
///
/// Cloning is cheap (a reference count). The response metadata is shared between clones, so a
/// handler may hand a clone to a spawned task.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    header: Header,
    service_path: ByteStr,
    service_method: ByteStr,
    metadata: Metadata,
    origin: Origin,
    deadline: Option<Instant>,
    response_metadata: Mutex<Metadata>,
    /// Whether encoding the response copies the response metadata rather than taking it: on
    /// the plugin path, so that the write hooks still see it and a reply a plugin puts in
    /// place of the handler's carries it too.
    keep_response_metadata: bool,
    /// The names the response echoes when a plugin renamed the request (an alias).
    reply_names: Option<Box<(ByteStr, ByteStr)>>,
    extensions: Mutex<Extensions>,
}

/// The extensions: few (a plugin or two puts one or two each), so a vector searched in order
/// beats a hash map, and an empty one allocates nothing.
type Extensions = Vec<(TypeId, Box<dyn Any + Send + Sync>)>;

fn position<T: Any>(map: &Extensions) -> Option<usize> {
    let id = TypeId::of::<T>();
    map.iter().position(|(t, _)| *t == id)
}

impl Context {
    pub(crate) fn new(
        header: Header,
        service_path: ByteStr,
        service_method: ByteStr,
        metadata: Metadata,
        origin: Origin,
        deadline: Option<Instant>,
    ) -> Context {
        Context {
            inner: Arc::new(Inner {
                header,
                service_path,
                service_method,
                metadata,
                origin,
                deadline,
                response_metadata: Mutex::new(Metadata::new()),
                keep_response_metadata: false,
                reply_names: None,
                extensions: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A context whose response echoes `reply_names` (the names the caller sent) rather than
    /// the service path and method it was routed by.
    pub(crate) fn with_reply_names(mut self, names: Option<(ByteStr, ByteStr)>) -> Context {
        if let (Some(n), Some(inner)) = (names, Arc::get_mut(&mut self.inner)) {
            inner.reply_names = Some(Box::new(n));
        }
        self
    }

    /// A context whose response metadata outlives the encoding of the response (the plugin
    /// path: see `keep_response_metadata`).
    pub(crate) fn keeping_response_metadata(mut self) -> Context {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.keep_response_metadata = true;
        }
        self
    }

    /// The service path the response carries.
    pub(crate) fn reply_service_path(&self) -> &str {
        match &self.inner.reply_names {
            Some(n) => &n.0,
            None => &self.inner.service_path,
        }
    }

    /// The method the response carries.
    pub(crate) fn reply_service_method(&self) -> &str {
        match &self.inner.reply_names {
            Some(n) => &n.1,
            None => &self.inner.service_method,
        }
    }

    /// Stores a value of type `T` for the rest of the call, replacing one already there, and
    /// returns the old one: the typed map plugins, layers and handlers share (an authenticated
    /// identity, a span, a start time). Values live as long as the context.
    pub fn insert_extension<T: Any + Send + Sync>(&self, value: T) -> Option<T> {
        let mut map = lock(&self.inner.extensions);
        match position::<T>(&map) {
            Some(i) => {
                let old = std::mem::replace(&mut map[i].1, Box::new(value));
                old.downcast::<T>().ok().map(|b| *b)
            }
            None => {
                map.push((TypeId::of::<T>(), Box::new(value)));
                None
            }
        }
    }

    /// A clone of the value of type `T` stored with
    /// [`insert_extension`](Context::insert_extension), if any.
    pub fn extension<T: Any + Send + Sync + Clone>(&self) -> Option<T> {
        self.with_extension(|v: Option<&T>| v.cloned())
    }

    /// Runs `f` with a reference to the value of type `T`, if any (for values that are not
    /// `Clone`).
    pub fn with_extension<T: Any + Send + Sync, R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let map = lock(&self.inner.extensions);
        f(position::<T>(&map).and_then(|i| map[i].1.downcast_ref::<T>()))
    }

    /// Takes the value of type `T` out of the context.
    pub fn remove_extension<T: Any + Send + Sync>(&self) -> Option<T> {
        let mut map = lock(&self.inner.extensions);
        let i = position::<T>(&map)?;
        map.swap_remove(i).1.downcast::<T>().ok().map(|b| *b)
    }

    /// A number that tells this call from every other call in flight on the server (and its
    /// clones from other calls): plugins key per-call state by it. Numbers of calls that have
    /// ended may be reused.
    pub fn call_id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// The service being called (rpcx's `ServicePath`).
    pub fn service_path(&self) -> &str {
        &self.inner.service_path
    }

    /// The method being called (rpcx's `ServiceMethod`).
    pub fn service_method(&self) -> &str {
        &self.inner.service_method
    }

    /// The request's metadata (rpcx's `share.ReqMetaDataKey`), reserved keys included.
    pub fn metadata(&self) -> &Metadata {
        &self.inner.metadata
    }

    /// Sets a metadata pair on the response (rpcx's `share.ResMetaDataKey`).
    pub fn set_response_metadata(&self, key: impl Into<ByteStr>, value: impl Into<ByteStr>) {
        lock(&self.inner.response_metadata).insert(key, value);
    }

    /// A copy of the response metadata set so far. A server plugin's `post_call` and write
    /// hooks see here what the handler set (without the `__rpcx_error__` an error response
    /// adds).
    pub fn response_metadata(&self) -> Metadata {
        lock(&self.inner.response_metadata).clone()
    }

    /// The response metadata for encoding the response: taken, or copied on the plugin path.
    pub(crate) fn take_response_metadata(&self) -> Metadata {
        let mut m = lock(&self.inner.response_metadata);
        if self.inner.keep_response_metadata {
            m.clone()
        } else {
            std::mem::take(&mut *m)
        }
    }

    /// The caller's address.
    pub fn peer_addr(&self) -> Option<&PeerAddr> {
        Some(self.inner.origin.peer_addr())
    }

    /// What the caller's TLS or QUIC handshake showed: its client certificate (mutual TLS), the
    /// server name it asked for and the ALPN protocol. `None` on connections without one.
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        match &self.inner.origin {
            Origin::Conn(c) => c.peer_identity(),
            Origin::Http(_, id) => id.as_deref(),
        }
    }

    /// The caller's rpcx connection (rpcx's `ctx.Value(server.RemoteConnContextKey)`), through
    /// which the server can push messages to it; `None` for calls that came over HTTP invoke or
    /// JSON-RPC. The handle outlives the call.
    pub fn conn(&self) -> Option<&ClientConn> {
        match &self.inner.origin {
            Origin::Conn(c) => Some(c),
            Origin::Http(..) => None,
        }
    }

    /// When the caller stops waiting, from the request's `__ServerTimeout`. The server drops the
    /// handler's future at this instant and answers with a timeout error.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// Time left before the deadline, if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.inner
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The message id of the request.
    pub fn seq(&self) -> u64 {
        self.inner.header.seq()
    }

    /// How the request's payload was serialized; the reply is serialized the same way.
    pub fn serialize_type(&self) -> SerializeType {
        self.inner.header.serialize_type()
    }

    /// Whether the caller expects no response.
    pub fn is_oneway(&self) -> bool {
        self.inner.header.is_oneway()
    }

    pub(crate) fn header(&self) -> &Header {
        &self.inner.header
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("service_path", &self.service_path())
            .field("service_method", &self.service_method())
            .field("seq", &self.seq())
            .field("metadata", self.metadata())
            .field("peer", &self.peer_addr())
            .field("deadline", &self.inner.deadline)
            .finish()
    }
}
