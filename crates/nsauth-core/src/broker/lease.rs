//! The refresh lease: who holds it, whether a waiter may treat it as dead, and renewal.
//!
//! Decisions, and why:
//! - A lease is held by one *operation* (one `access_token` call), not by a broker or a
//!   process: two calls on one shared `Broker` must not both refresh.
//! - A waiter never compares the lease's `until` with its own wall clock: the holder may run
//!   on a host whose clock is hours off. It remembers when it first saw the lease as it is
//!   (holder and `until`) by its own monotonic clock, and treats the lease as dead once it
//!   has seen it unchanged for the lease time. The holder renews the lease (a new `until`)
//!   every third of the lease time while its refresh runs, which restarts every waiter's count.
//! - A holder that is known dead is waited for only a short grace (the longest waiter pause,
//!   1 s by default) instead of the lease time: an operation of this process that ended (its
//!   future was dropped), or a process of this machine (same boot and PID namespace) that no
//!   longer exists. A reused PID only makes a waiter wait longer. The grace lets callers that
//!   start together all see the lease and share the one takeover refresh.

use crate::store::Lease;
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Operations of this process that are running now.
fn live_ops() -> &'static Mutex<HashSet<String>> {
    static LIVE: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

/// This machine's boot and PID namespace, hashed; `None` where they cannot be read.
fn host_tag() -> Option<&'static str> {
    static TAG: OnceLock<Option<String>> = OnceLock::new();
    TAG.get_or_init(|| {
        use sha2::Digest;
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
        let mut h = sha2::Sha256::new();
        h.update(boot.trim().as_bytes());
        h.update([0]);
        h.update(ns.to_string_lossy().as_bytes());
        Some(hex::encode(&h.finalize()[..6]))
    })
    .as_deref()
}

/// One running operation's lease identity; dropping it marks the operation ended.
#[derive(Debug)]
pub(super) struct Op {
    pub(super) id: String,
}

impl Op {
    pub(super) fn begin() -> Self {
        let id = format!(
            "{}:{}:{}",
            host_tag().unwrap_or("-"),
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        live_ops()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone());
        Op { id }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        live_ops()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// `true` when `holder` is certainly gone: an ended operation of this process, or a process of
/// this machine that no longer exists.
pub(super) fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.splitn(3, ':');
    let (Some(tag), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if host_tag() != Some(tag) {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if pid == std::process::id() {
        return !live_ops()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(holder);
    }
    !std::path::Path::new("/proc").join(pid.to_string()).exists()
}

/// A waiter's view of the leases it has seen.
#[derive(Debug, Default)]
pub(super) struct LeaseWatch {
    seen: Option<(String, OffsetDateTime, Instant)>,
}

impl LeaseWatch {
    /// Whether `lease` still binds operation `me`, judged by this process's monotonic clock.
    pub(super) fn is_live(
        &mut self,
        lease: &Lease,
        me: &str,
        own_ttl: Duration,
        dead_grace: Duration,
    ) -> bool {
        if lease.holder == me {
            return false;
        }
        let ttl = if holder_is_dead(&lease.holder) {
            dead_grace.min(own_ttl)
        } else {
            own_ttl.max(Duration::from_millis(lease.ttl_ms.unwrap_or(0)))
        };
        match &self.seen {
            Some((holder, until, first)) if *holder == lease.holder && *until == lease.until => {
                first.elapsed() < ttl
            }
            _ => {
                self.seen = Some((lease.holder.clone(), lease.until, Instant::now()));
                true
            }
        }
    }
}

/// A lease for operation `me`, starting `now` by the broker's clock.
pub(super) fn lease_for(me: &str, now: OffsetDateTime, ttl: Duration) -> Lease {
    Lease {
        holder: me.to_owned(),
        until: now + ttl,
        ttl_ms: Some(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, until: OffsetDateTime) -> Lease {
        Lease {
            holder: holder.into(),
            until,
            ttl_ms: None,
        }
    }

    #[test]
    fn an_ended_operation_of_this_process_is_dead_a_running_one_is_not() {
        let op = Op::begin();
        let id = op.id.clone();
        assert!(!holder_is_dead(&id));
        drop(op);
        assert_eq!(holder_is_dead(&id), host_tag().is_some());
    }

    #[test]
    fn holders_of_other_hosts_or_unknown_form_are_never_judged_dead() {
        assert!(!holder_is_dead("0123456789ab:1:x"));
        assert!(!holder_is_dead("dead-process"));
        assert!(!holder_is_dead("12345:abc"));
    }

    #[test]
    fn a_process_of_this_host_that_is_gone_is_dead() {
        let Some(tag) = host_tag() else { return };
        // PIDs above the kernel's maximum (4194304) never exist.
        assert!(holder_is_dead(&format!("{tag}:4194399:x")));
        assert!(!holder_is_dead(&format!("{tag}:1:x")), "PID 1 exists");
    }

    /// The waiter's judgement ignores `until` (another host's clock) and counts its own time
    /// from when it first saw the lease as it is; a renewal (new `until`) starts over.
    #[test]
    fn a_lease_is_live_for_its_time_from_first_sight_whatever_its_until() {
        let ttl = Duration::from_millis(200);
        let long_ago = OffsetDateTime::now_utc() - time::Duration::hours(2);
        let mut w = LeaseWatch::default();
        let l = lease("other-host:1:a", long_ago);
        assert!(
            w.is_live(&l, "me", ttl, ttl),
            "an until in the past is no proof of death"
        );
        let started = Instant::now();
        while w.is_live(&l, "me", ttl, ttl) {
            assert!(started.elapsed() < Duration::from_secs(5), "never expired");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(started.elapsed() >= Duration::from_millis(150));
        let renewed = lease("other-host:1:a", long_ago + time::Duration::seconds(1));
        assert!(
            w.is_live(&renewed, "me", ttl, ttl),
            "a renewal starts the count again"
        );
        assert!(
            !w.is_live(&lease("me", long_ago), "me", ttl, ttl),
            "our own lease"
        );
    }
}
