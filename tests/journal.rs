//! End to end: the recovery journal across projects, and an entry nsauth cannot read.
//!
//! Both projects use the relative URI `file://profiles` from their own directory and share
//! one user's journal (`$HOME/.local/state/nsauth/journal`). Project A's refresh is made to
//! fail at the save (the test holds the file store's lock), so its rotated tokens go to the
//! journal; project B must never see them, and A must get them back.

use nsauth_e2e::*;
use nsauth_emulator::Fault;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn in_project(sb: &Sandbox, dir: &Path, args: &[&str]) -> Command {
    let mut c = sb.cmd();
    c.current_dir(dir)
        .env("NSAUTH_STORE", "file://profiles")
        .env("NSAUTH_STORE_TIMEOUT_SECONDS", "1")
        .args(args);
    c
}

fn ok(mut c: Command) -> String {
    let out = c.output().expect("run nsauth");
    assert_ok(&out, &["(project command)"]);
    String::from_utf8(out.stdout).expect("utf8")
}

fn profile_set(sb: &Sandbox, dir: &Path, emu: &nsauth_emulator::Emulator, client: &str) {
    let base = emu.base_url();
    let mut args = vec![
        "profile",
        "set",
        "p",
        "--account-id",
        emu.account_id(),
        "--client-id",
        client,
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "rest_webservices",
        "--base-url",
        &base,
    ];
    let secret = client == CONF_CLIENT;
    if secret {
        args.push("--client-secret-stdin");
    }
    let mut c = in_project(sb, dir, &args);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        if secret {
            stdin
                .write_all(format!("{CLIENT_SECRET}\n").as_bytes())
                .expect("secret");
        }
    }
    assert_ok(&child.wait_with_output().expect("wait"), &args);
}

async fn project_login(sb: &Sandbox, dir: &Path) {
    let url = ok(in_project(sb, dir, &["--profile", "p", "login", "start"]));
    let landed = nsauth_emulator::browser_login(url.trim(), USER, PASSWORD, true)
        .await
        .expect("browser login");
    ok(in_project(
        sb,
        dir,
        &["--profile", "p", "login", "finish", &landed],
    ));
}

/// Runs `token --min-ttl 300` in `dir` while the store's lock is held from the moment the
/// refresh reaches NetSuite: the rotated tokens cannot be saved and go to the journal.
async fn token_with_store_locked(
    sb: &Sandbox,
    dir: &Path,
    emu: &nsauth_emulator::Emulator,
) -> Output {
    let before = emu.counters().token_requests;
    emu.inject(Fault::Delay(Duration::from_millis(1500)));
    let child = in_project(sb, dir, &["--profile", "p", "token", "--min-ttl", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let arrived = poll(Duration::from_secs(20), || {
        (emu.counters().token_requests > before).then_some(())
    });
    assert!(arrived.is_some(), "the refresh never reached the emulator");
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(dir.join("profiles/.lock"))
        .expect("lock file");
    lock.lock().expect("hold the store lock");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    lock.unlock().expect("unlock");
    out
}

fn status(sb: &Sandbox, dir: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(in_project(
        sb,
        dir,
        &["--profile", "p", "status", "--json"],
    )))
    .expect("status json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_relative_uri_in_two_projects_never_crosses_tokens() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::File);
    let (a, b) = (
        sb.dir.path().join("project-a"),
        sb.dir.path().join("project-b"),
    );
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    emu.set_access_ttl(120);
    profile_set(&sb, &a, &emu, PUBLIC_CLIENT);
    project_login(&sb, &a).await;
    profile_set(&sb, &b, &emu, CONF_CLIENT);
    project_login(&sb, &b).await;
    emu.set_access_ttl(3600);

    let out = token_with_store_locked(&sb, &a, &emu).await;
    assert_ok(&out, &["token in project A while its store is locked"]);
    assert!(
        contains(&out.stderr, "journal"),
        "A is told its tokens were journaled"
    );
    let a_token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(status(&sb, &a)["pending_recovery"], true);
    assert_eq!(
        status(&sb, &b)["pending_recovery"],
        false,
        "A's entry is not B's"
    );

    // B's next token is B's own, from B's client.
    let b_token = ok(in_project(&sb, &b, &["--profile", "p", "token"]));
    assert_ne!(
        b_token, a_token,
        "project B printed project A's access token"
    );
    // A gets its journaled token back, and its rotated refresh token still works.
    assert_eq!(
        ok(in_project(&sb, &a, &["--profile", "p", "token"])),
        a_token
    );
    assert_eq!(status(&sb, &a)["pending_recovery"], false);
    let started = Instant::now();
    ok(in_project(
        &sb,
        &a,
        &["--profile", "p", "refresh", "--force"],
    ));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the journaled holder's lease was cleared ({:?})",
        started.elapsed()
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_journal_entry_is_quarantined_not_retried_forever() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::File);
    let a = sb.dir.path().join("project");
    std::fs::create_dir_all(&a).unwrap();
    emu.set_access_ttl(120);
    profile_set(&sb, &a, &emu, CONF_CLIENT);
    project_login(&sb, &a).await;
    let out = token_with_store_locked(&sb, &a, &emu).await;
    assert_ok(&out, &["token while the store is locked"]);
    // Damage the entry.
    let journal = sb.dir.path().join(".local/state/nsauth/journal");
    let entries: Vec<_> = std::fs::read_dir(&journal)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    std::fs::write(&entries[0], "not a sealed entry").unwrap();

    let mut child = in_project(&sb, &a, &["--profile", "p", "token", "--min-ttl", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ended = poll(Duration::from_secs(30), || child.try_wait().unwrap());
    if ended.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("nsauth token spun on an unreadable journal entry");
    }
    let out = child.wait_with_output().unwrap();
    assert_ok(&out, &["token with a damaged journal entry"]);
    assert!(contains(&out.stderr, "quarantine"), "the user is told once");
    let st = status(&sb, &a);
    assert_eq!(st["pending_recovery"], false);
    assert_eq!(
        st["journal_quarantined"].as_array().map(Vec::len),
        Some(1),
        "{st}"
    );
    // The next run does not warn again.
    let out = in_project(&sb, &a, &["--profile", "p", "token"])
        .output()
        .unwrap();
    assert_ok(&out, &["token"]);
    assert!(!contains(&out.stderr, "quarantine"));
    emu.shutdown().await;
}
