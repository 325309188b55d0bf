//! End to end: processes whose clocks disagree share one store (a second machine with another
//! clock, as with a shared Vault or AWS store). Found by `cargo xtask chaos`
//! (docs/reliability.md); the clocks are moved with libfaketime (`apt-get install faketime`).

use nsauth_e2e::*;
use std::path::Path;

const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// An emulator whose access tokens live 90 s; `None` (the test is skipped) without
/// libfaketime.
async fn emulator_90s() -> Option<nsauth_emulator::Emulator> {
    if !Path::new(FAKETIME).exists() {
        eprintln!("skipped: {FAKETIME} is missing (apt-get install faketime)");
        return None;
    }
    let emu = emulator().await;
    emu.set_access_ttl(90);
    Some(emu)
}

/// A sandbox of `kind` with the profile `conf` logged in (confidential, or public).
async fn logged_in(emu: &nsauth_emulator::Emulator, kind: Kind, public: bool) -> Sandbox {
    let sb = Sandbox::new(kind);
    if public {
        set_public_profile(&sb, emu, "conf");
    } else {
        set_confidential_profile(&sb, emu, "conf");
    }
    login(&sb, "conf").await;
    sb
}

/// `nsauth --profile conf ARGS` with the clock moved by `offset` (e.g. `+40s`).
fn skewed(sb: &Sandbox, offset: &str, args: &[&str]) -> String {
    let mut c = sb.cmd();
    c.env("LD_PRELOAD", FAKETIME)
        .env("FAKETIME", offset)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .args(["--profile", "conf"])
        .args(args);
    let out = c.output().expect("run nsauth");
    assert_ok(&out, args);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_clock_elsewhere_does_not_stretch_min_ttl_here() {
    let Some(emu) = emulator_90s().await else {
        return;
    };
    for kind in KINDS {
        let sb = logged_in(&emu, kind, false).await;
        // A process whose clock runs 40 s fast sees 50 s left on the new 90 s token and
        // refreshes: the token it gets lives 90 s, whatever its clock says.
        let before = emu.counters().refresh_token;
        let fast = skewed(&sb, "+40s", &["token"]);
        assert_eq!(emu.counters().refresh_token, before + 1, "{kind:?}");
        // A process with the right clock asking for 100 s must not get that token.
        let here = sb.ok(&["--profile", "conf", "token", "--min-ttl", "100"]);
        assert!(
            here != fast,
            "{kind:?}: a token with about 90 s left was printed for --min-ttl 100"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_force_refreshes_after_a_fast_clock_refreshed() {
    let Some(emu) = emulator_90s().await else {
        return;
    };
    for kind in KINDS {
        let sb = logged_in(&emu, kind, false).await;
        skewed(&sb, "+40s", &["token"]);
        let before = emu.counters().refresh_token;
        sb.ok(&["--profile", "conf", "refresh", "--force"]);
        assert_eq!(
            emu.counters().refresh_token,
            before + 1,
            "{kind:?}: refresh --force did not reach NetSuite"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_clock_holding_the_lease_does_not_lose_a_public_grant() {
    let Some(emu) = emulator_90s().await else {
        return;
    };
    for kind in KINDS {
        let sb = logged_in(&emu, kind, true).await;
        // A process whose clock is 120 s behind refreshes (forced: tokens are stamped with
        // NetSuite's clock, so a slow clock no longer thinks they expire early): it takes the
        // refresh lease (30 s by its clock: already over by everyone
        // else's) and NetSuite is slow to answer it.
        emu.inject(nsauth_emulator::Fault::Delay(
            std::time::Duration::from_secs(3),
        ));
        let asked = emu.counters().token_requests;
        let mut slow = sb.cmd();
        slow.env("LD_PRELOAD", FAKETIME)
            .env("FAKETIME", "-120s")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .args(["--profile", "conf", "refresh", "--force"]);
        let mut slow = slow
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Wait until its refresh is on the wire, then a process with the right clock asks.
        let asking = poll(std::time::Duration::from_secs(10), || {
            (emu.counters().token_requests > asked).then_some(())
        });
        if asking.is_none() {
            let _ = slow.kill();
            let out = slow.wait_with_output().expect("wait");
            panic!("{kind:?}: the slow-clock process never asked NetSuite: {out:?}");
        }
        let here = sb.run(&["--profile", "conf", "token", "--min-ttl", "100"]);
        let slow = slow.wait_with_output().expect("wait");
        // Whatever each of them printed, the grant must survive: a later run gets a token
        // that works.
        let after = sb.run(&["--profile", "conf", "token", "--min-ttl", "100"]);
        assert!(
            after.status.success(),
            "{kind:?}: the grant is lost (here: {:?}, slow: {:?}): {}",
            here.status,
            slow.status,
            String::from_utf8_lossy(&after.stderr)
        );
        assert!(token_works(&emu, String::from_utf8_lossy(&after.stdout).trim()).await);
    }
}
