//! The campaign loop: the seeded generator picks, step after step, an operation on a slot
//! (run in its own thread, at most `concurrency` at a time) or a fault; timed faults are
//! undone when their time is up. Then every fault is lifted and the recovery run follows.

use super::exec::{self, Ran, Registry};
use super::history::{now_ms, Fault, History, Op, OpKind, Target};
use super::proxy::Mode;
use super::rng::Rng;
use super::world::{Flavor, World, OP_DEADLINE};
use crate::bench::Store;
use nsauth_emulator::Fault as EmuFault;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When the campaign stops.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Ops(usize),
    Time(Duration),
}

/// Settings of one campaign.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub budget: Budget,
    pub concurrency: usize,
    /// Run some processes with a skewed clock (libfaketime).
    pub skew: bool,
    pub verbose: bool,
}

/// The operations' weights, in this order, for interactive and M2M profiles.
const KINDS: [OpKind; 7] = [
    OpKind::Token,
    OpKind::RefreshForce,
    OpKind::Status,
    OpKind::Login,
    OpKind::Revoke,
    OpKind::Migrate,
    OpKind::Share,
];
const WEIGHTS: [u64; 7] = [40, 12, 10, 8, 5, 4, 4];
const WEIGHTS_M2M: [u64; 7] = [50, 15, 10, 0, 0, 4, 0];
const SKEWS: [i64; 4] = [-120, -40, 40, 120];

/// One step of the campaign, as the seed decides it: an operation or a fault, and the pause
/// before the next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub is_fault: bool,
    pub slot: usize,
    pub kind: OpKind,
    /// Clock offset for the operation (0: the right time).
    pub skew: i64,
    /// Which fault (0..100) and its parameters: a pick and a duration in ms.
    pub fault_kind: u64,
    pub a: u64,
    pub b: u64,
    pub gap: u64,
}

/// The seeded sequence of steps. Each step draws the same number of values whatever
/// happens at run time, so that a seed replays the same choices.
#[derive(Debug)]
pub struct Plan(Rng);

impl Plan {
    pub fn new(seed: u64) -> Self {
        Self(Rng::new(seed))
    }

    /// The next step over slots of these flavours.
    pub fn next(&mut self, flavors: &[Flavor]) -> Step {
        let r = &mut self.0;
        let is_fault = r.chance(22);
        let slot = r.below(flavors.len() as u64) as usize;
        let weights = if flavors[slot] == Flavor::M2m {
            &WEIGHTS_M2M
        } else {
            &WEIGHTS
        };
        let kind = KINDS[r.weighted(weights)];
        let skewed = r.chance(8);
        let skew = SKEWS[r.below(4) as usize];
        Step {
            is_fault,
            slot,
            kind,
            skew: if skewed { skew } else { 0 },
            fault_kind: r.below(100),
            a: r.next_u64(),
            b: r.range(300, 12_000),
            gap: r.range(10, 350),
        }
    }
}

/// A fault still in force, and how to lift it.
enum Undo {
    Proxy(usize),
    EmuProxy,
    Lock(Child),
}

struct Active {
    until: Instant,
    undo: Undo,
}

/// Runs the campaign; returns the history and counts per fault kind.
pub fn run(w: &World, cfg: &Config) -> (History, BTreeMap<String, usize>) {
    let mut plan = Plan::new(cfg.seed);
    let flavors: Vec<Flavor> = w.slots.iter().map(|s| s.flavor).collect();
    let hist = Mutex::new(History::default());
    let reg = Registry::default();
    let running = AtomicUsize::new(0);
    let mut active: Vec<Active> = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let started = Instant::now();
    let mut next_id = 1usize;
    let log = |msg: String| {
        if cfg.verbose {
            eprintln!("xtask chaos: {msg}");
        }
    };
    std::thread::scope(|scope| {
        loop {
            let done = match cfg.budget {
                Budget::Ops(n) => next_id > n,
                Budget::Time(d) => started.elapsed() >= d,
            };
            if done {
                break;
            }
            lift_due(w, &mut active, false);
            let Step {
                is_fault,
                slot,
                kind,
                skew,
                fault_kind,
                a,
                b,
                gap,
            } = plan.next(&flavors);
            if is_fault {
                if let Some(f) = inject(w, &reg, &mut active, fault_kind, a, b) {
                    log(format!("fault {}", f.what));
                    *counts
                        .entry(f.what.split(' ').next().unwrap_or_default().to_owned())
                        .or_default() += 1;
                    hist.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .faults
                        .push(f);
                }
            } else {
                let skew = if w.faketime && cfg.skew { skew } else { 0 };
                while running.load(Ordering::SeqCst) >= cfg.concurrency {
                    lift_due(w, &mut active, false);
                    std::thread::sleep(Duration::from_millis(10));
                }
                let id = next_id;
                next_id += 1;
                log(format!(
                    "op #{id} {kind:?} on {} skew {skew}",
                    w.slots[slot].label
                ));
                running.fetch_add(1, Ordering::SeqCst);
                let (hist, reg, running) = (&hist, &reg, &running);
                scope.spawn(move || {
                    let ops = run_op(w, reg, id, slot, kind, skew);
                    hist.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .ops
                        .extend(ops);
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            }
            std::thread::sleep(Duration::from_millis(gap));
        }
        while running.load(Ordering::SeqCst) > 0 {
            lift_due(w, &mut active, false);
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    lift_due(w, &mut active, true);
    w.emu.clear_faults();
    // Close the open fault windows at the moment they were lifted.
    let mut h = hist.into_inner().unwrap_or_else(|e| e.into_inner());
    let end = now_ms();
    for f in &mut h.faults {
        f.end_ms = f.end_ms.min(end);
    }
    (h, counts)
}

fn lift_due(w: &World, active: &mut Vec<Active>, all: bool) {
    let now = Instant::now();
    let mut keep = Vec::new();
    for a in active.drain(..) {
        if !all && a.until > now {
            keep.push(a);
            continue;
        }
        match a.undo {
            Undo::Proxy(i) => w.store_proxies[i].1.set(Mode::Forward),
            Undo::EmuProxy => w.emu_proxy.set(Mode::Forward),
            Undo::Lock(mut child) => {
                if let Some(mut stdin) = child.stdin.take() {
                    let _ = stdin.write_all(b"COMMIT;\n.quit\n");
                }
                let _ = child.wait();
            }
        }
    }
    *active = keep;
}

/// Starts the fault `kind` (0..100) with parameters `a` (a pick) and `ms` (a duration).
fn inject(
    w: &World,
    reg: &Registry,
    active: &mut Vec<Active>,
    kind: u64,
    a: u64,
    ms: u64,
) -> Option<Fault> {
    let start = now_ms();
    let fault = |what: String, target: Target, dur: u64, eats: bool| Fault {
        what,
        target,
        start_ms: start,
        end_ms: start + dur,
        may_eat_answers: eats,
    };
    let until = Instant::now() + Duration::from_millis(ms);
    match kind {
        0..=29 => reg.kill(a).map(|(id, slot)| {
            fault(
                format!("kill (SIGKILL op #{id})"),
                Target::Op { id, slot },
                0,
                true,
            )
        }),
        30..=44 => {
            let db = w.tmp.join("sqlite/nsauth.db");
            let mut child = Command::new("sqlite3")
                .arg(&db)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let mut stdin = child.stdin.take()?;
            stdin.write_all(b".timeout 5000\nBEGIN EXCLUSIVE;\n").ok()?;
            child.stdin = Some(stdin);
            active.push(Active {
                until,
                undo: Undo::Lock(child),
            });
            Some(fault(
                format!("sqlite-lock (BEGIN EXCLUSIVE held {ms} ms)"),
                Target::Store("sqlite".into()),
                ms,
                false,
            ))
        }
        45..=59 => {
            if w.store_proxies.is_empty() {
                return None;
            }
            let i = (a % w.store_proxies.len() as u64) as usize;
            let (label, p) = &w.store_proxies[i];
            if p.mode() != Mode::Forward {
                return None;
            }
            let mode = if a.is_multiple_of(2) {
                Mode::Pause
            } else {
                Mode::Refuse
            };
            p.set(mode);
            active.push(Active {
                until,
                undo: Undo::Proxy(i),
            });
            Some(fault(
                format!("store-{mode:?} ({label} for {ms} ms)"),
                Target::Store(label.clone()),
                ms,
                true,
            ))
        }
        _ => {
            // The token endpoint: injected answers at the emulator, or the proxy before it.
            let (what, eats, window) = match a % 8 {
                0 => {
                    for _ in 0..=(ms % 3) {
                        w.emu.inject(EmuFault::Status {
                            status: 500,
                            retry_after: None,
                        });
                    }
                    (
                        format!("endpoint-500 (next {} requests)", ms % 3 + 1),
                        false,
                        20_000,
                    )
                }
                1 => {
                    w.emu.inject(EmuFault::Status {
                        status: 503,
                        retry_after: Some(1),
                    });
                    ("endpoint-503 (Retry-After 1)".to_owned(), false, 20_000)
                }
                2 => {
                    for _ in 0..=(ms % 2) {
                        w.emu.inject(EmuFault::Status {
                            status: 429,
                            retry_after: Some(1),
                        });
                    }
                    ("endpoint-429 (Retry-After 1)".to_owned(), false, 20_000)
                }
                3 => {
                    w.emu
                        .inject(EmuFault::Delay(Duration::from_millis(1500 + ms % 2500)));
                    (
                        "endpoint-slow (next request held)".to_owned(),
                        false,
                        20_000,
                    )
                }
                4 => {
                    // Longer than nsauth's 10 s request timeout: the client gives up, the
                    // emulator still answers (and rotates) afterwards.
                    w.emu.inject(EmuFault::Delay(Duration::from_secs(12)));
                    (
                        "endpoint-timeout (next request held 12 s)".to_owned(),
                        true,
                        40_000,
                    )
                }
                m => {
                    if w.emu_proxy.mode() != Mode::Forward {
                        return None;
                    }
                    let mode = [Mode::DropAnswer, Mode::Pause, Mode::Refuse][(m - 5) as usize];
                    w.emu_proxy.set(mode);
                    active.push(Active {
                        until,
                        undo: Undo::EmuProxy,
                    });
                    (format!("emulator-{mode:?} ({ms} ms)"), true, ms)
                }
            };
            Some(fault(what, Target::All, window, eats))
        }
    }
}

fn op(
    id: usize,
    slot: usize,
    kind: OpKind,
    skew: i64,
    start_ms: u64,
    ran: Ran,
    note: String,
) -> Op {
    Op {
        id,
        slot,
        kind,
        skew,
        start_ms,
        end_ms: now_ms(),
        outcome: ran.outcome,
        stdout: ran.stdout,
        stderr: ran.stderr,
        store_note: note,
    }
}

/// One operation; more than one record when it copies a profile (then a `token` on the copy).
pub fn run_op(
    w: &World,
    reg: &Registry,
    id: usize,
    slot: usize,
    kind: OpKind,
    skew: i64,
) -> Vec<Op> {
    let store = w.slots[slot].store.clone();
    let start = now_ms();
    let simple = |args: &[&str]| {
        let mut c = w.cmd(slot, &store, skew);
        c.args(args);
        exec::run(reg, id, slot, c, None, OP_DEADLINE)
    };
    let copy = Store {
        label: "copy",
        uri: format!(
            "sqlite://{}",
            w.tmp.join(format!("copies/op-{id}.db")).display()
        ),
        env: vec![],
    };
    let ran = match kind {
        OpKind::Token | OpKind::Recover => simple(&["token"]),
        OpKind::RefreshForce => simple(&["refresh", "--force"]),
        OpKind::Status => simple(&["status", "--json"]),
        OpKind::Revoke => simple(&["revoke"]),
        OpKind::Login => {
            let mut steps = w.login(reg, id, slot, skew);
            let last = steps.pop().expect("a login has a step");
            let stderr: String = steps
                .iter()
                .map(|s| s.stderr.as_str())
                .chain([last.stderr.as_str()])
                .collect();
            Ran { stderr, ..last }
        }
        OpKind::Migrate => simple(&["migrate", "--to", &copy.uri]),
        OpKind::Share => {
            let bundle = w.tmp.join(format!("copies/op-{id}.age"));
            let _ = std::fs::create_dir_all(w.tmp.join("copies"));
            let b = bundle.display().to_string();
            let export = simple(&[
                "share",
                "export",
                "--recipient",
                &w.recipient,
                "--with-tokens",
                "--out",
                &b,
            ]);
            if !export.outcome.ok() {
                export
            } else {
                let mut c = w.cmd(slot, &copy, skew);
                c.args([
                    "share",
                    "import",
                    &b,
                    "--identity",
                    &w.identity.display().to_string(),
                    // The emulator's endpoints are not NetSuite's: confirmed, as a user would.
                    "--yes",
                ]);
                let import = exec::run(reg, id, slot, c, None, OP_DEADLINE);
                Ran {
                    stderr: format!("{}{}", export.stderr, import.stderr),
                    ..import
                }
            }
        }
        OpKind::VerifyCopy => unreachable!("VerifyCopy follows a copy"),
    };
    let copied = matches!(kind, OpKind::Migrate | OpKind::Share) && ran.outcome.ok();
    let mut out = vec![op(id, slot, kind, skew, start, ran, String::new())];
    if copied {
        let start = now_ms();
        let mut c = w.cmd(slot, &copy, 0);
        c.arg("token");
        let ran = exec::run(reg, id, slot, c, None, OP_DEADLINE);
        out.push(op(
            id,
            slot,
            OpKind::VerifyCopy,
            0,
            start,
            ran,
            format!(" (copy op-{id}.db)"),
        ));
    }
    out
}

/// The recovery run: no faults; `token`, `refresh --force`, then the `token` the checker
/// judges, for every slot.
pub fn recover(w: &World, h: &mut History, first_id: usize) {
    let reg = Registry::default();
    let mut id = first_id;
    for slot in 0..w.slots.len() {
        for kind in [OpKind::Token, OpKind::RefreshForce, OpKind::Recover] {
            h.ops.extend(run_op(w, &reg, id, slot, kind, 0));
            id += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_plans_the_same_steps_and_m2m_gets_no_login() {
        let flavors = [Flavor::Confidential, Flavor::Public, Flavor::M2m];
        let (mut a, mut b) = (Plan::new(9), Plan::new(9));
        let xs: Vec<Step> = (0..500).map(|_| a.next(&flavors)).collect();
        let ys: Vec<Step> = (0..500).map(|_| b.next(&flavors)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|s| s.is_fault) && xs.iter().any(|s| s.skew != 0));
        for s in xs.iter().filter(|s| s.slot == 2) {
            assert!(
                !matches!(s.kind, OpKind::Login | OpKind::Revoke | OpKind::Share),
                "{s:?}"
            );
        }
    }
}
