//! The write side shared by server and client connections: frames queued by many tasks are
//! written in batches, so that one system call carries as many messages as are ready.

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

/// Writes frames from `rx` until every sender is gone or `stop` fires; then shuts the stream down.
/// Returns the I/O error that ended it, if any.
pub(crate) async fn write_loop(
    mut wr: WriteHalf,
    mut rx: mpsc::Receiver<BytesMut>,
    write_timeout: Option<Duration>,
    stop: CancellationToken,
) -> Option<std::io::Error> {
    let mut batch = BytesMut::with_capacity(BATCH_LIMIT);
    let result = loop {
        let first = tokio::select! {
            biased;
            f = rx.recv() => match f {
                Some(f) => f,
                None => break None,
            },
            _ = stop.cancelled() => break None,
        };
        let mut big: Option<BytesMut> = None;
        if first.len() >= DIRECT_WRITE {
            big = Some(first);
        } else {
            batch.extend_from_slice(&first);
            while batch.len() < BATCH_LIMIT {
                match rx.try_recv() {
                    Ok(f) if f.len() >= DIRECT_WRITE => {
                        big = Some(f);
                        break;
                    }
                    Ok(f) => batch.extend_from_slice(&f),
                    Err(_) => break,
                }
            }
        }
        let write = async {
            if !batch.is_empty() {
                wr.write_all_buf(&mut batch).await?;
            }
            if let Some(mut b) = big.take() {
                wr.write_all_buf(&mut b).await?;
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
        batch.clear();
    };
    let _ = wr.shutdown().await;
    result
}
