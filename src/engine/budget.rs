//! A ceiling on the image bytes that the rows in flight hold at once.
//!
//! A row holds its photos from loading them until SubmitMaterials answers: the files as
//! read, then the encoded body, about two and a half times the photos' size at the peak.
//! The gate bounds rows, not bytes, and under a generous quota `auto` admits hundreds of
//! rows; a few hundred rows with three 200 KB photos each would hold hundreds of
//! megabytes. The budget keeps what they hold under `images.in_flight` whatever the quota,
//! the photos and the number of rows. A row larger than the whole budget goes alone rather
//! than never.

use std::sync::{Condvar, Mutex, MutexGuard};

/// The bytes that rows in flight may hold, shared by the workers.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    held: Mutex<usize>,
    freed: Condvar,
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Held<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            held: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits until `bytes` fit beside what other rows hold, or until nothing is held at
    /// all, and takes them.
    pub fn hold(&self, bytes: usize) -> Held<'_> {
        let mut held = self.lock();
        while *held > 0 && *held + bytes > self.limit {
            held = self.freed.wait(held).unwrap_or_else(|p| p.into_inner());
        }
        *held += bytes;
        // Each give-back wakes one waiter, not all of them: hundreds of rows may wait, and
        // waking them all for one row's room costs more than the row. If room is left,
        // the next waiter is woken in turn.
        if *held < self.limit {
            self.freed.notify_one();
        }
        Held {
            budget: self,
            bytes,
        }
    }

    /// The bytes held now.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        // The count is one integer, updated in one statement: never half-done.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn give_back(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        *self.lock() -= bytes;
        self.freed.notify_one();
    }
}

impl Held<'_> {
    /// Keeps only `bytes` of the share, giving the rest back: the row has let go of part
    /// of what it held (the photos as read, once they are encoded).
    pub fn shrink_to(&mut self, bytes: usize) {
        let freed = self.bytes.saturating_sub(bytes);
        self.bytes -= freed;
        self.budget.give_back(freed);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn shares_are_given_back_when_dropped_or_shrunk() {
        let budget = Budget::new(100);
        let mut a = budget.hold(60);
        let b = budget.hold(40);
        assert_eq!(budget.held(), 100);
        a.shrink_to(10);
        assert_eq!(budget.held(), 50);
        drop(b);
        drop(a);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_row_larger_than_the_budget_goes_alone() {
        let budget = Budget::new(100);
        let big = budget.hold(500);
        assert_eq!(budget.held(), 500);
        drop(big);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn what_does_not_fit_waits_until_enough_is_given_back() {
        let budget = Budget::new(100);
        let most = AtomicUsize::new(0);
        std::thread::scope(|threads| {
            for _ in 0..8 {
                threads.spawn(|| {
                    for _ in 0..20 {
                        let _held = budget.hold(30);
                        most.fetch_max(budget.held(), Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                    }
                });
            }
        });
        assert_eq!(budget.held(), 0);
        let most = most.into_inner();
        assert!(
            (30..=90).contains(&most),
            "at most three shares of 30 fit: {most}"
        );
    }
}
