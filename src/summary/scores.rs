//! Distributions of the face-comparison scores, AuthorityComparisonScore and
//! SimilarityScore, counted one row at a time.
//!
//! The service gives scores with two decimals, so a count per hundredth of a point (10,001
//! cells) holds the whole distribution in constant memory and gives exact percentiles
//! however many rows a run has.

use serde::{Deserialize, Serialize};

use super::histogram::nearest_rank;
use super::round3;

/// The AuthorityComparisonScore thresholds of the service's reference, highest first, with
/// the false-accept rate each one stands for.
pub const THRESHOLDS: [(f64, &str); 4] = [
    (95.0, "1/100,000"),
    (90.0, "1/10,000"),
    (80.0, "1/1,000"),
    (60.0, "1/100"),
];

/// Width of a bucket of the score histogram, in points.
pub const BUCKET_WIDTH: u32 = 10;

const BUCKETS: usize = 10;
const CELLS: usize = 100 * 100 + 1;

/// The distribution of one score over the rows that have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreStats {
    /// Rows with a score in 0..=100.
    pub rows: u64,
    /// Rows whose score was outside 0..=100 or not a number, left out of everything else.
    pub out_of_range: u64,
    /// The lowest score.
    pub min: Option<f64>,
    /// The median, by nearest rank.
    pub p50: Option<f64>,
    /// The 90th percentile, by nearest rank.
    pub p90: Option<f64>,
    /// The highest score.
    pub max: Option<f64>,
    /// Rows per 10-point bucket, from 0 up; the last bucket includes 100.
    pub buckets: Vec<ScoreBucket>,
    /// Rows at or above each threshold of [`THRESHOLDS`].
    pub thresholds: Vec<ThresholdCount>,
}

/// Rows whose score is in `from..to` (the last bucket includes `to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreBucket {
    /// The lowest score of the bucket.
    pub from: u32,
    /// The bucket's upper end.
    pub to: u32,
    /// Rows in the bucket.
    pub rows: u64,
}

/// Rows scoring at or above one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdCount {
    /// The threshold score.
    pub score: f64,
    /// The false-accept rate the service's reference gives for it.
    pub false_accept_rate: String,
    /// Rows at or above it.
    pub rows: u64,
}

/// Counts one score as rows go by.
#[derive(Debug, Clone)]
pub(super) struct ScoreCounter {
    cells: Vec<u64>,
    buckets: [u64; BUCKETS],
    thresholds: [u64; THRESHOLDS.len()],
    rows: u64,
    out_of_range: u64,
    min: Option<f64>,
    max: Option<f64>,
}

impl Default for ScoreCounter {
    fn default() -> Self {
        ScoreCounter {
            cells: vec![0; CELLS],
            buckets: [0; BUCKETS],
            thresholds: [0; THRESHOLDS.len()],
            rows: 0,
            out_of_range: 0,
            min: None,
            max: None,
        }
    }
}

impl ScoreCounter {
    /// Counts one row's score.
    pub(super) fn add(&mut self, score: f64) {
        if !(0.0..=100.0).contains(&score) {
            self.out_of_range += 1;
            return;
        }
        self.rows += 1;
        self.cells[(score * 100.0).round() as usize] += 1;
        // Buckets and thresholds compare the score itself, not its rounded cell, so a
        // score of 59.999 stays below the 60 line.
        self.buckets[((score / 10.0).floor() as usize).min(BUCKETS - 1)] += 1;
        for (count, (threshold, _)) in self.thresholds.iter_mut().zip(THRESHOLDS) {
            *count += u64::from(score >= threshold);
        }
        self.min = Some(self.min.map_or(score, |m| m.min(score)));
        self.max = Some(self.max.map_or(score, |m| m.max(score)));
    }

    /// The distribution counted so far.
    pub(super) fn stats(&self) -> ScoreStats {
        ScoreStats {
            rows: self.rows,
            out_of_range: self.out_of_range,
            min: self.min,
            p50: self.percentile(0.5),
            p90: self.percentile(0.9),
            max: self.max,
            buckets: self.buckets(),
            thresholds: self.thresholds(),
        }
    }

    fn percentile(&self, q: f64) -> Option<f64> {
        let rank = nearest_rank(q, self.rows);
        let mut seen = 0;
        let cell = self.cells.iter().position(|&count| {
            seen += count;
            seen >= rank
        })?;
        Some(round3(cell as f64 / 100.0))
    }

    fn buckets(&self) -> Vec<ScoreBucket> {
        (0..BUCKETS as u32)
            .zip(self.buckets)
            .map(|(i, rows)| ScoreBucket {
                from: i * BUCKET_WIDTH,
                to: (i + 1) * BUCKET_WIDTH,
                rows,
            })
            .collect()
    }

    fn thresholds(&self) -> Vec<ThresholdCount> {
        THRESHOLDS
            .iter()
            .zip(self.thresholds)
            .map(|(&(score, rate), rows)| ThresholdCount {
                score,
                false_accept_rate: rate.to_string(),
                rows,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(scores: &[f64]) -> ScoreStats {
        let mut counter = ScoreCounter::default();
        for &score in scores {
            counter.add(score);
        }
        counter.stats()
    }

    #[test]
    fn percentiles_are_exact_nearest_ranks() {
        let stats = counted(&[12.0, 41.5, 59.99, 60.0, 79.2, 80.0, 88.8, 90.5, 95.0, 98.13]);

        assert_eq!(stats.rows, 10);
        assert_eq!(stats.min, Some(12.0));
        assert_eq!(stats.p50, Some(79.2), "rank 5 of 10");
        assert_eq!(stats.p90, Some(95.0), "rank 9 of 10");
        assert_eq!(stats.max, Some(98.13));
    }

    #[test]
    fn buckets_are_ten_points_wide_and_the_last_holds_100() {
        let stats = counted(&[0.0, 9.99, 10.0, 55.0, 90.0, 99.99, 100.0]);

        let rows: Vec<u64> = stats.buckets.iter().map(|b| b.rows).collect();
        assert_eq!(rows, [2, 1, 0, 0, 0, 1, 0, 0, 0, 3]);
        assert_eq!((stats.buckets[9].from, stats.buckets[9].to), (90, 100));
    }

    #[test]
    fn thresholds_count_rows_at_or_above() {
        let stats = counted(&[12.0, 41.5, 59.99, 60.0, 79.2, 80.0, 88.8, 90.5, 95.0, 98.13]);

        let at_or_above: Vec<(f64, u64)> =
            stats.thresholds.iter().map(|t| (t.score, t.rows)).collect();
        assert_eq!(at_or_above, [(95.0, 2), (90.0, 3), (80.0, 5), (60.0, 7)]);
        assert_eq!(stats.thresholds[0].false_accept_rate, "1/100,000");
    }

    #[test]
    fn scores_outside_the_scale_are_counted_apart() {
        let stats = counted(&[-1.0, 100.5, f64::NAN, 50.0]);

        assert_eq!((stats.rows, stats.out_of_range), (1, 3));
        assert_eq!((stats.min, stats.max), (Some(50.0), Some(50.0)));
    }

    #[test]
    fn no_scores_give_empty_statistics() {
        let stats = counted(&[]);

        assert_eq!(
            (stats.rows, stats.min, stats.p50, stats.max),
            (0, None, None, None)
        );
        assert!(stats.buckets.iter().all(|b| b.rows == 0));
    }
}
