//! The storms' section of `docs/benchmarks.md` and its terminal summary.

use super::measure::stats;
use super::storms::{BaselineResult, StormReport, StormResult, STORM_P99_MS};
use std::fmt::Write as _;

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "n/a",
    }
}

fn fmt_refresh(r: Option<(f64, Option<f64>)>) -> String {
    match r {
        Some((at, Some(done))) => format!("{at:.0} / {done:.0}"),
        Some((at, None)) => format!("{at:.0} / —"),
        None => "—".into(),
    }
}

fn median(v: &[f64]) -> f64 {
    stats(v).median
}

/// The (store, size, binary) of every storm, in run order, once each.
fn keys(report: &StormReport) -> Vec<(&'static str, usize, &'static str)> {
    let mut keys: Vec<(&'static str, usize, &'static str)> = Vec::new();
    for s in &report.storms {
        if !keys.contains(&(s.store, s.n, s.bin)) {
            keys.push((s.store, s.n, s.bin));
        }
    }
    keys
}

/// The runs of one (store, size, binary).
fn runs<'a>(report: &'a StormReport, store: &str, n: usize, bin: &str) -> Vec<&'a StormResult> {
    report
        .storms
        .iter()
        .filter(|s| s.store == store && s.n == n && s.bin == bin)
        .collect()
}

/// The storms section: targets, a summary per store, size and binary with the baselines
/// and ratios, and every run.
pub fn render(report: &StormReport, header: &str) -> String {
    let mut d = String::new();
    let w = &mut d;
    let _ = writeln!(w, "### Refresh storms\n\n{header}\n");
    let keys = keys(report);
    targets(w, report, &keys);
    summary_table(w, report, &keys);
    every_run(w, report);
    d
}

fn targets(w: &mut String, report: &StormReport, keys: &[(&'static str, usize, &'static str)]) {
    let _ = writeln!(
        w,
        "Targets (from the issue: exactly 1 refresh and p99 ≤ {:.0} s on every store):\n\n\
         | Target | binary | Measured | Result |\n|---|---|---|---|",
        STORM_P99_MS / 1000.0
    );
    for &(store, n, bin) in keys {
        let runs = runs(report, store, n, bin);
        let good = runs
            .iter()
            .filter(|s| {
                s.refresh_calls == 1 && s.token_calls == 1 && s.ok == s.n && s.distinct_tokens == 1
            })
            .count();
        let calls: Vec<String> = runs.iter().map(|s| s.token_calls.to_string()).collect();
        let ok: usize = runs.iter().map(|s| s.ok).sum();
        let _ = writeln!(
            w,
            "| storm {n}× on {store}: exactly 1 token-endpoint call, all succeed | {bin} | \
             {good}/{} storms; calls per storm: {}; {ok}/{} processes ok | {} |",
            runs.len(),
            calls.join(", "),
            n * runs.len(),
            verdict(Some(good == runs.len()))
        );
        let worst = runs.iter().map(|s| s.lat.p99).fold(0.0, f64::max);
        let _ = writeln!(
            w,
            "| storm {n}× on {store}: p99 ≤ {:.0} s | {bin} | worst p99 {worst:.0} ms | {} |",
            STORM_P99_MS / 1000.0,
            verdict(Some(worst <= STORM_P99_MS))
        );
    }
}

/// The median of the baseline `what`'s medians and its worst p99, for a store and size.
fn baseline(report: &StormReport, store: &str, n: usize, what: &str) -> Option<(f64, f64)> {
    let b: Vec<&BaselineResult> = report
        .baselines
        .iter()
        .filter(|b| b.store == store && b.n == n && b.what.starts_with(what))
        .collect();
    (!b.is_empty()).then(|| {
        (
            median(&b.iter().map(|b| b.lat.median).collect::<Vec<_>>()),
            b.iter().map(|b| b.lat.p99).fold(0.0, f64::max),
        )
    })
}

fn summary_table(
    w: &mut String,
    report: &StormReport,
    keys: &[(&'static str, usize, &'static str)],
) {
    let base = |store: &str, n: usize, what: &str| baseline(report, store, n, what);
    let _ = writeln!(
        w,
        "\nSummary over the runs (ms): p50 is the median of the runs' medians, p99 and max the \
         worst run's. Baselines in the same go: *cached* = N concurrent `nsauth token` with a \
         valid token (spawn + store open + one read each); *raw* = N concurrent plain HTTP reads \
         of the same secret from threads (the server alone; none for local stores). \
         \"p99 / cached\" is the storm's p99 over the cached baseline's.\n\n\
         | Store | N | binary | refreshes per storm | p50 | p99 | max | cached p50 / p99 | raw p50 / p99 | p99 / cached |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for &(store, n, bin) in keys {
        let runs = runs(report, store, n, bin);
        let p50 = median(&runs.iter().map(|s| s.lat.median).collect::<Vec<_>>());
        let p99 = runs.iter().map(|s| s.lat.p99).fold(0.0, f64::max);
        let max = runs.iter().map(|s| s.lat.max).fold(0.0, f64::max);
        let calls: Vec<String> = runs.iter().map(|s| s.token_calls.to_string()).collect();
        let fmt =
            |b: Option<(f64, f64)>| b.map_or("—".into(), |(a, b)| format!("{a:.0} / {b:.0}"));
        let cached = base(store, n, "cached");
        let _ = writeln!(
            w,
            "| {store} | {n} | {bin} | {} | {p50:.0} | {p99:.0} | {max:.0} | {} | {} | {} |",
            calls.join(", "),
            fmt(cached),
            fmt(base(store, n, "raw")),
            cached.map_or("—".into(), |(_, c)| format!("{:.2}×", p99 / c))
        );
    }
}

/// Every storm run, every baseline run, and the first failures.
fn every_run(w: &mut String, report: &StormReport) {
    let _ = writeln!(
        w,
        "\nEvery run. \"Token calls\" are counted by a proxy in front of the emulator's token \
         endpoint; \"refresh_count Δ\" comes from `nsauth status --json`; outcomes come from each \
         process's `-v` log. Latency: spawn to exit of each process, ms. \"Refresh sent / \
         answered\": when the one refresh reached the proxy and when its (held) answer left it, \
         ms after the release: before it, the winner started, read the store and took the \
         lease; after it, the winner stored the token and every waiter found it.\n\n\
         | Store | N | binary | run | ok | token calls | refresh_count Δ | tokens | refreshed / waited / cached | refresh sent / answered | p50 | p99 | max |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for s in &report.storms {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {}/{} | {} | {} | {} | {} / {} / {} | {} | {:.0} | {:.0} | {:.0} |",
            s.store,
            s.n,
            s.bin,
            s.rep + 1,
            s.ok,
            s.n,
            s.token_calls,
            s.refresh_count_delta,
            s.distinct_tokens,
            s.outcomes.0,
            s.outcomes.1,
            s.outcomes.2,
            fmt_refresh(s.refresh_at),
            s.lat.median,
            s.lat.p99,
            s.lat.max
        );
    }
    let _ = writeln!(
        w,
        "\nBaselines, every run (ms):\n\n| Store | N | what | run | ok | p50 | p99 | max |\n|---|---|---|---|---|---|---|---|"
    );
    let mut seen: Vec<(&str, usize, &str)> = Vec::new();
    for b in &report.baselines {
        let run = seen
            .iter()
            .filter(|k| **k == (b.store, b.n, b.what))
            .count()
            + 1;
        seen.push((b.store, b.n, b.what));
        let _ = writeln!(
            w,
            "| {} | {} | {} | {run} | {}/{} | {:.0} | {:.0} | {:.0} |",
            b.store, b.n, b.what, b.ok, b.n, b.lat.median, b.lat.p99, b.lat.max
        );
    }
    for s in report.storms.iter().filter(|s| s.first_error.is_some()) {
        let _ = writeln!(
            w,
            "\nFirst failure ({} × {}, {} binary): `{}`",
            s.n,
            s.store,
            s.bin,
            s.first_error
                .as_deref()
                .unwrap_or_default()
                .replace('`', "'")
        );
    }
    for b in report.baselines.iter().filter(|b| b.first_error.is_some()) {
        let _ = writeln!(
            w,
            "\nFirst baseline failure ({} × {}, {}): `{}`",
            b.n,
            b.store,
            b.what,
            b.first_error
                .as_deref()
                .unwrap_or_default()
                .replace('`', "'")
        );
    }
}

/// One line per target, for the terminal.
pub fn summary(report: &StormReport) -> String {
    let mut s = String::new();
    for (store, n, bin) in keys(report) {
        let runs = runs(report, store, n, bin);
        let calls: Vec<String> = runs.iter().map(|r| r.token_calls.to_string()).collect();
        let p50 = median(&runs.iter().map(|r| r.lat.median).collect::<Vec<_>>());
        let p99 = runs.iter().map(|r| r.lat.p99).fold(0.0, f64::max);
        let max = runs.iter().map(|r| r.lat.max).fold(0.0, f64::max);
        let refreshes: Vec<String> = runs.iter().map(|r| fmt_refresh(r.refresh_at)).collect();
        let _ = writeln!(
            s,
            "  storm {n:>3}x {store:<7} {bin:<6}: calls {} p50 {p50:.0} p99 {p99:.0} max {max:.0} ms; refresh sent/answered {}",
            calls.join(","),
            refreshes.join(", ")
        );
    }
    for b in &report.baselines {
        let _ = writeln!(
            s,
            "  base  {:>3}x {:<7} {}: p50 {:.0} p99 {:.0} ms ({}/{} ok)",
            b.n, b.store, b.what, b.lat.median, b.lat.p99, b.ok, b.n
        );
    }
    s
}
