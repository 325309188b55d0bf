//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs the cargo-fuzz targets of `fuzz/`.
//!
//! Installs cargo-fuzz when it is missing, then runs each target (default: all) for N
//! seconds (default 60) starting from the committed seeds in `fuzz/seeds/<target>` and the
//! growing corpus in `fuzz/corpus/<target>`. cargo-fuzz needs nightly flags; with only a
//! stable toolchain they are unlocked with `RUSTC_BOOTSTRAP=1`.
//!
//! Prints, per target, how many inputs were executed and whether it crashed; any crash
//! makes the command fail and names the input saved under `fuzz/artifacts/<target>/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Every target in `fuzz/fuzz_targets/`.
pub const TARGETS: &[&str] = &[
    "callback_url",
    "token_response",
    "jwt_exp",
    "record_decode",
    "account_and_names",
];

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [TARGET...]\n  \
    runs each fuzz target (default: all) for N seconds (default 60; the release check is \
    --seconds 600)\n  targets: callback_url token_response jwt_exp record_decode account_and_names";

struct Outcome {
    target: String,
    runs: Option<u64>,
    seconds: u64,
    crash: Option<String>,
    failed: Option<String>,
}

/// Entry point: `args` are the arguments after `fuzz`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut seconds: u64 = 60;
    let mut targets: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--seconds" || a == "-s" {
            let v = it.next().ok_or(USAGE)?;
            seconds = parse_seconds(v)?;
        } else if let Some(v) = a.strip_prefix("--seconds=") {
            seconds = parse_seconds(v)?;
        } else if a == "--help" || a == "-h" {
            eprintln!("{USAGE}");
            return Ok(());
        } else if TARGETS.contains(&a.as_str()) {
            if !targets.contains(a) {
                targets.push(a.clone());
            }
        } else {
            return Err(format!("unknown fuzz target or option {a:?}\n{USAGE}"));
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_string()).collect();
    }

    ensure_cargo_fuzz()?;
    let dir = fuzz_dir();
    let outcomes: Vec<Outcome> = targets
        .iter()
        .map(|t| run_target(&dir, t, seconds))
        .collect();

    eprintln!("\nxtask fuzz: summary ({seconds} s per target)");
    let mut bad = Vec::new();
    for o in &outcomes {
        let runs = o
            .runs
            .map_or_else(|| "? runs".to_string(), |r| format!("{r} runs"));
        let result = match (&o.crash, &o.failed) {
            (Some(path), _) => {
                bad.push(format!("{}: crash, input saved at {path}", o.target));
                format!("CRASH  input: {path}")
            }
            (None, Some(why)) => {
                bad.push(format!("{}: {why}", o.target));
                format!("FAILED {why}")
            }
            (None, None) => "ok, no crash".to_string(),
        };
        eprintln!(
            "  {:<18} {:>14} {:>5} s wall (incl. build)  {result}",
            o.target, runs, o.seconds
        );
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzzing found problems:\n  {}\nreproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET ARTIFACT",
            bad.join("\n  ")
        ))
    }
}

fn parse_seconds(v: &str) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "--seconds needs a positive whole number, not {v:?}"
        )),
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn fuzz_dir() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().expect("workspace root").join("fuzz")
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let have = cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Ok(());
    }
    crate::run(cargo().args(["install", "cargo-fuzz", "--locked"]))
}

fn run_target(dir: &Path, target: &str, seconds: u64) -> Outcome {
    let mut outcome = Outcome {
        target: target.to_string(),
        runs: None,
        seconds: 0,
        crash: None,
        failed: None,
    };
    let corpus = dir.join("corpus").join(target);
    let seeds = dir.join("seeds").join(target);
    if let Err(e) = std::fs::create_dir_all(&corpus) {
        outcome.failed = Some(format!("cannot create {}: {e}", corpus.display()));
        return outcome;
    }
    let mut cmd = cargo();
    cmd.current_dir(dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", target])
        // The first corpus directory receives new inputs; the seeds are only read.
        .arg(&corpus);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    cmd.arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1");
    let dict = dir.join("dicts").join("json.dict");
    if matches!(target, "token_response" | "record_decode") && dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    if target == "callback_url" {
        // Past MAX_CALLBACK_LEN (16 KiB), so the size limit itself is exercised.
        cmd.arg("-max_len=20000");
    }
    eprintln!("\nxtask fuzz: {target} for {seconds} s: {cmd:?}");
    let started = Instant::now();
    let mut child = match cmd.stdout(Stdio::inherit()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            outcome.failed = Some(format!("cannot run cargo fuzz: {e}"));
            return outcome;
        }
    };
    let mut last_pulse: Option<u64> = None;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line);
            eprintln!("{line}");
            if let Some(n) = line
                .strip_prefix("stat::number_of_executed_units:")
                .and_then(|v| v.trim().parse().ok())
            {
                outcome.runs = Some(n);
            } else if let Some(n) = done_runs(&line) {
                outcome.runs.get_or_insert(n);
            } else if let Some(n) = pulse_runs(&line) {
                last_pulse = Some(n);
            }
            if let Some(path) = artifact(&line) {
                let p = Path::new(&path);
                let full = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    dir.join(p)
                };
                outcome.crash = Some(full.display().to_string());
            }
        }
    }
    let status = child.wait();
    outcome.seconds = started.elapsed().as_secs();
    if outcome.runs.is_none() {
        outcome.runs = last_pulse;
    }
    match status {
        Ok(s) if s.success() => {}
        Ok(s) if outcome.crash.is_none() => {
            outcome.failed = Some(format!("cargo fuzz run exited with {s} (build failure?)"));
        }
        Ok(_) => {}
        Err(e) => outcome.failed = Some(format!("cannot wait for cargo fuzz: {e}")),
    }
    outcome
}

/// `Done 123456 runs in 60 second(s)`.
fn done_runs(line: &str) -> Option<u64> {
    line.strip_prefix("Done ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `#123456\tpulse  cov: …` and the other progress lines.
fn pulse_runs(line: &str) -> Option<u64> {
    line.strip_prefix('#')?
        .split(|c: char| c.is_whitespace())
        .next()?
        .parse()
        .ok()
}

/// `Test unit written to fuzz/artifacts/t/crash-…` (also leak-, timeout-, oom-).
fn artifact(line: &str) -> Option<String> {
    let rest = line.split_once("Test unit written to ")?.1;
    Some(rest.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libfuzzer_lines() {
        assert_eq!(done_runs("Done 4242 runs in 61 second(s)"), Some(4242));
        assert_eq!(
            pulse_runs("#65536\tpulse  cov: 1234 ft: 3456 corp: 12/1Kb"),
            Some(65536)
        );
        assert_eq!(pulse_runs("INFO: seed"), None);
        assert_eq!(
            artifact("artifact_prefix='/x/'; Test unit written to /x/crash-abc"),
            Some("/x/crash-abc".into())
        );
    }
}
