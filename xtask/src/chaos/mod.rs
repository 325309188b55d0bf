//! `cargo xtask chaos [--seed N] [--minutes M | --ops N] [--concurrency K] [--no-build] [-v]`:
//! a randomized, reproducible fault campaign in the style of Jepsen against the real `nsauth`
//! (debug) binary.
//!
//! Many `nsauth` processes run `token`, `refresh --force`, `status`, `login` (start, the
//! user's browser, finish), `revoke`, `migrate` and `share export/import` on every store
//! (sqlite, file; vault and aws-sm when `cargo xtask services up` runs) and on confidential,
//! public and M2M profiles, while faults strike: SIGKILL, the SQLite write lock held, the
//! remote store paused or refusing, the token endpoint failing (5xx, 429), slow, timing out
//! or dropping its answer after processing, and clocks skewed by libfaketime. The seed decides
//! every operation and fault; `check` judges the history against the emulator's ledger after a
//! final recovery run. See docs/reliability.md.

mod campaign;
mod check;
mod exec;
mod history;
mod proxy;
mod rng;
mod world;

use campaign::{Budget, Config};
use history::OpKind;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};
pub(crate) use world::FAKETIME_LIB;

const USAGE: &str = "usage: cargo xtask chaos [--seed N] [--minutes M | --ops N] [--concurrency K] [--no-skew] [--no-build] [--keep] [-v]";

struct Opts {
    cfg: Config,
    build: bool,
    keep: bool,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let seed = u64::from_le_bytes(crate::bench::random_bytes::<8>());
    let mut o = Opts {
        cfg: Config {
            seed,
            budget: Budget::Time(Duration::from_secs(300)),
            concurrency: 6,
            skew: true,
            verbose: false,
        },
        build: true,
        keep: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<f64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number\n{USAGE}"))
        };
        match a.as_str() {
            "--seed" => o.cfg.seed = num("--seed")? as u64,
            "--minutes" => {
                o.cfg.budget =
                    Budget::Time(Duration::from_secs_f64(num("--minutes")?.max(0.05) * 60.0))
            }
            "--ops" => o.cfg.budget = Budget::Ops(num("--ops")?.max(1.0) as usize),
            "--concurrency" => o.cfg.concurrency = num("--concurrency")?.clamp(1.0, 32.0) as usize,
            "--no-build" => o.build = false,
            "--no-skew" => o.cfg.skew = false,
            "--keep" => o.keep = true,
            "-v" | "--verbose" => o.cfg.verbose = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    // A seed given as a huge decimal is parsed exactly.
    if let Some(i) = args.iter().position(|a| a == "--seed") {
        if let Some(s) = args.get(i + 1).and_then(|s| s.parse::<u64>().ok()) {
            o.cfg.seed = s;
        }
    }
    Ok(o)
}

/// `cargo xtask chaos ARGS`, using OpenBao and moto if `cargo xtask services up` runs.
pub fn run(args: &[String]) -> Result<(), String> {
    let env = crate::bench::running_services().unwrap_or_default();
    run_with(args, &env)
}

/// The campaign with the services environment `remote` (empty: local stores only).
pub fn run_with(args: &[String], remote: &[(String, String)]) -> Result<(), String> {
    let opts = parse(args)?;
    let cfg = &opts.cfg;
    eprintln!(
        "xtask chaos: seed {} ({}); replay with: cargo xtask chaos --seed {} {}",
        cfg.seed,
        match cfg.budget {
            Budget::Ops(n) => format!("{n} operations"),
            Budget::Time(d) => format!("{:.1} minutes", d.as_secs_f64() / 60.0),
        },
        cfg.seed,
        match cfg.budget {
            Budget::Ops(n) => format!("--ops {n}"),
            Budget::Time(d) => format!("--minutes {}", d.as_secs_f64() / 60.0),
        }
    );
    if opts.build {
        crate::run(crate::cargo().args(["build", "-p", "nsauth-cli", "--bins"]))?;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::bench::root().join("target"));
    let bin = target.join("debug/nsauth");
    if !bin.exists() {
        return Err(format!(
            "{} is missing: run without --no-build",
            bin.display()
        ));
    }
    let began = Instant::now();
    let w = world::World::new(bin, remote)?;
    for n in &w.notes {
        eprintln!("xtask chaos: {n}");
    }
    eprintln!(
        "xtask chaos: {} profiles on {}; sandbox {}",
        w.slots.len(),
        w.slots
            .iter()
            .map(|s| s.store.label)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", "),
        w.tmp.display()
    );
    if let Err(e) = w.prepare() {
        w.finish(true);
        return Err(format!(
            "setting the profiles up failed (no fault yet): {e}"
        ));
    }
    let t0 = history::now_ms();
    let (mut h, fault_counts) = campaign::run(&w, cfg);
    let recovery_from = h.ops.iter().map(|o| o.id).max().unwrap_or(0) + 1;
    campaign::recover(&w, &mut h, recovery_from);
    let ledger = w.emu.issued_tokens();
    let judged = check::Judged {
        slots: &w.slots,
        secrets: &w.secrets,
        logs: &w.tmp,
    };
    let verdict = check::check(&judged, &h, &ledger, recovery_from);

    let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for o in h.ops.iter().filter(|o| o.id < recovery_from) {
        let e = by_kind.entry(format!("{:?}", o.kind)).or_default();
        e.0 += 1;
        e.1 += usize::from(o.outcome.ok());
        let code = match &o.outcome {
            history::Outcome::Exit(c) => format!("exit {c}"),
            other => format!("{other:?}")
                .split('(')
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        *codes.entry(code).or_default() += 1;
    }
    let ops_n = h
        .ops
        .iter()
        .filter(|o| o.id < recovery_from && o.kind != OpKind::VerifyCopy)
        .count();
    let faults_n: usize = fault_counts.values().sum();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "xtask chaos: seed {}: {} operations ({} processes' worth of steps), {} faults, {} tokens issued, {:.0} s",
        cfg.seed,
        ops_n,
        h.ops.len(),
        faults_n,
        ledger.len(),
        began.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        s,
        "  operations (ok/all): {}",
        by_kind
            .iter()
            .map(|(k, (n, ok))| format!("{k} {ok}/{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "  outcomes: {}",
        codes
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "  faults: {}",
        fault_counts
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "  checked: {} printed tokens; {} early issuances excused; {} grants left open by the history; {} public grants lost to answer-eating faults",
        verdict.tokens_checked,
        verdict.excused_refreshes,
        verdict.unknown,
        verdict.excused_losses.len()
    );
    for (slot, why) in &verdict.excused_losses {
        let _ = writeln!(s, "    excused: {}: {why}", w.slots[*slot].label);
    }
    let _ = writeln!(s, "  violations: {}", verdict.violations.len());
    eprint!("{s}");

    let mut full = String::new();
    for (i, slot) in w.slots.iter().enumerate() {
        let _ = writeln!(full, "{}:", slot.label);
        for l in h.lines_for(i, slot.store.label, &slot.label, t0, (0, u64::MAX)) {
            let _ = writeln!(full, "{l}");
        }
    }
    let _ = std::fs::write(w.tmp.join("history.log"), &full);

    if verdict.violations.is_empty() {
        let keep = opts.keep;
        if keep {
            eprintln!("xtask chaos: sandbox kept in {}", w.tmp.display());
        }
        w.finish(keep);
        return Ok(());
    }
    for v in &verdict.violations {
        let label = v.slot.map_or("-".to_owned(), |i| w.slots[i].label.clone());
        eprintln!("VIOLATION [{label}] {}", v.what);
    }
    // The minimal history of each violation: what touched its profile in the 100 s before it (an access token lifetime and some),
    // or, for a lost grant, since the profile's last successful login.
    for v in &verdict.violations {
        let Some(i) = v.slot else { continue };
        let slot = &w.slots[i];
        let window = match v.at_ms {
            Some(at) => (at.saturating_sub(100_000), at + 1000),
            None => {
                let login = h
                    .ops
                    .iter()
                    .filter(|o| o.slot == i && o.kind == OpKind::Login && o.outcome.ok())
                    .map(|o| o.start_ms)
                    .max()
                    .unwrap_or(0);
                (login, u64::MAX)
            }
        };
        eprintln!(
            "\nseed {}: {} (client {}): {}",
            cfg.seed, slot.label, slot.client_id, v.what
        );
        for l in h.lines_for(i, slot.store.label, &slot.label, t0, window) {
            eprintln!("{l}");
        }
    }
    eprintln!(
        "\nxtask chaos: the sandbox (stores, journal, history.log) is kept in {}",
        w.tmp.display()
    );
    let n = verdict.violations.len();
    let seed = cfg.seed;
    w.finish(true);
    Err(format!("{n} violation(s); replay with --seed {seed}"))
}
