//! Runs the example service, as a user would, against the NetSuite emulator: configured only
//! by the environment, it prints the account and the REST API's answer — also after NetSuite
//! ended its access token early (401 → one refresh → retry).

#[path = "../../crates/nsauth/tests/support/mod.rs"]
mod support;

use std::path::Path;
use support::{emulator, log_in, sqlite_in};

/// Runs the example with the store in `dir` and profile `profile`; returns (success, stdout,
/// stderr).
async fn run_service(dir: &Path, profile: &str) -> (bool, String, String) {
    run_service_with(dir, profile, &[]).await
}

/// [`run_service`] with extra environment variables.
async fn run_service_with(
    dir: &Path,
    profile: &str,
    vars: &[(&str, &str)],
) -> (bool, String, String) {
    let (uri, _) = sqlite_in(dir);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_nsauth-example-service"))
        .env("HOME", dir)
        .env("NSAUTH_STORE", uri)
        .env("NSAUTH_PROFILE", profile)
        .env("NSAUTH_JOURNAL_DIR", dir.join("journal"))
        .env_remove("NSAUTH_STORE_KEY")
        .env_remove("NSAUTH_STORE_KEY_FILE")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_DATA_HOME")
        .envs(vars.iter().copied())
        .output()
        .await
        .expect("the example runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_example_service_calls_the_rest_api_and_survives_a_401() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let (uri, _) = sqlite_in(dir.path());
    let store = nsauth::open_store(&uri).unwrap();
    log_in(&emu, store.as_ref(), "prod").await;

    let (ok, out, err) = run_service(dir.path(), "prod").await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains(&format!("account {}: token valid until", emu.account_id())),
        "{out}"
    );
    assert!(
        out.contains("GET record/v1/metadata-catalog: HTTP 200; records: account, customer, employee, salesorder"),
        "{out}"
    );
    assert_eq!(emu.counters().refresh_token, 0);

    // NetSuite ends the access token early: the service gets 401, refreshes once, retries.
    emu.expire_access_tokens();
    let calls = emu.counters().api_calls;
    let (ok, out, err) = run_service(dir.path(), "prod").await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("HTTP 200; records: account"), "{out}");
    assert_eq!(emu.counters().refresh_token, 1, "exactly one refresh");
    assert_eq!(emu.counters().api_calls, calls + 2, "the 401 and one retry");
}

#[tokio::test]
async fn the_example_service_says_what_to_do_when_no_one_logged_in() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let (uri, _) = sqlite_in(dir.path());
    let store = nsauth::open_store(&uri).unwrap();
    log_in(&emu, store.as_ref(), "prod").await;
    let (ok, out, err) = run_service(dir.path(), "staging").await;
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("staging"),
        "{err}"
    );
    assert_eq!(emu.counters().api_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_service_processes_hit_by_a_401_at_once_refresh_once() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let (uri, _) = sqlite_in(dir.path());
    let store = nsauth::open_store(&uri).unwrap();
    log_in(&emu, store.as_ref(), "prod").await;
    emu.expire_access_tokens();
    let runs = (0..4).map(|_| {
        let dir = dir.path().to_owned();
        async move { run_service(&dir, "prod").await }
    });
    for (ok, out, err) in futures_join_all(runs).await {
        assert!(ok, "stdout: {out}\nstderr: {err}");
        assert!(out.contains("HTTP 200; records: account"), "{out}");
    }
    assert_eq!(
        emu.counters().refresh_token,
        1,
        "one refresh for four processes"
    );
}

/// Runs the futures concurrently (each on its own task), results in order.
async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn bad_environment_is_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run_service_with(dir.path(), "prod", &[("NSAUTH_LEASE_SECONDS", "0")]).await;
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("NSAUTH_LEASE_SECONDS"), "{err}");
    let (ok, _, err) = run_service_with(dir.path(), "prod", &[("NSAUTH_STORE", "bogus://x")]).await;
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown store scheme"), "{err}");
    let (ok, _, err) = run_service_with(dir.path(), "../etc", &[]).await;
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
}
