//! Keeps every action under its quota across all worker threads.
//!
//! The service counts calls per second without saying how it aligns the window, so the
//! limiter assumes the strictest reading: never more than N calls in *any* one-second
//! window. A token bucket with a burst of N would allow up to 2N-1 in some window, so each
//! action gets a governor limiter with a burst of one, which spaces calls evenly, at a rate
//! a little under the quota to absorb scheduling jitter between the permit and the call's
//! arrival.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::cloudauth::api::Action;
use crate::spec::Rate;

/// The share of the quota actually used: 2 % stays free for jitter.
pub const HEADROOM: f64 = 0.98;

/// One paced limiter per action.
pub struct Limiter {
    limiters: BTreeMap<Action, DefaultDirectRateLimiter>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("actions", &self.limiters.keys())
            .finish()
    }
}

impl Limiter {
    /// A limiter for the given quotas; actions without one are not limited.
    pub fn new(rates: &BTreeMap<Action, Rate>) -> Limiter {
        let limiters = rates
            .iter()
            .map(|(&action, &rate)| (action, RateLimiter::direct(paced(rate))))
            .collect();
        Limiter {
            limiters,
            clock: DefaultClock::default(),
        }
    }

    /// Blocks until `action` may be called.
    pub fn acquire(&self, action: Action) {
        let Some(limiter) = self.limiters.get(&action) else {
            return;
        };
        while let Err(not_until) = limiter.check() {
            std::thread::sleep(not_until.wait_time_from(self.clock.now()));
        }
    }
}

/// A quota that admits one call per interval, with no burst.
fn paced(rate: Rate) -> Quota {
    let interval = spacing(rate);
    Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::MIN)
}

/// The time between two calls of an action with quota `rate`.
pub fn spacing(rate: Rate) -> Duration {
    Duration::from_secs_f64(1.0 / (rate.get() * HEADROOM)).max(Duration::from_nanos(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_leaves_headroom_under_the_quota() {
        let rate = Rate::per_second(200.0).unwrap();
        let gap = spacing(rate);
        assert!(gap > Duration::from_millis(5), "{gap:?}");
        // In any one-second window at most floor(1 s / gap) + 1 calls fit.
        let most = (1.0 / gap.as_secs_f64()).floor() as u32 + 1;
        assert!(most <= 200, "{most}");
    }

    #[test]
    fn calls_are_spaced_not_bursted() {
        let rates = BTreeMap::from([(Action::GetStatus, Rate::per_second(50.0).unwrap())]);
        let limiter = Limiter::new(&rates);
        let started = std::time::Instant::now();
        for _ in 0..6 {
            limiter.acquire(Action::GetStatus);
        }
        // Five gaps of about 20.4 ms each: a bursting bucket would finish at once.
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        limiter.acquire(Action::GetMaterials);
    }
}
