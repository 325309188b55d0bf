//! Backoff with jitter.

use std::time::Duration;

/// `base` scaled by a random factor in [0.5, 1.5).
pub fn jitter(base: Duration) -> Duration {
    let f: f64 = 0.5 + rand::random::<f64>();
    base.mul_f64(f)
}

/// Exponential backoff for attempt `n` (0-based): 250 ms, 500 ms, 1 s, 2 s … capped at `cap`,
/// with jitter.
pub fn backoff(n: u32, cap: Duration) -> Duration {
    let base = Duration::from_millis(250).saturating_mul(1u32 << n.min(10));
    jitter(base.min(cap))
}

/// Growing, jittered pauses for a waiter: `first`, then ×1.6 each time up to `cap`, each
/// scaled by a random factor in [0.5, 1.5) and never above `cap`. Many waiters polling a store
/// this way spread out instead of hitting it in lock step every few milliseconds.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// Starts at `first` (at least 1 ms), grows to `cap`.
    pub fn new(first: Duration, cap: Duration) -> Self {
        let first = first.max(Duration::from_millis(1));
        Self {
            next: first.min(cap.max(first)),
            cap: cap.max(first),
        }
    }

    /// The next pause.
    pub fn next_delay(&mut self) -> Duration {
        let d = jitter(self.next).min(self.cap);
        self.next = self.next.mul_f64(1.6).min(self.cap);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiter_backoff_grows_to_its_cap() {
        let mut b = Backoff::new(Duration::from_millis(40), Duration::from_secs(1));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(20) && first < Duration::from_millis(60));
        let later: Vec<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(later.iter().all(|d| *d <= Duration::from_secs(1)));
        assert!(
            later[10..].iter().all(|d| *d >= Duration::from_millis(500)),
            "{later:?}"
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        for _ in 0..50 {
            assert!(backoff(0, Duration::from_secs(4)) < Duration::from_millis(400));
            assert!(backoff(20, Duration::from_secs(4)) <= Duration::from_secs(6));
            assert!(backoff(3, Duration::from_secs(4)) >= Duration::from_secs(1));
        }
    }
}
