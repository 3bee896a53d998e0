//! Keeps every action under its quota across all worker threads.
//!
//! The service counts calls per second without saying how it aligns the window, so the
//! limiter assumes the strictest reading: never more than N calls in *any* one-second
//! window. A token bucket with a burst of N would allow up to 2N-1 in some window, so each
//! action gets evenly spaced slots, at a rate a little under the quota to absorb scheduling
//! jitter between the permit and the call's arrival, under a governor ceiling with a burst
//! of at most two: enough that a worker waking a little late for its slot does not push
//! every later call back, and little enough to stay under the quota in every window.
//!
//! When the service throttles anyway (its real quota is lower than the spec says, or
//! another client shares it), the action's pace drops for every worker at once and then
//! recovers gradually: additive increase, multiplicative decrease, so a run converges on
//! the account's real quota instead of hammering it.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::cloudauth::api::Action;
use crate::spec::Rate;

/// The largest share of a quota ever used: 1 % stays free for jitter.
pub const HEADROOM: f64 = 0.99;

/// What a throttled answer multiplies the pace by. Not a half, as congestion control
/// would: the pace is set just under a quota the spec names, so a throttled call there is
/// usually jitter (a call that arrived a few milliseconds late, next to one on time), and
/// halving would cost seconds of half pace each time. A real quota far below the spec's
/// is still found within seconds, a tenth less each second.
pub const DECREASE: f64 = 0.9;

/// How many seconds of calls at the full quota it takes to climb from nothing back to the
/// full pace: from one throttled second ([`DECREASE`]), half a second.
const RECOVERY_SECONDS: f64 = 5.0;

/// The smallest share of the quota the pace may drop to.
pub const MIN_SHARE: f64 = 0.05;

/// How long a new limiter takes to reach the full pace. A run started right after another
/// (a restart after a crash, back-to-back cron jobs) would otherwise add its first second
/// of calls to the last second of the run before, and exceed the quota in that window.
pub const SLOW_START: Duration = Duration::from_secs(1);

/// The share of the pace a limiter starts at.
const SLOW_START_FLOOR: f64 = 0.25;

/// One paced limiter per action.
pub struct Limiter {
    limiters: BTreeMap<Action, Paced>,
    clock: DefaultClock,
    started: Instant,
}

/// The hard ceiling of one action, and the adaptive pace under it.
struct Paced {
    ceiling: DefaultDirectRateLimiter,
    rate: Rate,
    pace: Mutex<Pace>,
}

/// Where the adaptive pace stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// The share of the quota in use, from [`MIN_SHARE`] to 1.
    pub share: f64,
    /// The earliest moment the next call may start.
    next: Option<Instant>,
    /// When the pace was last lowered.
    lowered_at: Option<Instant>,
    /// Time spent below the full quota.
    pub throttled_for: Duration,
    since: Option<Instant>,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            share: 1.0,
            next: None,
            lowered_at: None,
            throttled_for: Duration::ZERO,
            since: None,
        }
    }
}

impl Pace {
    /// Lowers the share by [`DECREASE`], once per `cooldown`: one throttling episode is usually
    /// answered to several workers at once, and should lower the pace once.
    pub fn lower(&mut self, now: Instant, cooldown: Duration) -> bool {
        if self
            .lowered_at
            .is_some_and(|at| now.duration_since(at) < cooldown)
        {
            return false;
        }
        self.lowered_at = Some(now);
        self.since.get_or_insert(now);
        self.share = (self.share * DECREASE).max(MIN_SHARE);
        true
    }

    /// Raises the share by `step` after a successful call, up to the full quota.
    pub fn raise(&mut self, now: Instant, step: f64) {
        self.share = (self.share + step).min(1.0);
        if self.share >= 1.0
            && let Some(since) = self.since.take()
        {
            self.throttled_for += now.duration_since(since);
        }
    }

    /// Reserves the next call slot and returns when it starts; `interval` gives the
    /// spacing at the slot's time.
    fn reserve(&mut self, now: Instant, interval: impl Fn(Instant) -> Duration) -> Instant {
        let slot = self.next.map_or(now, |next| next.max(now));
        self.next = Some(slot + interval(slot).div_f64(self.share));
        slot
    }
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
            .map(|(&action, &rate)| {
                let paced = Paced {
                    ceiling: RateLimiter::direct(paced(rate)),
                    rate,
                    pace: Mutex::new(Pace::default()),
                };
                (action, paced)
            })
            .collect();
        Limiter {
            limiters,
            clock: DefaultClock::default(),
            started: Instant::now(),
        }
    }

    /// Blocks until `action` may be called: first the adaptive pace, then the hard
    /// ceiling, which the pace never lets it exceed.
    pub fn acquire(&self, action: Action) {
        let Some(limiter) = self.limiters.get(&action) else {
            return;
        };
        // The slow start follows the slots' times, not the moment they are asked for: the
        // hundreds of workers that ask at the start would otherwise all be spaced as
        // slowly as the first call, for seconds.
        let full = spacing(limiter.rate);
        let gap = |slot: Instant| full.div_f64(slow_start(slot.duration_since(self.started)));
        let slot = limiter.lock().reserve(Instant::now(), gap);
        std::thread::sleep(slot.saturating_duration_since(Instant::now()));
        while let Err(not_until) = limiter.ceiling.check() {
            std::thread::sleep(not_until.wait_time_from(self.clock.now()));
        }
    }

    /// The service throttled `action`: slow it down for everyone.
    pub fn throttled(&self, action: Action) {
        if let Some(limiter) = self.limiters.get(&action) {
            let mut pace = limiter.lock();
            if pace.lower(Instant::now(), Duration::from_secs(1)) {
                tracing::warn!(%action, share = pace.share, "throttled: lowering the pace");
            }
        }
    }

    /// A call of `action` went through: recover a little towards the full quota, over
    /// [`RECOVERY_SECONDS`] of the quota's calls to climb back all the way.
    pub fn succeeded(&self, action: Action) {
        if let Some(limiter) = self.limiters.get(&action) {
            let step = 1.0 / (limiter.rate.get() * RECOVERY_SECONDS).max(1.0);
            let mut pace = limiter.lock();
            if pace.share < 1.0 {
                pace.raise(Instant::now(), step);
            }
        }
    }

    /// The pace of `action` now.
    pub fn pace(&self, action: Action) -> Option<Pace> {
        self.limiters.get(&action).map(|l| *l.lock())
    }
}

impl Paced {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.pace.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The share of the full pace allowed `elapsed` after the limiter was made.
fn slow_start(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() / SLOW_START.as_secs_f64()).clamp(SLOW_START_FLOOR, 1.0)
}

/// The hard ceiling: one call per interval at the effective rate, with [`burst`].
fn paced(rate: Rate) -> Quota {
    let interval = spacing(rate);
    Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst(rate))
}

/// Calls a second that stay free below every quota, whatever its size: evenly spaced
/// calls at N a second can still put N+1 in one window when the time between the permit
/// and the arrival varies, so at least one and a half calls of slack are kept.
pub const SLACK_CALLS: f64 = 1.5;

/// Quotas from this many calls a second up get a ceiling with a burst of two.
const BURST_FROM: f64 = 100.0;

/// How many calls the ceiling lets through in quick succession: two for quotas of
/// [`BURST_FROM`] a second and more, else one.
///
/// With a burst of one, a worker that wakes a little late for its slot pushes every later
/// call back by as much, and at hundreds of calls a second those delays add up to percents
/// of the quota. A ceiling at r calls a second with a burst of b admits at most b + r calls
/// in a one-second window, so [`effective`] keeps the extra call below the quota as well.
pub fn burst(rate: Rate) -> NonZeroU32 {
    if rate.get() >= BURST_FROM {
        NonZeroU32::MIN.saturating_add(1)
    } else {
        NonZeroU32::MIN
    }
}

/// The rate actually used under a quota of `rate`: 99 % of it, and at least
/// [`SLACK_CALLS`] under it, two calls more where the ceiling bursts (one for the extra
/// call, one for its jitter), but never less than half of it.
pub fn effective(rate: Rate) -> f64 {
    let quota = rate.get();
    // The extra call of a burst needs room below the quota, and so does its own jitter.
    let spare = SLACK_CALLS + 2.0 * f64::from(burst(rate).get() - 1);
    (quota * HEADROOM).min(quota - spare).max(quota * 0.5)
}

/// The time between two calls of an action with quota `rate`.
pub fn spacing(rate: Rate) -> Duration {
    Duration::from_secs_f64(1.0 / effective(rate)).max(Duration::from_nanos(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_leaves_headroom_under_the_quota() {
        let rate = Rate::per_second(200.0).unwrap();
        let gap = spacing(rate);
        assert!(gap > Duration::from_millis(5), "{gap:?}");
        // In any one-second window at most floor(1 s / gap) plus the burst fit, and a
        // call of slack is left for the time between the permit and the arrival.
        let most = (1.0 / gap.as_secs_f64()).floor() as u32 + burst(rate).get();
        assert!(most < 200, "{most}");
    }

    #[test]
    fn throttling_lowers_the_pace_once_per_episode_and_successes_restore_it() {
        let start = Instant::now();
        let mut pace = Pace::default();
        assert!(pace.lower(start, Duration::from_secs(1)));
        assert!(!pace.lower(start + Duration::from_millis(10), Duration::from_secs(1)));
        assert_eq!(pace.share, DECREASE);
        assert!(pace.lower(start + Duration::from_secs(2), Duration::from_secs(1)));
        assert_eq!(pace.share, DECREASE * DECREASE);
        for _ in 0..100 {
            pace.lower(start + Duration::from_secs(100), Duration::ZERO);
        }
        assert_eq!(pace.share, MIN_SHARE);

        for _ in 0..18 {
            pace.raise(start + Duration::from_secs(200), 0.05);
        }
        assert!(pace.share < 1.0);
        pace.raise(start + Duration::from_secs(200), 0.05);
        pace.raise(start + Duration::from_secs(200), 0.05);
        assert_eq!(pace.share, 1.0);
        assert_eq!(pace.throttled_for, Duration::from_secs(200));
    }

    #[test]
    fn small_quotas_keep_whole_calls_of_slack_and_large_ones_one_percent() {
        let at = |n: f64| effective(Rate::per_second(n).unwrap());
        assert_eq!(at(1000.0), 990.0);
        assert_eq!(at(200.0), 196.5);
        assert_eq!(at(100.0), 96.5);
        assert_eq!(at(50.0), 48.5);
        assert_eq!(at(20.0), 18.5);
        assert_eq!(at(10.0), 8.5);
        assert_eq!(at(2.0), 1.0);
        assert_eq!(at(0.5), 0.25);
        for quota in [0.5, 1.0, 2.0, 10.0, 19.0, 20.0, 50.0, 200.0, 5000.0] {
            let rate = Rate::per_second(quota).unwrap();
            let most = effective(rate).floor() + f64::from(burst(rate).get());
            assert!(most <= quota.max(1.0), "{quota}: {most} calls in a second");
        }
    }

    #[test]
    fn a_new_limiter_ramps_up_over_its_first_second() {
        assert_eq!(slow_start(Duration::ZERO), SLOW_START_FLOOR);
        assert_eq!(slow_start(Duration::from_millis(500)), 0.5);
        assert_eq!(slow_start(Duration::from_secs(5)), 1.0);
    }

    #[test]
    fn a_lower_share_spaces_reservations_further_apart() {
        let start = Instant::now();
        let mut pace = Pace::default();
        let gap = Duration::from_millis(10);
        assert_eq!(pace.reserve(start, |_| gap), start);
        assert_eq!(pace.reserve(start, |_| gap), start + gap);
        pace.share = 0.5;
        assert_eq!(pace.reserve(start, |_| gap), start + 2 * gap);
        assert_eq!(pace.reserve(start, |_| gap), start + 4 * gap);
    }

    #[test]
    fn slots_reserved_at_once_follow_the_slow_start_of_their_own_times() {
        // A slot 10 ms apart at first, 5 ms once half a second in: a burst of requests at
        // the start is not spaced at the first slot's rate all the way.
        let start = Instant::now();
        let mut pace = Pace::default();
        let gap = |slot: Instant| {
            let half = slot.duration_since(start) >= Duration::from_millis(500);
            Duration::from_millis(if half { 5 } else { 10 })
        };
        let slots: Vec<Instant> = (0..150).map(|_| pace.reserve(start, gap)).collect();
        assert_eq!(slots[1] - slots[0], Duration::from_millis(10));
        assert_eq!(slots[149] - slots[148], Duration::from_millis(5));
        assert!(slots[149] - start < Duration::from_millis(1000));
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
