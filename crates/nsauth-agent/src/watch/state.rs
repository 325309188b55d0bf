//! The per-profile state machine behind the deadline watch. Pure: no I/O and no clock of its
//! own, so every rule can be tested with a table of times.
//!
//! # Rules
//! - A deadline's **level** is 0 while more time than the largest threshold is left, `k`
//!   once less than the `k`-th largest threshold is left, and `n + 1` once it has passed.
//! - A level only rises (one `Crossed` per rise, naming the band reached; a jump over several
//!   bands fires once, for the lowest). It never falls because the clock went back or the
//!   deadline wobbled: that is what stops flapping around a threshold.
//! - It falls only when the deadline moved later by at least [`REARM`] (a login started a
//!   new refresh-token chain, a new certificate was installed) and the new level is lower:
//!   then `Recovered`, and, if the new deadline is itself inside a band, a `Crossed` for it.
//! - The first deadline seen (at start-up) inside a band is announced once.
//! - A refresh refused with "login needed" raises `ReapprovalNeeded` once; it is cleared,
//!   with one `Recovered`, when the record shows usable tokens other than those held when
//!   it was raised and no refresh error.

use time::{Duration, OffsetDateTime};

/// How much later a deadline must move to count as renewed. Smaller moves are the same
/// deadline seen again (a public client's fallback end creeping with each refresh).
pub const REARM: Duration = Duration::hours(1);

/// The level of a deadline `left` away, for `thresholds` sorted from largest to smallest.
pub fn level(thresholds: &[Duration], left: Duration) -> usize {
    if left <= Duration::ZERO {
        thresholds.len() + 1
    } else {
        thresholds.iter().filter(|t| left < **t).count()
    }
}

/// What changed for one deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The deadline entered a lower band (`level` as in [`level`]).
    Crossed {
        /// The band entered.
        level: usize,
        /// The deadline.
        end: OffsetDateTime,
    },
    /// The deadline moved later, out of the band that had been announced.
    Recovered {
        /// The new deadline.
        end: OffsetDateTime,
    },
}

/// One watched deadline.
#[derive(Clone, Copy, Debug, Default)]
pub struct Track {
    level: usize,
    end: Option<OffsetDateTime>,
}

impl Track {
    /// The band the deadline is in.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Feeds the current deadline (`None`: unknown now, which changes nothing).
    pub fn step(
        &mut self,
        end: Option<OffsetDateTime>,
        now: OffsetDateTime,
        thresholds: &[Duration],
    ) -> Vec<Change> {
        let Some(end) = end else {
            return Vec::new();
        };
        let lvl = level(thresholds, end - now);
        let Some(seen) = self.end else {
            self.end = Some(end);
            self.level = lvl;
            return crossed(lvl, end);
        };
        if lvl > self.level {
            self.level = lvl;
            self.end = Some(end);
            return crossed(lvl, end);
        }
        if lvl < self.level && end >= seen + REARM {
            self.level = lvl;
            self.end = Some(end);
            let mut out = vec![Change::Recovered { end }];
            out.extend(crossed(lvl, end));
            return out;
        }
        if lvl == self.level && end > seen {
            self.end = Some(end);
        }
        Vec::new()
    }
}

fn crossed(level: usize, end: OffsetDateTime) -> Vec<Change> {
    if level == 0 {
        Vec::new()
    } else {
        vec![Change::Crossed { level, end }]
    }
}

/// What changed about the need for a person to approve access again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    /// A refresh was refused with "login needed".
    Needed,
    /// Tokens work again after a [`Approval::Needed`].
    Recovered,
}

/// Whether a re-approval has been asked for, and with which access token in the store.
#[derive(Clone, Debug, Default)]
pub struct Reapproval {
    raised_with: Option<String>,
}

impl Reapproval {
    /// `true` while a re-approval is outstanding.
    pub fn raised(&self) -> bool {
        self.raised_with.is_some()
    }

    /// Feeds one check: whether the refresh ended in "login needed", whether it failed in
    /// any way, the fingerprint of the stored access token, and whether the stored tokens
    /// can be used now.
    pub fn step(
        &mut self,
        login_needed: bool,
        failed: bool,
        fingerprint: Option<String>,
        usable: bool,
    ) -> Option<Approval> {
        if login_needed {
            if self.raised_with.is_none() {
                self.raised_with = Some(fingerprint.unwrap_or_default());
                return Some(Approval::Needed);
            }
            return None;
        }
        let renewed = match (&self.raised_with, &fingerprint) {
            (Some(then), Some(now)) => then != now,
            _ => false,
        };
        if !failed && usable && renewed {
            self.raised_with = None;
            return Some(Approval::Recovered);
        }
        None
    }
}

/// Everything remembered about one profile.
#[derive(Clone, Debug, Default)]
pub struct ProfileState {
    /// The refresh-token chain end.
    pub refresh: Track,
    /// The certificate's end.
    pub certificate: Track,
    /// Outstanding re-approval.
    pub reapproval: Reapproval,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: i64) -> Duration {
        Duration::hours(n)
    }

    fn at(hours: f64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds_f64(hours * 3600.0)
    }

    const T: [Duration; 3] = [Duration::hours(72), Duration::hours(24), Duration::hours(4)];

    #[test]
    fn levels() {
        assert_eq!(level(&T, h(100)), 0);
        assert_eq!(level(&T, h(72)), 0);
        assert_eq!(level(&T, h(71)), 1);
        assert_eq!(level(&T, h(24) - Duration::SECOND), 2);
        assert_eq!(level(&T, h(3)), 3);
        assert_eq!(level(&T, Duration::SECOND), 3);
        assert_eq!(level(&T, Duration::ZERO), 4);
        assert_eq!(level(&T, h(-5)), 4);
        assert_eq!(level(&[], h(1)), 0);
        assert_eq!(level(&[], Duration::ZERO), 1);
    }

    #[test]
    fn each_band_once_then_ended_once() {
        let end = Some(at(100.0));
        let mut t = Track::default();
        let mut fired = Vec::new();
        // Hourly checks from 0 h to 110 h.
        for hour in 0..=110 {
            for c in t.step(end, at(f64::from(hour)), &T) {
                fired.push((hour, c));
            }
        }
        let levels: Vec<(i32, usize)> = fired
            .iter()
            .map(|(h, c)| match c {
                Change::Crossed { level, .. } => (*h, *level),
                Change::Recovered { .. } => panic!("recovered {c:?}"),
            })
            .collect();
        assert_eq!(levels, vec![(29, 1), (77, 2), (97, 3), (100, 4)]);
    }

    #[test]
    fn a_clock_wobbling_around_a_threshold_fires_once() {
        let end = Some(at(100.0));
        let mut t = Track::default();
        assert_eq!(t.step(end, at(30.0), &T).len(), 1); // under 72 h
        let mut n = 0;
        for i in 0..200 {
            // 24 h ± 30 s around the threshold, back and forth.
            let wobble = if i % 2 == 0 { -30.0 } else { 30.0 } / 3600.0;
            n += t.step(end, at(76.0 + wobble), &T).len();
        }
        assert_eq!(n, 1);
        assert_eq!(t.level(), 2);
    }

    #[test]
    fn a_deadline_wobbling_by_less_than_rearm_does_not_recover() {
        let mut t = Track::default();
        assert_eq!(t.step(Some(at(23.0)), at(0.0), &T).len(), 1);
        for i in 0..50 {
            let end = at(23.0 + if i % 2 == 0 { 0.0 } else { 0.9 });
            assert!(t.step(Some(end), at(0.0), &T).is_empty(), "{i}");
        }
    }

    #[test]
    fn a_renewed_deadline_recovers_once_and_a_short_new_one_is_announced() {
        let mut t = Track::default();
        assert_eq!(t.step(Some(at(10.0)), at(8.0), &T).len(), 1); // < 4h
        assert_eq!(t.step(Some(at(10.0)), at(11.0), &T).len(), 1); // ended
        let renewed = at(11.0 + 168.0);
        assert_eq!(
            t.step(Some(renewed), at(11.5), &T),
            vec![Change::Recovered { end: renewed }]
        );
        assert!(t.step(Some(renewed), at(12.0), &T).is_empty());
        // A login whose validity is shorter than the largest threshold.
        let short = at(12.0 + 48.0);
        let mut u = Track::default();
        u.step(Some(at(10.0)), at(11.0), &T);
        assert_eq!(
            u.step(Some(short), at(12.0), &T),
            vec![
                Change::Recovered { end: short },
                Change::Crossed {
                    level: 1,
                    end: short
                }
            ]
        );
    }

    #[test]
    fn an_unknown_deadline_changes_nothing() {
        let mut t = Track::default();
        t.step(Some(at(1.0)), at(2.0), &T);
        assert!(t.step(None, at(3.0), &T).is_empty());
        assert_eq!(t.level(), 4);
    }

    #[test]
    fn reapproval_once_and_recovered_once() {
        let mut r = Reapproval::default();
        let fp = |s: &str| Some(s.to_owned());
        assert_eq!(r.step(true, true, fp("a"), false), Some(Approval::Needed));
        assert_eq!(r.step(true, true, fp("a"), false), None);
        // A tick with nothing new: still raised.
        assert_eq!(r.step(false, false, fp("a"), true), None);
        // Another kind of failure: not a recovery.
        assert_eq!(r.step(false, true, fp("b"), true), None);
        assert_eq!(
            r.step(false, false, fp("b"), true),
            Some(Approval::Recovered)
        );
        assert_eq!(r.step(false, false, fp("c"), true), None);
        assert!(!r.raised());
    }
}
