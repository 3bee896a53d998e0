//! Counters of a run's calls, fed by the engine's workers as they go, and their snapshot.
//!
//! Every counter is an atomic updated with relaxed ordering: workers never wait on each
//! other to count, and nothing orders the counters among themselves. A snapshot taken
//! while workers run may be a few calls out of step across counters; taken after they
//! have stopped, it is exact.
//!
//! [`RunMetrics`] is the snapshot as plain data. The ledger stores it as JSON, so a later
//! `report LEDGER` can rebuild the summary, and [`RunMetrics::merge`] adds up the runs of a
//! resumed batch or the ledgers of its shards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::histogram::{BUCKETS, Histogram, bucket_of, micros};
use crate::cloudauth::api::Action;

/// A latency histogram that many threads record into at once.
#[derive(Debug)]
pub struct LatencyHistogram {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
    min_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
            // u64::MAX stands for "nothing recorded yet", so fetch_min needs no branch.
            min_us: AtomicU64::new(u64::MAX),
            max_us: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    /// Counts one latency.
    pub fn record(&self, latency: Duration) {
        let us = micros(latency);
        self.counts[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.min_us.fetch_min(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// The `q` quantile (0 to 1) of what was recorded so far; see [`Histogram::percentile`].
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        self.snapshot().percentile(q)
    }

    /// The counts so far, as plain data.
    pub fn snapshot(&self) -> Histogram {
        let buckets: BTreeMap<usize, u64> = (0..BUCKETS)
            .map(|i| (i, self.counts[i].load(Ordering::Relaxed)))
            .filter(|&(_, count)| count > 0)
            .collect();
        let seen = !buckets.is_empty();
        Histogram {
            buckets,
            sum_us: self.sum_us.load(Ordering::Relaxed),
            min_us: seen.then(|| self.min_us.load(Ordering::Relaxed)),
            max_us: seen.then(|| self.max_us.load(Ordering::Relaxed)),
        }
    }
}

/// The counters of one action.
#[derive(Debug, Default)]
pub struct ActionCounters {
    calls: AtomicU64,
    errors: AtomicU64,
    throttled: AtomicU64,
    retries: AtomicU64,
    latency: LatencyHistogram,
}

impl ActionCounters {
    /// The latency histogram of the action's calls.
    pub fn latency(&self) -> &LatencyHistogram {
        &self.latency
    }

    fn snapshot(&self) -> ActionStats {
        ActionStats {
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
        }
    }
}

/// The live counters of one run, shared by its workers (behind an `Arc` or a reference).
#[derive(Debug)]
pub struct Metrics {
    started_at: String,
    started: Instant,
    actions: [ActionCounters; Action::ALL.len()],
    throttled_us: AtomicU64,
    limiter_wait_us: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn slot(action: Action) -> usize {
    match action {
        Action::GetVerifyToken => 0,
        Action::SubmitMaterials => 1,
        Action::GetStatus => 2,
        Action::GetMaterials => 3,
    }
}

impl Metrics {
    /// Counters at zero, with the run starting now.
    pub fn new() -> Metrics {
        Metrics {
            started_at: crate::ledger::now(),
            started: Instant::now(),
            actions: Default::default(),
            throttled_us: AtomicU64::new(0),
            limiter_wait_us: AtomicU64::new(0),
        }
    }

    /// The counters of `action`.
    pub fn action(&self, action: Action) -> &ActionCounters {
        &self.actions[slot(action)]
    }

    /// Counts one call of `action` that took `latency`, whatever its result: an answer,
    /// an error answer, or no answer at all.
    pub fn call(&self, action: Action, latency: Duration) {
        let counters = self.action(action);
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters.latency.record(latency);
    }

    /// Counts one call of `action` that failed, throttled or not.
    pub fn error(&self, action: Action) {
        self.action(action).errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one answer of `action` saying the quota was exceeded. Also count it with
    /// [`Metrics::error`]: a throttled answer is an error answer.
    pub fn throttled(&self, action: Action) {
        self.action(action)
            .throttled
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one retry of `action`.
    pub fn retry(&self, action: Action) {
        self.action(action).retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds time a worker slept because the service throttled it (the backoff before a
    /// retry of a throttled call).
    pub fn add_throttled(&self, waited: Duration) {
        self.throttled_us
            .fetch_add(micros(waited), Ordering::Relaxed);
    }

    /// Adds time a worker waited for the rate limiter's permit before a call.
    pub fn add_limiter_wait(&self, waited: Duration) {
        self.limiter_wait_us
            .fetch_add(micros(waited), Ordering::Relaxed);
    }

    /// The counters so far, with the run finishing now.
    pub fn snapshot(&self) -> RunMetrics {
        let actions = Action::ALL
            .into_iter()
            .map(|action| (action, self.action(action).snapshot()))
            .filter(|(_, stats)| stats.calls > 0 || stats.errors > 0)
            .collect();
        RunMetrics {
            started_at: Some(self.started_at.clone()),
            finished_at: Some(crate::ledger::now()),
            wall_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            runs: 1,
            throttled_us: self.throttled_us.load(Ordering::Relaxed),
            limiter_wait_us: self.limiter_wait_us.load(Ordering::Relaxed),
            actions,
        }
    }
}

/// One action's counters as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionStats {
    /// Calls made, retries included.
    pub calls: u64,
    /// Calls that failed: an error answer, or none.
    pub errors: u64,
    /// Answers saying the quota was exceeded (part of `errors`).
    pub throttled: u64,
    /// Calls made again after a failure (part of `calls`).
    pub retries: u64,
    /// How long the calls took.
    pub latency: Histogram,
}

impl ActionStats {
    fn merge(&mut self, other: &ActionStats) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.throttled += other.throttled;
        self.retries += other.retries;
        self.latency.merge(&other.latency);
    }
}

/// The metrics of one run, or of several merged, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// When the first run started, RFC 3339 UTC.
    pub started_at: Option<String>,
    /// When the last run finished, RFC 3339 UTC.
    pub finished_at: Option<String>,
    /// Time the runs were running, added up: for shards run side by side this is more
    /// than the time that passed.
    pub wall_ms: u64,
    /// How many runs were merged into these metrics.
    pub runs: u32,
    /// Time workers slept because the service throttled them, in microseconds.
    pub throttled_us: u64,
    /// Time workers waited for the rate limiter, in microseconds.
    pub limiter_wait_us: u64,
    /// Counters per action, for the actions that were called.
    pub actions: BTreeMap<Action, ActionStats>,
}

impl RunMetrics {
    /// Adds `other` to these metrics: counts and histograms add up, and the span runs
    /// from the earliest start to the latest finish.
    pub fn merge(&mut self, other: &RunMetrics) {
        self.started_at = pick(&self.started_at, &other.started_at, std::cmp::min);
        self.finished_at = pick(&self.finished_at, &other.finished_at, std::cmp::max);
        self.wall_ms = self.wall_ms.saturating_add(other.wall_ms);
        self.runs += other.runs;
        self.throttled_us = self.throttled_us.saturating_add(other.throttled_us);
        self.limiter_wait_us = self.limiter_wait_us.saturating_add(other.limiter_wait_us);
        for (action, stats) in &other.actions {
            self.actions.entry(*action).or_default().merge(stats);
        }
    }

    /// Throttled answers over all actions.
    pub fn throttled_answers(&self) -> u64 {
        self.actions.values().map(|a| a.throttled).sum()
    }

    /// Calls over all actions.
    pub fn calls(&self) -> u64 {
        self.actions.values().map(|a| a.calls).sum()
    }
}

/// One of two optional timestamps, chosen by `choose` when both are there. The ledger's
/// timestamps share one fixed-width format, so comparing them as text orders them in time.
fn pick(
    a: &Option<String>,
    b: &Option<String>,
    choose: fn(String, String) -> String,
) -> Option<String> {
    match (a.clone(), b.clone()) {
        (Some(a), Some(b)) => Some(choose(a, b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(metrics: &Metrics, calls: &[(Action, u64, bool)]) {
        for &(action, ms, failed) in calls {
            metrics.call(action, Duration::from_millis(ms));
            if failed {
                metrics.error(action);
                metrics.throttled(action);
                metrics.retry(action);
                metrics.add_throttled(Duration::from_millis(250));
            }
        }
        metrics.add_limiter_wait(Duration::from_millis(calls.len() as u64));
    }

    #[test]
    fn counts_calls_per_action() {
        let metrics = Metrics::new();
        feed(
            &metrics,
            &[
                (Action::SubmitMaterials, 120, false),
                (Action::SubmitMaterials, 80, true),
                (Action::GetStatus, 5, false),
            ],
        );

        let run = metrics.snapshot();
        let submit = &run.actions[&Action::SubmitMaterials];
        assert_eq!((submit.calls, submit.errors, submit.throttled), (2, 1, 1));
        assert_eq!(submit.latency.count(), 2);
        assert_eq!(
            submit.latency.percentile(1.0),
            Some(Duration::from_millis(120))
        );
        assert_eq!(run.actions[&Action::GetStatus].calls, 1);
        assert!(!run.actions.contains_key(&Action::GetMaterials));
        assert_eq!((run.calls(), run.throttled_answers()), (3, 1));
        assert_eq!(run.throttled_us, 250_000);
        assert_eq!(run.limiter_wait_us, 3_000);
        assert_eq!(run.runs, 1);
    }

    #[test]
    fn counts_from_many_threads_add_up() {
        let metrics = Metrics::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for ms in 1..=250 {
                        metrics.call(Action::GetStatus, Duration::from_millis(ms));
                    }
                });
            }
        });

        let run = metrics.snapshot();
        let status = &run.actions[&Action::GetStatus];
        assert_eq!(status.calls, 1000);
        assert_eq!(status.latency.count(), 1000);
        assert_eq!(status.latency.min_us, Some(1_000));
        assert_eq!(status.latency.max_us, Some(250_000));
        assert_eq!(
            metrics.action(Action::GetStatus).latency().percentile(0.0),
            Some(Duration::from_millis(1))
        );
    }

    #[test]
    fn merging_two_runs_equals_one_run_of_all_their_calls() {
        let first = [
            (Action::GetVerifyToken, 30, false),
            (Action::SubmitMaterials, 900, true),
            (Action::SubmitMaterials, 700, false),
        ];
        let second = [
            (Action::SubmitMaterials, 1_500, false),
            (Action::GetStatus, 2, true),
        ];
        let (a, b, both) = (Metrics::new(), Metrics::new(), Metrics::new());
        feed(&a, &first);
        feed(&b, &second);
        feed(&both, &first);
        feed(&both, &second);

        let mut merged = a.snapshot();
        merged.merge(&b.snapshot());
        let both = both.snapshot();
        assert_eq!(merged.actions, both.actions);
        assert_eq!(merged.throttled_us, both.throttled_us);
        assert_eq!(merged.limiter_wait_us, 2_000 + 3_000, "waits add up too");
        assert_eq!(merged.runs, 2);
    }

    #[test]
    fn merging_spans_from_the_first_start_to_the_last_finish() {
        let run = |start: &str, finish: &str, wall_ms| RunMetrics {
            started_at: Some(start.into()),
            finished_at: Some(finish.into()),
            wall_ms,
            runs: 1,
            ..RunMetrics::default()
        };
        let mut merged = run(
            "2024-05-02T10:00:00.000Z",
            "2024-05-02T11:00:00.000Z",
            3_600_000,
        );
        merged.merge(&run(
            "2024-05-01T09:00:00.000Z",
            "2024-05-01T09:30:00.000Z",
            1_800_000,
        ));

        assert_eq!(
            merged.started_at.as_deref(),
            Some("2024-05-01T09:00:00.000Z")
        );
        assert_eq!(
            merged.finished_at.as_deref(),
            Some("2024-05-02T11:00:00.000Z")
        );
        assert_eq!(merged.wall_ms, 5_400_000);

        let mut empty = RunMetrics::default();
        empty.merge(&merged);
        assert_eq!(empty, merged, "merging into nothing copies");
    }

    #[test]
    fn run_metrics_round_trip_through_json() {
        let metrics = Metrics::new();
        feed(
            &metrics,
            &[
                (Action::SubmitMaterials, 42, true),
                (Action::GetStatus, 3, false),
            ],
        );
        let run = metrics.snapshot();

        let json = serde_json::to_string(&run).unwrap();
        assert!(json.contains("\"SubmitMaterials\""), "{json}");
        let back: RunMetrics = serde_json::from_str(&json).unwrap();
        assert_eq!(back, run);
    }
}
