//! End to end: `nsauth m2m rotate` against the emulator's certificate rules. The old and the new
//! certificate both mint tokens during the overlap; `profile set --certificate-id` switches.

use nsauth_e2e::*;
use nsauth_emulator::{CertificateMapping, CertificateRefused, ClientSpec, Emulator};

const CLIENT: &str = "m2m-rotate-client";

/// A client-credentials profile "m2m" whose certificate "OLD" is mapped in the emulator.
fn m2m_profile(sb: &Sandbox, emu: &Emulator) {
    let dir = sb.dir.path().join("keys");
    sb.ok(&["m2m", "keygen", "--out", dir.to_str().unwrap()]);
    let cert = std::fs::read_to_string(dir.join("certificate.pem")).unwrap();
    emu.map_certificate(CLIENT, mapping("OLD", cert)).unwrap();
    sb.ok(&[
        "profile",
        "set",
        "m2m",
        "--grant",
        "client-credentials",
        "--account-id",
        emu.account_id(),
        "--client-id",
        CLIENT,
        "--scope",
        "rest_webservices",
        "--certificate-id",
        "OLD",
        "--private-key-file",
        dir.join("private-key.pem").to_str().unwrap(),
        "--base-url",
        &emu.base_url(),
    ]);
}

fn mapping(kid: &str, certificate_pem: String) -> CertificateMapping {
    CertificateMapping {
        kid: kid.into(),
        certificate_pem,
    }
}

/// Mints a new token (never the cached one) and proves it works at the API.
async fn mint(sb: &Sandbox, emu: &Emulator) -> Result<(), String> {
    let out = sb.run(&["--profile", "m2m", "refresh", "--force"]);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let token = sb.ok(&["--profile", "m2m", "token"]);
    assert!(token_works(emu, token.trim()).await, "minted token refused");
    Ok(())
}

fn status(sb: &Sandbox) -> serde_json::Value {
    serde_json::from_str(&sb.ok(&["--profile", "m2m", "status", "--json"])).unwrap()
}

fn roles(st: &serde_json::Value) -> Vec<(String, String)> {
    st["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["role"].as_str().unwrap().to_owned(),
                c["certificate_id"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_and_new_certificates_both_work_during_the_overlap_and_profile_set_switches() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m(CLIENT));
    for kind in KINDS {
        let sb = Sandbox::new(kind);
        m2m_profile(&sb, &emu);
        mint(&sb, &emu).await.unwrap();

        let cert_file = sb.dir.path().join("next.pem");
        let out = sb.ok(&[
            "--profile",
            "m2m",
            "m2m",
            "rotate",
            "--out",
            cert_file.to_str().unwrap(),
        ]);
        assert!(
            out.contains("Manage Authentication") && out.contains("--certificate-id NEW_ID"),
            "{out}"
        );
        let next_pem = std::fs::read_to_string(&cert_file).unwrap();
        assert!(
            next_pem.starts_with("-----BEGIN CERTIFICATE-----"),
            "{next_pem}"
        );
        assert!(!next_pem.contains("PRIVATE"));
        assert_eq!(
            roles(&status(&sb)),
            pairs(&[("active", "OLD"), ("next", "-")])
        );
        // A second rotation while one waits is refused, and changes nothing.
        let again = sb.run(&["--profile", "m2m", "m2m", "rotate"]);
        assert_exit(&again, 2, &["m2m", "rotate"]);
        assert!(contains(&again.stderr, "--replace"));
        let shown = sb.ok(&["--profile", "m2m", "m2m", "rotate", "--show"]);
        assert!(shown.contains(next_pem.trim()), "{shown}");

        // The administrator maps the new certificate; the old one keeps working.
        emu.map_certificate(CLIENT, mapping("NEW", next_pem.clone()))
            .unwrap();
        mint(&sb, &emu).await.unwrap();

        sb.ok(&["profile", "set", "m2m", "--certificate-id", "NEW"]);
        let st = status(&sb);
        assert_eq!(roles(&st), pairs(&[("active", "NEW"), ("previous", "OLD")]));
        assert_eq!(
            st["certificate_expires_at"],
            st["certificates"][0]["not_after"]
        );
        mint(&sb, &emu).await.unwrap();

        // Both keys are still valid at the emulator: back to the old one, and forth again.
        sb.ok(&["profile", "set", "m2m", "--certificate-id", "OLD"]);
        assert_eq!(
            roles(&status(&sb)),
            pairs(&[("active", "OLD"), ("previous", "NEW")])
        );
        mint(&sb, &emu).await.unwrap();
        sb.ok(&["profile", "set", "m2m", "--certificate-id", "NEW"]);

        // The old certificate is removed in NetSuite: the new key alone mints...
        assert!(emu.remove_certificate(CLIENT, "OLD"));
        mint(&sb, &emu).await.unwrap();
        // ... and the old key really was the one signing as OLD: it is refused now.
        sb.ok(&["profile", "set", "m2m", "--certificate-id", "OLD"]);
        let refused = mint(&sb, &emu).await.unwrap_err();
        assert!(!refused.is_empty());
        sb.ok(&["profile", "set", "m2m", "--certificate-id", "NEW"]);
        sb.ok(&["--profile", "m2m", "m2m", "rotate", "--finish"]);
        assert_eq!(roles(&status(&sb)), pairs(&[("active", "NEW")]));
        mint(&sb, &emu).await.unwrap();
        let trail = sb.ok(&["audit", "--for-profile", "m2m"]);
        assert!(
            trail.contains("next certificate made") && trail.contains("previous key forgotten"),
            "{trail}"
        );
        assert!(emu.remove_certificate(CLIENT, "NEW"));

        // Neither key's material is on disk outside the sealed store.
        for (path, bytes) in sb.store_bytes() {
            assert!(!contains(&bytes, "PRIVATE KEY"), "{}", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_two_years_is_refused_with_one_line_and_nothing_stored() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m(CLIENT));
    let sb = Sandbox::new(Kind::Sqlite);
    m2m_profile(&sb, &emu);
    let out_file = sb.dir.path().join("never.pem");
    let args = [
        "--profile",
        "m2m",
        "m2m",
        "rotate",
        "--days",
        "800",
        "--out",
        out_file.to_str().unwrap(),
    ];
    let out = sb.run(&args);
    assert_exit(&out, 2, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("two years") && err.contains("800"), "{err}");
    assert!(!out_file.exists());
    // An --out that cannot be written is refused before anything is made or stored.
    let missing = sb.dir.path().join("no-such-dir").join("next.pem");
    let args = [
        "--profile",
        "m2m",
        "m2m",
        "rotate",
        "--out",
        missing.to_str().unwrap(),
    ];
    assert_exit(&sb.run(&args), 2, &args);
    assert_eq!(roles(&status(&sb)), pairs(&[("active", "OLD")]));
    assert!(emu.remove_certificate(CLIENT, "OLD"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixth_certificate_is_refused_by_the_emulator() {
    let emu = emulator().await;
    let client = "m2m-six";
    emu.add_client(ClientSpec::m2m(client));
    let sb = Sandbox::new(Kind::Sqlite);
    for i in 0..6 {
        let dir = sb.dir.path().join(format!("k{i}"));
        sb.ok(&[
            "m2m",
            "keygen",
            "--out",
            dir.to_str().unwrap(),
            "--days",
            "30",
        ]);
        let cert = std::fs::read_to_string(dir.join("certificate.pem")).unwrap();
        let got = emu.map_certificate(client, mapping(&format!("c{i}"), cert));
        if i < 5 {
            got.unwrap();
        } else {
            assert_eq!(got, Err(CertificateRefused::TooMany));
        }
    }
}
