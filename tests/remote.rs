//! End to end on the remote stores (OpenBao's Vault API and moto's Secrets Manager), started
//! by `cargo xtask test`: login, cached token, and a storm of 16 concurrent `nsauth token`
//! processes after expiry causing exactly one refresh.

use nsauth_e2e::*;
use nsauth_emulator::Fault;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_stores_single_refresh_storm() {
    let emu = emulator().await;
    let sandboxes = remote_sandboxes();
    for (label, sb) in &sandboxes {
        eprintln!("running the storm on {label}: {}", sb.store_uri);
        emu.set_access_ttl(120);
        set_public_profile(sb, &emu, "ci");
        login(sb, "ci").await;
        let t1 = sb.ok(&["--profile", "ci", "token"]);
        assert_eq!(
            sb.ok(&["--profile", "ci", "token"]),
            t1,
            "{label}: cached token expected"
        );
        emu.set_access_ttl(3600);
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
            assert_ok(o, &["token (concurrent)", label]);
            tokens.insert(String::from_utf8(o.stdout.clone()).unwrap());
        }
        let after = emu.counters();
        assert_eq!(
            after.refresh_token - before.refresh_token,
            1,
            "{label}: exactly one refresh must reach NetSuite"
        );
        assert_eq!(
            tokens.len(),
            1,
            "{label}: all 16 callers must get the winner's token"
        );
        assert!(token_works(&emu, tokens.first().unwrap().trim()).await);
        sb.ok(&["profile", "delete", "ci"]);
    }
}
