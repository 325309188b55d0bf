//! The hot path — a cached `nsauth token` per store, interleaved with its baselines (`true`,
//! `nsauth --version`, `bao kv get`, `aws secretsmanager`) — and peak memory.

use super::measure::{self, stats, Case};
use super::run::{self, Sandbox, Store};
use super::setup::Bench;
use super::{log, Opts, Results};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The hot path (interleaved with the baselines) and peak memory.
pub(super) fn hot_and_memory(bench: &Bench, opts: &Opts, res: &mut Results) -> Result<(), String> {
    let mut cases = floor_cases(&bench.sb, &bench.tmp, &bench.home)?;
    cases.extend(token_cases(&bench.sb, &bench.stores, ""));
    if let Some(before) = bench.before() {
        cases.extend(token_cases(before, &bench.stores, "before: "));
    }
    if let Some(bao) = bao_case(bench)? {
        cases.push(bao);
    }
    if let Some(aws) = aws_case(bench, res)? {
        cases.push(aws);
    }

    // 1. The hot path, interleaved.
    log(format!(
        "hot path: {} commands x {} runs, interleaved",
        cases.len(),
        opts.runs
    ));
    let before = bench.proxy.token_requests.load(Ordering::SeqCst);
    let samples = measure::interleaved(&cases, opts.runs, 2)?;
    res.hot_refreshes = bench.proxy.token_requests.load(Ordering::SeqCst) - before;
    for (c, s) in cases.iter().zip(&samples) {
        res.hot.push((c.name.clone(), stats(s)));
    }

    // 2. Peak memory.
    if measure::have_gnu_time() {
        peak_memory(&bench.sb, &bench.stores, opts, res)
    } else {
        res.rss_note =
            Some("GNU time (/usr/bin/time) is not installed: peak RSS not measured".into());
        Ok(())
    }
}

/// `true`, `nsauth --version` and `profile list` on an empty store: the floors.
fn floor_cases(sb: &Arc<Sandbox>, tmp: &Path, home: &Path) -> Result<Vec<Case>, String> {
    let mut cases: Vec<Case> = Vec::new();
    {
        let home = home.to_path_buf();
        cases.push(Case::new(
            "true (exec floor: spawn + exit of /bin/true)",
            move || {
                let mut c = Command::new("true");
                c.env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("HOME", &home);
                c
            },
        ));
    }
    {
        let sb = sb.clone();
        cases.push(Case::new("nsauth --version (process floor)", move || {
            let mut c = sb.nsauth(None);
            c.arg("--version");
            c
        }));
    }
    let sb = sb.clone();
    let empty = Store {
        label: "sqlite",
        uri: format!("sqlite://{}", tmp.join("empty/nsauth.db").display()),
        env: vec![],
    };
    sb.ok(Some(&empty), &["profile", "list"])?;
    cases.push(Case::new(
        "nsauth profile list (empty sqlite store)",
        move || {
            let mut c = sb.nsauth(Some(&empty));
            c.args(["profile", "list"]);
            c
        },
    ));
    Ok(cases)
}

/// A cached `nsauth token` per store; `prefix` names the binary (empty for the one under
/// test, so that the targets find its rows by their names).
fn token_cases(sb: &Arc<Sandbox>, stores: &[Store], prefix: &str) -> Vec<Case> {
    stores
        .iter()
        .map(|store| {
            let (sb, store) = (sb.clone(), store.clone());
            Case::new(
                format!("{prefix}nsauth token ({}, cached)", store.label),
                move || {
                    let mut c = sb.nsauth(Some(&store));
                    c.args(["--profile", "hot", "token"]);
                    c
                },
            )
        })
        .collect()
}

/// `bao kv get` of the vault store's `hot` secret, when OpenBao runs.
fn bao_case(bench: &Bench) -> Result<Option<Case>, String> {
    let (Some(_), Some(bao), Some(addr), Some(root_token)) = (
        bench.stores.iter().find(|s| s.label == "vault"),
        bench.get("NSAUTH_TEST_BAO_BIN"),
        bench.get("NSAUTH_TEST_VAULT_ADDR"),
        bench.get("NSAUTH_TEST_VAULT_ROOT_TOKEN"),
    ) else {
        return Ok(None);
    };
    let path = format!("nsauth/bench-{}/hot", bench.run_id);
    let home = bench.home.clone();
    let make = move || {
        let mut c = Command::new(&bao);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("VAULT_ADDR", &addr)
            .env("VAULT_TOKEN", &root_token)
            .args(["kv", "get", "-format=json", "-mount=secret", &path]);
        c
    };
    measure::time_once(make())
        .map_err(|e| format!("the bao baseline cannot read the vault store's secret ({e})"))?;
    Ok(Some(Case::new(
        "bao kv get -format=json (same secret)",
        make,
    )))
}

/// `aws secretsmanager get-secret-value` of the aws-sm store's `hot` secret, when moto runs
/// (a note and no baseline when awscli cannot be had).
fn aws_case(bench: &Bench, res: &mut Results) -> Result<Option<Case>, String> {
    let (Some(_), Some(ep)) = (
        bench.stores.iter().find(|s| s.label == "aws-sm"),
        bench.get("NSAUTH_TEST_AWS_ENDPOINT"),
    ) else {
        return Ok(None);
    };
    let aws = match run::ensure_awscli() {
        Ok(aws) => aws,
        Err(e) => {
            res.notes
                .push(format!("awscli unavailable ({e}); no aws-sm baseline"));
            return Ok(None);
        }
    };
    let id = format!("nsauth-bench/{}/hot", bench.run_id);
    let (env, home) = (run::aws_env(&bench.svc), bench.home.clone());
    let make = move || {
        let mut c = Command::new(&aws);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("AWS_PAGER", "")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args([
                "--endpoint-url",
                &ep,
                "--region",
                "us-east-1",
                "secretsmanager",
                "get-secret-value",
                "--secret-id",
                &id,
                "--output",
                "json",
            ]);
        c
    };
    measure::time_once(make())
        .map_err(|e| format!("the aws baseline cannot read the aws-sm store's secret ({e})"))?;
    Ok(Some(Case::new(
        "aws secretsmanager get-secret-value (same secret)",
        make,
    )))
}

/// Peak RSS and minor page faults of `--version` and of a cached `token` per store.
fn peak_memory(
    sb: &Sandbox,
    stores: &[Store],
    opts: &Opts,
    res: &mut Results,
) -> Result<(), String> {
    let rss_runs = opts.runs.min(10);
    log(format!("peak RSS: {rss_runs} runs per command"));
    let mut rss_cases: Vec<(String, Command)> = vec![("nsauth --version".into(), sb.nsauth(None))];
    rss_cases[0].1.arg("--version");
    for store in stores {
        let mut c = sb.nsauth(Some(store));
        c.args(["--profile", "hot", "token"]);
        rss_cases.push((format!("nsauth token ({})", store.label), c));
    }
    for (name, cmd) in &rss_cases {
        let (mut v, mut faults) = (Vec::new(), Vec::new());
        for _ in 0..rss_runs {
            let mut c = Command::new(cmd.get_program());
            c.args(cmd.get_args());
            for (k, val) in cmd.get_envs() {
                if let Some(val) = val {
                    c.env(k, val);
                }
            }
            let (kib, minflt) = measure::rusage(c)?;
            v.push(kib as f64 / 1024.0);
            faults.push(minflt as f64);
        }
        res.rss.push((name.clone(), stats(&v), stats(&faults)));
    }
    Ok(())
}
