//! Rows waiting in review, ordered by when each is next due for GetStatus.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A row waiting for its verdict.
#[derive(Debug)]
pub struct Waiting<T> {
    /// When to poll next.
    pub due: Instant,
    /// When to stop polling and report the row as pending.
    pub deadline: Instant,
    /// The row.
    pub item: T,
}

impl<T> PartialEq for Waiting<T> {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}

impl<T> Eq for Waiting<T> {}

impl<T> PartialOrd for Waiting<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Waiting<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.due.cmp(&other.due)
    }
}

/// The queue of rows in review, shared by the workers.
#[derive(Debug)]
pub struct ReviewQueue<T> {
    heap: Mutex<BinaryHeap<Reverse<Waiting<T>>>>,
}

impl<T> Default for ReviewQueue<T> {
    fn default() -> Self {
        ReviewQueue {
            heap: Mutex::new(BinaryHeap::new()),
        }
    }
}

impl<T> ReviewQueue<T> {
    fn heap(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Reverse<Waiting<T>>>> {
        self.heap.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a row.
    pub fn push(&self, waiting: Waiting<T>) {
        self.heap().push(Reverse(waiting));
    }

    /// Takes the row that is due first, if it is due at `now`.
    pub fn take_due(&self, now: Instant) -> Option<Waiting<T>> {
        let mut heap = self.heap();
        if heap.peek().is_some_and(|Reverse(w)| w.due <= now) {
            heap.pop().map(|Reverse(w)| w)
        } else {
            None
        }
    }

    /// How long until the next row is due.
    pub fn time_to_next(&self, now: Instant) -> Option<Duration> {
        self.heap()
            .peek()
            .map(|Reverse(w)| w.due.saturating_duration_since(now))
    }

    /// Whether no row is waiting.
    pub fn is_empty(&self) -> bool {
        self.heap().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_out_when_due_in_due_order() {
        let queue = ReviewQueue::default();
        let now = Instant::now();
        let at = |ms| now + Duration::from_millis(ms);
        queue.push(Waiting {
            due: at(30),
            deadline: at(99),
            item: "b",
        });
        queue.push(Waiting {
            due: at(10),
            deadline: at(99),
            item: "a",
        });
        assert!(queue.take_due(now).is_none());
        assert_eq!(queue.time_to_next(now), Some(Duration::from_millis(10)));
        assert_eq!(queue.take_due(at(40)).map(|w| w.item), Some("a"));
        assert_eq!(queue.take_due(at(40)).map(|w| w.item), Some("b"));
        assert!(queue.is_empty());
    }
}
