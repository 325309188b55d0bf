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
