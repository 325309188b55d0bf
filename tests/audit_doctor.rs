//! End to end: the audit trail written by each command, `nsauth audit`, and `nsauth doctor`
//! on good and broken profiles.

use nsauth_e2e::*;
use nsauth_emulator::{CertificateMapping, ClientSpec};
use serde_json::Value;
use sha2::Digest;
use std::path::Path;
use std::time::Duration;

fn fingerprint(token: &str) -> String {
    hex::encode(&sha2::Sha256::digest(token.as_bytes())[..6])
}

/// The list of an `audit --json` or `doctor --json` answer (`{"schema": 1, "events"|"checks": [...]}`).
fn json(out: &std::process::Output) -> Value {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["schema"], 1, "{v}");
    let list = v.get("events").or_else(|| v.get("checks"));
    list.cloned().unwrap_or_else(|| panic!("no list in {v}"))
}

/// The doctor checks as (name, status) pairs.
fn statuses(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn status_of(v: &Value, check: &str) -> String {
    statuses(v)
        .into_iter()
        .find(|(c, _)| c == check)
        .unwrap_or_else(|| panic!("no {check} check in {v:#}"))
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_trail_records_every_step_without_secrets() {
    let emu = emulator().await;
    let mut sb = Sandbox::new(Kind::Sqlite);
    sb.extra_env.extend([
        ("USER".to_owned(), "audit-tester".to_owned()),
        ("GITHUB_RUN_ID".to_owned(), "987654321".to_owned()),
        (
            "GITHUB_REPOSITORY".to_owned(),
            "acme/netsuite-ops".to_owned(),
        ),
    ]);
    set_confidential_profile(&sb, &emu, "p");
    login(&sb, "p").await;
    let first = sb.ok(&["--profile", "p", "token"]);
    sb.ok(&["--profile", "p", "refresh", "--force"]);
    let second = sb.ok(&["--profile", "p", "token"]);
    assert_ne!(
        first, second,
        "refresh --force must give a new access token"
    );
    sb.ok(&["--profile", "p", "revoke"]);

    // Default place: beside the SQLite file.
    let path = sb.dir.path().join("data/audit.jsonl");
    let bytes = std::fs::read(&path).expect("audit.jsonl beside the store");
    for secret in [CLIENT_SECRET, first.trim(), second.trim(), "eyJ"] {
        assert!(
            !contains(&bytes, secret),
            "the audit log holds a secret or token ({secret:.12}...)"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let lines: Vec<Value> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "profile-set",
            "login",
            "token",
            "refresh",
            "token",
            "revoke"
        ]
    );
    for l in &lines {
        assert_eq!(l["profile"], "p");
        assert_eq!(l["outcome"], "ok", "{l}");
        assert!(l["store"].as_str().unwrap().starts_with("sqlite://"), "{l}");
        assert!(l["time"].as_str().unwrap().ends_with('Z'), "{l}");
        assert_eq!(l["actor"]["user"], "audit-tester");
        assert!(!l["actor"]["host"].as_str().unwrap().is_empty());
        assert_eq!(l["actor"]["ci"]["GITHUB_RUN_ID"], "987654321");
        assert_eq!(l["actor"]["ci"]["GITHUB_REPOSITORY"], "acme/netsuite-ops");
    }
    assert_eq!(
        lines[2]["token_fingerprint"].as_str(),
        Some(fingerprint(first.trim()).as_str())
    );
    assert_eq!(
        lines[3]["token_fingerprint"].as_str(),
        Some(fingerprint(second.trim()).as_str())
    );
    assert_eq!(
        lines[4]["token_fingerprint"].as_str(),
        Some(fingerprint(second.trim()).as_str())
    );
    let revoked = lines[5]["token_fingerprint"]
        .as_str()
        .expect("revoke names the refresh token");
    assert!(revoked.len() == 12 && revoked.bytes().all(|b| b.is_ascii_hexdigit()));

    // `nsauth audit` reads it back, filtered.
    let all = json(&sb.run(&["audit", "--json", "--since", "1h"]));
    assert_eq!(all.as_array().unwrap().len(), 6);
    assert_eq!(all[2]["token_fingerprint"], lines[2]["token_fingerprint"]);
    let future = json(&sb.run(&["audit", "--json", "--since", "2999-01-01T00:00:00Z"]));
    assert_eq!(future, Value::Array(vec![]));
    let other = json(&sb.run(&["audit", "--json", "--for-profile", "other"]));
    assert_eq!(other, Value::Array(vec![]));
    let last = json(&sb.run(&["audit", "--json", "--last", "1"]));
    assert_eq!(last[0]["event"], "revoke");
    let human = sb.ok(&["audit", "--for-profile", "p"]);
    assert_eq!(human.lines().count(), 6, "{human}");
    assert!(human.contains("GITHUB_RUN_ID=987654321"), "{human}");
    let bad = sb.run(&["audit", "--since", "yesterday"]);
    assert_exit(&bad, 2, &["audit --since yesterday"]);

    // --audit-log moves it; a torn line is skipped, not fatal.
    let elsewhere = sb.dir.path().join("logs/nsauth-audit.jsonl");
    let log = elsewhere.to_str().unwrap();
    sb.ok(&[
        "--audit-log",
        log,
        "--profile",
        "p",
        "profile",
        "delete",
        "p",
    ]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&elsewhere)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"time\":\"20"))
        .ok();
    let moved = sb.run(&["--audit-log", log, "audit", "--json"]);
    assert_ok(&moved, &["audit --audit-log"]);
    let moved = json(&moved);
    assert!(moved.as_array().unwrap().len() <= 1, "{moved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_good_profile_and_cleans_up() {
    let emu = emulator().await;
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        set_confidential_profile(&sb, &emu, "good");
        login(&sb, "good").await;
        let out = sb.run(&["--profile", "good", "doctor", "--json"]);
        assert_exit(&out, 0, &["doctor --json"]);
        let v = json(&out);
        let got = statuses(&v);
        for want in [
            "store",
            "store-round-trip",
            "profile",
            "account",
            "redirect-uri",
            "scopes",
            "tokens",
            "token-endpoint",
            "clock-skew",
        ] {
            assert!(
                got.iter().any(|(c, _)| c == want),
                "{kind:?}: no {want} check in {v:#}"
            );
        }
        assert!(got.iter().all(|(_, s)| s == "ok"), "{kind:?}: {v:#}");
        // The clock check read the emulator's Date header.
        let clock = v
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "clock-skew")
            .unwrap();
        assert!(
            clock["message"]
                .as_str()
                .unwrap()
                .contains("NetSuite's clock"),
            "{clock}"
        );
        // The scratch record is gone.
        assert_eq!(
            sb.ok(&["profile", "list"])
                .split_whitespace()
                .filter(|w| w.contains("nsauth-doctor"))
                .count(),
            0
        );
        let human = sb.ok(&["--profile", "good", "doctor"]);
        assert!(
            human
                .lines()
                .all(|l| !l.starts_with('✗') && !l.starts_with('!')),
            "{human}"
        );
        assert!(human.contains("✓ clock-skew"), "{human}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_fails_when_the_refresh_token_has_ended() {
    let emu = emulator().await;
    emu.set_refresh_validity(1);
    let sb = Sandbox::new(Kind::Sqlite);
    set_confidential_profile(&sb, &emu, "short");
    login(&sb, "short").await;
    let ended = poll(Duration::from_secs(15), || {
        let out = sb.run(&["--profile", "short", "check", "--within", "0s"]);
        (out.status.code() == Some(3)).then_some(())
    });
    assert!(ended.is_some(), "the 1-second refresh token never ended");
    let out = sb.run(&["--profile", "short", "doctor", "--json"]);
    assert_exit(&out, 3, &["doctor (ended refresh token)"]);
    let v = json(&out);
    assert_eq!(status_of(&v, "tokens"), "fail");
    let tokens = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "tokens")
        .unwrap();
    assert!(
        tokens["fix"]
            .as_str()
            .unwrap()
            .contains("nsauth login --profile short"),
        "{tokens}"
    );
    assert_eq!(status_of(&v, "store"), "ok");
    let human = sb.run(&["--profile", "short", "doctor"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("✗ tokens") && text.contains("fix: nsauth login --profile short"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_an_unreachable_store_and_a_missing_profile() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sb = Sandbox::remote(
        format!("vault+http://127.0.0.1:{port}/secret/nsauth"),
        vec![("VAULT_TOKEN".into(), "x".into())],
    );
    let started = std::time::Instant::now();
    let out = sb.run(&["--profile", "p", "doctor", "--json"]);
    assert_exit(&out, 4, &["doctor (closed port)"]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "doctor took {:?}",
        started.elapsed()
    );
    let v = json(&out);
    assert_eq!(status_of(&v, "store"), "fail");
    assert!(v[0]["fix"].as_str().is_some(), "{v:#}");

    let local = Sandbox::new(Kind::File);
    let out = local.run(&["--profile", "nope", "doctor", "--json"]);
    assert_exit(&out, 2, &["doctor (missing profile)"]);
    let v = json(&out);
    assert_eq!(status_of(&v, "store"), "ok");
    assert_eq!(status_of(&v, "store-round-trip"), "ok");
    assert_eq!(status_of(&v, "profile"), "fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_warns_about_a_certificate_ending_soon() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("m2m-client"));
    let sb = Sandbox::new(Kind::Sqlite);
    let dir = sb.dir.path().join("keys");
    sb.ok(&[
        "m2m",
        "keygen",
        "--out",
        dir.to_str().unwrap(),
        "--days",
        "10",
    ]);
    emu.add_certificate(
        "m2m-client",
        CertificateMapping {
            kid: "cert-10d".into(),
            certificate_pem: std::fs::read_to_string(dir.join("certificate.pem")).unwrap(),
        },
    );
    let key = dir.join("private-key.pem");
    set_m2m(&sb, &emu, "m2m", &key, "cert-10d");
    let out = sb.run(&["--profile", "m2m", "doctor", "--json"]);
    assert_exit(&out, 0, &["doctor (certificate in 10 days)"]);
    let v = json(&out);
    assert_eq!(status_of(&v, "certificate"), "warn", "{v:#}");
    assert_eq!(status_of(&v, "private-key"), "ok");
    assert_eq!(status_of(&v, "key-certificate-match"), "ok");
    assert_eq!(status_of(&v, "clock-skew"), "ok");
    assert!(!statuses(&v)
        .iter()
        .any(|(c, _)| c == "tokens" || c == "redirect-uri"));
}

fn set_m2m(sb: &Sandbox, emu: &nsauth_emulator::Emulator, name: &str, key: &Path, kid: &str) {
    sb.ok(&[
        "profile",
        "set",
        name,
        "--grant",
        "client-credentials",
        "--account-id",
        emu.account_id(),
        "--client-id",
        "m2m-client",
        "--scope",
        "rest_webservices",
        "--certificate-id",
        kid,
        "--private-key-file",
        key.to_str().unwrap(),
        "--base-url",
        &emu.base_url(),
    ]);
}
