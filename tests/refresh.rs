//! End to end: refresh, rotation, single-flight storms, NetSuite faults and store damage.

use nsauth_e2e::*;
use nsauth_emulator::Fault;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_then_refreshed_with_public_rotation() {
    let emu = emulator().await;
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        emu.set_access_ttl(120);
        set_public_profile(&sb, &emu, "pub");
        login(&sb, "pub").await;
        let before = emu.counters().refresh_token;
        let t1 = sb.ok(&["--profile", "pub", "token"]);
        assert_eq!(
            sb.ok(&["--profile", "pub", "token", "--min-ttl", "100"]),
            t1,
            "{kind:?}: valid token must come from the cache"
        );
        assert_eq!(emu.counters().refresh_token, before);
        // Ask for more life than the token has: refresh, three times in a row. A public
        // client's refresh token is single-use, so each success proves the rotated token
        // was stored.
        let mut last = t1.clone();
        for i in 0..3 {
            let t = sb.ok(&["--profile", "pub", "token", "--min-ttl", "300"]);
            assert_ne!(t, last, "{kind:?}: refresh {i} returned the old token");
            assert!(token_works(&emu, t.trim()).await);
            last = t;
        }
        assert_eq!(emu.counters().refresh_token, before + 3, "{kind:?}");
        let st: serde_json::Value =
            serde_json::from_str(&sb.ok(&["--profile", "pub", "status", "--json"])).unwrap();
        assert_eq!(st["refresh_count"], 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_token_calls_cause_one_refresh() {
    let emu = emulator().await;
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        emu.set_access_ttl(120);
        set_public_profile(&sb, &emu, "ci");
        login(&sb, "ci").await;
        emu.set_access_ttl(3600);
        // Slow the refresh so that every process arrives while it is in flight.
        emu.inject(Fault::Delay(Duration::from_millis(700)));
        let before = emu.counters();
        let outs = run_concurrently((0..16).map(|_| {
            let mut c = sb.cmd();
            c.args(["--profile", "ci", "token", "--min-ttl", "300"]);
            c
        }))
        .await;
        let mut tokens = std::collections::BTreeSet::new();
        for o in &outs {
            assert_ok(o, &["token (concurrent)"]);
            tokens.insert(String::from_utf8(o.stdout.clone()).unwrap());
        }
        let after = emu.counters();
        assert_eq!(
            after.refresh_token - before.refresh_token,
            1,
            "{kind:?}: exactly one refresh must reach NetSuite"
        );
        assert_eq!(
            after.token_requests - before.token_requests,
            1,
            "{kind:?}: no extra token requests"
        );
        assert_eq!(
            tokens.len(),
            1,
            "{kind:?}: all 16 callers must get the winner's token"
        );
        assert!(token_works(&emu, tokens.first().unwrap().trim()).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_means_login_needed_sqlite() {
    invalid_grant_means_login_needed(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_means_login_needed_file() {
    invalid_grant_means_login_needed(Kind::File).await;
}

async fn invalid_grant_means_login_needed(kind: Kind) {
    let emu = emulator().await;
    let sb = Sandbox::new(kind);
    emu.set_access_ttl(120);
    set_public_profile(&sb, &emu, "p");
    login(&sb, "p").await;
    emu.revoke_all();
    let out = sb.run(&["--profile", "p", "token", "--min-ttl", "300"]);
    assert_exit(&out, 3, &["token after revoke_all"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid_grant") && err.contains("nsauth login"),
        "{err}"
    );
    let out = sb.run(&["--profile", "p", "check"]);
    assert_exit(&out, 3, &["check after invalid_grant"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_429_are_retried_sqlite() {
    server_errors_and_429_are_retried(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_429_are_retried_file() {
    server_errors_and_429_are_retried(Kind::File).await;
}

async fn server_errors_and_429_are_retried(kind: Kind) {
    let emu = emulator().await;
    let sb = Sandbox::new(kind);
    emu.set_access_ttl(120);
    set_confidential_profile(&sb, &emu, "p");
    login(&sb, "p").await;
    let before = emu.counters();
    emu.inject(Fault::Status {
        status: 503,
        retry_after: None,
    });
    emu.inject(Fault::Status {
        status: 429,
        retry_after: Some(1),
    });
    emu.inject(Fault::Status {
        status: 500,
        retry_after: None,
    });
    let t = sb.ok(&["--profile", "p", "token", "--min-ttl", "300"]);
    assert!(token_works(&emu, t.trim()).await);
    let after = emu.counters();
    assert_eq!(
        after.token_requests - before.token_requests,
        4,
        "three failures and one success"
    );
    assert_eq!(after.refresh_token - before.refresh_token, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netsuite_down_exits_5_within_30s_and_keeps_tokens_sqlite() {
    netsuite_down_exits_5_within_30s_and_keeps_tokens(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netsuite_down_exits_5_within_30s_and_keeps_tokens_file() {
    netsuite_down_exits_5_within_30s_and_keeps_tokens(Kind::File).await;
}

async fn netsuite_down_exits_5_within_30s_and_keeps_tokens(kind: Kind) {
    let emu = emulator().await;
    let sb = Sandbox::new(kind);
    emu.set_access_ttl(120);
    set_confidential_profile(&sb, &emu, "p");
    login(&sb, "p").await;
    // Point the profile at a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    sb.ok(&[
        "profile",
        "set",
        "p",
        "--token-url",
        &format!("{dead}/token"),
    ]);
    let start = Instant::now();
    let out = sb.run(&["--profile", "p", "token", "--min-ttl", "300"]);
    assert_exit(&out, 5, &["token with NetSuite down"]);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one-line error expected: {err}"
    );
    // Still usable: the stored tokens were not damaged.
    sb.ok(&["profile", "set", "p", "--base-url", &emu.base_url()]);
    let t = sb.ok(&["--profile", "p", "token", "--min-ttl", "300"]);
    assert!(
        token_works(&emu, t.trim()).await,
        "the stored refresh token must still work"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_store_exits_4_and_is_untouched() {
    let emu = emulator().await;
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        set_public_profile(&sb, &emu, "p");
        let target = match kind {
            Kind::Sqlite => sb.store_path.clone(),
            Kind::File => sb.store_path.join("p.json"),
        };
        let garbage =
            b"this is not an nsauth store \x00\x01\x02 garbage garbage garbage garbage".repeat(40);
        std::fs::write(&target, &garbage).unwrap();
        for args in [
            vec!["--profile", "p", "token"],
            vec!["profile", "set", "p", "--client-id", "x"],
            vec!["--profile", "p", "status"],
        ] {
            let out = sb.run(&args);
            assert_exit(&out, 4, &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                err.trim().lines().count(),
                1,
                "{kind:?}: one-line error expected: {err}"
            );
        }
        assert_eq!(
            std::fs::read(&target).unwrap(),
            garbage,
            "{kind:?}: the damaged store must not be touched"
        );
        // A wrong key is an error too, not an overwrite.
        let sb2 = Sandbox::new(kind);
        set_public_profile(&sb2, &emu, "q");
        let snapshot = sb2.store_bytes();
        let out = sb2
            .cmd()
            .env(
                "NSAUTH_STORE_KEY",
                "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
            )
            .args(["--profile", "q", "status"])
            .output()
            .unwrap();
        assert_exit(&out, 4, &["status with the wrong key"]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("store key"));
        let after = sb2.store_bytes();
        let main_file = |v: &Vec<(std::path::PathBuf, Vec<u8>)>| {
            v.iter()
                .filter(|(p, _)| !p.to_string_lossy().ends_with("-shm"))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(main_file(&snapshot), main_file(&after), "{kind:?}");
    }
}

/// Every token-endpoint fault ends with the documented exit code and a one-line message, and
/// leaves the stored tokens usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_fault_matrix() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    emu.set_access_ttl(120);
    // Confidential: its refresh token survives a refresh whose answer was lost.
    set_confidential_profile(&sb, &emu, "f");
    login(&sb, "f").await;
    let s500 = || Fault::Status {
        status: 500,
        retry_after: None,
    };
    let s429 = || Fault::Status {
        status: 429,
        retry_after: None,
    };
    let cases: Vec<(&str, Vec<Fault>, i32, &str)> = vec![
        (
            "5xx after retries",
            (0..6).map(|_| s500()).collect(),
            5,
            "HTTP 500",
        ),
        (
            "429 without Retry-After",
            (0..6).map(|_| s429()).collect(),
            5,
            "HTTP 429",
        ),
        (
            "429 with Retry-After then ok",
            vec![Fault::Status {
                status: 429,
                retry_after: Some(1),
            }],
            0,
            "",
        ),
        (
            "slow answer",
            vec![Fault::Delay(Duration::from_millis(1500))],
            0,
            "",
        ),
        (
            "garbage JSON",
            vec![Fault::GarbageJson],
            5,
            "not valid token JSON",
        ),
        ("HTML error page", vec![Fault::HtmlPage], 5, "HTML"),
        ("oversized body", vec![Fault::Oversized], 5, "larger than"),
        (
            "no access_token",
            vec![Fault::MissingAccessToken],
            5,
            "no access_token",
        ),
        (
            "400 invalid_client",
            vec![Fault::Status {
                status: 401,
                retry_after: None,
            }],
            2,
            "client",
        ),
    ];
    for (what, faults, code, needle) in cases {
        for f in faults {
            emu.inject(f);
        }
        let out = sb.run(&["--profile", "f", "token", "--min-ttl", "300"]);
        assert_exit(&out, code, &[what]);
        let err = String::from_utf8_lossy(&out.stderr);
        if code != 0 {
            assert_eq!(
                err.trim().lines().count(),
                1,
                "{what}: one line expected: {err}"
            );
            assert!(err.contains(needle), "{what}: {err}");
            assert!(!err.contains(CLIENT_SECRET));
        }
        // Whatever happened, the stored tokens still work.
        let t = sb.ok(&["--profile", "f", "token", "--min-ttl", "300"]);
        assert!(
            token_works(&emu, t.trim()).await,
            "{what}: stored tokens damaged"
        );
    }
    // A TLS failure (https to a plain-http port) is "NetSuite unreachable".
    let tls = format!("{}/token", emu.base_url().replace("http://", "https://"));
    sb.ok(&["profile", "set", "f", "--token-url", &tls]);
    let out = sb.run(&["--profile", "f", "token", "--min-ttl", "300"]);
    assert_exit(&out, 5, &["TLS failure"]);
}

/// 64 processes update one profile at once: every write is compare-and-swap, so each either
/// lands whole or fails with the store exit code (4) after bounded retries; the record stays
/// readable and holds one writer's complete update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_storm_of_64_writers() {
    let emu = emulator().await;
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        set_public_profile(&sb, &emu, "storm");
        let outs = run_concurrently((1..=64u32).map(|h| {
            let mut c = sb.cmd();
            c.args([
                "profile",
                "set",
                "storm",
                "--refresh-token-validity",
                &h.to_string(),
            ]);
            c
        }))
        .await;
        let mut ok = 0;
        for o in &outs {
            match o.status.code() {
                Some(0) => ok += 1,
                Some(4) => assert_eq!(String::from_utf8_lossy(&o.stderr).trim().lines().count(), 1),
                other => panic!(
                    "{kind:?}: unexpected exit {other:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                ),
            }
        }
        assert!(ok >= 1, "{kind:?}: no writer succeeded");
        let shown: serde_json::Value =
            serde_json::from_str(&sb.ok(&["profile", "show", "storm", "--json"])).unwrap();
        let h = shown["refresh_token_validity_hours"]
            .as_u64()
            .expect("a complete update");
        assert!((1..=64).contains(&h));
        assert_eq!(
            shown["client_id"], PUBLIC_CLIENT,
            "{kind:?}: the rest of the record is intact"
        );
        eprintln!("{kind:?}: {ok}/64 writers landed");
    }
}

/// A holder killed with SIGKILL while it holds the refresh lease delays the others by at most
/// the lease time; then exactly one of them takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_lease_holder_is_taken_over() {
    let emu = emulator().await;
    for kind in KINDS {
        let mut sb = Sandbox::new(kind);
        sb.extra_env
            .push(("NSAUTH_LEASE_SECONDS".into(), "3".into()));
        emu.set_access_ttl(120);
        set_confidential_profile(&sb, &emu, "k");
        login(&sb, "k").await;
        let count = |sb: &Sandbox| -> u64 {
            let st: serde_json::Value =
                serde_json::from_str(&sb.ok(&["--profile", "k", "status", "--json"])).unwrap();
            st["refresh_count"].as_u64().unwrap()
        };
        let before = count(&sb);
        let requests = emu.counters().token_requests;
        // The holder's refresh hangs at NetSuite; kill it while it holds the lease.
        emu.inject(Fault::Delay(Duration::from_secs(20)));
        let mut holder = sb
            .cmd()
            .args(["--profile", "k", "token", "--min-ttl", "300"])
            .spawn()
            .unwrap();
        assert!(
            poll(Duration::from_secs(20), || (emu.counters().token_requests
                > requests)
                .then_some(()))
            .is_some(),
            "{kind:?}: the holder never reached NetSuite"
        );
        holder.kill().unwrap();
        holder.wait().unwrap();
        let started = Instant::now();
        let outs = run_concurrently((0..4).map(|_| {
            let mut c = sb.cmd();
            c.args(["--profile", "k", "token", "--min-ttl", "300"]);
            c
        }))
        .await;
        let waited = started.elapsed();
        let mut tokens = std::collections::BTreeSet::new();
        for o in &outs {
            assert_ok(o, &["token after the holder died"]);
            tokens.insert(String::from_utf8(o.stdout.clone()).unwrap());
        }
        assert_eq!(tokens.len(), 1, "{kind:?}: one takeover, one token for all");
        assert!(
            waited < Duration::from_secs(15),
            "{kind:?}: waited {waited:?} for a 3 s lease"
        );
        assert_eq!(
            count(&sb),
            before + 1,
            "{kind:?}: exactly one refresh was stored for this expiry"
        );
    }
}
