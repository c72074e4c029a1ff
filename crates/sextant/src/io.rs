//! The write side shared by server and client connections: frames queued by many tasks are
//! written in batches, so that one system call carries as many messages as are ready.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::transport::WriteHalf;

/// Frames larger than this are written on their own instead of being copied into the batch.
const DIRECT_WRITE: usize = 32 * 1024;
/// A batch is written once it reaches this size.
const BATCH_LIMIT: usize = 64 * 1024;
/// A writer idle for this long gives its batch buffer back.
const QUIET_AFTER: Duration = Duration::from_secs(1);

/// Writes frames from `rx` until every sender is gone or `stop` fires; then shuts the stream down.
/// Returns the I/O error that ended it, if any.
///
/// A lone frame is written as it is; when several are queued they are copied into one batch and
/// written with one call, up to [`BATCH_LIMIT`] bytes.
pub(crate) async fn write_loop(
    mut wr: WriteHalf,
    mut rx: mpsc::Receiver<BytesMut>,
    write_timeout: Option<Duration>,
    stop: CancellationToken,
    written: Option<Arc<AtomicU64>>,
) -> Option<std::io::Error> {
    let mut batch = BytesMut::new();
    // Releases the batch buffer once the writer has been idle for QUIET_AFTER; re-armed at most
    // once per QUIET_AFTER, so a busy writer pays almost nothing for it.
    let mut quiet_timer = Box::pin(tokio::time::sleep(QUIET_AFTER));
    let mut quiet_timer_armed = false;
    let mut batched_since_tick = false;
    let result = loop {
        let first = tokio::select! {
            biased;
            f = rx.recv() => match f {
                Some(f) => f,
                None => break None,
            },
            _ = stop.cancelled() => break None,
            _ = &mut quiet_timer, if quiet_timer_armed => {
                if batched_since_tick {
                    batched_since_tick = false;
                    quiet_timer.as_mut().reset(tokio::time::Instant::now() + QUIET_AFTER);
                } else {
                    quiet_timer_armed = false;
                    batch = BytesMut::new();
                }
                continue;
            }
        };
        let mut single: Option<BytesMut> = None;
        let mut big: Option<BytesMut> = None;
        let mut next = rx.try_recv();
        if next.is_err() {
            // Only one frame is ready. Let the tasks that are already runnable (other calls
            // finishing) go first, so their frames join this write: one system call for many
            // messages under load, and no delay when nothing else is runnable.
            tokio::task::yield_now().await;
            next = rx.try_recv();
        }
        match next {
            Err(_) => single = Some(first),
            Ok(second) => {
                if batch.capacity() == 0 {
                    batch.reserve(BATCH_LIMIT / 4);
                }
                batched_since_tick = true;
                if !quiet_timer_armed {
                    quiet_timer
                        .as_mut()
                        .reset(tokio::time::Instant::now() + QUIET_AFTER);
                    quiet_timer_armed = true;
                }
                for f in [first, second] {
                    if f.len() >= DIRECT_WRITE {
                        big = Some(f);
                        break;
                    }
                    batch.extend_from_slice(&f);
                }
                while big.is_none() && batch.len() < BATCH_LIMIT {
                    match rx.try_recv() {
                        Ok(f) if f.len() >= DIRECT_WRITE => big = Some(f),
                        Ok(f) => batch.extend_from_slice(&f),
                        Err(_) => break,
                    }
                }
            }
        }
        let len = single.as_ref().map_or(0, |f| f.len())
            + batch.len()
            + big.as_ref().map_or(0, |f| f.len());
        let write = async {
            if let Some(mut f) = single.take() {
                wr.write_all_buf(&mut f).await?;
            }
            if !batch.is_empty() {
                wr.write_all_buf(&mut batch).await?;
            }
            if let Some(mut b) = big.take() {
                wr.write_all_buf(&mut b).await?;
            }
            // TLS, WebSocket and QUIC streams send what they buffered; plain sockets and pipes
            // buffer nothing, so they skip the call.
            if wr.buffers_writes() {
                wr.flush().await?;
            }
            Ok::<(), std::io::Error>(())
        };
        let r = match write_timeout {
            Some(t) => match tokio::time::timeout(t, write).await {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("write timed out after {t:?}"),
                )),
            },
            None => tokio::select! {
                r = write => r,
                _ = stop.cancelled() => break None,
            },
        };
        if let Err(e) = r {
            break Some(e);
        }
        if let Some(w) = &written {
            w.fetch_add(len as u64, Ordering::Relaxed);
        }
        batch.clear();
    };
    let _ = wr.shutdown().await;
    result
}
