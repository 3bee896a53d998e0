//! How many rows are worked on at once. A fixed number when the spec says so; with
//! `concurrency: auto`, enough to keep SubmitMaterials at its quota given the latency the
//! run observes (Little's law: rows in flight = rate × time a row spends in calls), with
//! room to spare, and no more, since every row in flight holds its encoded images.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Headroom over Little's law, for latency that varies.
const SPARE: f64 = 1.5;

/// The admission gate of the workers.
#[derive(Debug)]
pub struct Gate {
    limit: AtomicUsize,
    in_flight: AtomicUsize,
    /// Moving average of the time a row spends in calls, in microseconds; 0 for fixed.
    average_micros: AtomicU64,
    rate: f64,
    max: usize,
    /// Wakes a worker waiting for a place when one is given back.
    freed: Condvar,
    waiting: Mutex<()>,
}

impl Gate {
    /// A gate that admits `n` rows at once.
    pub fn fixed(n: usize) -> Gate {
        Gate {
            limit: AtomicUsize::new(n),
            in_flight: AtomicUsize::new(0),
            average_micros: AtomicU64::new(0),
            rate: 0.0,
            max: n,
            freed: Condvar::new(),
            waiting: Mutex::new(()),
        }
    }

    /// A gate sized from the SubmitMaterials `rate` and the observed time per row, at most
    /// `max`. It starts from a guess of one second per row.
    pub fn auto(rate: f64, max: usize) -> Gate {
        let gate = Gate {
            limit: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            average_micros: AtomicU64::new(1_000_000),
            rate,
            max,
            freed: Condvar::new(),
            waiting: Mutex::new(()),
        };
        gate.limit
            .store(gate.target(Duration::from_secs(1)), Ordering::Relaxed);
        gate
    }

    /// The limit for rows that spend `per_row` in calls.
    fn target(&self, per_row: Duration) -> usize {
        let needed = (self.rate * per_row.as_secs_f64() * SPARE).ceil() as usize + 2;
        needed.clamp(2, self.max.max(2))
    }

    /// How many rows may be worked on at once now.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Takes a place, if one is free.
    pub fn try_enter(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit()).then_some(n + 1)
            })
            .is_ok()
    }

    /// Waits up to `timeout` for a place to be given back.
    pub fn wait(&self, timeout: Duration) {
        let guard = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.freed.wait_timeout(guard, timeout);
    }

    /// Gives a place back; `spent` is the time the row spent in calls, if it did any.
    pub fn leave(&self, spent: Option<Duration>) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
        let Some(spent) = spent.filter(|_| self.rate > 0.0) else {
            return;
        };
        // An exponential moving average over about the last 20 rows.
        let sample = spent.as_micros() as u64;
        let previous = self.average_micros.load(Ordering::Relaxed);
        let average = previous - previous / 20 + sample / 20;
        self.average_micros.store(average, Ordering::Relaxed);
        self.limit.store(
            self.target(Duration::from_micros(average)),
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_gate_admits_its_number() {
        let gate = Gate::fixed(2);
        assert!(gate.try_enter() && gate.try_enter());
        assert!(!gate.try_enter());
        gate.leave(Some(Duration::from_secs(9)));
        assert_eq!(gate.limit(), 2);
        assert!(gate.try_enter());
    }

    #[test]
    fn an_auto_gate_follows_the_observed_latency() {
        let gate = Gate::auto(200.0, 512);
        assert_eq!(gate.limit(), 302, "200/s × 1 s × 1.5 + 2");
        for _ in 0..200 {
            assert!(gate.try_enter());
            gate.leave(Some(Duration::from_millis(600)));
        }
        // 200/s × 0.6 s × 1.5 + 2, reached from above within rounding.
        assert!((182..=186).contains(&gate.limit()), "{}", gate.limit());
        let small = Gate::auto(1.0, 512);
        assert_eq!(small.limit(), 4);
        let capped = Gate::auto(10_000.0, 64);
        assert_eq!(capped.limit(), 64);
    }
}
