//! A waiter's pauses while another operation holds the refresh lease.
//!
//! Decisions, and why:
//! - Pauses grow from `poll_interval` by ×1.6 up to `max_poll_interval`, each scaled by a
//!   random factor in [0.5, 1.5), so that many waiters spread out instead of reading the store
//!   in lock step.
//! - A pause is never shorter than twice the time the last store read took (up to the cap):
//!   a store that answers slowly is busy, often with the waiters' own reads, and every read
//!   queued there delays the lease holder's writes that all waiters are waiting for. On a
//!   store that answers in a millisecond this changes nothing.
//! - The cap bounds how late a waiter sees the token after the holder stored it.

use crate::retry::{jitter, Backoff};
use std::time::Duration;

/// The pauses of one waiting call.
#[derive(Debug)]
pub(super) struct WaitSchedule {
    backoff: Backoff,
    cap: Duration,
    last_read: Duration,
}

impl WaitSchedule {
    pub(super) fn new(first: Duration, cap: Duration) -> Self {
        Self {
            backoff: Backoff::new(first, cap),
            cap,
            last_read: Duration::ZERO,
        }
    }

    /// Notes how long the last store read took.
    pub(super) fn read_took(&mut self, d: Duration) {
        self.last_read = d;
    }

    /// The next pause.
    pub(super) fn next_delay(&mut self) -> Duration {
        let grown = self.backoff.next_delay();
        let floor = jitter(self.last_read.saturating_mul(2)).min(self.cap);
        grown.max(floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_from_the_first_on_a_fast_store() {
        let mut w = WaitSchedule::new(Duration::from_millis(40), Duration::from_secs(1));
        w.read_took(Duration::from_millis(1));
        let first = w.next_delay();
        assert!(first >= Duration::from_millis(20) && first < Duration::from_millis(60));
    }

    #[test]
    fn a_slow_read_stretches_the_next_pause_up_to_the_cap() {
        let cap = Duration::from_secs(1);
        let mut w = WaitSchedule::new(Duration::from_millis(40), cap);
        w.read_took(Duration::from_millis(300));
        for _ in 0..20 {
            let d = w.next_delay();
            assert!(d >= Duration::from_millis(300) && d <= cap, "{d:?}");
        }
        w.read_took(Duration::from_secs(5));
        assert_eq!(w.next_delay(), cap);
    }
}
