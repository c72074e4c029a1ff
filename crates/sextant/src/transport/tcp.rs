//! TCP details shared by every TCP-based network: no-delay, keepalive (rpcx's
//! `TCPKeepAlivePeriod`: 3 minutes on the server, 1 minute on the client) and `SO_REUSEPORT`
//! listeners (`reuseport@`).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::net::{TcpListener, TcpStream};

/// No-delay on, and keepalive probes after `keepalive` of silence (and every `keepalive`
/// after that) when set. Errors are ignored: a socket that refuses an option still works.
pub(super) fn configure(s: &TcpStream, keepalive: Option<Duration>) {
    let _ = s.set_nodelay(true);
    if let Some(period) = keepalive {
        let ka = TcpKeepalive::new().with_time(period).with_interval(period);
        if let Err(e) = SockRef::from(s).set_tcp_keepalive(&ka) {
            tracing::debug!(error = %e, "cannot set TCP keepalive");
        }
    }
}

/// Connects to `host:port` (the first address it resolves to that answers).
pub(super) async fn dial(addr: &str, keepalive: Option<Duration>) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    configure(&s, keepalive);
    Ok(s)
}

/// A listener with `SO_REUSEPORT` (and `SO_REUSEADDR`) set before binding, so that several
/// processes (or listeners) can bind the same port and the kernel spreads connections over
/// them, as rpcx's `reuseport` network (kavu/go_reuseport) does.
pub(super) async fn bind_reuseport(addr: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        match reuseport_socket(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

fn reuseport_socket(a: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&a.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}
