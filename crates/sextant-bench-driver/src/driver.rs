//! The closed-loop load driver.
//!
//! `c` tasks share `k` connections (task `t` always uses connection `t % k`). Each task loops:
//! take a ticket from a shared counter, stop once `n` tickets have been handed out, otherwise
//! make one call and record its latency. Every loop is therefore bounded by `n`, and every call
//! by a timeout, so a run always ends.
//!
//! The driver knows nothing about any RPC framework: it is handed a closure "make one call on
//! connection `i`", so sextant, tonic and tarpc are measured by the same code.
//!
//! Latencies go to `hdrhistogram`s in nanoseconds. One histogram per task would cost about
//! 200 KiB per task (1.1 GiB at c = 5000), so tasks record into a few shards instead
//! (`task % shards`), each behind an uncontended-in-practice mutex held only to record one value;
//! the shards are merged at the end.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::Barrier;

/// Highest latency the histograms can hold, in nanoseconds (longer calls are clamped to it).
const HIGHEST_NS: u64 = 3_600 * 1_000_000_000;

/// Significant decimal digits kept by the histograms.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Upper bound on the number of histogram shards.
const MAX_SHARDS: usize = 64;

/// How often the progress bar is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// What to run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadConfig {
    /// Number of concurrent callers (`c`). At least 1.
    pub concurrency: usize,
    /// Number of connections the callers share (`k`). Clamped to `1..=concurrency`.
    pub connections: usize,
    /// Total number of measured calls (`n`), all callers together.
    pub total: u64,
    /// Unmeasured calls made on each connection, one after another, before the measured run
    /// (rpcx-benchmark makes 5 per client). Default 5.
    pub warmup_per_connection: u64,
    /// Longest a single call may take before it counts as an error. Default 30 s.
    pub call_timeout: Duration,
    /// Whether to draw a progress bar on stderr. Default `true`; indicatif hides it anyway when
    /// stderr is not a terminal.
    pub progress: bool,
}

impl LoadConfig {
    /// A configuration for `c` callers over `k` connections making `n` calls, with the other
    /// fields at their defaults.
    pub fn new(concurrency: usize, connections: usize, total: u64) -> Self {
        Self {
            concurrency,
            connections,
            total,
            warmup_per_connection: 5,
            call_timeout: Duration::from_secs(30),
            progress: true,
        }
    }

    /// The number of connections actually used: `k` clamped to `1..=c`.
    pub fn effective_connections(&self) -> usize {
        self.connections.clamp(1, self.concurrency.max(1))
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct RunResult {
    /// Latencies of the successful measured calls, in nanoseconds.
    pub latencies_ns: Histogram<u64>,
    /// Measured calls that succeeded.
    pub ok: u64,
    /// Measured calls that failed or timed out.
    pub errors: u64,
    /// Warm-up calls that failed or timed out (not part of the figures).
    pub warmup_errors: u64,
    /// Wall-clock time of the measured run, from the start signal until the last caller ended.
    pub elapsed: Duration,
    /// The text of the first error seen, warm-up included.
    pub first_error: Option<String>,
}

impl RunResult {
    /// Successful calls per second.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }
}

/// State shared by all callers of one run.
struct Shared<F> {
    call: F,
    next_ticket: AtomicU64,
    done: AtomicU64,
    errors: AtomicU64,
    first_error: OnceLock<String>,
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl<F> Shared<F> {
    fn note_error(&self, error: impl Display) {
        // Only the first text is kept; formatting costs nothing once it is set.
        if self.first_error.get().is_none() {
            let _ = self.first_error.set(error.to_string());
        }
    }
}

/// Outcome of one call including its timeout.
enum Outcome<E> {
    Ok,
    Failed(E),
    TimedOut,
}

async fn timed_call<Fut, E>(fut: Fut, timeout: Duration) -> Outcome<E>
where
    Fut: Future<Output = Result<(), E>>,
{
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(e)) => Outcome::Failed(e),
        Err(_) => Outcome::TimedOut,
    }
}

fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; this cannot fail.
    Histogram::new_with_bounds(1, HIGHEST_NS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Runs the closed loop described by `config`, calling `call(connection)` for every call, and
/// returns what was measured.
///
/// `call` must make one complete call on connection `connection` (in `0..k`) and check the
/// reply; an `Err` (or a call longer than [`LoadConfig::call_timeout`]) is counted, never
/// propagated. Must be called from within a multi-thread tokio runtime.
pub async fn run<F, Fut, E>(config: &LoadConfig, call: F) -> RunResult
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let concurrency = config.concurrency.max(1);
    let connections = config.effective_connections();
    let shard_count = concurrency.min(MAX_SHARDS);
    let shared = Arc::new(Shared {
        call,
        next_ticket: AtomicU64::new(0),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: OnceLock::new(),
        shards: (0..shard_count)
            .map(|_| Mutex::new(new_histogram()))
            .collect(),
    });

    let warmup_errors = warm_up(&shared, connections, config).await;

    // All callers wait at the barrier so that the clock starts when they are all ready.
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let mut callers = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let shared = Arc::clone(&shared);
        let barrier = Arc::clone(&barrier);
        let total = config.total;
        let timeout = config.call_timeout;
        callers.push(tokio::spawn(async move {
            let connection = task % connections;
            let shard = &shared.shards[task % shared.shards.len()];
            barrier.wait().await;
            // Bounded: each iteration consumes one of `total` tickets.
            while shared.next_ticket.fetch_add(1, Ordering::Relaxed) < total {
                let start = Instant::now();
                let outcome = timed_call((shared.call)(connection), timeout).await;
                let elapsed = start.elapsed();
                match outcome {
                    Outcome::Ok => {
                        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
                        let mut histogram = shard.lock().unwrap_or_else(|e| e.into_inner());
                        histogram.saturating_record(ns.max(1));
                    }
                    Outcome::Failed(e) => {
                        shared.errors.fetch_add(1, Ordering::Relaxed);
                        shared.note_error(e);
                    }
                    Outcome::TimedOut => {
                        shared.errors.fetch_add(1, Ordering::Relaxed);
                        shared.note_error(format_args!("call timed out after {timeout:?}"));
                    }
                }
                shared.done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let progress = Progress::start(config, Arc::clone(&shared));
    barrier.wait().await;
    let start = Instant::now();
    let mut panicked = 0u64;
    for caller in callers {
        if caller.await.is_err() {
            panicked += 1;
        }
    }
    let elapsed = start.elapsed();
    progress.finish().await;

    let mut latencies_ns = new_histogram();
    for shard in &shared.shards {
        let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        // Same bounds everywhere, so adding cannot fail.
        latencies_ns
            .add(&*shard)
            .expect("histograms with equal bounds add");
    }
    let errors = shared.errors.load(Ordering::Relaxed);
    let ok = latencies_ns.len();
    // A caller that panicked (a bug in `call`) loses the calls it had left; count them as errors.
    let lost = config.total.saturating_sub(ok + errors);
    if panicked > 0 {
        shared.note_error(format_args!("{panicked} caller task(s) panicked"));
    }
    RunResult {
        latencies_ns,
        ok,
        errors: errors + lost,
        warmup_errors,
        elapsed,
        first_error: shared.first_error.get().cloned(),
    }
}

/// Makes `config.warmup_per_connection` sequential calls on every connection, all connections
/// at once, and returns how many failed.
async fn warm_up<F, Fut, E>(shared: &Arc<Shared<F>>, connections: usize, config: &LoadConfig) -> u64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let mut tasks = Vec::with_capacity(connections);
    for connection in 0..connections {
        let shared = Arc::clone(shared);
        let calls = config.warmup_per_connection;
        let timeout = config.call_timeout;
        tasks.push(tokio::spawn(async move {
            let mut failed = 0u64;
            for _ in 0..calls {
                match timed_call((shared.call)(connection), timeout).await {
                    Outcome::Ok => {}
                    Outcome::Failed(e) => {
                        failed += 1;
                        shared.note_error(format_args!("warm-up: {e}"));
                    }
                    Outcome::TimedOut => {
                        failed += 1;
                        shared
                            .note_error(format_args!("warm-up: call timed out after {timeout:?}"));
                    }
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for task in tasks {
        failed += task.await.unwrap_or(config.warmup_per_connection);
    }
    failed
}

/// The optional progress bar, redrawn from the shared completion counter.
struct Progress {
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start<F: Send + Sync + 'static>(config: &LoadConfig, shared: Arc<Shared<F>>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        if !config.progress {
            return Self {
                bar: ProgressBar::hidden(),
                stop,
                ticker: None,
            };
        }
        let bar = ProgressBar::with_draw_target(Some(config.total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} calls ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let ticker = {
            let bar = bar.clone();
            let stop = Arc::clone(&stop);
            let total = config.total;
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(PROGRESS_INTERVAL);
                // Bounded: ends when every call is done or when the run says stop.
                loop {
                    interval.tick().await;
                    let done = shared.done.load(Ordering::Relaxed);
                    bar.set_position(done);
                    if done >= total || stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            })
        };
        Self {
            bar,
            stop,
            ticker: Some(ticker),
        }
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker {
            ticker.abort();
            let _ = ticker.await;
        }
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counts_every_call_once() {
        let calls = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&calls);
        let mut config = LoadConfig::new(7, 3, 1_000);
        config.progress = false;
        config.warmup_per_connection = 2;
        let result = run(&config, move |connection| {
            let counter = Arc::clone(&counter);
            async move {
                assert!(connection < 3);
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i.is_multiple_of(100) {
                    Err(format!("failure {i}"))
                } else {
                    tokio::task::yield_now().await;
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(calls.load(Ordering::Relaxed), 1_000 + 3 * 2);
        assert_eq!(result.ok + result.errors, 1_000);
        // Calls 0, 100, ..., 1000 fail, whether they landed in the warm-up or the measured run.
        assert_eq!(result.errors + result.warmup_errors, 11);
        assert!(result.first_error.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_calls_time_out_and_count_as_errors() {
        let mut config = LoadConfig::new(4, 2, 8);
        config.progress = false;
        config.warmup_per_connection = 0;
        config.call_timeout = Duration::from_millis(20);
        let result = run(&config, |_| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<(), String>(())
        })
        .await;
        assert_eq!(result.ok, 0);
        assert_eq!(result.errors, 8);
        assert!(result.elapsed < Duration::from_secs(5));
    }

    #[test]
    fn connections_are_clamped() {
        assert_eq!(LoadConfig::new(5, 10, 1).effective_connections(), 5);
        assert_eq!(LoadConfig::new(5, 0, 1).effective_connections(), 1);
        assert_eq!(LoadConfig::new(100, 10, 1).effective_connections(), 10);
    }
}
