//! `nsauth conformance --store URI`: the store suite as a command. On the local stores (and on
//! OpenBao and moto when `cargo xtask services up` runs them) every check passes, the scratch
//! profiles are gone afterwards and the user's own profiles are exactly as they were; `--json`
//! is one parseable object; a bad URI or an unreachable store is one line and exit 2 / 4.

use nsauth_conformance::ALL_CHECKS;
use nsauth_e2e::*;
use std::process::Output;

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf8 stderr")
}

/// A logged-in profile of the user's, and one whose name looks like another run's scratch
/// profile; returns what must be unchanged after the run.
async fn user_profiles(sb: &Sandbox, emu: &nsauth_emulator::Emulator) -> (String, String) {
    set_public_profile(sb, emu, "user");
    login(sb, "user").await;
    set_public_profile(sb, emu, "nsauth-conformance-00000000-keep");
    let token = sb.ok(&["--profile", "user", "token"]);
    (token, sb.ok(&["profile", "list"]))
}

/// The user's profiles are as they were: the same names, and `user` still answers with its
/// cached token, without a refresh.
fn untouched(sb: &Sandbox, emu: &nsauth_emulator::Emulator, before: &(String, String)) {
    let refreshes = emu.counters().refresh_token;
    assert_eq!(sb.ok(&["profile", "list"]), before.1, "the profile list");
    assert_eq!(
        sb.ok(&["--profile", "user", "token"]),
        before.0,
        "the user's cached token"
    );
    assert_eq!(emu.counters().refresh_token, refreshes, "no refresh needed");
}

/// Text output: one `PASS name (N ms)` line per check in the suite's order, then the summary.
fn assert_all_pass(out: &Output, label: &str, shown: &str) {
    assert_exit(out, 0, &["conformance", label]);
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), ALL_CHECKS.len() + 1, "{label}: {text}");
    for (line, check) in lines.iter().zip(ALL_CHECKS) {
        let want = format!("PASS {} (", check.name);
        assert!(
            line.starts_with(&want) && line.ends_with(" ms)"),
            "{label}: {line}"
        );
    }
    let summary = lines.last().unwrap();
    let n = ALL_CHECKS.len();
    assert!(
        summary.starts_with(&format!("{n} of {n} checks passed, 0 failed, in ")),
        "{label}: {summary}"
    );
    assert!(
        summary.ends_with(&format!(" on {shown}")),
        "{label}: {summary}"
    );
    let err = stderr(out);
    assert!(
        err.starts_with("warning: nsauth conformance writes and deletes scratch profiles named nsauth-conformance-"),
        "{label}: the warning: {err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "{label}: only the warning on stderr, not the log lines the checks provoke: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_on_the_local_stores_and_user_profiles_survive() {
    let emu = emulator().await;
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        let before = user_profiles(&sb, &emu).await;
        let out = sb.run(&["conformance", "--store", &sb.store_uri]);
        assert_all_pass(&out, &format!("{kind:?}"), &sb.store_uri);
        untouched(&sb, &emu, &before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_is_one_object_with_every_check() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    let before = user_profiles(&sb, &emu).await;
    let out = sb.run(&["conformance", "--json"]);
    assert_exit(&out, 0, &["conformance", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["store"], sb.store_uri.as_str());
    let prefix = v["prefix"].as_str().unwrap();
    assert!(prefix.starts_with("nsauth-conformance-"), "{prefix}");
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), ALL_CHECKS.len());
    for (c, want) in checks.iter().zip(ALL_CHECKS) {
        assert_eq!(c["name"], want.name);
        assert_eq!(c["group"], want.group.as_str());
        assert_eq!(c["passed"], true, "{c}");
        assert!(c["reason"].is_null(), "{c}");
        assert!(c["duration_ms"].is_u64(), "{c}");
    }
    let s = &v["summary"];
    assert_eq!(s["passed"], true);
    assert_eq!(s["total"], ALL_CHECKS.len());
    assert_eq!(s["passed_checks"], ALL_CHECKS.len());
    assert_eq!(s["failed_checks"], 0);
    assert!(s["duration_ms"].is_u64());
    assert_eq!(v["cleanup"]["problems"], serde_json::json!([]));
    untouched(&sb, &emu, &before);
}

#[test]
fn only_runs_the_named_checks() {
    let sb = Sandbox::new(Kind::File);
    let out = sb.run(&["conformance", "--only", "list,round_trip"]);
    assert_exit(&out, 0, &["conformance", "--only"]);
    let text = stdout(&out);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("PASS "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(names, ["round_trip", "list"], "{text}");
    assert_eq!(
        sb.ok(&["profile", "list"]).trim(),
        "",
        "nothing left behind"
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let sb = Sandbox::new(Kind::Sqlite);
    let cases: [&[&str]; 4] = [
        &["conformance", "--store", "bogus://x"],
        &["conformance", "--store", "sqlite:"],
        &["conformance", "--store", "sqlite:///tmp/x\u{7}.db"],
        &["conformance", "--only", "no_such_check"],
    ];
    for args in cases {
        let out = sb.run(args);
        assert_exit(&out, 2, args);
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    // Never the default store: without --store or NSAUTH_STORE it refuses.
    let out = sb
        .cmd()
        .env_remove("NSAUTH_STORE")
        .arg("conformance")
        .output()
        .unwrap();
    assert_exit(&out, 2, &["conformance (no store)"]);
    assert!(
        stderr(&out).contains("needs --store URI"),
        "{}",
        stderr(&out)
    );
    assert!(
        !sb.dir.path().join("share/nsauth").exists(),
        "no default store made"
    );
}

#[test]
fn an_unreachable_store_is_exit_4() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("vault+http://127.0.0.1:{port}/secret/nsauth/conformance");
    let sb = Sandbox::remote(uri, vec![("VAULT_TOKEN".into(), "unused".into())]);
    let out = sb.run(&["conformance"]);
    assert_exit(&out, 4, &["conformance", "unreachable"]);
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_on_the_remote_stores() {
    let emu = emulator().await;
    for (label, sb) in remote_sandboxes() {
        let before = user_profiles(&sb, &emu).await;
        let out = sb.run(&["conformance"]);
        let shown = stderr(&out)
            .lines()
            .find_map(|l| l.split(" in ").nth(1))
            .and_then(|l| l.split(';').next())
            .map(str::to_owned)
            .unwrap_or_default();
        assert_all_pass(&out, label, &shown);
        assert!(!shown.is_empty() && !shown.contains("unused"), "{shown}");
        untouched(&sb, &emu, &before);
        sb.ok(&["profile", "delete", "user"]);
        sb.ok(&["profile", "delete", "nsauth-conformance-00000000-keep"]);
    }
}

/// Two runs on one store at the same time keep to their own prefixes: both pass (the `list`
/// check sees the other run's profiles come and go) and neither deletes the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_on_one_store_both_pass() {
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        let outs = run_concurrently((0..2).map(|_| {
            let mut c = sb.cmd();
            c.args(["conformance", "--only", "contract"]);
            c
        }))
        .await;
        let mut prefixes = std::collections::BTreeSet::new();
        for out in &outs {
            assert_exit(out, 0, &["conformance (concurrent)", &format!("{kind:?}")]);
            let warning = stderr(out);
            let prefix = warning
                .split("named ")
                .nth(1)
                .and_then(|w| w.split('*').next());
            prefixes.insert(prefix.expect("the warning names the prefix").to_owned());
        }
        assert_eq!(prefixes.len(), 2, "{prefixes:?}");
        assert_eq!(
            sb.ok(&["profile", "list"]).trim(),
            "",
            "{kind:?}: nothing left"
        );
    }
}

/// Ctrl-C in the middle of a check stops the run and deletes the scratch profile that check
/// had made: nothing is left for the user to clean.
#[test]
fn ctrl_c_stops_the_run_and_deletes_its_scratch_profiles() {
    let sb = Sandbox::new(Kind::File);
    sb.ok(&[
        "profile",
        "set",
        "user",
        "--account-id",
        "1234567",
        "--client-id",
        "c",
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "rest_webservices",
    ]);
    // The dead-lease check waits out a 4 s lease with its profile in the store.
    let child = sb
        .cmd()
        .args(["conformance", "--only", "dead_lease_is_taken_over"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let scratch = poll(std::time::Duration::from_secs(20), || {
        let listed = sb.ok(&["profile", "list"]);
        listed.contains("nsauth-conformance-").then_some(listed)
    });
    assert!(scratch.is_some(), "the check never made its profile");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1, &["conformance", "interrupted"]);
    let err = stderr(&out);
    assert!(
        err.contains("error: interrupted; deleted the 1 scratch profile(s)"),
        "{err}"
    );
    assert!(!stdout(&out).contains("PASS"), "{}", stdout(&out));
    assert_eq!(sb.ok(&["profile", "list"]).trim(), "user");
}
