//! Scale: many profiles per store (created with `nsauth profile set`, 4 at a time), then
//! `profile list` and `status --all --json` timed, and the SQLite bytes per profile.

use super::measure::{self, stats, Case, Stats};
use super::run::{Sandbox, Store};
use super::setup::Bench;
use super::{log, Opts, Results};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) struct ScaleRow {
    pub(super) store: &'static str,
    pub(super) profiles: usize,
    pub(super) what: String,
    pub(super) create_s: f64,
    pub(super) stats: Stats,
}

/// Runs the scale measurements on every store but `file`.
pub(super) fn scale(bench: &Bench, opts: &Opts, res: &mut Results) -> Result<(), String> {
    let scale_runs = if opts.quick { 3 } else { 5 };
    for store in &bench.stores {
        if store.label == "file" || super::setup::family(store.label) != store.label {
            continue;
        }
        let count = if store.label == "sqlite" {
            opts.profiles
        } else {
            opts.remote_profiles
        };
        let mut s = store.clone();
        s.uri = match store.label {
            "sqlite" => format!("sqlite://{}", bench.tmp.join("scale/nsauth.db").display()),
            "vault" => store.uri.replace("/bench-", "/scale-"),
            "postgres" => store.uri.replace("table=bench_", "table=scale_"),
            _ => store.uri.replace("nsauth-bench/", "nsauth-scale/"),
        };
        let create_s = create_profiles(bench, &s, count)?;
        let listed = bench.sb.ok(Some(&s), &["profile", "list"])?;
        let n = listed.lines().filter(|l| l.contains('p')).count();
        if n < count {
            res.notes.push(format!(
                "scale on {}: {count} profiles created but `profile list` shows {n}",
                store.label
            ));
        }
        log(format!("scale: timing list and status on {}", store.label));
        let cases = [
            scale_case(&bench.sb, &s, "profile list", &["profile", "list"]),
            scale_case(
                &bench.sb,
                &s,
                "status --all --json",
                &["status", "--all", "--json"],
            ),
        ];
        let samples = measure::interleaved(&cases, scale_runs, 1)?;
        for (c, v) in cases.iter().zip(samples) {
            res.scale.push(ScaleRow {
                store: store.label,
                profiles: count,
                what: c.name.clone(),
                create_s,
                stats: stats(&v),
            });
        }
        if store.label == "sqlite" {
            res.sqlite_bytes = Some((sqlite_bytes(&bench.tmp.join("scale")), count));
        }
    }
    Ok(())
}

/// Creates `count` profiles on `store`, 4 processes at a time; the seconds it took.
fn create_profiles(bench: &Bench, store: &Store, count: usize) -> Result<f64, String> {
    log(format!(
        "scale: creating {count} profiles on {} (nsauth profile set, 4 at a time)",
        store.label
    ));
    let t0 = Instant::now();
    let job = |i: usize| -> Result<(), String> {
        let name = format!("p{i:05}");
        let args = [
            "profile",
            "set",
            name.as_str(),
            "--account-id",
            &bench.account,
            "--client-id",
            &bench.client_id,
            "--redirect-uri",
            &bench.redirect,
            "--scope",
            "rest_webservices",
            "--base-url",
            &bench.emu_base,
        ];
        // Concurrent writers may meet a busy store; one retry after a pause.
        bench.sb.ok(Some(store), &args).or_else(|_| {
            std::thread::sleep(Duration::from_millis(200));
            bench.sb.ok(Some(store), &args)
        })?;
        Ok(())
    };
    measure::parallel(count, 4, &job)?;
    Ok(t0.elapsed().as_secs_f64())
}

fn scale_case(sb: &Arc<Sandbox>, store: &Store, name: &str, args: &'static [&'static str]) -> Case {
    let (sb, store) = (sb.clone(), store.clone());
    Case::new(name, move || {
        let mut c = sb.nsauth(Some(&store));
        c.args(args);
        c
    })
}

/// The bytes of the SQLite database and its WAL in `dir`.
fn sqlite_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("nsauth.db"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
