//! Client credentials (M2M) with assertions signed here, with keys and self-signed
//! certificates made here.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use nsauth_emulator::{CertificateMapping, ClientSpec, Emulator, JWT_BEARER};
use p256::pkcs8::DecodePrivateKey as _;
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
use serde_json::{json, Value};

enum Key {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Rsa(rsa::RsaPrivateKey),
}

impl Key {
    fn alg(&self) -> &'static str {
        match self {
            Key::P256(_) => "ES256",
            Key::P384(_) => "ES384",
            Key::Rsa(_) => "PS256",
        }
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Key::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(input);
                s.to_bytes().to_vec()
            }
            Key::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign(input);
                s.to_bytes().to_vec()
            }
            Key::Rsa(k) => rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(k.clone())
                .sign_with_rng(&mut rand::thread_rng(), input)
                .to_vec(),
        }
    }
}

/// A self-signed certificate for `kp`, valid from yesterday for `days` days.
fn certificate(kp: &rcgen::KeyPair, days: i64) -> String {
    let mut p = rcgen::CertificateParams::new(vec!["m2m.example.com".to_owned()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(days);
    p.self_signed(kp).unwrap().pem()
}

fn ec_p256() -> (Key, String) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    (
        Key::P256(p256::ecdsa::SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap()),
        certificate(&kp, 365),
    )
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn jwt(key: &Key, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()))
    )
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn good_claims(emu: &Emulator, client: &str) -> Value {
    let t = now();
    json!({
        "iss": client, "sub": client, "aud": emu.token_url(), "scope": "rest_webservices,restlets",
        "iat": t, "exp": t + 300, "jti": uuid::Uuid::new_v4().to_string(),
    })
}

async fn cc(emu: &Emulator, assertion: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    let (s, _, b) = token_request(emu, None, &form).await;
    (s, b)
}

/// Signs `claims` (changed by `edit`) with `key` as `kid`, and asks for a token.
async fn attempt(
    emu: &Emulator,
    key: &Key,
    kid: &str,
    edit: impl FnOnce(&mut Value, &mut Value),
) -> (u16, Value) {
    let mut header = json!({ "alg": key.alg(), "typ": "JWT", "kid": kid });
    let mut claims = good_claims(emu, "m2m");
    edit(&mut header, &mut claims);
    cc(emu, &jwt(key, &header, &claims)).await
}

#[tokio::test]
async fn es256_assertion_gets_a_token_and_every_deviation_is_refused() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("m2m"));
    let (key, cert) = ec_p256();
    emu.add_certificate(
        "m2m",
        CertificateMapping {
            kid: "ec-1".into(),
            certificate_pem: cert,
        },
    );

    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": "ec-1" });
    let assertion = jwt(&key, &header, &good_claims(&emu, "m2m"));
    let (s, b) = cc(&emu, &assertion).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["expires_in"], "3600");
    assert_eq!(b["token_type"], "bearer");
    assert!(
        b.get("refresh_token").is_none(),
        "no refresh token for client credentials"
    );
    assert_eq!(api_status(&emu, b["access_token"].as_str()).await, 200);
    assert_eq!(
        claims(b["access_token"].as_str().unwrap())["scope"],
        json!(["rest_webservices", "restlets"])
    );
    assert_eq!(
        cc(&emu, &assertion).await.1["error"],
        "invalid_client",
        "a replayed jti is refused"
    );

    type Edit = Box<dyn FnOnce(&mut Value, &mut Value)>;
    let t = now();
    let cases: Vec<(&str, Edit, u16, &str)> = vec![
        (
            "RS256",
            Box::new(|h, _| h["alg"] = json!("RS256")),
            400,
            "invalid_request",
        ),
        (
            "alg none",
            Box::new(|h, _| h["alg"] = json!("none")),
            400,
            "invalid_request",
        ),
        (
            "no typ",
            Box::new(|h, _| _ = h.as_object_mut().unwrap().remove("typ")),
            400,
            "invalid_request",
        ),
        (
            "unknown kid",
            Box::new(|h, _| h["kid"] = json!("other")),
            401,
            "invalid_client",
        ),
        (
            "array scope",
            Box::new(|_, c| c["scope"] = json!(["rest_webservices"])),
            400,
            "invalid_request",
        ),
        (
            "space scope",
            Box::new(|_, c| c["scope"] = json!("rest_webservices restlets")),
            400,
            "invalid_scope",
        ),
        (
            "scope not allowed",
            Box::new(|_, c| c["scope"] = json!("mcp")),
            400,
            "invalid_scope",
        ),
        (
            "aud mismatch",
            Box::new(|_, c| {
                c["aud"] = json!("https://1234567-sb1.suitetalk.api.netsuite.com/token")
            }),
            401,
            "invalid_client",
        ),
        (
            "aud array",
            Box::new(|_, c| c["aud"] = json!([c["aud"].clone()])),
            400,
            "invalid_request",
        ),
        (
            "exp - iat > 3600",
            Box::new(move |_, c| (c["iat"], c["exp"]) = (json!(t - 10), json!(t + 3591))),
            401,
            "invalid_client",
        ),
        (
            "expired",
            Box::new(move |_, c| (c["iat"], c["exp"]) = (json!(t - 400), json!(t - 10))),
            401,
            "invalid_client",
        ),
        (
            "iat in the future",
            Box::new(move |_, c| (c["iat"], c["exp"]) = (json!(t + 120), json!(t + 400))),
            401,
            "invalid_client",
        ),
        (
            "no iat",
            Box::new(|_, c| _ = c.as_object_mut().unwrap().remove("iat")),
            400,
            "invalid_request",
        ),
        (
            "sub differs",
            Box::new(|_, c| c["sub"] = json!("someone")),
            401,
            "invalid_client",
        ),
        (
            "iss unknown",
            Box::new(|_, c| c["iss"] = json!("nobody")),
            401,
            "invalid_client",
        ),
    ];
    for (what, edit, status, error) in cases {
        let (s, b) = attempt(&emu, &key, "ec-1", edit).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (status, Some(error)),
            "{what}: {b}"
        );
    }
    // Signed by another key.
    let (other, _) = ec_p256();
    assert_eq!(attempt(&emu, &other, "ec-1", |_, _| {}).await.0, 401);
    // Wrong assertion type, or a Basic header.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "jwt"),
        ("client_assertion", assertion.as_str()),
    ];
    assert_eq!(
        token_request(&emu, None, &form).await.2["error"],
        "invalid_request"
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    assert_eq!(
        token_request(&emu, Some(("m2m", "x")), &form).await.2["error"],
        "invalid_request"
    );
    // A client without mapped certificates has no M2M.
    emu.add_client(ClientSpec::m2m("bare"));
    let mut claims = good_claims(&emu, "bare");
    claims["iss"] = json!("bare");
    assert_eq!(cc(&emu, &jwt(&key, &header, &claims)).await.0, 401);
    assert_eq!(emu.counters().client_credentials, 1);
}

#[tokio::test]
async fn ps256_with_rsa_3072_and_es384_are_accepted() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("m2m"));
    let rsa_key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 3072).unwrap();
    let pem = rsa_key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let kp = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    emu.add_certificate(
        "m2m",
        CertificateMapping {
            kid: "rsa-1".into(),
            certificate_pem: certificate(&kp, 730),
        },
    );
    let key = Key::Rsa(rsa_key);
    let (s, b) = attempt(&emu, &key, "rsa-1", |_, _| {}).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(api_status(&emu, b["access_token"].as_str()).await, 200);
    // The PSS key signing as ES256 does not pass.
    assert_eq!(
        attempt(&emu, &key, "rsa-1", |h, _| h["alg"] = json!("ES256"))
            .await
            .0,
        401
    );

    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let p384_key = Key::P384(p384::ecdsa::SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap());
    emu.add_certificate(
        "m2m",
        CertificateMapping {
            kid: "ec384".into(),
            certificate_pem: certificate(&kp, 90),
        },
    );
    let (s, b) = attempt(&emu, &p384_key, "ec384", |_, _| {}).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(emu.counters().client_credentials, 2);
}

#[tokio::test]
async fn certificates_valid_longer_than_two_years_are_refused() {
    let emu = emulator().await;
    emu.add_client(ClientSpec::m2m("m2m"));
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key = Key::P256(p256::ecdsa::SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap());
    emu.add_certificate(
        "m2m",
        CertificateMapping {
            kid: "long".into(),
            certificate_pem: certificate(&kp, 3650),
        },
    );
    let (s, b) = attempt(&emu, &key, "long", |_, _| {}).await;
    assert_eq!(s, 401, "{b}");
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("two years"),
        "{b}"
    );
}
