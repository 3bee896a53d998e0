//! The error-rate breaker: stops a run whose rows keep failing for infrastructure reasons
//! (the service unreachable, 5xx answers, throttling that never lets up), rather than
//! failing a million rows one by one.

use std::collections::VecDeque;
use std::sync::Mutex;

/// When the breaker trips.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerRule {
    /// How many of the latest finished rows are looked at.
    pub window: usize,
    /// The share of them, from 0 to 1, that may have failed for infrastructure reasons.
    pub max_error_rate: f64,
}

impl Default for BreakerRule {
    fn default() -> Self {
        BreakerRule {
            window: 50,
            max_error_rate: 0.5,
        }
    }
}

/// The latest finished rows, and whether each failed for infrastructure reasons.
#[derive(Debug)]
pub struct Breaker {
    rule: BreakerRule,
    recent: Mutex<VecDeque<bool>>,
}

impl Breaker {
    /// A breaker with `rule`; a window of 0 turns it off.
    pub fn new(rule: BreakerRule) -> Breaker {
        Breaker {
            rule,
            recent: Mutex::new(VecDeque::with_capacity(rule.window)),
        }
    }

    /// Counts a finished row; returns a reason to stop once the window is full and too
    /// many of its rows failed.
    pub fn record(&self, infrastructure_failure: bool) -> Option<String> {
        if self.rule.window == 0 {
            return None;
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == self.rule.window {
            recent.pop_front();
        }
        recent.push_back(infrastructure_failure);
        let failed = recent.iter().filter(|&&f| f).count();
        let rate = failed as f64 / self.rule.window as f64;
        (recent.len() == self.rule.window && rate > self.rule.max_error_rate).then(|| {
            format!(
                "{failed} of the last {} rows failed for infrastructure reasons (more than {:.0} %)",
                self.rule.window,
                self.rule.max_error_rate * 100.0
            )
        })
    }
}

/// Whether an error code says the service or the way to it failed, rather than the row.
pub fn is_infrastructure(code: &str) -> bool {
    code.starts_with("Transport.")
        || code.starts_with("Response.")
        || code.starts_with("Throttling")
        || matches!(
            code,
            "Error.InternalError"
                | "InternalError"
                | "ServiceUnavailable"
                | "UnknownError"
                | "Error.SubmitMaterialsError"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_only_on_a_full_window_over_the_rate() {
        let breaker = Breaker::new(BreakerRule {
            window: 4,
            max_error_rate: 0.5,
        });
        assert_eq!(breaker.record(true), None);
        assert_eq!(breaker.record(true), None);
        assert_eq!(breaker.record(true), None, "the window is not full yet");
        let reason = breaker.record(false).expect("3 of 4 is over half");
        assert!(reason.contains("3 of the last 4"), "{reason}");

        let even = Breaker::new(BreakerRule {
            window: 4,
            max_error_rate: 0.5,
        });
        for failed in [true, false, true, false] {
            assert_eq!(even.record(failed), None, "exactly half does not trip");
        }
    }

    #[test]
    fn a_window_of_successes_recovers() {
        let breaker = Breaker::new(BreakerRule {
            window: 2,
            max_error_rate: 0.5,
        });
        breaker.record(false);
        assert!(breaker.record(true).is_none());
        assert!(breaker.record(true).is_some());
        breaker.record(false);
        assert!(breaker.record(false).is_none());
    }

    #[test]
    fn a_zero_window_never_trips() {
        let breaker = Breaker::new(BreakerRule {
            window: 0,
            max_error_rate: 0.0,
        });
        assert!((0..10).all(|_| breaker.record(true).is_none()));
    }

    #[test]
    fn classifies_codes() {
        assert!(is_infrastructure("Transport.NoAnswer"));
        assert!(is_infrastructure("ServiceUnavailable"));
        assert!(is_infrastructure("Throttling.User"));
        assert!(!is_infrastructure("Error.RealNameCheckFail"));
        assert!(!is_infrastructure("InvalidParam.MaterialsNotValid"));
    }
}
