//! The checker: judges the whole history against the emulator's ledger.
//!
//! 1. Every `token` that exited 0 printed exactly one access token, of the profile's own
//!    client, that no `revoke` finished before the process started had killed, and (clock
//!    not skewed) with at least `--min-ttl` left.
//! 2. After the recovery run, every grant the history says must exist refreshes and yields a
//!    live token; a revoked or moved one does not come back. A public client's grant may be
//!    lost only when a fault could have eaten a rotation's answer (kill, dropped answer,
//!    timeout): counted, not a violation.
//! 3. At most one token per expiry per client: two issuances closer than the refresh window
//!    need a reason (a forced refresh, a login, a copy, a skewed clock, or a fault nearby).
//! 4. No secret (refresh or access token, client secret, store key) in any stderr, in any
//!    stdout but `token`'s, or in the audit logs.
//! 5. No process hung.

use super::history::{Fault, History, Op, OpKind, Outcome, Target};
use super::world::{Flavor, Slot, ACCESS_TTL, MIN_TTL};
use nsauth_emulator::{Invalidated, IssuedBy, IssuedToken, TokenKind};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// A broken promise, on a slot when it concerns one.
#[derive(Debug, Clone)]
pub struct Violation {
    pub slot: Option<usize>,
    /// When it happened (the op's end, the second token's issue), for a short history.
    pub at_ms: Option<u64>,
    pub what: String,
}

/// The verdict.
#[derive(Debug, Default)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    /// Public grants lost to a fault that could eat a rotation's answer.
    pub excused_losses: Vec<(usize, String)>,
    /// Grants whose fate the history leaves open (an interrupted login or revoke).
    pub unknown: usize,
    /// Early issuances excused by a forced refresh, a login, a copy, skew or a fault.
    pub excused_refreshes: usize,
    pub tokens_checked: usize,
}

/// What the checker needs to know of the world.
#[derive(Debug)]
pub struct Judged<'a> {
    pub slots: &'a [Slot],
    /// The store key first, then client secrets and store credentials.
    pub secrets: &'a [String],
    /// Where the audit logs are (searched recursively).
    pub logs: &'a Path,
}

/// Slack for the emulator's whole-second `exp` and the time nsauth takes to note it.
const SLACK_MS: u64 = 3000;
/// After a fault, how long a second refresh stays excused (the 30 s lease, and some).
const AFTER_FAULT_MS: u64 = 45_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Grant,
    NoGrant(&'static str),
    Unknown,
}

fn is_printing(k: OpKind) -> bool {
    matches!(k, OpKind::Token | OpKind::VerifyCopy | OpKind::Recover)
}

fn changes_grant(o: &Op, flavor: Flavor) -> bool {
    match o.kind {
        OpKind::Login | OpKind::Revoke => true,
        OpKind::Migrate | OpKind::Share => flavor == Flavor::Public,
        _ => false,
    }
}

/// What the history says the slot's store must hold after the campaign.
fn expected(ops: &[&Op], flavor: Flavor) -> Expect {
    if flavor == Flavor::M2m {
        return Expect::Grant;
    }
    let mut changing: Vec<&&Op> = ops.iter().filter(|o| changes_grant(o, flavor)).collect();
    changing.sort_by_key(|o| o.end_ms);
    let Some(last) = changing.last() else {
        return Expect::Grant;
    };
    let overlapped = changing
        .iter()
        .any(|o| o.id != last.id && o.end_ms > last.start_ms);
    if overlapped {
        return Expect::Unknown;
    }
    match (&last.outcome, last.kind) {
        (Outcome::Exit(0), OpKind::Login) => Expect::Grant,
        (Outcome::Exit(0), OpKind::Revoke) => Expect::NoGrant("revoked"),
        (Outcome::Exit(0), _) => Expect::NoGrant("moved to a copy"),
        // Refused before anything was stored: the state before it holds.
        (Outcome::Exit(2), _) => expected(
            &ops.iter()
                .copied()
                .filter(|o| o.id != last.id)
                .collect::<Vec<_>>(),
            flavor,
        ),
        _ => Expect::Unknown,
    }
}

fn hits(f: &Fault, slot: usize, store: &str) -> bool {
    match &f.target {
        Target::All => true,
        Target::Store(s) => s == store,
        Target::Op { slot: s, .. } => *s == slot,
    }
}

/// Judges `h` (campaign and recovery) against the emulator's `ledger`.
pub fn check(w: &Judged<'_>, h: &History, ledger: &[IssuedToken], recovery_from: usize) -> Verdict {
    let mut v = Verdict::default();
    let access: HashMap<&str, &IssuedToken> = ledger
        .iter()
        .filter(|t| t.kind == TokenKind::Access)
        .map(|t| (t.token.as_str(), t))
        .collect();
    let mut bad_at = |slot: Option<usize>, at_ms: Option<u64>, what: String| {
        v.violations.push(Violation { slot, at_ms, what })
    };

    for o in &h.ops {
        if o.outcome == Outcome::Hung {
            bad_at(
                Some(o.slot),
                Some(o.end_ms),
                format!(
                    "op #{} {:?} did not finish within the deadline",
                    o.id, o.kind
                ),
            );
        }
    }

    // 1. Printed tokens.
    for o in h
        .ops
        .iter()
        .filter(|o| is_printing(o.kind) && o.outcome.ok())
    {
        let slot = &w.slots[o.slot];
        v.tokens_checked += 1;
        let printed = o.stdout.trim_end_matches('\n');
        if printed.lines().count() != 1 {
            bad_at(
                Some(o.slot),
                Some(o.end_ms),
                format!(
                    "op #{} {:?} printed {} lines, not one token",
                    o.id,
                    o.kind,
                    printed.lines().count()
                ),
            );
            continue;
        }
        let Some(t) = access.get(printed.trim()) else {
            bad_at(
                Some(o.slot),
                Some(o.end_ms),
                format!(
                    "op #{} {:?} printed a token the emulator never issued as an access token",
                    o.id, o.kind
                ),
            );
            continue;
        };
        if t.client_id != slot.client_id {
            bad_at(
                Some(o.slot),
                Some(o.end_ms),
                format!(
                    "op #{} {:?} printed a token of client {} (profile {})",
                    o.id, o.kind, t.client_id, slot.label
                ),
            );
        }
        if let Some((Invalidated::Revoked, Some(at))) = t.invalidated {
            let revoked_before = o.kind != OpKind::VerifyCopy
                && h.ops.iter().any(|r| {
                    r.slot == o.slot
                        && r.kind == OpKind::Revoke
                        && r.outcome.ok()
                        && r.end_ms >= at
                        && r.end_ms < o.start_ms
                });
            if revoked_before {
                bad_at(Some(o.slot), Some(o.end_ms), format!("op #{} {:?} printed a token revoked {} ms before it started, by a revoke that had finished", o.id, o.kind, o.start_ms.saturating_sub(at)));
            }
        }
        if o.skew == 0 && t.expires_at * 1000 + SLACK_MS < o.start_ms + MIN_TTL * 1000 {
            // A process whose clock was off may have written the expiry nsauth trusted.
            let skewed = h
                .ops
                .iter()
                .filter(|p| p.slot == o.slot && p.skew != 0 && p.start_ms <= o.start_ms)
                .min_by_key(|p| {
                    let fetched = p.start_ms <= t.issued_at_ms && t.issued_at_ms <= p.end_ms;
                    (!fetched, o.start_ms - p.start_ms)
                })
                .map_or(String::new(), |p| {
                    let fetched = p.start_ms <= t.issued_at_ms && t.issued_at_ms <= p.end_ms;
                    format!(
                        " [skew: op #{} ran with its clock {:+} s off{}]",
                        p.id,
                        p.skew,
                        if fetched {
                            " and fetched this token"
                        } else {
                            ""
                        }
                    )
                });
            bad_at(Some(o.slot), Some(o.end_ms), {
                let exp_ms = t.expires_at * 1000;
                let left = if exp_ms > o.start_ms {
                    format!("with {:.1} s left", (exp_ms - o.start_ms) as f64 / 1000.0)
                } else {
                    format!(
                        "that had expired {:.1} s before it started",
                        (o.start_ms - exp_ms) as f64 / 1000.0
                    )
                };
                format!(
                    "op #{} {:?} printed a token {left} (--min-ttl {MIN_TTL}){skewed}",
                    o.id, o.kind
                )
            });
        }
    }

    // 2. Grants after recovery.
    for (i, slot) in w.slots.iter().enumerate() {
        let ops: Vec<&Op> = h
            .ops
            .iter()
            .filter(|o| o.slot == i && o.id < recovery_from)
            .collect();
        let recovery: Vec<&Op> = h
            .ops
            .iter()
            .filter(|o| o.slot == i && o.id >= recovery_from)
            .collect();
        let Some(last) = recovery.iter().find(|o| o.kind == OpKind::Recover) else {
            continue;
        };
        let refresh_ok = recovery
            .iter()
            .any(|o| o.kind == OpKind::RefreshForce && o.outcome.ok());
        let live = last.outcome.ok()
            && access
                .get(last.stdout.trim())
                .is_some_and(|t| t.invalidated.is_none() && t.client_id == slot.client_id);
        match expected(&ops, slot.flavor) {
            Expect::Grant if live && refresh_ok => {}
            Expect::Grant => {
                let since_login = ops
                    .iter()
                    .filter(|o| o.kind == OpKind::Login && o.outcome.ok())
                    .map(|o| o.end_ms)
                    .max()
                    .unwrap_or(0);
                let eaten = h.faults.iter().find(|f| {
                    f.may_eat_answers
                        && f.end_ms >= since_login
                        && hits(f, i, slot.store.label)
                        && ops
                            .iter()
                            .any(|o| o.start_ms <= f.end_ms && o.end_ms >= f.start_ms)
                });
                let why = format!(
                    "the grant is lost: recovery refresh {}, token {:?}: {}",
                    if refresh_ok { "ok" } else { "failed" },
                    last.outcome,
                    last.stderr.lines().last().unwrap_or_default()
                );
                match eaten {
                    Some(f) if slot.flavor == Flavor::Public => v
                        .excused_losses
                        .push((i, format!("{why} (after {})", f.what))),
                    _ => bad_at(Some(i), None, why),
                }
            }
            Expect::NoGrant(how) if live => bad_at(
                Some(i),
                None,
                format!("the grant was {how}, yet the recovery run got a live token"),
            ),
            Expect::NoGrant(_) => {}
            Expect::Unknown => v.unknown += 1,
        }
    }

    // 3. One refresh per expiry per client.
    let window = (ACCESS_TTL - MIN_TTL) * 1000 - 2000;
    for (i, slot) in w.slots.iter().enumerate() {
        let mut issued: Vec<&IssuedToken> = ledger
            .iter()
            .filter(|t| t.kind == TokenKind::Access && t.client_id == slot.client_id)
            .collect();
        issued.sort_by_key(|t| t.issued_at_ms);
        let ops: Vec<&Op> = h.ops.iter().filter(|o| o.slot == i).collect();
        for pair in issued.windows(2) {
            let (prev, cur) = (pair[0], pair[1]);
            if cur.issued_by == IssuedBy::AuthorizationCode
                || cur.issued_at_ms - prev.issued_at_ms >= window
            {
                continue;
            }
            let at = cur.issued_at_ms;
            let by_op = ops.iter().any(|o| {
                let forcing = matches!(
                    o.kind,
                    OpKind::RefreshForce
                        | OpKind::Login
                        | OpKind::Migrate
                        | OpKind::Share
                        | OpKind::VerifyCopy
                );
                let until = if o.skew != 0 {
                    o.end_ms + (ACCESS_TTL + 130) * 1000
                } else {
                    o.end_ms
                };
                (forcing || o.skew != 0) && o.start_ms <= at && at <= until
            });
            let by_fault = h.faults.iter().any(|f| {
                (f.may_eat_answers || matches!(f.target, Target::Store(_)))
                    && hits(f, i, slot.store.label)
                    && f.start_ms <= at
                    && at <= f.end_ms + AFTER_FAULT_MS
            });
            if by_op || by_fault {
                v.excused_refreshes += 1;
            } else {
                bad_at(Some(i), Some(at), format!(
                    "two tokens {} ms apart for {} ({:?} then {:?}) with no forced refresh or fault to explain the second",
                    at - prev.issued_at_ms,
                    slot.label,
                    prev.issued_by,
                    cur.issued_by
                ));
            }
        }
    }

    // 4. Secrets.
    let mut fixed: Vec<&str> = w.secrets.iter().map(String::as_str).collect();
    fixed.retain(|s| s.len() >= 16);
    let mut pieces: HashSet<&str> = HashSet::new();
    for t in ledger {
        pieces.insert(t.token.as_str());
        if let Some(sig) = t.token.rsplit('.').next().filter(|s| s.len() >= 32) {
            pieces.insert(sig);
        }
    }
    let mut scan = |slot: Option<usize>, what: &str, text: &str| {
        if let Some(s) = fixed.iter().find(|s| text.contains(**s)) {
            let kind = if *s == w.secrets[0] {
                "the store key"
            } else {
                "a client secret or store credential"
            };
            bad_at(slot, None, format!("{what} contains {kind}"));
        }
        let leaked = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .flat_map(|w| std::iter::once(w).chain(w.split('.')))
            .any(|p| p.len() >= 32 && pieces.contains(p));
        if leaked {
            bad_at(
                slot,
                None,
                format!("{what} contains a token or part of one"),
            );
        }
    };
    for o in &h.ops {
        scan(
            Some(o.slot),
            &format!("stderr of op #{} {:?}", o.id, o.kind),
            &o.stderr,
        );
        if !is_printing(o.kind) {
            scan(
                Some(o.slot),
                &format!("stdout of op #{} {:?}", o.id, o.kind),
                &o.stdout,
            );
        }
    }
    for f in audit_logs(w.logs) {
        if let Ok(text) = std::fs::read_to_string(&f) {
            scan(None, &format!("audit log {}", f.display()), &text);
        }
    }
    v
}

/// Every `*.jsonl` and `*.log` under `dir` (the audit trails beside the stores and in HOME).
fn audit_logs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl" || x == "log") {
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
