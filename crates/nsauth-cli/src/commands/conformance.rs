//! `nsauth conformance --store URI`: the behaviour suite every store must pass, run against any
//! store URI (built-in stores and plugins alike), in a scratch prefix it deletes afterwards.

use super::Ctx;
use crate::exit::Exit;
use clap::Args;
use nsauth_conformance::{
    CheckInfo, CheckReport, Cleanup, Fixture, Run, RunReport, UriFixture, ALL_CHECKS,
};
use nsauth_core::store::FailureKind;
use nsauth_core::Error;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// `nsauth conformance` flags (`--store` and `--json` are the global ones).
#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// Run only these checks, or groups (contract, broker, journal, clock); see --list.
    #[arg(long, value_name = "NAME", num_args = 1.., value_delimiter = ',')]
    pub only: Vec<String>,
    /// Print the checks and their groups; run nothing.
    #[arg(long)]
    pub list: bool,
    /// Seconds each check may run before it fails.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub timeout: u64,
}

/// Runs the suite against the store given with `--store` (or `NSAUTH_STORE`); never against
/// the default store, since it writes there.
pub async fn run(ctx: &Ctx, store: Option<String>, args: ConformanceArgs) -> Result<Exit, Error> {
    if args.list {
        list(ctx.json);
        return Ok(Exit::Success);
    }
    let checks = select(&args.only)?;
    let uri = store.filter(|s| !s.is_empty()).ok_or_else(|| {
        Error::Invalid(
            "nsauth conformance needs --store URI (or NSAUTH_STORE): it writes and deletes \
             scratch profiles there, so it never uses the default store"
                .into(),
        )
    })?;
    let fixture = Arc::new(UriFixture::new(uri, nsauth::open_store));
    let probe = fixture.try_open()?;
    probe.list().await?;
    let shown = probe.describe();
    drop(probe);
    let run = Run::new().with_timeout(Duration::from_secs(args.timeout));
    ctx.note(format!(
        "warning: nsauth conformance writes and deletes scratch profiles named {}* in {shown}; \
         it leaves every other profile alone",
        run.prefix()
    ));
    let json_mode = ctx.json;
    let report = tokio::task::spawn_blocking(move || run_suite(run, fixture, checks, json_mode))
        .await
        .map_err(|e| Error::Other(format!("the conformance run ended early: {e}")))??;
    if json_mode {
        println!(
            "{}",
            serde_json::to_string_pretty(&report_json(&report, &shown)).unwrap_or_default()
        );
    } else {
        for problem in &report.cleanup.problems {
            println!("FAIL cleanup: {problem}");
        }
        println!("{}", summary_line(&report, &shown));
    }
    Ok(if report.passed() {
        Exit::Success
    } else {
        Exit::Failed(FailureKind::Other)
    })
}

/// The checks `--only` names (every check when it names none), in the suite's order.
fn select(only: &[String]) -> Result<Vec<CheckInfo>, Error> {
    if only.is_empty() {
        return Ok(ALL_CHECKS.to_vec());
    }
    for name in only {
        let known = ALL_CHECKS
            .iter()
            .any(|c| c.name == name || c.group.as_str() == name);
        if !known {
            return Err(Error::Invalid(format!(
                "--only {name:?}: no such check or group; `nsauth conformance --list` shows them"
            )));
        }
    }
    Ok(ALL_CHECKS
        .iter()
        .filter(|c| only.iter().any(|n| n == c.name || n == c.group.as_str()))
        .copied()
        .collect())
}

/// The suite on a runtime of its own with worker threads (the concurrency checks race
/// handles against each other, and a store may block), printing a line per check as it ends.
/// Panics of failed checks become their reasons; the panic hook only logs them (debug level)
/// while the suite runs. The checks provoke broker warnings on purpose (a store that fails
/// mid-refresh, a foreign journal entry): their threads log nothing unless `NSAUTH_LOG` asks.
fn run_suite(
    run: Run,
    fixture: Arc<UriFixture>,
    checks: Vec<CheckInfo>,
    json_mode: bool,
) -> Result<RunReport, Error> {
    let quiet = std::env::var_os("NSAUTH_LOG").is_none_or(|v| v.is_empty());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .on_thread_start(move || {
            if quiet {
                // For the thread's whole life: the guard would restore the global logger.
                std::mem::forget(tracing::dispatcher::set_default(&tracing::Dispatch::none()));
            }
        })
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| tracing::debug!("check failed: {info}")));
    let fx: Arc<dyn Fixture> = fixture;
    let finished = runtime.block_on(async {
        let print = |check: &CheckReport| {
            if !json_mode {
                println!("{}", check_line(check));
                let _ = std::io::stdout().flush();
            }
        };
        tokio::select! {
            report = run.run(Arc::clone(&fx), &checks, print) => Some(report),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    // Interrupted: the running check was stopped with the run; delete what it left.
    let interrupted = match finished {
        Some(_) => None,
        None => Some(runtime.block_on(run.clean_up(fx))),
    };
    std::panic::set_hook(previous);
    // A check that timed out may have left a blocking call behind: do not wait for it.
    runtime.shutdown_background();
    match (finished, interrupted) {
        (Some(report), _) => Ok(report),
        (None, cleanup) => Err(Error::Other(interrupted_message(
            run.prefix(),
            &cleanup.unwrap_or_default(),
        ))),
    }
}

/// What an interrupted run says, on one line.
fn interrupted_message(prefix: &str, cleanup: &Cleanup) -> String {
    match cleanup.problems.first() {
        None => format!(
            "interrupted; deleted the {} scratch profile(s) named {prefix}* the run had left",
            cleanup.removed
        ),
        Some(problem) => format!(
            "interrupted, and the scratch profiles named {prefix}* could not all be deleted \
             ({problem}); delete them with nsauth profile delete"
        ),
    }
}

/// `PASS name (12 ms)` or `FAIL name: reason`.
fn check_line(check: &CheckReport) -> String {
    match &check.reason {
        None => format!("PASS {} ({} ms)", check.name, check.duration.as_millis()),
        Some(reason) => format!("FAIL {}: {reason}", check.name),
    }
}

fn summary_line(report: &RunReport, shown: &str) -> String {
    let failed = report.checks.iter().filter(|c| !c.passed).count();
    let mut line = format!(
        "{} of {} checks passed, {failed} failed, in {:.1} s on {shown}",
        report.checks.len() - failed,
        report.checks.len(),
        report.duration.as_secs_f64()
    );
    if report.cleanup.removed > 0 {
        line.push_str(&format!(
            "; deleted {} scratch profile(s) failed checks left behind",
            report.cleanup.removed
        ));
    }
    line
}

fn report_json(report: &RunReport, shown: &str) -> Value {
    let checks: Vec<Value> = report
        .checks
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "group": c.group.as_str(),
                "passed": c.passed,
                "reason": c.reason,
                "duration_ms": c.duration.as_millis() as u64,
            })
        })
        .collect();
    let failed = report.checks.iter().filter(|c| !c.passed).count();
    json!({
        "schema": 1,
        "store": shown,
        "prefix": report.prefix,
        "checks": checks,
        "cleanup": {
            "removed": report.cleanup.removed,
            "problems": report.cleanup.problems,
        },
        "summary": {
            "passed": report.passed(),
            "total": report.checks.len(),
            "passed_checks": report.checks.len() - failed,
            "failed_checks": failed,
            "duration_ms": report.duration.as_millis() as u64,
        },
    })
}

fn list(json_mode: bool) {
    if json_mode {
        let checks: Vec<Value> = ALL_CHECKS
            .iter()
            .map(|c| json!({"name": c.name, "group": c.group.as_str()}))
            .collect();
        let v = json!({"schema": 1, "checks": checks});
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for c in ALL_CHECKS {
            println!("{:<52} {}", c.name, c.group.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsauth_conformance::Group;

    #[test]
    fn only_selects_checks_and_groups_in_suite_order() {
        let names = |only: &[&str]| -> Vec<&str> {
            let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
            select(&only).unwrap().iter().map(|c| c.name).collect()
        };
        assert_eq!(names(&[]).len(), ALL_CHECKS.len());
        assert_eq!(
            names(&["list", "round_trip", "list"]),
            ["round_trip", "list"]
        );
        let broker = names(&["broker"]);
        assert_eq!(
            broker.len(),
            ALL_CHECKS
                .iter()
                .filter(|c| c.group == Group::Broker)
                .count()
        );
        let err = select(&["round-trip\n".into()]).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)));
        let msg = err.to_string();
        assert!(!msg.contains('\n') && msg.contains("--list"), "{msg}");
    }

    #[test]
    fn lines_say_pass_or_fail_with_the_reason() {
        let mut c = CheckReport {
            name: "cas_conflict",
            group: Group::Contract,
            passed: true,
            reason: None,
            duration: Duration::from_millis(12),
        };
        assert_eq!(check_line(&c), "PASS cas_conflict (12 ms)");
        c.passed = false;
        c.reason = Some("write at a stale version: expected Conflict, got Ok(..)".into());
        assert_eq!(
            check_line(&c),
            "FAIL cas_conflict: write at a stale version: expected Conflict, got Ok(..)"
        );
    }
}
