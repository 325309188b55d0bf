//! End to end on the PostgreSQL store (the server `cargo xtask test` starts): login, a cached
//! token, a storm of 128 concurrent `nsauth token` processes after expiry causing exactly one
//! refresh, and the exit codes of a wrong password, a server that is down and a bad URI.

use nsauth_e2e::*;
use nsauth_emulator::Fault;
use std::time::Duration;

/// A sandbox on a fresh table of the test server, or `None` when there is none (a failure
/// under `NSAUTH_REQUIRE_SERVICES=1`).
fn postgres_sandbox() -> Option<Sandbox> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (get("NSAUTH_TEST_POSTGRES"), get("PGPASSWORD")) {
        (Some(uri), Some(pw)) => {
            let table = format!("e2e_{}", std::process::id());
            let uri = format!("{uri}&table={table}");
            Some(Sandbox::remote(uri, vec![("PGPASSWORD".into(), pw)]))
        }
        _ if get("NSAUTH_REQUIRE_SERVICES").as_deref() == Some("1") => {
            panic!("NSAUTH_REQUIRE_SERVICES=1 but NSAUTH_TEST_POSTGRES/PGPASSWORD are not set; run cargo xtask test")
        }
        _ => {
            eprintln!("SKIPPED postgres: no server (run cargo xtask services up)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_128_processes_refreshes_once() {
    let Some(sb) = postgres_sandbox() else { return };
    let emu = emulator().await;
    emu.set_access_ttl(120);
    set_public_profile(&sb, &emu, "ci");
    login(&sb, "ci").await;
    let t1 = sb.ok(&["--profile", "ci", "token"]);
    assert_eq!(
        sb.ok(&["--profile", "ci", "token"]),
        t1,
        "cached token expected"
    );
    emu.set_access_ttl(3600);
    emu.inject(Fault::Delay(Duration::from_millis(700)));
    let before = emu.counters();
    let outs = run_concurrently((0..128).map(|_| {
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
        "exactly one refresh must reach NetSuite"
    );
    assert_eq!(
        tokens.len(),
        1,
        "all 128 callers must get the winner's token"
    );
    assert!(token_works(&emu, tokens.first().unwrap().trim()).await);
    sb.ok(&["profile", "delete", "ci"]);
}

#[test]
fn a_wrong_password_exits_4_without_showing_it() {
    let Some(mut sb) = postgres_sandbox() else {
        return;
    };
    sb.extra_env = vec![("PGPASSWORD".into(), "wrong-password-4711".into())];
    let out = sb.run(&["profile", "list"]);
    assert_exit(&out, 4, &["profile list, wrong password"]);
    assert!(
        contains(&out.stderr, "PGPASSWORD"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!contains(&out.stderr, "4711") && !contains(&out.stdout, "4711"));
}

#[test]
fn a_server_that_is_down_exits_4() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sb = Sandbox::remote(
        format!("postgres://nsauth@127.0.0.1:{port}/nsauth?sslmode=disable"),
        vec![],
    );
    let out = sb.run(&["profile", "list"]);
    assert_exit(&out, 4, &["profile list, server down"]);
    assert!(
        contains(&out.stderr, "cannot reach"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_uris_exit_2_with_one_line() {
    for (uri, says) in [
        (
            "postgres://u@127.0.0.1/d?table=Bad-Name",
            "not a valid name",
        ),
        ("postgres://u:s3cret-pw@127.0.0.1/d", "PGPASSWORD"),
        ("postgresql://u@127.0.0.1/d?sslmode=sometimes", "sslmode"),
    ] {
        let sb = Sandbox::remote(uri.into(), vec![]);
        let out = sb.run(&["profile", "list"]);
        assert_exit(&out, 2, &[uri]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{uri}: {err}");
        assert!(!err.contains("s3cret-pw"), "{uri}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{uri}: {err}");
    }
}

#[test]
fn backends_lists_postgres() {
    let out = Sandbox::new(Kind::Sqlite).ok(&["backends"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("postgres,postgresql ") && l.contains("PGPASSWORD")),
        "{out}"
    );
}
