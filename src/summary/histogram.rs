//! Latency histograms with fixed, log-spaced buckets, shared by the call metrics of a run
//! and the row latencies of the summary.
//!
//! The buckets are the same everywhere and never depend on the data, so two histograms
//! merge by adding counts bucket by bucket: runs resumed several times, or shard ledgers,
//! add up to exactly the histogram of all their calls together.
//!
//! Twenty buckets per decade, from 0.1 ms to about 25 hours; a last bucket holds anything
//! longer. A percentile is the upper bound of the bucket it falls in, clamped to the
//! smallest and largest values seen, so it overstates the true value by at most 13 % and
//! never says a latency was better than it was.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Buckets per factor of ten.
pub const BUCKETS_PER_DECADE: usize = 20;

/// The upper bounds of one decade, in units of its smallest: 10^(k/20), rounded to three
/// figures so the bounds read well in a table.
const MANTISSAS: [u64; BUCKETS_PER_DECADE] = [
    100, 112, 126, 141, 158, 178, 200, 224, 251, 282, 316, 355, 398, 447, 501, 562, 631, 708, 794,
    891,
];

/// Bounded buckets: nine decades, from 100 µs to 89,100 s.
pub const BOUNDED: usize = 9 * BUCKETS_PER_DECADE;

/// All buckets: the bounded ones and the last, unbounded one.
pub const BUCKETS: usize = BOUNDED + 1;

/// The inclusive upper bound of each bounded bucket, in microseconds.
const UPPER_US: [u64; BOUNDED] = upper_bounds();

const fn upper_bounds() -> [u64; BOUNDED] {
    let mut bounds = [0; BOUNDED];
    let mut scale = 1;
    let mut i = 0;
    while i < BOUNDED {
        if i > 0 && i % BUCKETS_PER_DECADE == 0 {
            scale *= 10;
        }
        bounds[i] = MANTISSAS[i % BUCKETS_PER_DECADE] * scale;
        i += 1;
    }
    bounds
}

/// The bucket that holds `micros`: the first whose upper bound is not below it.
pub fn bucket_of(micros: u64) -> usize {
    UPPER_US.partition_point(|&bound| bound < micros)
}

/// The inclusive upper bound of `bucket` in microseconds; `None` for the unbounded last one.
pub fn upper_bound_us(bucket: usize) -> Option<u64> {
    UPPER_US.get(bucket).copied()
}

/// Whole microseconds of `duration`, saturating.
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// A latency histogram as plain data: stored in the ledger as JSON, merged across runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Count per bucket index, only for buckets that hold any. Bucket `i < 180` holds
    /// values up to `m(i % 20) * 10^(i / 20)` µs, with `m` = 100, 112, 126, ... 891;
    /// bucket 180 holds the rest.
    pub buckets: BTreeMap<usize, u64>,
    /// Sum of all values, in microseconds.
    pub sum_us: u64,
    /// The smallest value, in microseconds.
    pub min_us: Option<u64>,
    /// The largest value, in microseconds.
    pub max_us: Option<u64>,
}

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, value: Duration) {
        self.record_us(micros(value));
    }

    /// Counts one value given in microseconds.
    pub fn record_us(&mut self, micros: u64) {
        *self.buckets.entry(bucket_of(micros)).or_default() += 1;
        self.sum_us = self.sum_us.saturating_add(micros);
        self.min_us = Some(self.min_us.map_or(micros, |m| m.min(micros)));
        self.max_us = Some(self.max_us.map_or(micros, |m| m.max(micros)));
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.buckets.values().sum()
    }

    /// Adds `other`'s counts to this one's, bucket by bucket.
    pub fn merge(&mut self, other: &Histogram) {
        for (&bucket, &count) in &other.buckets {
            *self.buckets.entry(bucket).or_default() += count;
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.min_us = lesser(self.min_us, other.min_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The `q` quantile (0 to 1) by nearest rank, as the upper bound of its bucket clamped
    /// to the values seen; `None` when empty.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        self.percentile_us(q).map(Duration::from_micros)
    }

    /// [`Histogram::percentile`] in microseconds.
    pub fn percentile_us(&self, q: f64) -> Option<u64> {
        let (min, max) = (self.min_us?, self.max_us?);
        let rank = nearest_rank(q, self.count());
        let mut seen = 0;
        for (&bucket, &count) in &self.buckets {
            seen += count;
            if seen >= rank {
                let bound = upper_bound_us(bucket).unwrap_or(max);
                return Some(bound.clamp(min, max));
            }
        }
        Some(max)
    }
}

/// The 1-based rank of the `q` quantile among `count` sorted values: ceil(q * count),
/// at least 1.
pub fn nearest_rank(q: f64, count: u64) -> u64 {
    let rank = (q.clamp(0.0, 1.0) * count as f64).ceil() as u64;
    rank.clamp(1, count.max(1))
}

fn lesser(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_log_spaced_and_rising() {
        assert_eq!(UPPER_US[0], 100);
        assert_eq!(UPPER_US[20], 1_000, "1 ms starts the second decade");
        assert_eq!(UPPER_US[27], 2_240);
        assert_eq!(UPPER_US[BOUNDED - 1], 89_100_000_000);
        assert!(UPPER_US.windows(2).all(|w| w[0] < w[1]));
        for w in UPPER_US.windows(2) {
            let ratio = w[1] as f64 / w[0] as f64;
            assert!((1.10..1.14).contains(&ratio), "{w:?}");
        }
    }

    #[test]
    fn values_fall_in_the_first_bucket_whose_bound_covers_them() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(100), 0, "bounds are inclusive");
        assert_eq!(bucket_of(101), 1);
        assert_eq!(bucket_of(1_000), 20);
        assert_eq!(bucket_of(1_001), 21);
        assert_eq!(bucket_of(89_100_000_000), BOUNDED - 1);
        assert_eq!(bucket_of(89_100_000_001), BOUNDED);
        assert_eq!(bucket_of(u64::MAX), BOUNDED);
    }

    #[test]
    fn percentiles_are_bucket_bounds_clamped_to_the_values_seen() {
        let mut histogram = Histogram::default();
        // 1 ms x 5, 3 ms x 3, 10 ms, 50 ms: ten values.
        for ms in [1, 1, 1, 1, 1, 3, 3, 3, 10, 50] {
            histogram.record(Duration::from_millis(ms));
        }

        assert_eq!(histogram.count(), 10);
        // Rank 5 is the last 1 ms value; its bucket's bound is exactly 1 ms.
        assert_eq!(histogram.percentile_us(0.5), Some(1_000));
        // Rank 6 is 3 ms, in the bucket (2.82 ms, 3.16 ms].
        assert_eq!(histogram.percentile_us(0.51), Some(3_160));
        // Rank 9 is 10 ms, a bound itself.
        assert_eq!(histogram.percentile_us(0.9), Some(10_000));
        // Rank 10 is 50 ms, in (44.7 ms, 50.1 ms]: clamped to the largest value seen.
        assert_eq!(histogram.percentile_us(0.99), Some(50_000));
        assert_eq!(histogram.percentile_us(0.0), Some(1_000));
        assert_eq!(histogram.sum_us, 74_000);
    }

    #[test]
    fn the_unbounded_bucket_reports_the_largest_value() {
        let mut histogram = Histogram::default();
        histogram.record(Duration::from_secs(200_000));

        assert_eq!(
            histogram.percentile(0.5),
            Some(Duration::from_secs(200_000))
        );
        assert_eq!(Histogram::default().percentile(0.5), None);
    }

    #[test]
    fn merging_adds_bucket_wise() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        let mut both = Histogram::default();
        for ms in [3, 7, 7] {
            a.record(Duration::from_millis(ms));
            both.record(Duration::from_millis(ms));
        }
        for ms in [1, 7, 900] {
            b.record(Duration::from_millis(ms));
            both.record(Duration::from_millis(ms));
        }

        a.merge(&b);
        assert_eq!(a, both);
        a.merge(&Histogram::default());
        assert_eq!(a, both, "an empty histogram changes nothing");
    }
}
