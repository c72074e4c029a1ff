//! The tasks behind one client connection: the reader, which frames replies and hands each to
//! its waiter (or pushes to the push queue), and the heartbeat.

use std::sync::Arc;

use bytes::BytesMut;
use sextant_protocol::{ByteStr, Decoder, Limits, Message, MessageType};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::inflight::InFlight;
use super::PushSink;
use super::{Client, ClientInner};
use crate::error::Error;
use crate::transport::ReadHalf;

pub(super) async fn read_loop(
    mut rd: ReadHalf,
    shared: Arc<InFlight>,
    limits: Limits,
    idle_timeout: Option<std::time::Duration>,
    push: Option<(PushSink, ByteStr)>,
) {
    let mut decoder = Decoder::new(limits);
    // rpcx's IdleTimeout: nothing read for this long closes the connection. Re-armed on reads.
    let mut idle = idle_timeout.map(|t| (Box::pin(tokio::time::sleep(t)), t));
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let reason = 'read: loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(msg)) if msg.header.message_type() == MessageType::Request => {
                    on_request(msg, push.as_ref(), &shared.stop).await
                }
                Ok(Some(msg)) => on_reply(&shared, msg),
                Ok(None) => break,
                Err(e) if e.closes_connection() => break 'read Error::from(e),
                Err(e) => {
                    tracing::warn!(error = %e, "discarding an unreadable message from the server")
                }
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break Error::Closed,
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => break Error::lost("the server closed the connection"),
                Ok(_) => {
                    if let Some((sleep, t)) = &mut idle {
                        sleep.as_mut().reset(tokio::time::Instant::now() + *t);
                    }
                }
                Err(e) => break Error::lost(format!(
                    "read failed: {}",
                    crate::transport::describe_io_error(&e)
                )),
            },
            _ = async { idle.as_mut().map(|(s, _)| s.as_mut()).unwrap().await }, if idle.is_some() => {
                let t = idle.as_ref().map(|(_, t)| *t).unwrap_or_default();
                break Error::lost(format!("read failed: nothing received for {t:?} (idle_timeout)"));
            }
        }
    };
    shared.close(reason);
}

/// A request from the server: a push (rpcx's server.SendMessage) goes to the push queue. Go's
/// client takes a request that is oneway and not a heartbeat as one, and ignores other requests.
async fn on_request(msg: Message, push: Option<&(PushSink, ByteStr)>, stop: &CancellationToken) {
    if !msg.header.is_oneway() || msg.header.is_heartbeat() {
        tracing::debug!(
            seq = msg.header.seq(),
            "ignoring a request from the server that is not a push"
        );
        return;
    }
    match push {
        Some((sink, server)) => sink.deliver(server, msg, stop).await,
        None => tracing::debug!(
            seq = msg.header.seq(),
            "dropping a server-pushed message (server_message_capacity is 0)"
        ),
    }
}

/// Hands a reply to its waiter.
#[inline]
fn on_reply(shared: &InFlight, msg: Message) {
    let waiter = shared.take(msg.header.seq());
    match waiter {
        Some(w) => {
            let _ = w.send(Ok(msg));
        }
        None => tracing::debug!(
            seq = msg.header.seq(),
            "reply for a call that is no longer waiting"
        ),
    }
}

pub(super) async fn heartbeat_loop(client: std::sync::Weak<ClientInner>, stop: CancellationToken) {
    loop {
        let interval = match client.upgrade() {
            Some(c) => c.options.heartbeat_interval,
            None => return,
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let Some(inner) = client.upgrade() else {
            return;
        };
        let c = Client { inner };
        match c.heartbeat().await {
            Ok(()) => {}
            Err(Error::DeadlineExceeded) => {
                tracing::warn!(address = %c.address(), "heartbeat not answered: closing the connection");
                c.inner.in_flight.close(Error::lost(format!(
                    "heartbeat not answered within {:?}",
                    c.inner.options.max_wait_for_heartbeat
                )));
                return;
            }
            Err(_) => return,
        }
    }
}
