//! `cargo xtask ci | test | lint | ...`: the project's automation (its only dependencies are
//! the emulator and Tokio, for `chaos`).
//!
//! `cargo xtask ci` runs exactly what CI runs: format check, clippy with `-D warnings`,
//! `cargo deny check`, `cargo package` of every crate meant for publishing, then
//! `cargo xtask test`.

mod bench;
mod chaos;
mod fuzz;
mod keyring;
mod man;
mod services;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => lint()
            .and_then(|()| deny())
            .and_then(|()| package())
            .and_then(|()| test(&args[1..])),
        Some("lint") => lint(),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("chaos") => chaos::run(&args[1..]),
        Some("deny") => deny(),
        Some("man") => man::run(&args[1..]),
        Some("package") => package(),
        Some("test") => test(&args[1..]),
        Some("keyring-test") => keyring::run(),
        Some("services") => match args.get(1).map(String::as_str) {
            Some("up") => services::up().map(|_| ()),
            Some("down") => {
                services::down();
                Ok(())
            }
            _ => Err("usage: cargo xtask services up|down".into()),
        },
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|lint|deny|package|test|services|bench|fuzz|chaos|man> [args]"
            );
            eprintln!("  ci    format check, clippy -D warnings, cargo deny, cargo package, then all tests (what .ci/run does)");
            eprintln!("  man [OUT_DIR]  write the man pages (default target/man)");
            eprintln!("  package  cargo package (and build) every crate meant for publishing");
            eprintln!("  test  build the nsauth binary, start OpenBao and moto, run every test of the workspace");
            eprintln!("  services up|down  start/stop OpenBao, moto and PostgreSQL on loopback (env in .services/env)");
            eprintln!("  keyring-test  the OS-keychain key source against gnome-keyring in a private D-Bus session");
            eprintln!(
                "  bench [--quick] [--runs N]  whole-process benchmarks; writes docs/benchmarks.md"
            );
            eprintln!(
                "  fuzz [--seconds N] [TARGET...]  run the cargo-fuzz targets (RUSTC_BOOTSTRAP=1)"
            );
            eprintln!("  chaos [--seed N] [--minutes M | --ops N]  randomized fault campaign (docs/reliability.md)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub(crate) fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn lint() -> Result<(), String> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

fn deny() -> Result<(), String> {
    let have = Command::new("cargo-deny")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        run(cargo().args(["install", "--locked", "cargo-deny"]))?;
    }
    run(cargo().args([
        "deny",
        "--all-features",
        "check",
        "bans",
        "licenses",
        "sources",
    ]))?;
    // The advisory database lives on GitHub; CI machines that only reach package registries
    // cannot fetch it. Run the check where it can be fetched and say so where it cannot.
    let out = cargo()
        .args(["deny", "--all-features", "check", "advisories"])
        .output()
        .map_err(|e| format!("cannot run cargo deny: {e}"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(())
    } else if text.contains("failed to fetch")
        || text.contains("resolve")
        || text.contains("advisory database") && text.contains("open")
    {
        eprintln!("xtask: WARNING: the RustSec advisory database cannot be fetched here; advisories not checked");
        Ok(())
    } else {
        eprintln!("{text}");
        Err("cargo deny check advisories failed".into())
    }
}

/// The workspace members meant for publishing: those without `publish = false`.
fn publishable() -> Result<Vec<String>, String> {
    let out = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect();
    Ok(meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(&id)))
        // `publish = false` is `"publish": []`; no `publish` key is `null`.
        .filter(|p| p["publish"].as_array().is_none_or(|r| !r.is_empty()))
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect())
}

/// `cargo package` of every publishable crate in one go: path dependencies resolve to the
/// crates packaged beside them (cargo's local overlay), and each package is built from its
/// `.crate` as crates.io would build it (with its own feature set, so about one more build of
/// the dependencies: ~11 CPU-minutes cold here, a few warm).
fn package() -> Result<(), String> {
    let crates = publishable()?;
    if crates.is_empty() {
        return Err("cargo metadata lists no publishable crate".into());
    }
    forget_unpacked(&crates);
    // Its own target directory: cargo takes a registry crate of a given name and version for
    // immutable, so the overlay's builds of our crates are forgotten before each run (their
    // fingerprints); builds of the workspace itself are left alone.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| bench::root().join("target"))
        .join("package-verify");
    forget_builds(&target, &crates);
    let mut cmd = cargo();
    cmd.args(["package", "--locked", "--allow-dirty", "--target-dir"])
        .arg(&target);
    for c in &crates {
        cmd.args(["-p", c]);
    }
    run(&mut cmd)
}

/// Cargo unpacks the crates of its local overlay registry under
/// `$CARGO_HOME/registry/src/-HASH/NAME-VERSION` and reuses that copy whenever the name and
/// version match, so a second `cargo package` would verify against the previous run's
/// sources of a sibling crate (same 0.1.0, other code). Removes those unpacked copies of our
/// own crates; local-registry directories start with `-`, crates.io's are never touched.
fn forget_unpacked(crates: &[String]) {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry/src")) else {
        return;
    };
    for dir in std::fs::read_dir(&src).into_iter().flatten().flatten() {
        if !dir.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for entry in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name
                .rsplit_once('-')
                .is_some_and(|(krate, _version)| crates.iter().any(|c| c == krate));
            if ours {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Removes the build fingerprints of `crates` under `target`, so that cargo rebuilds them.
fn forget_builds(target: &std::path::Path, crates: &[String]) {
    let fingerprints = target.join("debug/.fingerprint");
    for entry in std::fs::read_dir(fingerprints)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name
            .rsplit_once('-')
            .is_some_and(|(krate, _hash)| crates.iter().any(|c| c == krate))
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// libfaketime moves the clocks of `tests/clock_skew.rs` and of the chaos campaign's skewed
/// processes (a second host with another clock). Installed from Debian's packages when
/// missing; without it those checks are skipped with a note.
fn ensure_faketime() {
    if std::path::Path::new(chaos::FAKETIME_LIB).exists() {
        return;
    }
    eprintln!("xtask: installing libfaketime (apt-get install faketime) for the clock-skew tests");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = ["install", "-y", "-q", "faketime"];
    let ok = apt(&install) || (apt(&["update", "-q"]) && apt(&install));
    if !ok {
        eprintln!("xtask: warning: could not install faketime; clock-skew tests and skewed chaos processes are skipped");
    }
}

fn test(extra: &[String]) -> Result<(), String> {
    // The end-to-end tests run the real `nsauth` binary: build it first.
    run(cargo().args(["build", "-p", "nsauth-cli", "--bins"]))?;
    let env = services::up()?;
    ensure_faketime();
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"]);
    if !extra.is_empty() {
        cmd.args(extra);
    }
    cmd.envs(env.iter().cloned())
        .env("NSAUTH_REQUIRE_SERVICES", "1");
    // Then a short fault campaign (about two minutes) on every store, clocks skewed, with a
    // fresh seed that it prints; a failure prints the seed to replay.
    let result = run(&mut cmd).and_then(|()| {
        chaos::run_with(
            &["--minutes".into(), "1.5".into(), "--no-build".into()],
            &env,
        )
    });
    services::down();
    result
}
