//! What happened, in order: operations (one `nsauth` process each, or a login's two) and
//! faults, with wall-clock times in ms since the epoch (the emulator's ledger uses the same
//! clock, as it runs in this process).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    Token,
    RefreshForce,
    Status,
    Login,
    Revoke,
    Migrate,
    Share,
    /// `token` on the store a migrate or share op copied the profile to.
    VerifyCopy,
    /// The final recovery run: `token`, `refresh --force`, `token`, no faults.
    Recover,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exit(i32),
    /// SIGKILLed by the campaign.
    Killed,
    /// Did not finish within the op deadline (then killed).
    Hung,
    /// Could not even start, or an in-process step failed (e.g. the browser login).
    Failed(String),
}

impl Outcome {
    pub fn ok(&self) -> bool {
        *self == Outcome::Exit(0)
    }
}

/// One finished operation.
#[derive(Clone, Debug)]
pub struct Op {
    pub id: usize,
    pub slot: usize,
    pub kind: OpKind,
    /// Clock offset the process ran with (libfaketime), seconds.
    pub skew: i64,
    pub start_ms: u64,
    pub end_ms: u64,
    pub outcome: Outcome,
    /// stdout of the step that prints a token (token ops), else of the last step.
    pub stdout: String,
    /// stderr of every step.
    pub stderr: String,
    /// The store the op ran against when it is not the slot's (copies), for the report.
    pub store_note: String,
}

/// What a fault hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every profile (the token endpoint, the emulator).
    All,
    /// The store with this label.
    Store(String),
    /// One operation (SIGKILL).
    Op { id: usize, slot: usize },
}

/// One fault, from its start to its end (instant faults: start = end).
#[derive(Clone, Debug)]
pub struct Fault {
    pub what: String,
    pub target: Target,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The fault can make the server process a request whose answer never arrives.
    pub may_eat_answers: bool,
}

/// The whole run.
#[derive(Debug, Default)]
pub struct History {
    pub ops: Vec<Op>,
    pub faults: Vec<Fault>,
}

impl History {
    /// The events touching `slot` (on `store`) between `from` and `to` (ms since the epoch), in
    /// time order, one line each, times relative to `t0`.
    pub fn lines_for(
        &self,
        slot: usize,
        store: &str,
        slot_name: &str,
        t0: u64,
        (from, to): (u64, u64),
    ) -> Vec<String> {
        let mut ev: Vec<(u64, String)> = Vec::new();
        for o in self.ops.iter().filter(|o| o.slot == slot) {
            let skew = if o.skew != 0 {
                format!(" skew {:+}s", o.skew)
            } else {
                String::new()
            };
            ev.push((
                o.start_ms,
                format!(
                    "op #{} {:?} on {slot_name}{skew}{} starts",
                    o.id, o.kind, o.store_note
                ),
            ));
            let mut end = format!("op #{} {:?} ends: {:?}", o.id, o.kind, o.outcome);
            if !o.outcome.ok() {
                let first = o.stderr.lines().last().unwrap_or_default();
                let _ = write!(end, " — {}", first.chars().take(160).collect::<String>());
            }
            ev.push((o.end_ms, end));
        }
        for f in &self.faults {
            let hits = match &f.target {
                Target::All => true,
                Target::Store(s) => s == store,
                Target::Op { slot: s, .. } => *s == slot,
            };
            if hits {
                ev.push((f.start_ms, format!("fault {} begins", f.what)));
                if f.end_ms > f.start_ms {
                    ev.push((f.end_ms, format!("fault {} ends", f.what)));
                }
            }
        }
        ev.sort_by_key(|(t, _)| *t);
        ev.retain(|(t, _)| from <= *t && *t <= to);
        ev.into_iter()
            .map(|(t, l)| format!("  +{:>8.3}s {l}", t.saturating_sub(t0) as f64 / 1000.0))
            .collect()
    }
}
