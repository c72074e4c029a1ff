//! One server connection: a reader that frames requests and spawns a task per call, and a writer
//! that batches the responses.
//!
//! Backpressure: a call takes a permit from a per-connection semaphore before its task is spawned
//! and gives it back once its response is queued. When all permits are out the reader stops
//! reading, so a flood of requests fills the peer's socket buffer rather than this process'
//! memory. The writer's queue is bounded too.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sextant_protocol::{keys, Decoder, Message, MessageType, Metadata};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::call::{plugins_of, process_plain, process_with_plugins};
use super::handler::error_frame;
use super::{ClientConn, ServerInner};
use crate::context::Origin;
use crate::transport::{Connection, Incoming, PeerAddr, PeerIdentity, Stream};
use crate::util::lock;

const READ_CHUNK: usize = 16 * 1024;
/// A connection with no bytes read for this long gives its read buffer back, so that many idle
/// connections cost little memory.
const QUIET_AFTER: Duration = Duration::from_secs(1);

pub(crate) async fn serve_conn(server: Arc<ServerInner>, incoming: Incoming) {
    // Plugins see the peer first, so a refused address costs no handshake.
    let peer = incoming.peer().clone();
    let admitted = {
        let plugins = server.plugins();
        plugins.iter().all(|p| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.on_conn_accept(&peer)))
                .unwrap_or_else(|panic| {
                    let panic = super::call::panic_message(&panic);
                    tracing::error!(hook = "on_conn_accept", %peer, %panic, "plugin panicked; refusing the connection");
                    false
                })
        })
    };
    if !admitted {
        tracing::debug!(%peer, "connection refused by a plugin");
        for p in server.plugins().iter() {
            p.on_conn_close(&peer);
        }
        return;
    }
    // The handshake (TLS, WebSocket, QUIC) runs here, in the connection's own task, bounded by
    // the handshake timeout and by shutdown.
    let finished = tokio::select! {
        biased;
        _ = server.shutdown.cancelled() => None,
        c = incoming.finish(server.options.handshake_timeout) => Some(c),
    };
    match finished {
        Some(Ok(Connection {
            stream, identity, ..
        })) => {
            server.connections.fetch_add(1, Ordering::Relaxed);
            server.total_connections.fetch_add(1, Ordering::Relaxed);
            let stream = wrap_conn(&server, &peer, stream);
            serve_accepted(&server, stream, &peer, identity).await;
            server.connections.fetch_sub(1, Ordering::Relaxed);
        }
        Some(Err(e)) => tracing::debug!(%peer, error = %e, "handshake failed"),
        None => {}
    }
    // Every accepted connection is closed once for the plugins, handshake failures included.
    for p in server.plugins().iter() {
        p.on_conn_close(&peer);
    }
}

/// The plugins' `wrap_conn`, in order; a panicking one leaves the stream as it was given.
fn wrap_conn(server: &Arc<ServerInner>, peer: &PeerAddr, stream: Stream) -> Stream {
    let plugins = server.plugins();
    let mut stream = Some(stream);
    for p in plugins.iter() {
        let given = stream.take().expect("a stream");
        // The stream cannot be recovered from a panicking hook: it is lost with it, and the
        // connection closes.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.wrap_conn(peer, given))) {
            Ok(s) => stream = Some(s),
            Err(panic) => {
                let panic = super::call::panic_message(&panic);
                tracing::error!(hook = "wrap_conn", %peer, %panic, "plugin panicked; closing the connection");
                return Stream::Memory(tokio::io::duplex(1).0);
            }
        }
    }
    stream.expect("a stream")
}

/// Reads the first bytes of a connection to tell rpcx from HTTP (when the server answers HTTP),
/// then serves it as what it is.
async fn serve_accepted(
    server: &Arc<ServerInner>,
    stream: Stream,
    peer: &PeerAddr,
    identity: Option<Arc<PeerIdentity>>,
) {
    #[cfg(feature = "http")]
    if super::http::enabled(server) {
        let mut stream = stream;
        // An empty buffer: the first read takes at most 64 bytes, so idle connections stay
        // cheap, and one byte is enough to decide.
        let mut first = BytesMut::new();
        let read = async {
            loop {
                match stream.read_buf(&mut first).await {
                    Ok(0) => return false,
                    Ok(_) => return true,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "read error");
                        return false;
                    }
                }
            }
        };
        let idle = server.options.idle_timeout;
        let got = tokio::select! {
            biased;
            _ = server.shutdown.cancelled() => false,
            _ = server.force.cancelled() => false,
            _ = sleep_until(idle.map(|t| Instant::now() + t)), if idle.is_some() => {
                tracing::info!(%peer, "closing idle connection");
                false
            }
            got = read => got,
        };
        if !got {
            return;
        }
        if first[0] != sextant_protocol::MAGIC_NUMBER && super::http::looks_like_http(first[0]) {
            let http: futures::future::BoxFuture<'static, ()> = Box::pin(super::http::serve(
                server.clone(),
                stream,
                first.freeze(),
                peer.clone(),
                identity,
            ));
            return http.await;
        }
        return serve_rpcx(server, stream, peer, first, identity).await;
    }
    serve_rpcx(server, stream, peer, BytesMut::new(), identity).await
}

/// Serves rpcx frames on `stream`; `buf` holds bytes already read from it.
pub(crate) async fn serve_rpcx(
    server: &Arc<ServerInner>,
    stream: Stream,
    peer: &PeerAddr,
    mut buf: BytesMut,
    identity: Option<Arc<PeerIdentity>>,
) {
    let opts = &server.options;
    let (mut rd, wr) = stream.into_split();
    // Replies (at most one per permit, plus the reader's own error and heartbeat frames) have
    // `reserved` slots of the writer's queue; pushes may use the rest.
    let reserved = opts.max_concurrent_requests.max(1) + 16;
    let (tx, rx) = mpsc::channel::<BytesMut>(reserved + opts.push_queue_capacity.max(1));
    let conn = ClientConn::new(
        server.next_conn_id.fetch_add(1, Ordering::Relaxed),
        peer.clone(),
        identity,
        &tx,
        reserved,
        server.push_seq.clone(),
        server.env.clone(),
    );
    // Bytes read before this point (the first ones, read to tell rpcx from HTTP) count too.
    conn.add_bytes_in(buf.len());
    lock(&server.active).insert(conn.id(), conn.clone());
    let peer = conn.peer_addr();
    // Closing this connection alone (write failure, force close) without touching the server.
    let conn_stop = server.force.child_token();
    let writer = tokio::spawn(crate::io::write_loop(
        wr,
        rx,
        opts.write_timeout,
        conn_stop.clone(),
        Some(conn.bytes_out_counter()),
    ));
    let permits = Arc::new(Semaphore::new(opts.max_concurrent_requests.max(1)));
    let mut decoder = Decoder::new(opts.limits);
    // `quiet`: the buffer was released; the next read uses a small one until data flows again.
    let mut quiet = true;
    let mut read_since_tick = false;
    let mut quiet_timer = Box::pin(tokio::time::sleep(QUIET_AFTER));
    let mut quiet_timer_armed = false;
    let mut last_activity = Instant::now();
    let mut message_started: Option<Instant> = None;

    'conn: loop {
        // Handle every whole message already buffered.
        loop {
            let msg = match decoder.decode(&mut buf) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) if e.closes_connection() => {
                    tracing::warn!(%peer, error = %e, "closing connection: unreadable request");
                    break 'conn;
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "bad request");
                    if let Some(h) = e.header() {
                        if let Some(f) = error_frame(h, "", "", &e.to_string(), &Metadata::new()) {
                            if tx.send(f).await.is_err() {
                                break 'conn;
                            }
                        }
                    }
                    continue;
                }
            };
            message_started = None;
            last_activity = Instant::now();
            match handle_message(server, msg, &conn, &tx, &permits, &conn_stop).await {
                Flow::Continue => {}
                Flow::Close => break 'conn,
            }
        }
        if !buf.is_empty() && message_started.is_none() {
            message_started = Some(Instant::now());
        }

        if !quiet && buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let idle = opts.idle_timeout.map(|t| (t, last_activity + t));
        let partial = opts
            .read_timeout
            .zip(message_started)
            .map(|(t, s)| (t, s + t));
        let wake = match (idle, partial) {
            (Some(a), Some(b)) => Some(if a.1 < b.1 { a } else { b }),
            (a, b) => a.or(b),
        };
        tokio::select! {
            biased;
            _ = server.shutdown.cancelled() => break 'conn,
            _ = conn_stop.cancelled() => break 'conn,
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => {
                    if !buf.is_empty() {
                        tracing::debug!(%peer, bytes = buf.len(), "connection closed inside a message");
                    }
                    break 'conn;
                }
                Ok(n) => {
                    conn.add_bytes_in(n);
                    quiet = false;
                    read_since_tick = true;
                    if !quiet_timer_armed {
                        quiet_timer.as_mut().reset((Instant::now() + QUIET_AFTER).into());
                        quiet_timer_armed = true;
                    }
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read error");
                    break 'conn;
                }
            },
            // Re-armed at most once a second, so busy connections pay almost nothing for it.
            _ = &mut quiet_timer, if quiet_timer_armed => {
                if read_since_tick {
                    read_since_tick = false;
                    quiet_timer.as_mut().reset((Instant::now() + QUIET_AFTER).into());
                } else {
                    quiet_timer_armed = false;
                    if buf.is_empty() {
                        buf = BytesMut::new();
                        quiet = true;
                    }
                }
            }
            _ = sleep_until(wake.map(|w| w.1)), if wake.is_some() => {
                let in_flight = permits.available_permits() < opts.max_concurrent_requests.max(1);
                let now = Instant::now();
                if let Some((t, s)) = partial {
                    if now >= s {
                        tracing::info!(%peer, timeout = ?t, "closing connection: request not completed within read_timeout");
                        break 'conn;
                    }
                }
                if let Some((t, at)) = idle {
                    if now >= at {
                        if in_flight {
                            last_activity = now;
                        } else {
                            tracing::info!(%peer, timeout = ?t, "closing idle connection");
                            break 'conn;
                        }
                    }
                }
            }
        }
    }

    // Stop reading; calls in flight finish and queue their responses, then the writer drains the
    // queue and closes the stream once every sender is gone.
    drop(tx);
    drop(rd);
    if let Ok(Some(e)) = writer.await {
        tracing::debug!(%peer, error = %e, "write error");
    }
    lock(&server.active).remove(&conn.id());
    server
        .closed_bytes_in
        .fetch_add(conn.bytes_in(), Ordering::Relaxed);
    server
        .closed_bytes_out
        .fetch_add(conn.bytes_out(), Ordering::Relaxed);
    server
        .closed_pushes
        .fetch_add(conn.pushes(), Ordering::Relaxed);
    conn.mark_closed();
}

fn sleep_until(at: Option<Instant>) -> tokio::time::Sleep {
    let at = at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
    tokio::time::sleep_until(at.into())
}

enum Flow {
    Continue,
    Close,
}

async fn handle_message(
    server: &Arc<ServerInner>,
    msg: Message,
    conn: &ClientConn,
    tx: &mpsc::Sender<BytesMut>,
    permits: &Arc<Semaphore>,
    conn_stop: &CancellationToken,
) -> Flow {
    let peer = conn.peer_addr();
    if msg.header.message_type() == MessageType::Response {
        tracing::debug!(%peer, seq = msg.header.seq(), "ignoring a response sent to the server");
        return Flow::Continue;
    }

    if msg.header.is_heartbeat() {
        for p in server.plugins().iter() {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                p.on_heartbeat(peer, &msg)
            }));
            if let Err(panic) = r {
                let panic = super::call::panic_message(&panic);
                tracing::error!(hook = "on_heartbeat", %peer, %panic, "plugin panicked");
            }
        }
        // rpcx sends the same message back with only the response bit set.
        let res = msg.into_heartbeat_reply();
        let mut b = BytesMut::with_capacity(res.encoded_len());
        if res.encode(&mut b).is_ok() && tx.send(b).await.is_err() {
            return Flow::Close;
        }
        return Flow::Continue;
    }

    if let Some(auth) = &server.auth {
        let token = msg.metadata.get(keys::AUTH).unwrap_or("");
        let who = super::AuthPeer {
            addr: peer,
            identity: conn.peer_identity(),
        };
        if let Err(text) = auth(&msg, token, &who).await {
            tracing::info!(%peer, error = %text, "auth failed, closing connection");
            if let Some(f) = error_frame(
                &msg.header,
                &msg.service_path,
                &msg.service_method,
                &text,
                &Metadata::new(),
            ) {
                let _ = tx.send(f).await;
            }
            return Flow::Close;
        }
    }

    let permit = tokio::select! {
        p = permits.clone().acquire_owned() => match p {
            Ok(p) => p,
            Err(_) => return Flow::Close,
        },
        _ = server.shutdown.cancelled() => return Flow::Close,
        _ = conn_stop.cancelled() => return Flow::Close,
    };
    let server2 = server.clone();
    let tx = tx.clone();
    let origin = Origin::Conn(conn.clone());
    // Two kinds of task, so that a call on a server without plugins carries none of the plugin
    // path's state (its future is moved and polled on every call).
    match plugins_of(server) {
        None => server.tracker.spawn(async move {
            let force = server2.force.clone();
            tokio::select! {
                frame = process_plain(&server2, msg, origin) => {
                    if let Some(f) = frame {
                        let _ = tx.send(f).await;
                    }
                }
                _ = force.cancelled() => {}
            }
            drop(permit);
        }),
        Some(plugins) => server.tracker.spawn(async move {
            let force = server2.force.clone();
            tokio::select! {
                done = process_with_plugins(&server2, plugins, msg, origin) => {
                    let written = match done.frame {
                        Some(f) => tx.send(f).await.is_ok(),
                        None => false,
                    };
                    if let Some(after) = done.after {
                        after.done(written);
                    }
                }
                _ = force.cancelled() => {}
            }
            drop(permit);
        }),
    };
    Flow::Continue
}
