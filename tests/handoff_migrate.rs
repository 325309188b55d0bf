//! End to end: the handoff login (one person sends the link, a NetSuite user opens it and
//! sends back the URL or just code + state) and `migrate` between two different stores.

use nsauth_e2e::*;

fn query_param(url: &str, key: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_login_across_processes() {
    let emu = emulator().await;
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        set_confidential_profile(&sb, &emu, "partner");
        let msg = sb.ok(&[
            "--profile",
            "partner",
            "login",
            "start",
            "--handoff",
            "--ttl",
            "48h",
        ]);
        assert!(
            msg.contains("code=") && msg.contains("send it back"),
            "{kind:?}: {msg}"
        );
        assert!(
            msg.contains("OAuth 2.0 Authorized Applications"),
            "the message says how to revoke"
        );
        let url = msg
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("http"))
            .expect("the link")
            .to_owned();
        // The NetSuite user opens the link on their machine and sends back only code + state.
        let landed = nsauth_emulator::browser_login(&url, USER, PASSWORD, true)
            .await
            .unwrap();
        let (code, state) = (query_param(&landed, "code"), query_param(&landed, "state"));
        let out = sb.run_stdin(
            &[
                "--profile",
                "partner",
                "login",
                "finish",
                "--state",
                &state,
                "-",
            ],
            &format!("{code}\n"),
        );
        assert_ok(&out, &["login finish --state"]);
        let t = sb.ok(&["--profile", "partner", "token"]);
        assert!(token_works(&emu, t.trim()).await);
        // Exchanged once only.
        let again = sb.run_stdin(
            &[
                "--profile",
                "partner",
                "login",
                "finish",
                "--state",
                &state,
                "-",
            ],
            &format!("{code}\n"),
        );
        assert_exit(&again, 2, &["second finish"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_logins_expire() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "p");
    let url = sb.ok(&["--profile", "p", "login", "start", "--ttl", "1s"]);
    let landed = nsauth_emulator::browser_login(url.trim(), USER, PASSWORD, true)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    poll(std::time::Duration::from_secs(10), || {
        (started.elapsed() > std::time::Duration::from_millis(1100)).then_some(())
    });
    let out = sb.run(&["--profile", "p", "login", "finish", &landed]);
    assert_exit(&out, 2, &["finish after expiry"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));
    assert_eq!(
        emu.counters().authorization_code,
        0,
        "an expired login never reaches NetSuite"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_between_stores_verified_and_rerunnable() {
    let emu = emulator().await;
    let src = Sandbox::new(Kind::Sqlite);
    let dst = Sandbox::new(Kind::File);
    set_public_profile(&src, &emu, "pub");
    set_confidential_profile(&src, &emu, "conf");
    set_public_profile(&src, &emu, "nologin");
    login(&src, "pub").await;
    login(&src, "conf").await;
    let to = dst.store_uri.clone();

    let dry = src.ok(&["migrate", "--to", &to, "--all", "--dry-run"]);
    assert!(dry.contains("would copy"), "{dry}");
    assert_eq!(
        dst.ok(&["profile", "list"]).trim(),
        "",
        "a dry run changes nothing"
    );

    let report = src.ok(&["migrate", "--to", &to, "--all", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    let rows = &v["profiles"];
    assert_eq!(rows.as_array().unwrap().len(), 3);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "copied"),
        "{rows}"
    );
    for p in ["pub", "conf"] {
        let t = dst.ok(&["--profile", p, "token", "--min-ttl", "60"]);
        assert!(
            token_works(&emu, t.trim()).await,
            "{p}: migrated token refused"
        );
    }
    // A public client's single-use refresh token lives on in the destination only.
    let out = src.run(&["--profile", "pub", "refresh", "--force"]);
    assert_exit(&out, 3, &["refresh of the retired public source"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("moved"));
    dst.ok(&["--profile", "pub", "refresh", "--force"]);
    // A confidential client's refresh token is reusable: both copies keep working.
    src.ok(&["--profile", "conf", "refresh", "--force"]);
    dst.ok(&["--profile", "conf", "refresh", "--force"]);

    // Re-running is safe.
    let again: serde_json::Value =
        serde_json::from_str(&src.ok(&["migrate", "--to", &to, "--all", "--json"])).unwrap();
    for r in again["profiles"].as_array().unwrap() {
        assert!(
            r["status"] == "already-migrated" || r["status"] == "failed",
            "{r}"
        );
    }
    // A different profile of the same name in the destination is never overwritten.
    src.ok(&["profile", "set", "nologin", "--scope", "restlets"]);
    let out = src.run(&["migrate", "--to", &to, "--profile", "nologin"]);
    assert_exit(&out, 2, &["migrate onto a different profile"]);
}
