//! Faults that must not lose a token: the store stops answering in the middle of a public
//! client's refresh (OpenBao paused with SIGSTOP). The rotated tokens go to the recovery
//! journal, the caller still gets its token, and the next run writes them to the store —
//! no new login needed. Runs in its own test binary because it pauses the shared server.

use nsauth_e2e::*;
use nsauth_emulator::Fault;
use std::time::Duration;

fn signal(pid: &str, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_paused_during_refresh_loses_nothing() {
    let Some((_, mut sb)) = remote_sandboxes().into_iter().find(|(l, _)| *l == "vault") else {
        return; // remote_sandboxes() already failed or printed SKIPPED
    };
    let pid = std::env::var("NSAUTH_TEST_VAULT_PID")
        .expect("NSAUTH_TEST_VAULT_PID (set by cargo xtask services up)");
    sb.extra_env
        .push(("NSAUTH_STORE_TIMEOUT_SECONDS".into(), "3".into()));
    let emu = emulator().await;
    emu.set_access_ttl(120);
    set_public_profile(&sb, &emu, "pause");
    login(&sb, "pause").await;
    let before = emu.counters();
    emu.inject(Fault::Delay(Duration::from_millis(1500)));
    let child = sb
        .cmd()
        .args(["--profile", "pause", "token", "--min-ttl", "300"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Pause the store while NetSuite is answering the refresh.
    let arrived = poll(Duration::from_secs(20), || {
        (emu.counters().token_requests > before.token_requests).then_some(())
    });
    assert!(arrived.is_some(), "the refresh never reached the emulator");
    signal(&pid, "-STOP");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    signal(&pid, "-CONT");
    assert_ok(&out, &["token while the store is paused"]);
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(
        token_works(&emu, token.trim()).await,
        "the caller got a working token"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("journal"),
        "the user is told the tokens were journaled"
    );
    assert_eq!(emu.counters().refresh_token, before.refresh_token + 1);

    let st: serde_json::Value =
        serde_json::from_str(&sb.ok(&["--profile", "pause", "status", "--json"])).unwrap();
    assert_eq!(st["pending_recovery"], true);
    // Next run: the journal goes to the store first; the same token comes back.
    assert_eq!(sb.ok(&["--profile", "pause", "token"]), token);
    let st: serde_json::Value =
        serde_json::from_str(&sb.ok(&["--profile", "pause", "status", "--json"])).unwrap();
    assert_eq!(st["pending_recovery"], false);
    // The rotated refresh token was kept: a forced refresh works without a login.
    sb.ok(&["--profile", "pause", "refresh", "--force"]);
    sb.ok(&["profile", "delete", "pause"]);
}
