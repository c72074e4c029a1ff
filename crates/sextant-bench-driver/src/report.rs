//! Turning a [`RunResult`] into the human summary and the one-line JSON record.

use std::fmt;

use serde::Serialize;

use crate::driver::{LoadConfig, RunResult};

/// The figures of one client run; serializes to the JSON line the comparison scripts read:
/// `{"peer":"tonic","c":100,"k":10,"n":100000,"tps":...,"mean_us":...,"p50_us":...,
/// "p99_us":...,"p999_us":...,"max_us":...,"errors":0,"duration_s":...}`.
///
/// Latencies are those of successful calls only; `tps` is successful calls per second of
/// wall-clock time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Which implementation answered (`"tonic"`, `"tarpc"`, `"sextant"`, ...).
    pub peer: String,
    /// Concurrent callers.
    pub c: usize,
    /// Connections actually used.
    pub k: usize,
    /// Measured calls requested.
    pub n: u64,
    /// Successful calls per second.
    pub tps: f64,
    /// Mean latency, microseconds.
    pub mean_us: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// 99.9th percentile latency, microseconds.
    pub p999_us: f64,
    /// Highest latency, microseconds.
    pub max_us: f64,
    /// Failed or timed-out measured calls.
    pub errors: u64,
    /// Wall-clock duration of the measured run, seconds.
    pub duration_s: f64,
    /// Warm-up failures and the first error text; shown in the summary, not in the JSON.
    #[serde(skip)]
    pub notes: Notes,
}

/// Details that go to the human summary only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notes {
    /// Successful measured calls.
    pub ok: u64,
    /// Failed warm-up calls.
    pub warmup_errors: u64,
    /// Fastest successful call, microseconds.
    pub min_us: f64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

/// Rounds nanoseconds to microseconds with one decimal.
fn us(ns: f64) -> f64 {
    (ns / 100.0).round() / 10.0
}

impl Report {
    /// Builds the report of `result`, a run of `config` against `peer`.
    pub fn new(peer: &str, config: &LoadConfig, result: &RunResult) -> Self {
        let h = &result.latencies_ns;
        let empty = h.is_empty();
        let at = |q: f64| {
            if empty {
                0.0
            } else {
                us(h.value_at_quantile(q) as f64)
            }
        };
        Self {
            peer: peer.to_owned(),
            c: config.concurrency,
            k: config.effective_connections(),
            n: config.total,
            tps: (result.throughput() * 10.0).round() / 10.0,
            mean_us: if empty { 0.0 } else { us(h.mean()) },
            p50_us: at(0.5),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: if empty { 0.0 } else { us(h.max() as f64) },
            errors: result.errors,
            duration_s: (result.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            notes: Notes {
                ok: result.ok,
                warmup_errors: result.warmup_errors,
                min_us: if empty { 0.0 } else { us(h.min() as f64) },
                first_error: result.first_error.clone(),
            },
        }
    }

    /// The report as one line of JSON (no trailing newline).
    pub fn json_line(&self) -> String {
        // A struct of strings and numbers always serializes; NaN cannot occur (see `Report::new`).
        serde_json::to_string(self).expect("report serializes")
    }
}

impl fmt::Display for Report {
    /// The human summary, several lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: c={} k={} n={}: {} ok, {} errors in {:.3} s",
            self.peer, self.c, self.k, self.n, self.notes.ok, self.errors, self.duration_s
        )?;
        writeln!(f, "  throughput : {:.0} calls/s", self.tps)?;
        writeln!(
            f,
            "  latency us : mean {:.1}  min {:.1}  p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
            self.mean_us, self.notes.min_us, self.p50_us, self.p99_us, self.p999_us, self.max_us
        )?;
        if self.notes.warmup_errors > 0 {
            writeln!(f, "  warm-up errors: {}", self.notes.warmup_errors)?;
        }
        if let Some(e) = &self.notes.first_error {
            writeln!(f, "  first error: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_has_the_agreed_keys_in_order() {
        let mut latencies_ns = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
        for ns in [10_000u64, 20_000, 30_000, 40_000] {
            latencies_ns.record(ns).expect("record");
        }
        let result = RunResult {
            latencies_ns,
            ok: 4,
            errors: 1,
            warmup_errors: 0,
            elapsed: Duration::from_millis(2),
            first_error: Some("boom".into()),
        };
        let report = Report::new("tonic", &LoadConfig::new(100, 10, 5), &result);
        let line = report.json_line();
        assert!(
            line.starts_with(
                r#"{"peer":"tonic","c":100,"k":10,"n":5,"tps":2000.0,"mean_us":25.0,"p50_us":20.0,"#
            ),
            "{line}"
        );
        assert!(
            line.ends_with(r#""max_us":40.0,"errors":1,"duration_s":0.002}"#),
            "{line}"
        );
        assert!(report.to_string().contains("first error: boom"));
    }

    #[test]
    fn empty_run_reports_zeroes() {
        let result = RunResult {
            latencies_ns: hdrhistogram::Histogram::<u64>::new(3).expect("histogram"),
            ok: 0,
            errors: 3,
            warmup_errors: 5,
            elapsed: Duration::ZERO,
            first_error: None,
        };
        let report = Report::new("tarpc", &LoadConfig::new(1, 1, 3), &result);
        assert_eq!(report.tps, 0.0);
        assert_eq!(report.p99_us, 0.0);
        assert!(report.json_line().contains(r#""errors":3"#));
    }
}
