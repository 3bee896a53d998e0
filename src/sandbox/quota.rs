//! Sliding one-second windows: the per-action quota, and the peaks the stats report.
//!
//! The service's window is undocumented, so the quota takes the strictest reading
//! (PROTOCOL.md §7.1): never more than N admitted calls in any one-second span.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

/// The instants of recent events, at most one second old.
#[derive(Debug, Default)]
pub struct Window {
    events: VecDeque<Instant>,
    peak: u32,
}

impl Window {
    /// Forgets events that left the window ending at `now`.
    fn expire(&mut self, now: Instant) {
        while let Some(&oldest) = self.events.front() {
            if now.duration_since(oldest) < WINDOW {
                break;
            }
            self.events.pop_front();
        }
    }

    /// Records an event at `now` and updates the peak.
    pub fn record(&mut self, now: Instant) {
        self.expire(now);
        self.events.push_back(now);
        self.peak = self.peak.max(self.events.len() as u32);
    }

    /// Records an event at `now` if fewer than `limit` are in the window; otherwise
    /// returns how long until the oldest one leaves it.
    pub fn admit(&mut self, now: Instant, limit: u32) -> Result<(), Duration> {
        self.expire(now);
        if (self.events.len() as u32) < limit {
            self.record(now);
            return Ok(());
        }
        let oldest = self.events.front().copied().unwrap_or(now);
        Err(WINDOW.saturating_sub(now.duration_since(oldest)))
    }

    /// The most events seen in any one-second window.
    pub fn peak(&self) -> u32 {
        self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_in_any_second() {
        let start = Instant::now();
        let mut window = Window::default();
        for i in 0..3 {
            assert!(
                window
                    .admit(start + Duration::from_millis(i * 100), 3)
                    .is_ok()
            );
        }
        let wait = window
            .admit(start + Duration::from_millis(500), 3)
            .unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(window.admit(start + Duration::from_millis(1000), 3).is_ok());
        assert!(
            window
                .admit(start + Duration::from_millis(1050), 3)
                .is_err()
        );
        assert_eq!(window.peak(), 3);
    }

    #[test]
    fn peak_counts_the_busiest_second() {
        let start = Instant::now();
        let mut window = Window::default();
        for ms in [0, 10, 20, 1500, 1600] {
            window.record(start + Duration::from_millis(ms));
        }
        assert_eq!(window.peak(), 3);
    }
}
