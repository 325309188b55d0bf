//! Background refresh ahead of expiry: one task sleeping until the earliest deadline of all
//! served profiles (a thousand idle profiles cost one timer), refreshing each at a jittered
//! 70–85 % of its token's lifetime through the same broker as every other caller. Failures
//! back off; a profile that needs a login is retried rarely.

use crate::token::{Cached, Tokens};
use nsauth_core::store::FailureKind;
use nsauth_core::Error;
use rand::Rng;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore};

/// Profiles refreshed at the same time, at most.
const PARALLEL: usize = 8;
/// The least time between two background attempts for one profile.
const MIN_GAP: Duration = Duration::from_secs(1);
/// A token should keep at least this much life after its background refresh was due.
const FLOOR: time::Duration = time::Duration::seconds(60);
/// How long to wait before retrying a profile that needs a login.
const LOGIN_RETRY: Duration = Duration::from_secs(15 * 60);
/// The longest backoff after other failures.
const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// When each profile is next due, earliest first.
#[derive(Debug, Default)]
pub struct Schedule {
    inner: Mutex<Inner>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    by_time: BTreeSet<(Instant, String)>,
    by_name: HashMap<String, Instant>,
}

impl Schedule {
    /// `profile` is next due at `at` (replacing its earlier time).
    pub fn set(&self, profile: &str, at: Instant) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = inner.by_name.insert(profile.to_owned(), at) {
            inner.by_time.remove(&(old, profile.to_owned()));
        }
        let earliest = inner.by_time.first().map(|(t, _)| *t);
        inner.by_time.insert((at, profile.to_owned()));
        drop(inner);
        if earliest.is_none_or(|e| at < e) {
            self.changed.notify_one();
        }
    }

    /// Keeps only the profiles `keep` accepts.
    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.by_name.retain(|k, _| keep(k));
        inner.by_time.retain(|(_, k)| keep(k));
    }

    /// When `profile` is due, if scheduled.
    pub fn due_at(&self, profile: &str) -> Option<Instant> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.by_name.get(profile).copied()
    }

    fn next(&self) -> Option<Instant> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.by_time.first().map(|(t, _)| *t)
    }

    fn pop_due(&self, now: Instant) -> Vec<String> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        while let Some((t, _)) = inner.by_time.first() {
            if *t > now {
                break;
            }
            if let Some((_, name)) = inner.by_time.pop_first() {
                inner.by_name.remove(&name);
                out.push(name);
            }
        }
        out
    }
}

/// When the background refresh of `c` is due: at a random 70–85 % of its lifetime, earlier
/// if that would leave less than a minute (but not before half of it), and not sooner than
/// a second from now.
pub fn due(c: &Cached, now: Instant, wall: OffsetDateTime) -> Instant {
    let life = (c.expires_at - c.obtained_at).max(time::Duration::ZERO);
    let share = rand::thread_rng().gen_range(0.70..0.85);
    let mut at = c.obtained_at + life * share;
    if c.expires_at - at < FLOOR {
        at = (c.expires_at - FLOOR).max(c.obtained_at + life / 2);
    }
    let wait = Duration::try_from(at - wall).unwrap_or(Duration::ZERO);
    now + wait.max(MIN_GAP)
}

/// The pause after `failures` failed attempts in a row ending with `e`.
fn backoff(e: &Error, failures: u32) -> Duration {
    // A person must act (log in, create the profile, fix the configuration): retry rarely.
    if matches!(e.kind(), FailureKind::Invalid | FailureKind::LoginNeeded) {
        return LOGIN_RETRY;
    }
    let base = Duration::from_secs(5).saturating_mul(1 << failures.min(8));
    let base = base.min(MAX_BACKOFF);
    base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

/// Runs until `stop` is notified, then waits for the refreshes under way (a refresh cut off
/// between NetSuite's answer and the store's save would leave a rotated token only in the
/// journal).
pub async fn run(tokens: Arc<Tokens>, schedule: Arc<Schedule>, stop: Arc<Notify>) {
    let permits = Arc::new(Semaphore::new(PARALLEL));
    let failures: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    loop {
        let next = schedule.next();
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.notified() => {
                let _ = permits.acquire_many(PARALLEL as u32).await;
                return;
            }
            _ = schedule.changed.notified() => continue,
            _ = sleep => {}
        }
        for name in schedule.pop_due(Instant::now()) {
            let Some(slot) = tokens.slot(&name) else {
                continue;
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (tokens, schedule, failures) = (tokens.clone(), schedule.clone(), failures.clone());
            tokio::spawn(async move {
                let res = tokens.renew(&slot).await;
                let mut f = failures.lock().unwrap_or_else(|p| p.into_inner());
                match &res {
                    Ok(_) => {
                        f.remove(&name);
                    }
                    Err(e) => {
                        let n = f.entry(name.clone()).or_default();
                        *n = n.saturating_add(1);
                        let pause = backoff(e, *n - 1);
                        tracing::warn!(profile = %name, error = %e, retry_in = ?pause, "background refresh failed");
                        schedule.set(&name, Instant::now() + pause);
                    }
                }
                drop(f);
                // The deadline watch has seen this attempt: `Tokens` tells it every broker
                // call's result.
                drop(res);
                drop(permit);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(life_secs: i64, age_secs: i64, wall: OffsetDateTime) -> Cached {
        let obtained_at = wall - time::Duration::seconds(age_secs);
        Cached {
            body: bytes::Bytes::new(),
            obtained_at,
            expires_at: obtained_at + time::Duration::seconds(life_secs),
        }
    }

    #[test]
    fn refresh_is_due_at_70_to_85_percent_with_a_floor() {
        let wall = OffsetDateTime::now_utc();
        let now = Instant::now();
        for _ in 0..200 {
            let d = due(&cached(3600, 0, wall), now, wall) - now;
            assert!((2520..=3060).contains(&d.as_secs()), "{d:?}");
            // A two-minute token: 70–85 % would leave under a minute, so at one minute left.
            let d = due(&cached(120, 0, wall), now, wall) - now;
            assert_eq!(d.as_secs(), 60, "{d:?}");
            // A six-second token: at half its life, never a hot loop.
            let d = due(&cached(6, 0, wall), now, wall) - now;
            assert_eq!(d, Duration::from_secs(3));
            // Already past due: soon, but not at once.
            let d = due(&cached(3600, 3500, wall), now, wall) - now;
            assert_eq!(d, MIN_GAP);
        }
    }

    #[test]
    fn the_schedule_gives_profiles_back_earliest_first_once() {
        let s = Schedule::default();
        let t = Instant::now();
        s.set("b", t + Duration::from_secs(2));
        s.set("a", t + Duration::from_secs(1));
        s.set("c", t + Duration::from_secs(9));
        s.set("b", t + Duration::from_secs(3)); // moved, not duplicated
        assert_eq!(s.next(), Some(t + Duration::from_secs(1)));
        assert_eq!(s.pop_due(t + Duration::from_secs(5)), vec!["a", "b"]);
        assert!(s.pop_due(t + Duration::from_secs(5)).is_empty());
        s.retain(&|k| k != "c");
        assert_eq!(s.next(), None);
    }

    #[test]
    fn failures_back_off_and_login_needed_waits_long() {
        let e = Error::Unreachable("down".into());
        assert!(backoff(&e, 0) < Duration::from_secs(7));
        assert!(backoff(&e, 3) > Duration::from_secs(30));
        assert!(backoff(&e, 30) <= MAX_BACKOFF.mul_f64(1.2));
        assert_eq!(backoff(&Error::LoginNeeded("x".into()), 0), LOGIN_RETRY);
    }
}
