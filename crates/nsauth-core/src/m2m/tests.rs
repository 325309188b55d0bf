//! Round trips for every key algorithm, with signatures checked by independent verifiers.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rand::rngs::OsRng;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::signature::Verifier;
use sha2::Sha256;
use time::OffsetDateTime;
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

use super::*;

const TOKEN_URL: &str =
    "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token";

fn scopes() -> Vec<String> {
    vec!["rest_webservices".into(), "restlets".into()]
}

fn invalid_message(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Invalid(message)) => {
            assert!(
                !message.contains('\n'),
                "message is not one line: {message}"
            );
            message
        }
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

/// No base64 line of the PEM (or a long piece of one) may reach the message.
fn assert_no_key_material(message: &str, pem: &str) {
    for line in pem.lines().map(str::trim) {
        if line.starts_with("-----") || line.contains(':') || line.len() < 12 {
            continue;
        }
        for piece in line.as_bytes().chunks(12).filter(|c| c.len() == 12) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(
                !message.contains(piece),
                "message leaks key material: {message}"
            );
        }
    }
}

/// Verifies the certificate's own signature and a JWS with the certificate's public key.
struct CertKey {
    spki_der: Vec<u8>,
    subject_key_bits: Vec<u8>,
}

impl CertKey {
    fn from_pem(pem: &str) -> (Self, Certificate) {
        let cert = Certificate::from_pem(pem).unwrap();
        let spki = &cert.tbs_certificate.subject_public_key_info;
        let key = CertKey {
            spki_der: spki.to_der().unwrap(),
            subject_key_bits: spki.subject_public_key.raw_bytes().to_vec(),
        };
        (key, cert)
    }

    /// `der_sig` true: X.509 signature forms (DER ECDSA, PKCS#1 v1.5); false: JWS forms.
    fn verify(&self, alg: KeyAlgorithm, message: &[u8], sig: &[u8], x509: bool) {
        match (alg, x509) {
            (KeyAlgorithm::EcP256, false) => {
                let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&self.spki_der).unwrap();
                let sig = p256::ecdsa::Signature::from_slice(sig).unwrap();
                vk.verify(message, &sig).unwrap();
            }
            (KeyAlgorithm::EcP256, true) => {
                let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&self.spki_der).unwrap();
                let sig = p256::ecdsa::Signature::from_der(sig).unwrap();
                vk.verify(message, &sig).unwrap();
            }
            (KeyAlgorithm::EcP384, false) => {
                let vk = p384::ecdsa::VerifyingKey::from_public_key_der(&self.spki_der).unwrap();
                let sig = p384::ecdsa::Signature::from_slice(sig).unwrap();
                vk.verify(message, &sig).unwrap();
            }
            (KeyAlgorithm::EcP384, true) => {
                let vk = p384::ecdsa::VerifyingKey::from_public_key_der(&self.spki_der).unwrap();
                let sig = p384::ecdsa::Signature::from_der(sig).unwrap();
                vk.verify(message, &sig).unwrap();
            }
            (KeyAlgorithm::EcP521, der) => {
                let vk =
                    p521::ecdsa::VerifyingKey::from_sec1_bytes(&self.subject_key_bits).unwrap();
                let sig = if der {
                    p521::ecdsa::Signature::from_der(sig).unwrap()
                } else {
                    p521::ecdsa::Signature::from_slice(sig).unwrap()
                };
                vk.verify(message, &sig).unwrap();
            }
            (KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096, x509) => {
                let pk = rsa::RsaPublicKey::from_public_key_der(&self.spki_der).unwrap();
                if x509 {
                    let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(pk);
                    let sig = rsa::pkcs1v15::Signature::try_from(sig).unwrap();
                    vk.verify(message, &sig).unwrap();
                } else {
                    let vk = rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(pk, 32);
                    let sig = rsa::pss::Signature::try_from(sig).unwrap();
                    vk.verify(message, &sig).unwrap();
                }
            }
        }
    }
}

/// Signs an assertion with `key` and checks it against the certificate like NetSuite would.
fn check_assertion(alg: KeyAlgorithm, key: &PrivateKeyPem, certificate_pem: &str) {
    let now = OffsetDateTime::now_utc();
    let jwt = sign_assertion(
        key,
        "cert-kid-1",
        "client-abc",
        TOKEN_URL,
        &scopes(),
        now,
        300,
    )
    .unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], alg.jws_alg());
    assert_eq!(header["kid"], "cert-kid-1");
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["iss"], "client-abc");
    assert_eq!(claims["sub"], "client-abc");
    assert_eq!(claims["aud"], TOKEN_URL, "aud is one string");
    assert_eq!(
        claims["scope"], "rest_webservices,restlets",
        "scope is a comma string"
    );
    assert_eq!(claims["iat"], now.unix_timestamp());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());

    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let expected_len = match alg {
        KeyAlgorithm::EcP256 => 64,
        KeyAlgorithm::EcP384 => 96,
        KeyAlgorithm::EcP521 => 132,
        KeyAlgorithm::Rsa3072 => 384,
        KeyAlgorithm::Rsa4096 => 512,
    };
    assert_eq!(
        signature.len(),
        expected_len,
        "raw r||s for EC, modulus size for RSA"
    );
    let (cert_key, _) = CertKey::from_pem(certificate_pem);
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    cert_key.verify(alg, signing_input.as_bytes(), &signature, false);

    let again = sign_assertion(
        key,
        "cert-kid-1",
        "client-abc",
        TOKEN_URL,
        &scopes(),
        now,
        300,
    )
    .unwrap();
    let again_claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(again.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_ne!(again_claims["jti"], claims["jti"], "jti is unique");
}

/// generate → inspect key → inspect certificate → match → sign and verify.
fn round_trip(alg: KeyAlgorithm, days: u32) -> GeneratedKey {
    let generated = generate_key(alg, days, "nsauth test").unwrap();
    assert!(generated
        .private_key
        .secret()
        .starts_with("-----BEGIN PRIVATE KEY-----"));

    let info = inspect_private_key(&generated.private_key).unwrap();
    assert_eq!(info.algorithm, alg);
    assert_eq!(info.jws_alg, alg.jws_alg());

    let cert = inspect_certificate(&generated.certificate_pem).unwrap();
    assert_eq!(cert.subject, "CN=nsauth test");
    assert_eq!(cert.validity_days, i64::from(days));
    assert_eq!(cert.key_description, info.description);
    let now = OffsetDateTime::now_utc();
    assert!(cert.not_before <= now && now < cert.not_after);

    // The certificate's self-signature verifies with its own key.
    let (cert_key, parsed) = CertKey::from_pem(&generated.certificate_pem);
    let tbs = parsed.tbs_certificate.to_der().unwrap();
    cert_key.verify(alg, &tbs, parsed.signature.raw_bytes(), true);

    assert!(certificate_matches_key(&generated.certificate_pem, &generated.private_key).unwrap());
    check_assertion(alg, &generated.private_key, &generated.certificate_pem);
    generated
}

#[test]
fn ec_p256_round_trip() {
    let a = round_trip(KeyAlgorithm::EcP256, 365);
    assert_eq!(
        inspect_private_key(&a.private_key).unwrap().description,
        "EC P-256"
    );
    let b = generate_key(KeyAlgorithm::EcP256, 1, "other").unwrap();
    assert!(!certificate_matches_key(&a.certificate_pem, &b.private_key).unwrap());
    assert!(!certificate_matches_key(&b.certificate_pem, &a.private_key).unwrap());
}

#[test]
fn ec_p384_round_trip() {
    let a = round_trip(KeyAlgorithm::EcP384, 730);
    let b = generate_key(KeyAlgorithm::EcP384, 30, "other").unwrap();
    assert!(!certificate_matches_key(&a.certificate_pem, &b.private_key).unwrap());
}

#[test]
fn ec_p521_round_trip() {
    let a = round_trip(KeyAlgorithm::EcP521, 1);
    assert_eq!(
        inspect_certificate(&a.certificate_pem)
            .unwrap()
            .key_description,
        "EC P-521"
    );
    let b = generate_key(KeyAlgorithm::EcP521, 30, "other").unwrap();
    assert!(!certificate_matches_key(&a.certificate_pem, &b.private_key).unwrap());
}

#[test]
fn rsa_round_trips() {
    let a = round_trip(KeyAlgorithm::Rsa3072, 90);
    assert_eq!(
        inspect_private_key(&a.private_key).unwrap().description,
        "RSA 3072 bits"
    );
    let b = round_trip(KeyAlgorithm::Rsa4096, 730);
    assert_eq!(
        inspect_certificate(&b.certificate_pem)
            .unwrap()
            .key_description,
        "RSA 4096 bits"
    );
    assert!(!certificate_matches_key(&a.certificate_pem, &b.private_key).unwrap());
    assert!(!certificate_matches_key(&b.certificate_pem, &a.private_key).unwrap());

    // PKCS#1 (BEGIN RSA PRIVATE KEY) is the same key.
    let pkcs1 = rsa::RsaPrivateKey::from_pkcs8_pem(a.private_key.secret())
        .unwrap()
        .to_pkcs1_pem(LineEnding::LF)
        .unwrap();
    let pkcs1 = PrivateKeyPem::new(pkcs1.as_str());
    assert!(pkcs1
        .secret()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert_eq!(
        inspect_private_key(&pkcs1).unwrap().algorithm,
        KeyAlgorithm::Rsa3072
    );
    assert!(certificate_matches_key(&a.certificate_pem, &pkcs1).unwrap());
    check_assertion(KeyAlgorithm::Rsa3072, &pkcs1, &a.certificate_pem);
}

#[test]
fn sec1_keys_are_accepted() {
    for alg in [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::EcP521,
    ] {
        let generated = generate_key(alg, 10, "sec1").unwrap();
        let pkcs8 = generated.private_key.secret();
        let sec1 = match alg {
            KeyAlgorithm::EcP256 => p256::SecretKey::from_pkcs8_pem(pkcs8)
                .unwrap()
                .to_sec1_pem(LineEnding::LF),
            KeyAlgorithm::EcP384 => p384::SecretKey::from_pkcs8_pem(pkcs8)
                .unwrap()
                .to_sec1_pem(LineEnding::LF),
            _ => p521::SecretKey::from_pkcs8_pem(pkcs8)
                .unwrap()
                .to_sec1_pem(LineEnding::LF),
        }
        .unwrap();
        // `openssl ecparam -genkey` puts an EC PARAMETERS block first.
        let with_params = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            sec1.as_str()
        );
        for text in [sec1.as_str(), with_params.as_str()] {
            let key = PrivateKeyPem::new(text);
            assert!(text.contains("-----BEGIN EC PRIVATE KEY-----"));
            assert_eq!(inspect_private_key(&key).unwrap().algorithm, alg);
            assert!(certificate_matches_key(&generated.certificate_pem, &key).unwrap());
            check_assertion(alg, &key, &generated.certificate_pem);
        }
    }
}

#[test]
fn bad_days_and_subjects_are_refused() {
    for days in [0, 731] {
        let message = invalid_message(generate_key(KeyAlgorithm::EcP256, days, "x"));
        assert!(message.contains("730"), "{message}");
    }
    invalid_message(generate_key(KeyAlgorithm::EcP256, 30, "  "));
    invalid_message(generate_key(KeyAlgorithm::EcP256, 30, &"x".repeat(65)));
}

#[test]
fn bad_assertion_inputs_are_refused() {
    let key = generate_key(KeyAlgorithm::EcP256, 30, "ttl")
        .unwrap()
        .private_key;
    let now = OffsetDateTime::now_utc();
    for ttl in [0, 3601] {
        let message = invalid_message(sign_assertion(
            &key,
            "kid",
            "client",
            TOKEN_URL,
            &scopes(),
            now,
            ttl,
        ));
        assert!(message.contains("3600"), "{message}");
    }
    assert!(sign_assertion(&key, "kid", "client", TOKEN_URL, &scopes(), now, 3600).is_ok());
    invalid_message(sign_assertion(
        &key,
        "",
        "client",
        TOKEN_URL,
        &scopes(),
        now,
        300,
    ));
    invalid_message(sign_assertion(
        &key,
        "kid",
        " ",
        TOKEN_URL,
        &scopes(),
        now,
        300,
    ));
    invalid_message(sign_assertion(
        &key,
        "kid",
        "client",
        TOKEN_URL,
        &[],
        now,
        300,
    ));
}

#[test]
fn unusable_keys_are_refused_without_leaking_them() {
    let garbage = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n";
    let message = invalid_message(inspect_private_key(&PrivateKeyPem::new(garbage)));
    assert!(message.contains("BEGIN PRIVATE KEY"), "{message}");
    assert_no_key_material(&message, garbage);

    let damaged = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC!!notbase64\n-----END PRIVATE KEY-----\n";
    let message = invalid_message(inspect_private_key(&PrivateKeyPem::new(damaged)));
    assert!(message.contains("damaged"), "{message}");
    assert_no_key_material(&message, damaged);

    let rsa2048 = rsa::RsaPrivateKey::new(&mut OsRng, 2048)
        .unwrap()
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap();
    let message = invalid_message(inspect_private_key(&PrivateKeyPem::new(rsa2048.as_str())));
    assert!(
        message.contains("2048") && message.contains("RSA 3072/4096 or EC P-256/384/521"),
        "{message}"
    );
    assert_no_key_material(&message, &rsa2048);
    let message = invalid_message(sign_assertion(
        &PrivateKeyPem::new(rsa2048.as_str()),
        "kid",
        "client",
        TOKEN_URL,
        &scopes(),
        OffsetDateTime::now_utc(),
        300,
    ));
    assert_no_key_material(&message, &rsa2048);

    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQIq3SDhDbnEGQCAggA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,0123456789ABCDEF0123456789ABCDEF\n\nq3SDhDbnEGQCAggAMIIFHDBOBgkqhkiG9w0BBQ0w\n-----END RSA PRIVATE KEY-----\n";
    for text in [encrypted, legacy] {
        let message = invalid_message(inspect_private_key(&PrivateKeyPem::new(text)));
        assert!(
            message.contains("encrypted") && message.contains("openssl"),
            "{message}"
        );
        assert_no_key_material(&message, text);
    }

    let public = p256::SecretKey::random(&mut OsRng)
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let message = invalid_message(inspect_private_key(&PrivateKeyPem::new(public.as_str())));
    assert!(message.contains("public key"), "{message}");
    let generated = generate_key(KeyAlgorithm::EcP256, 30, "cert").unwrap();
    let message = invalid_message(inspect_private_key(&PrivateKeyPem::new(
        generated.certificate_pem,
    )));
    assert!(message.contains("not a private key"), "{message}");
}

/// SEC1 DER as openssl writes it: with the `[0]` curve parameters RustCrypto leaves out.
fn sec1_with_curve(sec1: &[u8], curve: &str) -> Vec<u8> {
    use x509_cert::der::asn1::{AnyRef, ObjectIdentifier};
    use x509_cert::der::{Decode, Tag, TagNumber};
    let oid = ObjectIdentifier::new_unwrap(curve).to_der().unwrap();
    let mut fields = Vec::<AnyRef<'_>>::from_der(sec1).unwrap();
    let tag = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    fields.insert(2, AnyRef::new(tag, &oid).unwrap());
    fields.to_der().unwrap()
}

fn ec_pem(label: &str, der: &[u8]) -> PrivateKeyPem {
    PrivateKeyPem::new(x509_cert::der::pem::encode_string(label, LineEnding::LF, der).unwrap())
}

#[test]
fn sec1_curve_parameters_are_read() {
    let key = p256::SecretKey::random(&mut OsRng);
    let plain = key.to_sec1_der().unwrap();
    let named = ec_pem(
        "EC PRIVATE KEY",
        &sec1_with_curve(&plain, "1.2.840.10045.3.1.7"),
    );
    assert_eq!(
        inspect_private_key(&named).unwrap().algorithm,
        KeyAlgorithm::EcP256
    );

    // A 32-byte key that names another curve (secp256k1) is not taken for P-256.
    let k256 = ec_pem("EC PRIVATE KEY", &sec1_with_curve(&plain, "1.3.132.0.10"));
    let message = invalid_message(inspect_private_key(&k256));
    assert!(message.contains("P-256, P-384 or P-521"), "{message}");
    assert_no_key_material(&message, k256.secret());
}

#[test]
fn other_curves_are_refused() {
    // A P-384 PKCS#8 key relabelled as secp256k1 (1.3.132.0.10): same OID length.
    const P384: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    const K256: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
    let key = p384::SecretKey::random(&mut OsRng);
    let mut der = key.to_pkcs8_der().unwrap().as_bytes().to_vec();
    let at = der.windows(7).position(|w| w == P384).unwrap();
    der[at..at + 7].copy_from_slice(&K256);
    let pem = ec_pem("PRIVATE KEY", &der);
    let message = invalid_message(inspect_private_key(&pem));
    assert!(message.contains("P-256, P-384 or P-521"), "{message}");
    assert_no_key_material(&message, pem.secret());

    // Not EC or RSA at all (an Ed25519 key, RFC 8410 example).
    let ed25519 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
    let message = invalid_message(inspect_private_key(&PrivateKeyPem::new(ed25519)));
    assert!(
        message.contains("RSA 3072/4096 or EC P-256/384/521"),
        "{message}"
    );
    assert_no_key_material(&message, ed25519);
}

#[test]
fn certificates_are_checked() {
    let message = invalid_message(inspect_certificate("nothing here"));
    assert!(message.contains("BEGIN CERTIFICATE"), "{message}");
    let message = invalid_message(inspect_certificate(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ));
    assert!(message.contains("damaged"), "{message}");

    // A chain file: the first certificate is the one that counts.
    let a = generate_key(KeyAlgorithm::EcP256, 30, "first").unwrap();
    let b = generate_key(KeyAlgorithm::EcP256, 60, "second").unwrap();
    let chain = format!("{}{}", a.certificate_pem, b.certificate_pem);
    assert_eq!(inspect_certificate(&chain).unwrap().subject, "CN=first");
    assert!(certificate_matches_key(&chain, &a.private_key).unwrap());
}

#[test]
fn algorithm_names() {
    for alg in KeyAlgorithm::ALL {
        assert_eq!(alg.as_str().parse::<KeyAlgorithm>().unwrap(), alg);
        assert_eq!(alg.to_string(), alg.as_str());
    }
    assert_eq!(
        "RSA-4096".parse::<KeyAlgorithm>().unwrap(),
        KeyAlgorithm::Rsa4096
    );
    let message = invalid_message("rsa-2048".parse::<KeyAlgorithm>());
    assert!(
        message.contains("ec-p256, ec-p384, ec-p521, rsa-3072, rsa-4096"),
        "{message}"
    );
    let jws: Vec<&str> = KeyAlgorithm::ALL.iter().map(|a| a.jws_alg()).collect();
    assert_eq!(jws, ["ES256", "ES384", "ES512", "PS256", "PS256"]);
}

#[test]
fn generated_key_debug_is_redacted() {
    let generated = generate_key(KeyAlgorithm::EcP256, 30, "debug").unwrap();
    let debug = format!("{generated:?}");
    assert!(debug.contains("PrivateKeyPem([redacted])"), "{debug}");
    assert!(!debug.contains("BEGIN PRIVATE KEY"));
}
