//! End to end: machine-to-machine tokens with keys from `nsauth m2m keygen`.

use nsauth_e2e::*;
use nsauth_emulator::{CertificateMapping, ClientSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_with_generated_keys() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("m2m-client"));
    for (alg, kind) in ["ec-p256", "rsa-3072"]
        .into_iter()
        .flat_map(|a| KINDS.map(|k| (a, k)))
    {
        let sb = Sandbox::new(kind);
        let dir = sb.dir.path().join(format!("keys-{alg}"));
        let out = sb.ok(&[
            "m2m",
            "keygen",
            "--out",
            dir.to_str().unwrap(),
            "--algorithm",
            alg,
            "--days",
            "365",
        ]);
        assert!(out.contains("certificate.pem"), "{out}");
        let cert = std::fs::read_to_string(dir.join("certificate.pem")).unwrap();
        let key_path = dir.join("private-key.pem");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let kid = format!("cert-{alg}-{kind:?}");
        emu.add_certificate(
            "m2m-client",
            CertificateMapping {
                kid: kid.clone(),
                certificate_pem: cert,
            },
        );
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
            "--scope",
            "restlets",
            "--certificate-id",
            &kid,
            "--private-key-file",
            key_path.to_str().unwrap(),
            "--base-url",
            &emu.base_url(),
        ]);
        let before = emu.counters().client_credentials;
        let t = sb.ok(&["--profile", "m2m", "token"]);
        assert!(
            token_works(&emu, t.trim()).await,
            "{alg}: minted token refused"
        );
        assert_eq!(
            sb.ok(&["--profile", "m2m", "token"]),
            t,
            "{alg}: second call must use the cache"
        );
        assert_eq!(emu.counters().client_credentials, before + 1);
        let st: serde_json::Value =
            serde_json::from_str(&sb.ok(&["--profile", "m2m", "status", "--json"])).unwrap();
        assert_eq!(st["grant"], "client-credentials");
        assert_eq!(st["health"], "ok");
        assert!(
            st["certificate_expires_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{st}"
        );
        // The private key never reaches the store in plaintext.
        let pem = std::fs::read_to_string(&key_path).unwrap();
        let body_line = pem.lines().nth(1).unwrap();
        for (path, bytes) in sb.store_bytes() {
            assert!(
                !contains(&bytes, body_line),
                "{alg}: private key material in {}",
                path.display()
            );
        }
    }
    // An unmapped certificate ID is refused by NetSuite: not a crash, not exit 0.
    let sb = Sandbox::new(Kind::Sqlite);
    let dir = sb.dir.path().join("k");
    sb.ok(&["m2m", "keygen", "--out", dir.to_str().unwrap()]);
    sb.ok(&[
        "profile",
        "set",
        "x",
        "--grant",
        "client-credentials",
        "--account-id",
        emu.account_id(),
        "--client-id",
        "m2m-client",
        "--scope",
        "rest_webservices",
        "--certificate-id",
        "unknown-kid",
        "--private-key-file",
        dir.join("private-key.pem").to_str().unwrap(),
        "--base-url",
        &emu.base_url(),
    ]);
    let out = sb.run(&["--profile", "x", "token"]);
    assert!(!out.status.success());
    let garbage = sb.dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = sb.run(&[
        "profile",
        "set",
        "y",
        "--grant",
        "client-credentials",
        "--account-id",
        "1234567",
        "--client-id",
        "c",
        "--scope",
        "restlets",
        "--certificate-id",
        "k",
        "--private-key-file",
        garbage.to_str().unwrap(),
    ]);
    assert_exit(&out, 2, &["profile set with garbage PEM"]);
}
