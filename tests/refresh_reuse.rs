//! End to end: requests that carry something single-use, when their answer is lost after
//! NetSuite processed them. A public client's refresh is never sent again (against a server
//! with refresh token reuse detection, a second send would revoke the whole grant); a
//! confidential client's is; an M2M mint is retried with a freshly signed assertion.

use nsauth_e2e::*;
use nsauth_emulator::{ClientSpec, Fault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_refresh_answer_is_not_resent_and_the_grant_survives() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::public(PUBLIC_CLIENT, REDIRECT).with_reuse_detection());
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        emu.set_access_ttl(120);
        set_public_profile(&sb, &emu, "pub");
        login(&sb, "pub").await;
        let access = sb.ok(&["--profile", "pub", "token"]);
        assert!(token_works(&emu, access.trim()).await);

        emu.inject(Fault::AnswerLost);
        let before = emu.counters();
        let out = sb.run(&["--profile", "pub", "token", "--min-ttl", "300"]);
        let after = emu.counters();
        assert_exit(&out, 5, &["token whose refresh answer was lost"]);
        assert_eq!(
            after.token_requests - before.token_requests,
            1,
            "{kind:?}: the spent refresh token was presented again"
        );
        assert_eq!(after.refresh_token - before.refresh_token, 1, "{kind:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{kind:?}: one line: {err}");
        assert!(
            err.contains("not sent again") && err.contains("nsauth login"),
            "{kind:?}: the message says what happened and what to do: {err}"
        );
        // The grant was not revoked by reuse detection: the access token from before still
        // works at NetSuite.
        assert!(
            token_works(&emu, access.trim()).await,
            "{kind:?}: the grant was revoked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_revokes_the_grant_when_a_spent_refresh_token_comes_back() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::public(PUBLIC_CLIENT, REDIRECT).with_reuse_detection());
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "pub");
    login(&sb, "pub").await;
    // Keep a copy of the store as it is now: its refresh token is about to be spent.
    let snapshot = sb.store_bytes();
    sb.ok(&["--profile", "pub", "refresh", "--force"]);
    let fresh = sb.ok(&["--profile", "pub", "token"]);
    assert!(token_works(&emu, fresh.trim()).await);
    // Put the old store back and refresh with the spent token: the whole grant dies.
    for (path, bytes) in &snapshot {
        std::fs::write(path, bytes).unwrap();
    }
    let out = sb.run(&["--profile", "pub", "refresh", "--force"]);
    assert_exit(&out, 3, &["refresh with a spent token"]);
    assert!(
        !token_works(&emu, fresh.trim()).await,
        "reuse detection revokes the tokens issued after the spent one too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_refresh_whose_answer_was_lost_is_retried() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    emu.set_access_ttl(120);
    set_confidential_profile(&sb, &emu, "conf");
    login(&sb, "conf").await;
    emu.inject(Fault::AnswerLost);
    let before = emu.counters();
    let t = sb.ok(&["--profile", "conf", "token", "--min-ttl", "300"]);
    assert!(token_works(&emu, t.trim()).await);
    assert_eq!(
        emu.counters().token_requests - before.token_requests,
        2,
        "a reusable refresh token is simply sent again"
    );
}

/// A client assertion is single-use too (NetSuite refuses a `jti` it has seen): a mint whose
/// answer was lost is retried with a freshly signed assertion, not the same one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_mint_answer_is_retried_with_a_fresh_assertion() {
    use nsauth_emulator::CertificateMapping;
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("m2m-client"));
    let sb = Sandbox::new(Kind::Sqlite);
    let dir = sb.dir.path().join("keys");
    sb.ok(&["m2m", "keygen", "--out", dir.to_str().unwrap()]);
    emu.add_certificate(
        "m2m-client",
        CertificateMapping {
            kid: "kid-1".into(),
            certificate_pem: std::fs::read_to_string(dir.join("certificate.pem")).unwrap(),
        },
    );
    let key = dir.join("private-key.pem");
    sb.ok(&[
        "profile",
        "set",
        "m2m",
        "--grant",
        "client-credentials",
        "--account-id",
        emu.account_id(),
        "--client-id",
        "m2m-client",
        "--scope",
        "rest_webservices",
        "--certificate-id",
        "kid-1",
        "--private-key-file",
        key.to_str().unwrap(),
        "--base-url",
        &emu.base_url(),
    ]);
    emu.inject(Fault::AnswerLost);
    let before = emu.counters();
    let out = sb.run(&["--profile", "m2m", "token"]);
    assert_ok(&out, &["token after a lost mint answer"]);
    let t = String::from_utf8(out.stdout).unwrap();
    assert!(token_works(&emu, t.trim()).await);
    let after = emu.counters();
    assert_eq!(after.token_requests - before.token_requests, 2);
    assert_eq!(after.client_credentials - before.client_credentials, 2);
}
