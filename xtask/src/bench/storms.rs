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
use super::log;
use super::measure::{self, stats, Stats};
use super::run::{json_int, Sandbox, Store};
use std::collections::BTreeSet;
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
    let next = std::sync::atomic::AtomicUsize::new(0);
    let make = || {
        let mut c = bin.sb.nsauth(Some(store));
        let i = next.fetch_add(1, Ordering::SeqCst).to_string();
        for (k, v) in store.env.iter().filter(|(_, v)| v.contains("{n}")) {
            c.env(k, v.replace("{n}", &i));
        }
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
