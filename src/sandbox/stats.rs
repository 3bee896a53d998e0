//! What the sandbox saw and decided, for tests to compare with what a client reports.
//!
//! [`Stats`] is the snapshot, served as JSON at `GET /_sandbox/stats`; [`Recorder`] keeps
//! the live counts and windows behind the sandbox's lock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cloudauth::Action;

use super::quota::Window;

/// Counts for one action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionStats {
    /// Calls that named this action.
    pub arrived: u32,
    /// Calls that passed the quota.
    pub admitted: u32,
    /// Calls refused with `Throttling.User`.
    pub throttled: u32,
    /// The most arrivals in any sliding one-second window.
    pub peak_arrivals_per_second: u32,
    /// The most admitted calls in any sliding one-second window.
    pub peak_admitted_per_second: u32,
}

/// The verdict the sandbox gave a ticket's latest committed submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    /// The final StatusCode, 1 or 2, even while the ticket still shows 0 in review.
    pub status_code: i32,
    /// Face against the authority portrait.
    pub authority_comparison_score: Option<f64>,
    /// Face against the ID card portrait.
    pub similarity_score: Option<f64>,
    /// Whether the submission went through review (answered StatusCode 0 first).
    pub reviewed: bool,
}

/// A snapshot of everything counted since start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Counts per action.
    pub actions: BTreeMap<Action, ActionStats>,
    /// Committed SubmitMaterials per `"biz/ticket"`.
    pub submissions_per_ticket: BTreeMap<String, u32>,
    /// SubmitMaterials calls that arrived while their ticket was in state 0 or 1.
    pub duplicate_submissions: u32,
    /// RPC calls refused with `SignatureDoesNotMatch`.
    pub signature_failures: u32,
    /// The latest verdict per `"biz/ticket"`.
    pub verdicts: BTreeMap<String, VerdictRecord>,
}

impl Stats {
    /// The counts of `action`, zero if it was never called.
    pub fn action(&self, action: Action) -> ActionStats {
        self.actions.get(&action).cloned().unwrap_or_default()
    }

    /// Committed submissions of one ticket.
    pub fn submissions(&self, biz: &str, ticket: &str) -> u32 {
        let key = ticket_key(biz, ticket);
        self.submissions_per_ticket.get(&key).copied().unwrap_or(0)
    }

    /// The verdict of one ticket.
    pub fn verdict(&self, biz: &str, ticket: &str) -> Option<&VerdictRecord> {
        self.verdicts.get(&ticket_key(biz, ticket))
    }
}

/// The key of a ticket in [`Stats`].
pub fn ticket_key(biz: &str, ticket: &str) -> String {
    format!("{biz}/{ticket}")
}

/// The live windows of one action.
#[derive(Debug, Default)]
struct ActionWindows {
    arrivals: Window,
    admitted: Window,
}

/// Live counts, from which [`Stats`] snapshots are taken.
#[derive(Debug, Default)]
pub struct Recorder {
    stats: Stats,
    windows: BTreeMap<Action, ActionWindows>,
}

impl Recorder {
    /// Counts a call that named `action`.
    pub fn arrived(&mut self, action: Action, now: Instant) {
        let windows = self.windows.entry(action).or_default();
        windows.arrivals.record(now);
        let counts = self.stats.actions.entry(action).or_default();
        counts.arrived += 1;
        counts.peak_arrivals_per_second = windows.arrivals.peak();
    }

    /// Applies the quota `limit` (none: unlimited) to a call; on refusal, returns how
    /// long until a call would be admitted.
    pub fn admit(
        &mut self,
        action: Action,
        limit: Option<u32>,
        now: Instant,
    ) -> Result<(), Duration> {
        let windows = self.windows.entry(action).or_default();
        let counts = self.stats.actions.entry(action).or_default();
        let outcome = windows.admitted.admit(now, limit.unwrap_or(u32::MAX));
        match outcome {
            Ok(()) => counts.admitted += 1,
            Err(_) => counts.throttled += 1,
        }
        counts.peak_admitted_per_second = windows.admitted.peak();
        outcome
    }

    /// Counts a signature mismatch.
    pub fn signature_failed(&mut self) {
        self.stats.signature_failures += 1;
    }

    /// Counts a submission refused because the ticket is in review or passed.
    pub fn duplicate(&mut self) {
        self.stats.duplicate_submissions += 1;
    }

    /// Counts a committed submission and its verdict.
    pub fn committed(&mut self, biz: &str, ticket: &str, verdict: VerdictRecord) {
        let key = ticket_key(biz, ticket);
        *self
            .stats
            .submissions_per_ticket
            .entry(key.clone())
            .or_default() += 1;
        self.stats.verdicts.insert(key, verdict);
    }

    /// A snapshot.
    pub fn snapshot(&self) -> Stats {
        self.stats.clone()
    }
}
