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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        for _ in 0..50 {
            assert!(backoff(0, Duration::from_secs(4)) < Duration::from_millis(400));
            assert!(backoff(20, Duration::from_secs(4)) <= Duration::from_secs(6));
            assert!(backoff(3, Duration::from_secs(4)) >= Duration::from_secs(1));
        }
    }
}
