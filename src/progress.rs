//! Counts of finished rows, shown as a progress bar when stderr is a terminal.
//!
//! The bar shows counts and rates only, never a row's data.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ledger::Outcome;

/// Live counts of a run.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    counts: [AtomicU64; 5],
}

fn slot(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Passed => 0,
        Outcome::Failed => 1,
        Outcome::Pending => 2,
        Outcome::Error => 3,
        Outcome::Skipped => 4,
    }
}

impl Progress {
    /// A tracker that draws a bar only when stderr is a terminal and `visible` is set.
    pub fn new(visible: bool) -> Progress {
        let bar = (visible && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {pos}/{len} rows  {msg}  {per_sec}  eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            counts: Default::default(),
        }
    }

    /// Whether a bar is drawn.
    pub fn visible(&self) -> bool {
        self.bar.is_some()
    }

    /// Sets the number of rows, once known.
    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Counts a finished row.
    pub fn finish_row(&self, outcome: Outcome) {
        self.counts[slot(outcome)].fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(self.counts_text());
        }
    }

    /// How many rows ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.counts[slot(outcome)].load(Ordering::Relaxed)
    }

    /// `passed 3 · failed 1 · ...`.
    pub fn counts_text(&self) -> String {
        [
            Outcome::Passed,
            Outcome::Failed,
            Outcome::Pending,
            Outcome::Error,
            Outcome::Skipped,
        ]
        .iter()
        .map(|&o| format!("{} {}", o.as_str(), self.count(o)))
        .collect::<Vec<_>>()
        .join(" · ")
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
