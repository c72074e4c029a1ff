//! The errors a call can end with.
//!
//! One question matters to every caller and to the XClient's fail modes: *is this retryable?*
//! A [`ServiceError`] (the server ran, or refused, the call) and an expired or cancelled call are
//! never retried; a failure to connect or a lost connection is.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use sextant_protocol::{CodecError, Metadata, ProtocolError};

/// An error reported by the server: a handler's error, an unknown service or method, an auth
/// failure. It crossed the wire as text in the `__rpcx_error__` metadata key.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceError {
    message: String,
    metadata: Metadata,
}

impl ServiceError {
    /// An error with this text. Handlers return it (or any `Display` error) to fail a call.
    pub fn new(message: impl Into<String>) -> ServiceError {
        ServiceError {
            message: message.into(),
            metadata: Metadata::new(),
        }
    }

    pub(crate) fn with_metadata(message: impl Into<String>, metadata: Metadata) -> ServiceError {
        ServiceError {
            message: message.into(),
            metadata,
        }
    }

    /// The error text, exactly as the server sent it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The response metadata that came with the error (client side).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

impl fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServiceError").field(&self.message).finish()
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ServiceError {}

impl From<&str> for ServiceError {
    fn from(s: &str) -> Self {
        ServiceError::new(s)
    }
}

impl From<String> for ServiceError {
    fn from(s: String) -> Self {
        ServiceError::new(s)
    }
}

/// Everything that can go wrong with a call, a connection or a server.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error. Never retried.
    #[error("service error: {0}")]
    Service(ServiceError),
    /// The call's deadline passed before a reply arrived. Never retried.
    #[error("call deadline exceeded")]
    DeadlineExceeded,
    /// The call was cancelled by the caller. Never retried.
    #[error("call cancelled")]
    Canceled,
    /// The client (or XClient) was closed; no call can be made with it any more.
    #[error("client is closed")]
    Closed,
    /// The server was shut down: it serves no new listener (build a new [`Server`](crate::Server)
    /// to serve again).
    #[error("the server is shut down")]
    ServerShutdown,
    /// A listener could not be bound (address in use, no permission, bad path). Not retryable.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: String,
        /// Why.
        #[source]
        source: Arc<io::Error>,
    },
    /// A graceful shutdown ran out of its grace period: the calls still running then were
    /// dropped and their connections closed.
    #[error(
        "shutdown grace period of {grace:?} ran out: calls still running on {connections} \
         connections were dropped"
    )]
    ShutdownTimeout {
        /// The grace period given.
        grace: Duration,
        /// Connections still open, with calls running, when it ran out.
        connections: usize,
    },
    /// Could not connect to a server.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The address dialled.
        address: String,
        /// Why.
        #[source]
        source: Arc<io::Error>,
    },
    /// Connecting took longer than the connect timeout.
    #[error("connecting to {address} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The address dialled.
        address: String,
        /// The timeout in force.
        timeout: Duration,
    },
    /// The connection broke while the call was in flight or queued.
    #[error("connection lost: {0}")]
    ConnectionLost(Arc<str>),
    /// An I/O error on an established connection.
    #[error("i/o error: {0}")]
    Io(Arc<io::Error>),
    /// The peer sent something that is not valid rpcx.
    #[error("protocol error: {0}")]
    Protocol(Arc<ProtocolError>),
    /// The argument or reply could not be (de)serialized.
    #[error("codec error: {0}")]
    Codec(#[from] CodecError),
    /// An address could not be parsed.
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A server or client setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No server is available to take the call.
    #[error("no server available for {0}")]
    NoServer(String),
    /// A server push could not be queued ([`ClientConn::send_message`](crate::server::ClientConn::send_message)).
    /// Never retried.
    #[error("cannot push to {peer}: {reason}")]
    Push {
        /// The client the push was for.
        peer: Arc<str>,
        /// Why it was refused.
        reason: PushError,
    },
}

/// Why a server push was refused ([`Error::Push`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The connection has closed.
    #[error("the connection is closed")]
    Closed,
    /// The connection's push queue is full: the client reads more slowly than the server pushes
    /// (see [`ServerOptions::push_queue_capacity`](crate::ServerOptions::push_queue_capacity)).
    #[error("the connection's push queue is full (the client is not reading fast enough)")]
    Full,
}

impl Error {
    /// Whether trying the call again (on this or another server) may succeed.
    ///
    /// Connection failures are retryable; a service error, a cancelled or expired call, a codec
    /// error and a closed client are not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::ConnectTimeout { .. }
                | Error::ConnectionLost(_)
                | Error::Io(_)
                | Error::Protocol(_)
                | Error::NoServer(_)
        )
    }

    /// The server's error, if this is one.
    pub fn as_service_error(&self) -> Option<&ServiceError> {
        match self {
            Error::Service(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn io(e: io::Error) -> Error {
        Error::Io(Arc::new(e))
    }

    pub(crate) fn lost(reason: impl fmt::Display) -> Error {
        Error::ConnectionLost(reason.to_string().into())
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(Arc::new(e))
    }
}

impl From<ServiceError> for Error {
    fn from(e: ServiceError) -> Self {
        Error::Service(e)
    }
}

/// Result with sextant's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_say_what_happened() {
        assert_eq!(Error::ServerShutdown.to_string(), "the server is shut down");
        let bind = Error::Bind {
            address: "tcp@127.0.0.1:1".into(),
            source: Arc::new(io::Error::from(io::ErrorKind::AddrInUse)),
        };
        assert!(bind
            .to_string()
            .starts_with("cannot listen on tcp@127.0.0.1:1"));
        assert!(!bind.is_retryable());
        assert!(!Error::ServerShutdown.is_retryable());
        let t = Error::ShutdownTimeout {
            grace: Duration::from_secs(1),
            connections: 2,
        };
        assert!(t.to_string().contains("grace period of 1s"), "{t}");
    }

    #[test]
    fn retryability() {
        assert!(!Error::Service(ServiceError::new("x")).is_retryable());
        assert!(!Error::DeadlineExceeded.is_retryable());
        assert!(!Error::Canceled.is_retryable());
        assert!(Error::lost("eof").is_retryable());
        assert!(Error::io(io::Error::other("x")).is_retryable());
    }
}
