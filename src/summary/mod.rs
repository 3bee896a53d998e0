//! The run summary: counts, score distributions, latencies and throughput of a run,
//! written next to the report as `summary.json` and `summary.html`.
//!
//! The run, or `report LEDGER`, feeds every report line to a [`SummaryBuilder`] as the
//! report is written, adds the run's [`RunMetrics`] when the ledger has them, and writes
//! both files with [`Summary::write_json`] and [`Summary::write_html`].
//!
//! A run has millions of rows, so the builder keeps counters and fixed-size histograms
//! only, never the lines. The summary holds counts, scores and codes: never a key, a
//! ticket, a name, a message or a RequestId, so it can be handed to an auditor as it is.

mod histogram;
mod html;
pub mod metrics;
mod scores;
mod svg;
mod throughput;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cloudauth::api::Action;
use crate::report::Line;

pub use histogram::Histogram;
pub use metrics::{ActionStats, Metrics, RunMetrics};
pub use scores::{BUCKET_WIDTH, ScoreBucket, ScoreStats, THRESHOLDS, ThresholdCount};
pub use throughput::{MAX_POINTS, RateBasis, Throughput, ThroughputPoint};

/// Most distinct error codes counted one by one; the rest are counted together, so a
/// server that puts variable text in its codes cannot grow the summary without bound.
pub const MAX_ERROR_CODES: usize = 500;

/// The file names written next to the report.
pub const JSON_NAME: &str = "summary.json";
/// See [`JSON_NAME`].
pub const HTML_NAME: &str = "summary.html";

/// The summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Report lines counted.
    pub rows: u64,
    /// Rows per outcome.
    pub outcomes: OutcomeCounts,
    /// Rows per last StatusCode, lowest code first; rows without one last.
    pub status_codes: Vec<StatusCount>,
    /// Rows per error code, most frequent first.
    pub error_codes: Vec<ErrorCount>,
    /// Rows whose error code was not counted one by one (past [`MAX_ERROR_CODES`]).
    pub other_error_codes: u64,
    /// The AuthorityComparisonScore distribution.
    pub authority_comparison_score: ScoreStats,
    /// The SimilarityScore distribution.
    pub similarity_score: ScoreStats,
    /// From first submission to outcome, over rows that have both.
    pub row_latency: LatencyStats,
    /// Rows completed over time.
    pub throughput: Throughput,
    /// The calls made, when the run recorded its metrics.
    pub calls: Option<CallSummary>,
}

/// Rows per outcome of the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// StatusCode 1.
    pub passed: u64,
    /// StatusCode 2, or a name that does not match the ID number.
    pub failed: u64,
    /// Not decided yet: in review, or not reached.
    pub pending: u64,
    /// Given up on after an error.
    pub error: u64,
    /// Not submitted: the row was unusable or already verified.
    pub skipped: u64,
}

impl OutcomeCounts {
    /// Each outcome's name and count, in report order.
    pub fn named(&self) -> [(&'static str, u64); 5] {
        [
            ("passed", self.passed),
            ("failed", self.failed),
            ("pending", self.pending),
            ("error", self.error),
            ("skipped", self.skipped),
        ]
    }

    fn add(&mut self, outcome: &str) {
        match outcome {
            "passed" => self.passed += 1,
            "failed" => self.failed += 1,
            "pending" => self.pending += 1,
            "error" => self.error += 1,
            _ => self.skipped += 1,
        }
    }
}

/// Rows whose last StatusCode was `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCount {
    /// The StatusCode; `None` for rows that never got one.
    pub code: Option<i32>,
    /// What the code means.
    pub meaning: String,
    /// Rows with it.
    pub rows: u64,
}

/// Rows that ended with one error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// The code, as the service or the client gave it.
    pub code: String,
    /// Rows with it.
    pub rows: u64,
}

/// Percentiles of a latency, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Values counted.
    pub count: u64,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// The largest value.
    pub max_ms: Option<f64>,
}

impl LatencyStats {
    /// The percentiles of `histogram`: bucket bounds, so at most 13 % above the truth.
    pub fn of(histogram: &Histogram) -> LatencyStats {
        let ms = |q: f64| histogram.percentile_us(q).map(|us| round3(us as f64 / 1e3));
        LatencyStats {
            count: histogram.count(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            max_ms: histogram.max_us.map(|us| round3(us as f64 / 1e3)),
        }
    }
}

/// The calls of the run, from its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    /// When the first run started.
    pub started_at: Option<String>,
    /// When the last run finished.
    pub finished_at: Option<String>,
    /// Seconds the runs ran, added up.
    pub wall_seconds: f64,
    /// Runs merged into these numbers.
    pub runs: u32,
    /// Calls over all actions.
    pub calls: u64,
    /// Answers saying the quota was exceeded.
    pub throttled_answers: u64,
    /// Seconds workers slept because the service throttled them.
    pub throttled_seconds: f64,
    /// Seconds workers waited for the rate limiter.
    pub limiter_wait_seconds: f64,
    /// Per action, in the order of a verification.
    pub actions: Vec<ActionCalls>,
}

/// The calls of one action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionCalls {
    /// The action.
    pub action: Action,
    /// Calls made, retries included.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Answers saying the quota was exceeded.
    pub throttled: u64,
    /// Calls made again after a failure.
    pub retries: u64,
    /// Call latency.
    pub latency: LatencyStats,
}

impl CallSummary {
    /// The summary of `metrics`.
    pub fn of(metrics: &RunMetrics) -> CallSummary {
        let actions = metrics
            .actions
            .iter()
            .map(|(&action, stats)| ActionCalls {
                action,
                calls: stats.calls,
                errors: stats.errors,
                throttled: stats.throttled,
                retries: stats.retries,
                latency: LatencyStats::of(&stats.latency),
            })
            .collect();
        CallSummary {
            started_at: metrics.started_at.clone(),
            finished_at: metrics.finished_at.clone(),
            wall_seconds: round3(metrics.wall_ms as f64 / 1e3),
            runs: metrics.runs,
            calls: metrics.calls(),
            throttled_answers: metrics.throttled_answers(),
            throttled_seconds: round3(metrics.throttled_us as f64 / 1e6),
            limiter_wait_seconds: round3(metrics.limiter_wait_us as f64 / 1e6),
            actions,
        }
    }
}

/// Builds a [`Summary`] one report line at a time, in constant memory.
#[derive(Debug, Clone, Default)]
pub struct SummaryBuilder {
    rows: u64,
    outcomes: OutcomeCounts,
    status_codes: BTreeMap<Option<i32>, u64>,
    error_codes: BTreeMap<String, u64>,
    other_error_codes: u64,
    authority: scores::ScoreCounter,
    similarity: scores::ScoreCounter,
    latency: Histogram,
    completions: throughput::CompletionCounter,
}

impl SummaryBuilder {
    /// A builder that has counted nothing.
    pub fn new() -> SummaryBuilder {
        SummaryBuilder::default()
    }

    /// Counts one report line.
    pub fn add(&mut self, line: &Line) {
        self.rows += 1;
        self.outcomes.add(line.outcome);
        *self.status_codes.entry(line.status_code).or_default() += 1;
        if let Some(code) = &line.error_code {
            self.add_error_code(code);
        }
        if let Some(score) = line.authority_comparison_score {
            self.authority.add(score);
        }
        if let Some(score) = line.similarity_score {
            self.similarity.add(score);
        }
        if let Some(ms) = line.latency_ms {
            // A negative latency means a clock stepped back mid-row; it counts as zero.
            self.latency
                .record_us(u64::try_from(ms).unwrap_or(0).saturating_mul(1_000));
        }
        if let Some(at) = &line.completed_at {
            self.completions.add(at);
        }
    }

    fn add_error_code(&mut self, code: &str) {
        if let Some(rows) = self.error_codes.get_mut(code) {
            *rows += 1;
        } else if self.error_codes.len() < MAX_ERROR_CODES {
            self.error_codes.insert(code.to_string(), 1);
        } else {
            self.other_error_codes += 1;
        }
    }

    /// The summary of the lines counted, with the calls of `metrics` when given.
    pub fn finish(&self, metrics: Option<&RunMetrics>) -> Summary {
        let wall_seconds = metrics.map(|m| m.wall_ms as f64 / 1e3);
        Summary {
            rows: self.rows,
            outcomes: self.outcomes,
            status_codes: self.status_codes(),
            error_codes: self.error_codes(),
            other_error_codes: self.other_error_codes,
            authority_comparison_score: self.authority.stats(),
            similarity_score: self.similarity.stats(),
            row_latency: LatencyStats::of(&self.latency),
            throughput: self.completions.throughput(wall_seconds),
            calls: metrics.map(CallSummary::of),
        }
    }

    fn status_codes(&self) -> Vec<StatusCount> {
        // Option sorts None first; rows without a code read better last.
        let coded = self.status_codes.iter().filter(|(c, _)| c.is_some());
        let uncoded = self.status_codes.iter().filter(|(c, _)| c.is_none());
        coded
            .chain(uncoded)
            .map(|(&code, &rows)| StatusCount {
                code,
                meaning: status_meaning(code).to_string(),
                rows,
            })
            .collect()
    }

    fn error_codes(&self) -> Vec<ErrorCount> {
        let mut counts: Vec<ErrorCount> = self
            .error_codes
            .iter()
            .map(|(code, &rows)| ErrorCount {
                code: code.clone(),
                rows,
            })
            .collect();
        // Stable sort: equal counts stay in code order, so the output is deterministic.
        counts.sort_by_key(|count| std::cmp::Reverse(count.rows));
        counts
    }
}

/// What a Cloudauth StatusCode means.
pub fn status_meaning(code: Option<i32>) -> &'static str {
    match code {
        Some(1) => "passed",
        Some(2) => "failed",
        Some(0) => "in review",
        Some(-1) => "not submitted",
        Some(_) => "unknown code",
        None => "no status",
    }
}

/// A summary that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// Writing a file failed.
    #[error("cannot write the summary {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The summary could not be encoded as JSON.
    #[error("cannot encode the summary {path} as JSON: {source}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

impl Summary {
    /// The summary of `lines`, with the calls of `metrics` when given.
    pub fn from_lines<'a>(
        lines: impl IntoIterator<Item = &'a Line>,
        metrics: Option<&RunMetrics>,
    ) -> Summary {
        let mut builder = SummaryBuilder::new();
        for line in lines {
            builder.add(line);
        }
        builder.finish(metrics)
    }

    /// Writes the summary as pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), SummaryError> {
        let json = serde_json::to_vec_pretty(self).map_err(|source| SummaryError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
        write_whole(path, &json)
    }

    /// Writes the summary as a self-contained HTML page to `path`.
    pub fn write_html(&self, path: &Path) -> Result<(), SummaryError> {
        write_whole(path, html::page(self).as_bytes())
    }

    /// The HTML page of the summary.
    pub fn to_html(&self) -> String {
        html::page(self)
    }
}

/// Where the summary goes for the report at `report`: `summary.json` and `summary.html`
/// in the report's folder.
pub fn paths_beside(report: &Path) -> (PathBuf, PathBuf) {
    let folder = report.parent().unwrap_or(Path::new(""));
    (folder.join(JSON_NAME), folder.join(HTML_NAME))
}

/// Writes beside the target and renames, so a reader never sees half a file.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), SummaryError> {
    let fail = |source| SummaryError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(fail)?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, bytes).map_err(fail)?;
    std::fs::rename(&partial, path).map_err(fail)
}

/// Rounds to three decimals, so the JSON reads well and survives a round trip.
pub(crate) fn round3(value: f64) -> f64 {
    (value * 1e3).round() / 1e3
}

#[cfg(test)]
mod tests;
