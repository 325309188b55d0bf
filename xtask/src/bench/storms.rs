//! Refresh storms and their baselines, measured in the same go.
//!
//! A storm is N concurrent `nsauth token --min-ttl 300` processes on a profile whose token
//! needs refreshing, released together by a barrier. With `--before-bin`, every storm also
//! runs with an older nsauth (on its own profile), interleaved with this one's. Two baselines
//! separate the store's own capacity from nsauth's waiting:
//! - *cached*: N concurrent `nsauth token` on a profile with a valid token — spawn, store
//!   open and one store read per process, under the same concurrency;
//! - *raw read*: N concurrent reads of the same secret from threads of this process (one
//!   plain HTTP request each, no process, no SDK) — the server's capacity alone.

use super::http::{self, TokenProxy};
use super::measure::{self, stats, Stats};
use super::{json_int, log, Sandbox, Store};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::Instant;

/// The target: 128 callers → p99 ≤ 2 s on every store.
pub const STORM_P99_MS: f64 = 2000.0;
pub const STORM_MIN_TTL: &str = "300";

/// One nsauth binary under test.
pub struct Binary {
    /// `this` or `before`.
    pub label: &'static str,
    pub sb: Arc<Sandbox>,
}

impl Binary {
    /// The storm profile of this binary for size `n`, repetition `rep`.
    pub fn profile(&self, n: usize, rep: usize) -> String {
        match self.label {
            "this" => format!("storm{n}-{rep}"),
            other => format!("storm{n}-{rep}-{other}"),
        }
    }
}

/// A raw read of the store's copy of profile `hot`; `Ok(())` when the server answered 200.
pub type RawRead = Box<dyn Fn() -> Result<(), String> + Sync>;

pub struct StormResult {
    pub bin: &'static str,
    pub store: &'static str,
    pub n: usize,
    pub rep: usize,
    pub ok: usize,
    pub token_calls: u64,
    pub refresh_calls: u64,
    pub refresh_count_delta: i64,
    pub distinct_tokens: usize,
    pub outcomes: (usize, usize, usize),
    pub lat: Stats,
    /// When the refresh reached the proxy, and when its answer left it, ms after the release.
    pub refresh_at: Option<(f64, Option<f64>)>,
    pub first_error: Option<String>,
}

pub struct BaselineResult {
    pub store: &'static str,
    pub n: usize,
    pub what: &'static str,
    pub ok: usize,
    pub lat: Stats,
    pub first_error: Option<String>,
}

#[derive(Default)]
pub struct StormReport {
    pub storms: Vec<StormResult>,
    pub baselines: Vec<BaselineResult>,
}

/// `refresh_count` from `nsauth status --json`.
fn refresh_count(sb: &Sandbox, store: &Store, profile: &str) -> Result<i64, String> {
    let out = sb.ok(Some(store), &["--profile", profile, "status", "--json"])?;
    json_int(&out, "refresh_count")
        .ok_or_else(|| format!("status --json has no refresh_count: {out}"))
}

/// N concurrent raw reads from threads, released together; latency of each, ms.
fn raw_storm(n: usize, read: &RawRead) -> (usize, Vec<f64>, Option<String>) {
    let barrier = Barrier::new(n);
    let runs: Vec<(f64, Result<(), String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    let r = read();
                    (measure::ms(start.elapsed()), r)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (f64::NAN, Err("thread panicked".into())))
            })
            .collect()
    });
    let ok = runs.iter().filter(|(_, r)| r.is_ok()).count();
    let err = runs.iter().find_map(|(_, r)| r.clone().err());
    (ok, runs.into_iter().map(|(l, _)| l).collect(), err)
}

fn one_storm(
    bin: &Binary,
    store: &Store,
    n: usize,
    rep: usize,
    proxy: &TokenProxy,
) -> Result<StormResult, String> {
    let profile = bin.profile(n, rep);
    log(format!(
        "storm: {n} x nsauth token on {} ({profile}, {} binary)",
        store.label, bin.label
    ));
    let rc_before = refresh_count(&bin.sb, store, &profile)?;
    let (t0, r0) = (
        proxy.token_requests.load(Ordering::SeqCst),
        proxy.refresh_requests.load(Ordering::SeqCst),
    );
    let make = || {
        let mut c = bin.sb.nsauth(Some(store));
        c.args([
            "-v",
            "--profile",
            &profile,
            "token",
            "--min-ttl",
            STORM_MIN_TTL,
        ]);
        c
    };
    if let Ok(mut l) = proxy.last_refresh.lock() {
        *l = None;
    }
    let runs = measure::storm(n, &make);
    let release = runs.iter().map(|r| r.start).min();
    let refresh_at = match (release, proxy.last_refresh.lock().ok().and_then(|l| *l)) {
        (Some(t0), Some((at, answered))) => Some((
            measure::ms(at.saturating_duration_since(t0)),
            answered.map(|a| measure::ms(a.saturating_duration_since(t0))),
        )),
        _ => None,
    };
    let (t1, r1) = (
        proxy.token_requests.load(Ordering::SeqCst),
        proxy.refresh_requests.load(Ordering::SeqCst),
    );
    let rc_after = refresh_count(&bin.sb, store, &profile)?;
    let tokens: BTreeSet<&str> = runs
        .iter()
        .filter(|r| r.ok)
        .map(|r| r.stdout.trim())
        .collect();
    let count = |w: &str| runs.iter().filter(|r| r.stderr.contains(w)).count();
    let lat: Vec<f64> = runs.iter().map(|r| r.latency_ms).collect();
    Ok(StormResult {
        bin: bin.label,
        store: store.label,
        n,
        rep,
        ok: runs.iter().filter(|r| r.ok).count(),
        token_calls: t1 - t0,
        refresh_calls: r1 - r0,
        refresh_count_delta: rc_after - rc_before,
        distinct_tokens: tokens.len(),
        outcomes: (
            count("outcome=Refreshed"),
            count("outcome=Waited"),
            count("outcome=Cached"),
        ),
        lat: stats(&lat),
        refresh_at,
        first_error: runs
            .iter()
            .find(|r| !r.ok)
            .map(|r| r.stderr.trim().chars().take(300).collect()),
    })
}

/// Storms and baselines for every store and size; per repetition the order of the binaries
/// rotates, and the baselines run right before the storms.
pub fn run(
    bins: &[Binary],
    stores: &[(Store, Option<RawRead>)],
    sizes: &[usize],
    reps: usize,
    proxy: &TokenProxy,
) -> Result<StormReport, String> {
    let mut report = StormReport::default();
    let this = &bins[0];
    for (store, raw) in stores {
        for &n in sizes {
            for rep in 0..reps {
                log(format!(
                    "baseline: {n} x cached nsauth token on {}",
                    store.label
                ));
                let make = || {
                    let mut c = this.sb.nsauth(Some(store));
                    c.args(["--profile", "hot", "token"]);
                    c
                };
                let runs = measure::storm(n, &make);
                let lat: Vec<f64> = runs.iter().map(|r| r.latency_ms).collect();
                report.baselines.push(BaselineResult {
                    store: store.label,
                    n,
                    what: "cached nsauth token",
                    ok: runs.iter().filter(|r| r.ok).count(),
                    lat: stats(&lat),
                    first_error: runs
                        .iter()
                        .find(|r| !r.ok)
                        .map(|r| r.stderr.trim().chars().take(300).collect()),
                });
                if let Some(raw) = raw {
                    log(format!("baseline: {n} x raw read on {}", store.label));
                    let (ok, lat, first_error) = raw_storm(n, raw);
                    report.baselines.push(BaselineResult {
                        store: store.label,
                        n,
                        what: "raw read (threads, plain HTTP)",
                        ok,
                        lat: stats(&lat),
                        first_error,
                    });
                }
                for i in 0..bins.len() {
                    let bin = &bins[(i + rep) % bins.len()];
                    report.storms.push(one_storm(bin, store, n, rep, proxy)?);
                }
            }
        }
    }
    Ok(report)
}

/// A raw `GetSecretValue` against the Secrets Manager endpoint `ep` (moto: any signature).
pub fn aws_raw_read(ep: &str, secret: String, access_key: String) -> Result<RawRead, String> {
    let (host, _) = http::split_url(ep)?;
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0"
    );
    let body = format!("{{\"SecretId\":\"{secret}\"}}");
    Ok(Box::new(move || {
        let r = http::request(
            "POST",
            &host,
            "/",
            &[
                ("X-Amz-Target", "secretsmanager.GetSecretValue"),
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Authorization", &auth),
            ],
            body.as_bytes(),
        )?;
        check(r.status)
    }))
}

/// A raw KV v2 read against OpenBao at `addr`.
pub fn vault_raw_read(addr: &str, path: String, token: String) -> Result<RawRead, String> {
    let (host, _) = http::split_url(addr)?;
    Ok(Box::new(move || {
        let r = http::request("GET", &host, &path, &[("X-Vault-Token", &token)], b"")?;
        check(r.status)
    }))
}

fn check(status: u16) -> Result<(), String> {
    if status == 200 {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

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

/// The storms section: targets, a summary per store, size and binary with the baselines
/// and ratios, and every run.
pub fn render(report: &StormReport, header: &str) -> String {
    let mut d = String::new();
    let w = &mut d;
    let _ = writeln!(w, "### Refresh storms\n\n{header}\n");
    let mut keys: Vec<(&'static str, usize, &'static str)> = Vec::new();
    for s in &report.storms {
        if !keys.contains(&(s.store, s.n, s.bin)) {
            keys.push((s.store, s.n, s.bin));
        }
    }
    let base = |store: &str, n: usize, what: &str| -> Option<(f64, f64)> {
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
    };
    let _ = writeln!(
        w,
        "Targets (from the issue: exactly 1 refresh and p99 ≤ {:.0} s on every store):\n\n\
         | Target | binary | Measured | Result |\n|---|---|---|---|",
        STORM_P99_MS / 1000.0
    );
    for &(store, n, bin) in &keys {
        let runs: Vec<&StormResult> = report
            .storms
            .iter()
            .filter(|s| s.store == store && s.n == n && s.bin == bin)
            .collect();
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
    for &(store, n, bin) in &keys {
        let runs: Vec<&StormResult> = report
            .storms
            .iter()
            .filter(|s| s.store == store && s.n == n && s.bin == bin)
            .collect();
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
    d
}

/// One line per target, for the terminal.
pub fn summary(report: &StormReport) -> String {
    let mut s = String::new();
    let mut keys: Vec<(&'static str, usize, &'static str)> = Vec::new();
    for r in &report.storms {
        if !keys.contains(&(r.store, r.n, r.bin)) {
            keys.push((r.store, r.n, r.bin));
        }
    }
    for (store, n, bin) in keys {
        let runs: Vec<&StormResult> = report
            .storms
            .iter()
            .filter(|r| r.store == store && r.n == n && r.bin == bin)
            .collect();
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
