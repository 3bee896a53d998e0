//! Rows completed over time, from each row's `completed_at`.
//!
//! Completions are counted per second of the clock as rows go by; a run of a day has at
//! most 86,400 such counts whatever its number of rows. The counts are grouped into wider
//! buckets only at the end, once the span of the run is known, so that a chart has at most
//! [`MAX_POINTS`] points.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::round3;

/// Most points in the series of completions.
pub const MAX_POINTS: i64 = 120;

/// Bucket widths that read well on a time axis, in seconds; past a day, whole days.
const NICE_SECONDS: [i64; 18] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200,
    86_400,
];

/// Rows completed over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Rows with a readable `completed_at`.
    pub completed: u64,
    /// Rows whose `completed_at` could not be read, left out of the series.
    pub unreadable: u64,
    /// The first completion, RFC 3339 UTC to the second.
    pub first_completed_at: Option<String>,
    /// The last completion, RFC 3339 UTC to the second.
    pub last_completed_at: Option<String>,
    /// Seconds from the first completion to the last, both included.
    pub span_seconds: u64,
    /// Rows completed per second, over the time the runs ran when that is known, else over
    /// the span of completions.
    pub rows_per_second: Option<f64>,
    /// What `rows_per_second` was divided by.
    pub rate_basis: RateBasis,
    /// Width of each point of `series`, in seconds.
    pub bucket_seconds: u64,
    /// Completions per bucket, every bucket from the first to the last, empty ones too.
    pub series: Vec<ThroughputPoint>,
}

/// The time a throughput was divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateBasis {
    /// The wall time of the runs, from their metrics.
    Wall,
    /// The span from the first completion to the last.
    Span,
    /// Nothing completed.
    None,
}

/// Completions in one bucket of time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThroughputPoint {
    /// Where the bucket starts, RFC 3339 UTC.
    pub start: String,
    /// Rows completed in it.
    pub rows: u64,
}

/// Completions per second of the clock, counted as rows go by.
#[derive(Debug, Clone, Default)]
pub(super) struct CompletionCounter {
    per_second: BTreeMap<i64, u64>,
    unreadable: u64,
}

impl CompletionCounter {
    /// Counts one row's `completed_at`.
    pub(super) fn add(&mut self, completed_at: &str) {
        match OffsetDateTime::parse(completed_at, &Rfc3339) {
            Ok(at) => *self.per_second.entry(at.unix_timestamp()).or_default() += 1,
            Err(_) => self.unreadable += 1,
        }
    }

    /// The throughput; `wall_seconds` is how long the runs ran, when known.
    pub(super) fn throughput(&self, wall_seconds: Option<f64>) -> Throughput {
        let completed: u64 = self.per_second.values().sum();
        let first = self.per_second.first_key_value().map(|(&s, _)| s);
        let last = self.per_second.last_key_value().map(|(&s, _)| s);
        let span = first.zip(last).map_or(0, |(f, l)| (l - f + 1) as u64);
        let (rate_basis, seconds) = match wall_seconds.filter(|&w| w > 0.0) {
            _ if completed == 0 => (RateBasis::None, 0.0),
            Some(wall) => (RateBasis::Wall, wall),
            None => (RateBasis::Span, span as f64),
        };
        let width = first.zip(last).map_or(1, |(f, l)| bucket_seconds(f, l));

        Throughput {
            completed,
            unreadable: self.unreadable,
            first_completed_at: first.map(format_second),
            last_completed_at: last.map(format_second),
            span_seconds: span,
            rows_per_second: (seconds > 0.0).then(|| round3(completed as f64 / seconds)),
            rate_basis,
            bucket_seconds: width as u64,
            series: self.series(width),
        }
    }

    fn series(&self, width: i64) -> Vec<ThroughputPoint> {
        let mut buckets: BTreeMap<i64, u64> = BTreeMap::new();
        for (&second, &rows) in &self.per_second {
            *buckets.entry(second.div_euclid(width)).or_default() += rows;
        }
        let (Some((&first, _)), Some((&last, _))) =
            (buckets.first_key_value(), buckets.last_key_value())
        else {
            return Vec::new();
        };
        (first..=last)
            .map(|bucket| ThroughputPoint {
                start: format_second(bucket * width),
                rows: buckets.get(&bucket).copied().unwrap_or(0),
            })
            .collect()
    }
}

/// The narrowest nice width whose buckets, aligned on the clock, cover `first..=last`
/// in at most [`MAX_POINTS`] points.
pub fn bucket_seconds(first: i64, last: i64) -> i64 {
    let points = |width: i64| last.div_euclid(width) - first.div_euclid(width) + 1;
    let nice = NICE_SECONDS.into_iter().find(|&w| points(w) <= MAX_POINTS);
    nice.unwrap_or_else(|| {
        let mut days = (last - first) / 86_400 / MAX_POINTS + 1;
        while points(days * 86_400) > MAX_POINTS {
            days += 1;
        }
        days * 86_400
    })
}

/// A Unix second as RFC 3339 UTC, e.g. `2024-05-01T09:30:00Z`.
fn format_second(second: i64) -> String {
    OffsetDateTime::from_unix_timestamp(second)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| second.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_narrowest_width_giving_at_most_120_points() {
        assert_eq!(bucket_seconds(0, 0), 1);
        assert_eq!(bucket_seconds(0, 119), 1);
        assert_eq!(bucket_seconds(0, 120), 2);
        assert_eq!(bucket_seconds(0, 239), 2);
        // 240 seconds starting mid-bucket straddle 121 two-second buckets.
        assert_eq!(bucket_seconds(1, 240), 5);
        assert_eq!(bucket_seconds(0, 3 * 3_600 - 1), 120);
        assert_eq!(bucket_seconds(0, 200 * 86_400), 2 * 86_400);
    }

    #[test]
    fn counts_per_second_and_rebuckets_on_the_clock() {
        let mut counter = CompletionCounter::default();
        for at in [
            "2024-05-01T09:00:00.100Z",
            "2024-05-01T09:00:00.900Z",
            "2024-05-01T09:00:01.000Z",
            "2024-05-01T09:02:05.000Z",
            "2024-05-01T09:03:59.999Z",
            "yesterday",
        ] {
            counter.add(at);
        }

        let throughput = counter.throughput(None);
        assert_eq!((throughput.completed, throughput.unreadable), (5, 1));
        assert_eq!(throughput.span_seconds, 240);
        assert_eq!(throughput.bucket_seconds, 2);
        assert_eq!(throughput.series.len(), 120);
        assert_eq!(throughput.series[0].start, "2024-05-01T09:00:00Z");
        assert_eq!(throughput.series[0].rows, 3);
        assert_eq!(throughput.series[62].rows, 1, "09:02:04 to 09:02:05");
        assert_eq!(throughput.series[119].rows, 1);
        assert_eq!(throughput.series.iter().map(|p| p.rows).sum::<u64>(), 5);
        assert_eq!(throughput.rows_per_second, Some(0.021), "5 rows over 240 s");
        assert_eq!(throughput.rate_basis, RateBasis::Span);
    }

    #[test]
    fn the_rate_uses_the_wall_time_when_known() {
        let mut counter = CompletionCounter::default();
        for _ in 0..30 {
            counter.add("2024-05-01T09:00:00Z");
        }

        let throughput = counter.throughput(Some(12.0));
        assert_eq!(throughput.rows_per_second, Some(2.5));
        assert_eq!(throughput.rate_basis, RateBasis::Wall);
        assert_eq!(
            CompletionCounter::default()
                .throughput(Some(12.0))
                .rows_per_second,
            None
        );
    }
}
