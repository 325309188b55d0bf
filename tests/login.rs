//! End to end: profiles, logins (start/finish across processes, interactive HTTPS loopback),
//! status, check, revoke, exec and secret hygiene — on both local stores.

use nsauth_e2e::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_start_finish_then_token_on_both_stores() {
    let emu = emulator().await;
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        set_public_profile(&sb, &emu, "prod");
        login(&sb, "prod").await;
        let token = sb.ok(&["--profile", "prod", "token"]);
        assert!(
            token.ends_with('\n') && token.trim().lines().count() == 1,
            "{kind:?}: token output {token:?}"
        );
        assert!(
            token_works(&emu, token.trim()).await,
            "{kind:?}: the printed token is refused by the API"
        );
        // Same token from the cache the second time.
        assert_eq!(sb.ok(&["--profile", "prod", "token"]), token, "{kind:?}");
    }
    let c = emu.counters();
    assert_eq!(c.authorization_code, 2);
    assert_eq!(c.refresh_token, 0, "cached tokens must not be refreshed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_refuses_wrong_state_and_reused_redirect_sqlite() {
    finish_refuses_wrong_state_and_reused_redirect(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_refuses_wrong_state_and_reused_redirect_file() {
    finish_refuses_wrong_state_and_reused_redirect(Kind::File).await;
}

async fn finish_refuses_wrong_state_and_reused_redirect(kind: Kind) {
    let emu = emulator().await;
    let sb = Sandbox::new(kind);
    set_confidential_profile(&sb, &emu, "p");
    let url = sb.ok(&["--profile", "p", "login", "start"]);
    let landed = nsauth_emulator::browser_login(url.trim(), USER, PASSWORD, true)
        .await
        .unwrap();
    let forged = landed.replace("state=", "state=x");
    let out = sb.run(&["--profile", "p", "login", "finish", &forged]);
    assert_exit(&out, 2, &["login finish forged"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("matches no pending login"));
    // The real one still works, through stdin, exactly once.
    let out = sb.run_stdin(
        &["--profile", "p", "login", "finish", "-"],
        &format!("{landed}\n"),
    );
    assert_ok(&out, &["login finish -"]);
    let again = sb.run(&["--profile", "p", "login", "finish", &landed]);
    assert_exit(&again, 2, &["login finish again"]);
    assert_eq!(
        emu.counters().authorization_code,
        1,
        "a code must be exchanged only once"
    );
    let err = nsauth_emulator::browser_login(url.trim(), USER, "wrong password", true).await;
    assert!(err.is_err(), "the emulator must refuse a wrong password");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_https_loopback_login_sqlite() {
    interactive_https_loopback_login(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_https_loopback_login_file() {
    interactive_https_loopback_login(Kind::File).await;
}

async fn interactive_https_loopback_login(kind: Kind) {
    let emu = emulator().await;
    let port = free_port();
    let redirect = format!("https://127.0.0.1:{port}/callback");
    emu.add_client(nsauth_emulator::ClientSpec::public(
        "loopback-client",
        &redirect,
    ));
    let sb = Sandbox::new(kind);
    sb.ok(&[
        "profile",
        "set",
        "dev",
        "--account-id",
        emu.account_id(),
        "--client-id",
        "loopback-client",
        "--redirect-uri",
        &redirect,
        "--scope",
        "rest_webservices",
        "--base-url",
        &emu.base_url(),
    ]);
    let mut child = sb
        .cmd()
        .args([
            "--profile",
            "dev",
            "login",
            "--no-browser",
            "--timeout",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("nsauth printed no authorization URL");
        if let Some(u) = line.trim().strip_prefix("http") {
            break format!("http{u}");
        }
    };
    let browser = nsauth_e2e::http()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    // Wrong state, a POST and a missing code are refused; the listener keeps waiting.
    let bad = browser
        .get(format!("{redirect}?code=abc&state=not-the-state"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let post = browser
        .post(format!("{redirect}?code=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    let state = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let missing = browser
        .get(format!("{redirect}?state={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let dup = browser
        .get(format!("{redirect}?code=a&state={state}&state={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 400, "duplicated parameters are refused");
    let huge = browser
        .get(format!(
            "{redirect}?code={}&state={state}",
            "x".repeat(20_000)
        ))
        .send()
        .await
        .unwrap();
    assert!(
        huge.status().is_client_error(),
        "a huge query is refused, got {}",
        huge.status()
    );
    let other = browser
        .get(format!("{redirect}/../admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let landed = nsauth_emulator::browser_login(&url, USER, PASSWORD, true)
        .await
        .unwrap();
    let page = browser.get(&landed).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Logged in"));
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "interactive login exited with {status}");
    let token = sb.ok(&["--profile", "dev", "token"]);
    assert!(token_works(&emu, token.trim()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_account_ids_exit_2_and_store_nothing() {
    let emu = emulator().await;
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        for bad in [
            "123.evil.com",
            "abc",
            "1234567_SB",
            "1234567/../x",
            "",
            "1234567 _SB1",
        ] {
            let args = [
                "profile",
                "set",
                "p",
                "--account-id",
                bad,
                "--client-id",
                PUBLIC_CLIENT,
                "--redirect-uri",
                REDIRECT,
                "--scope",
                "rest_webservices",
                "--base-url",
                &emu.base_url(),
            ];
            let out = sb.run(&args);
            assert_exit(&out, 2, &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("account ID") && err.lines().count() == 1,
                "{err}"
            );
        }
        assert_eq!(
            sb.ok(&["profile", "list"]).trim(),
            "",
            "{kind:?}: nothing may be stored"
        );
        for (flag, val) in [
            ("--redirect-uri", "http://example.com/cb"),
            ("--scope", "openid"),
            ("--base-url", "http://example.com"),
        ] {
            let mut args = vec![
                "profile",
                "set",
                "p",
                "--account-id",
                "1234567",
                "--client-id",
                "c",
                "--redirect-uri",
                REDIRECT,
                "--scope",
                "restlets",
            ];
            args.extend([flag, val]);
            let out = sb.run(&args);
            assert_exit(&out, 2, &args);
        }
        let out = sb.run(&[
            "profile",
            "set",
            "../etc",
            "--account-id",
            "1234567",
            "--client-id",
            "c",
        ]);
        assert_exit(&out, 2, &["profile set ../etc"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_check_revoke_exec_sqlite() {
    status_check_revoke_exec(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_check_revoke_exec_file() {
    status_check_revoke_exec(Kind::File).await;
}

async fn status_check_revoke_exec(kind: Kind) {
    let emu = emulator().await;
    let sb = Sandbox::new(kind);
    set_confidential_profile(&sb, &emu, "ops");
    // Not logged in: check says login needed.
    let out = sb.run(&["--profile", "ops", "check"]);
    assert_exit(&out, 3, &["check before login"]);
    let out = sb.run(&["--profile", "ops", "token"]);
    assert_exit(&out, 3, &["token before login"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nsauth login --profile ops"));
    login(&sb, "ops").await;
    sb.ok(&["--profile", "ops", "check", "--within", "48h"]);
    let st: serde_json::Value =
        serde_json::from_str(&sb.ok(&["--profile", "ops", "status", "--json"])).unwrap();
    assert_eq!(st["health"], "ok");
    assert_eq!(st["grant"], "authorization-code");
    assert_eq!(st["account_id"], emu.account_id());
    assert!(st["access_token_expires_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(st["refresh_token_expires_at"].is_string());
    // A window longer than the refresh token's life: exit 3.
    let out = sb.run(&["--profile", "ops", "check", "--within", "30d"]);
    assert_exit(&out, 3, &["check --within 30d"]);
    let all: serde_json::Value =
        serde_json::from_str(&sb.ok(&["status", "--all", "--json"])).unwrap();
    assert_eq!(all["profiles"].as_array().unwrap().len(), 1);

    // exec passes the token and account to the child.
    let out = sb.run(&["--profile", "ops", "exec", "--", "sh", "-c", "test -n \"$NETSUITE_ACCESS_TOKEN\" && echo \"$NETSUITE_ACCOUNT_ID $NETSUITE_REST_URL\" && exit 7"]);
    assert_exit(&out, 7, &["exec"]);
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.starts_with(emu.account_id()) && line.contains("/services/rest/"),
        "{line}"
    );

    // api uses the token.
    let body = sb.ok(&[
        "--profile",
        "ops",
        "api",
        "GET",
        "record/v1/metadata-catalog",
    ]);
    assert!(!body.is_empty());

    let token = sb.ok(&["--profile", "ops", "token"]);
    sb.ok(&["--profile", "ops", "revoke"]);
    assert!(
        !token_works(&emu, token.trim()).await,
        "revoke must end the access token too"
    );
    assert_eq!(emu.counters().revoke, 1);
    let out = sb.run(&["--profile", "ops", "token"]);
    assert_exit(&out, 3, &["token after revoke"]);
    assert!(
        sb.ok(&["profile", "list"]).contains("ops"),
        "revoke keeps the profile"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_output_or_store_bytes() {
    let emu = emulator().await;
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        set_confidential_profile(&sb, &emu, "s");
        login(&sb, "s").await;
        let token = sb.ok(&["--profile", "s", "token"]).trim().to_owned();
        let mut outputs = Vec::new();
        for args in [
            vec!["-vvv", "--profile", "s", "refresh", "--force"],
            vec!["-vvv", "--profile", "s", "status"],
            vec!["-vvv", "--profile", "s", "status", "--json"],
            vec!["-vvv", "profile", "show", "s"],
            vec!["-vvv", "profile", "show", "s", "--json"],
            vec!["-vvv", "--profile", "s", "check"],
            vec!["-vvv", "profile", "list"],
        ] {
            let out = sb.run(&args);
            assert_ok(&out, &args);
            outputs.push(out.stdout);
            outputs.push(out.stderr);
        }
        let out = sb.run(&["-vvv", "--profile", "s", "token"]);
        let fresh = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        outputs.push(out.stderr);
        let files = sb.store_bytes();
        assert!(!files.is_empty());
        for secret in [CLIENT_SECRET, &token, &fresh] {
            for o in &outputs {
                assert!(
                    !contains(o, secret),
                    "{kind:?}: a secret appeared in command output"
                );
            }
            for (path, bytes) in &files {
                assert!(
                    !contains(bytes, secret),
                    "{kind:?}: a secret appeared in plaintext in {}",
                    path.display()
                );
            }
        }
        // The refresh token is a JWT: no part of its signature may be on disk either.
        let shown = sb.ok(&["profile", "show", "s"]);
        assert!(shown.contains("[redacted]"));
    }
}

#[test]
fn demo_walks_through_every_step() {
    let sb = Sandbox::new(Kind::Sqlite);
    let out = sb
        .cmd()
        .env_remove("NSAUTH_STORE")
        .env_remove("NSAUTH_STORE_KEY")
        .arg("demo")
        .output()
        .unwrap();
    assert_ok(&out, &["demo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for step in ["profile", "login", "token", "refresh", "status", "revoke"] {
        assert!(text.contains(step), "demo output lacks {step}: {text}");
    }
    assert!(text.contains("done:"), "{text}");
    // The demo uses a throwaway store: nothing is left in the user's default store.
    assert!(!sb.dir.path().join("share/nsauth/nsauth.db").exists());
}

#[test]
fn backends_and_unknown_store_schemes() {
    let sb = Sandbox::new(Kind::Sqlite);
    let out = sb.ok(&["backends"]);
    for scheme in ["sqlite", "file", "vault", "aws-sm"] {
        assert!(
            out.lines().any(|l| l.starts_with(scheme)),
            "backends lacks {scheme}: {out}"
        );
    }
    for bad in ["mysql://x", "no-scheme", "sqlite://"] {
        let out = sb.run(&["--store", bad, "profile", "list"]);
        assert_exit(&out, 2, &["--store", bad]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("store URI") || err.contains("store scheme"),
            "{err}"
        );
    }
}
