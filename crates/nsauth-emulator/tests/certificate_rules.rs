//! NetSuite's rules for mapping M2M certificates: at most five active per integration, at most
//! two years' validity, none expired; a removed mapping's `kid` no longer works.

mod common;

use common::*;
use nsauth_emulator::{
    CertificateMapping, CertificateRefused, ClientSpec, JWT_BEARER, MAX_ACTIVE_CERTIFICATES,
};

/// A self-signed EC P-256 certificate valid from `from_days` to `to_days` around now.
fn certificate(from_days: i64, to_days: i64) -> String {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    certificate_for(&kp, from_days, to_days)
}

fn certificate_for(kp: &rcgen::KeyPair, from_days: i64, to_days: i64) -> String {
    let mut p = rcgen::CertificateParams::new(vec!["m2m.example.com".to_owned()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + time::Duration::days(from_days);
    p.not_after = now + time::Duration::days(to_days);
    p.self_signed(kp).unwrap().pem()
}

fn mapping(kid: &str, certificate_pem: String) -> CertificateMapping {
    CertificateMapping {
        kid: kid.into(),
        certificate_pem,
    }
}

#[tokio::test]
async fn a_sixth_active_certificate_is_refused_and_expired_ones_do_not_count() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("m2m"));
    for i in 0..MAX_ACTIVE_CERTIFICATES {
        emu.map_certificate("m2m", mapping(&format!("c{i}"), certificate(-1, 365)))
            .unwrap();
    }
    assert_eq!(
        emu.map_certificate("m2m", mapping("c5", certificate(-1, 365))),
        Err(CertificateRefused::TooMany)
    );
    // Re-uploading under a mapped kid replaces it: still five.
    emu.map_certificate("m2m", mapping("c0", certificate(-1, 200)))
        .unwrap();
    // A removed certificate frees its place.
    assert!(emu.remove_certificate("m2m", "c4"));
    assert!(!emu.remove_certificate("m2m", "c4"));
    emu.map_certificate("m2m", mapping("c5", certificate(-1, 365)))
        .unwrap();

    // An expired mapping (added without checks) is not active.
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("m2m"));
    emu.add_certificate("m2m", mapping("old", certificate(-400, -1)));
    for i in 0..MAX_ACTIVE_CERTIFICATES {
        emu.map_certificate("m2m", mapping(&format!("c{i}"), certificate(-1, 30)))
            .unwrap();
    }
}

#[tokio::test]
async fn longer_than_two_years_expired_garbage_and_unknown_clients_are_refused_at_mapping() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("m2m"));
    let refused = |r: Result<(), CertificateRefused>| match r {
        Err(CertificateRefused::Invalid(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let why = refused(emu.map_certificate("m2m", mapping("long", certificate(-1, 800))));
    assert!(why.contains("two years"), "{why}");
    let why = refused(emu.map_certificate("m2m", mapping("gone", certificate(-400, -1))));
    assert!(why.contains("expired"), "{why}");
    let why = refused(emu.map_certificate("m2m", mapping("junk", "not a pem".into())));
    assert!(why.contains("PEM"), "{why}");
    emu.map_certificate("m2m", mapping("ok", certificate(-1, 729)))
        .unwrap();
    assert_eq!(
        emu.map_certificate("nobody", mapping("x", certificate(-1, 30))),
        Err(CertificateRefused::UnknownClient("nobody".into()))
    );
}

/// An ES256 assertion for client "m2m" signed with `kp` as `kid`; the token endpoint's answer.
async fn assert_with(
    emu: &nsauth_emulator::Emulator,
    kp: &rcgen::KeyPair,
    kid: &str,
) -> (u16, serde_json::Value) {
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::DecodePrivateKey as _;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    let claims = serde_json::json!({
        "iss": "m2m", "sub": "m2m", "aud": emu.token_url(), "scope": "rest_webservices",
        "iat": t, "exp": t + 300, "jti": format!("{kid}-{t}-{}", rand::random::<u64>()),
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = p256::ecdsa::SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap();
    let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
    let assertion = format!("{input}.{}", b64(&sig.to_bytes()));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    let (status, _, body) = token_request(emu, None, &form).await;
    (status, body)
}

#[tokio::test]
async fn two_mapped_certificates_both_work_the_kid_selects_and_expired_ones_are_refused() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("m2m"));
    let old = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let new = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    emu.map_certificate("m2m", mapping("old", certificate_for(&old, -1, 30)))
        .unwrap();
    emu.map_certificate("m2m", mapping("new", certificate_for(&new, -1, 365)))
        .unwrap();
    assert_eq!(assert_with(&emu, &old, "old").await.0, 200);
    assert_eq!(assert_with(&emu, &new, "new").await.0, 200);
    // The kid picks the certificate: a key under the other's kid does not verify.
    let (status, body) = assert_with(&emu, &old, "new").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    // A mapped certificate past its end (mapped without checks) is refused.
    let gone = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    emu.add_certificate("m2m", mapping("gone", certificate_for(&gone, -400, -1)));
    let (status, body) = assert_with(&emu, &gone, "gone").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("not valid now"),
        "{body}"
    );
}

#[tokio::test]
async fn an_assertion_naming_a_removed_certificate_is_refused() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("m2m"));
    emu.map_certificate("m2m", mapping("a", certificate(-1, 30)))
        .unwrap();
    assert!(emu.remove_certificate("m2m", "a"));
    // Any signature will do: the kid is checked first, as NetSuite does.
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let b64 = |v: serde_json::Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let header = b64(serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": "a"}));
    let claims = b64(serde_json::json!({
        "iss": "m2m", "aud": emu.token_url(), "scope": "rest_webservices", "iat": t, "exp": t + 300,
    }));
    let assertion = format!("{header}.{claims}.AAAA");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    let (status, _, body) = token_request(&emu, None, &form).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
}
