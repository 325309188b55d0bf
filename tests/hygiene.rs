//! Secret hygiene: every command, at the most verbose logging, never shows a client secret,
//! refresh token, access token (except on `token`'s stdout) or private key — not on stdout,
//! not on stderr, not in the audit log.

use base64::Engine;
use nsauth_e2e::*;
use nsauth_emulator::{CertificateMapping, ClientSpec};

/// Reads the stored refresh token with the library, as only a holder of the key could.
async fn stored_refresh_token(sb: &Sandbox, profile: &str) -> String {
    let key = nsauth_core::seal::StoreKey::from_base64(&sb.key_b64).unwrap();
    let store = nsauth_store_sqlite::SqliteStore::open(&sb.store_path, key).unwrap();
    let name = nsauth_core::ProfileName::parse(profile).unwrap();
    let rec = nsauth_core::store::load_existing(&store, &name)
        .await
        .unwrap()
        .record;
    rec.tokens
        .unwrap()
        .refresh_token
        .unwrap()
        .secret()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_leaks_a_secret_at_trace_level() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("hygiene-m2m"));
    let sb = Sandbox::new(Kind::Sqlite);
    let other = Sandbox::new(Kind::File);
    set_confidential_profile(&sb, &emu, "c");
    login(&sb, "c").await;
    let keys = sb.dir.path().join("keys");
    sb.ok(&["m2m", "keygen", "--out", keys.to_str().unwrap()]);
    let cert = std::fs::read_to_string(keys.join("certificate.pem")).unwrap();
    emu.add_certificate(
        "hygiene-m2m",
        CertificateMapping {
            kid: "kid-h".into(),
            certificate_pem: cert,
        },
    );
    sb.ok(&[
        "profile",
        "set",
        "m",
        "--grant",
        "client-credentials",
        "--account-id",
        emu.account_id(),
        "--client-id",
        "hygiene-m2m",
        "--scope",
        "rest_webservices",
        "--certificate-id",
        "kid-h",
        "--private-key-file",
        keys.join("private-key.pem").to_str().unwrap(),
        "--base-url",
        &emu.base_url(),
    ]);
    let access = sb.ok(&["--profile", "c", "token"]).trim().to_owned();
    let m2m_access = sb.ok(&["--profile", "m", "token"]).trim().to_owned();
    let share_key = sb.dir.path().join("share.key");
    let recipient = sb
        .ok(&["share", "keygen", "--out", share_key.to_str().unwrap()])
        .trim()
        .to_owned();
    let bundle = sb.dir.path().join("c.age");
    let k = keys.to_str().unwrap().to_owned();

    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut run = |args: Vec<&str>, keep_stdout: bool| {
        let mut full = vec!["-vvv"];
        full.extend(args.iter().copied());
        let out = sb.run(&full);
        assert!(
            matches!(out.status.code(), Some(0..=5)),
            "{args:?} crashed: {out:?}"
        );
        if keep_stdout {
            outputs.push((format!("{args:?} stdout"), out.stdout));
        }
        outputs.push((format!("{args:?} stderr"), out.stderr));
    };
    run(vec!["profile", "list"], true);
    run(vec!["profile", "show", "c", "--json"], true);
    run(vec!["profile", "show", "m"], true);
    run(vec!["status", "--all", "--json"], true);
    run(vec!["check", "--all"], true);
    run(vec!["--profile", "c", "token"], false);
    run(vec!["--profile", "c", "token", "--min-ttl", "3300"], false);
    run(vec!["--profile", "c", "refresh", "--force"], true);
    run(vec!["--profile", "m", "refresh", "--force"], true);
    run(
        vec!["--profile", "c", "api", "GET", "record/v1/metadata-catalog"],
        true,
    );
    run(vec!["--profile", "c", "exec", "--", "true"], true);
    run(vec!["--profile", "c", "doctor"], true);
    run(vec!["--profile", "m", "doctor", "--json"], true);
    run(vec!["--profile", "c", "login", "start"], false);
    run(vec!["--profile", "c", "login", "start", "--handoff"], false);
    run(
        vec![
            "--profile",
            "c",
            "share",
            "export",
            "--recipient",
            &recipient,
            "--with-tokens",
            "--out",
            bundle.to_str().unwrap(),
        ],
        true,
    );
    run(
        vec![
            "share",
            "import",
            bundle.to_str().unwrap(),
            "--identity",
            share_key.to_str().unwrap(),
            "--as",
            "c2",
            "--yes",
        ],
        true,
    );
    run(
        vec![
            "--profile",
            "c",
            "migrate",
            "--to",
            &other.store_uri,
            "--dry-run",
        ],
        true,
    );
    run(vec!["m2m", "keygen", "--out", &format!("{k}-2")], true);
    run(vec!["audit", "--json"], true);
    run(vec!["backends"], true);
    run(vec!["conformance", "--only", "contract"], true);

    let refresh = stored_refresh_token(&sb, "c").await;
    let pem = std::fs::read_to_string(keys.join("private-key.pem")).unwrap();
    let key_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key_der_b64 = base64::engine::general_purpose::STANDARD.encode(
        base64::engine::general_purpose::STANDARD
            .decode(&key_body)
            .unwrap(),
    );
    let audit = std::fs::read(sb.dir.path().join("data/audit.jsonl"))
        .expect("the audit log beside the store");
    assert!(!audit.is_empty());
    outputs.push(("audit log".into(), audit));
    let secrets = [
        ("client secret", CLIENT_SECRET.to_owned()),
        ("refresh token", refresh),
        ("access token", access),
        ("m2m access token", m2m_access),
        ("private key", key_der_b64[..40].to_owned()),
    ];
    for (what, secret) in &secrets {
        for (place, bytes) in &outputs {
            assert!(!contains(bytes, secret), "the {what} appeared in {place}");
        }
    }
    // Trace logging really was on: something was logged.
    assert!(
        outputs
            .iter()
            .any(|(p, b)| p.contains("stderr") && contains(b, "DEBUG")),
        "no debug log lines were produced"
    );
}
