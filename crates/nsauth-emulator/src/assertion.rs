//! Client assertions for the client credentials (M2M) grant: a JWT signed with the private key
//! of a certificate mapped to the integration, checked as strictly as NetSuite does.

use crate::config::ClientSpec;
use crate::jwt;
use crate::respond::OAuthError;
use crate::state::{now, Shared};
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::Value;
use x509_cert::der::{DecodePem as _, Encode as _};
use x509_cert::Certificate;

/// Algorithms NetSuite accepts for client assertions (RS256 was dropped).
pub const ALGORITHMS: [&str; 6] = ["PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];
/// Leeway for `iat` and `nbf` in the future.
const SKEW: u64 = 60;
/// The longest an assertion may live (`exp - iat`).
const MAX_LIFETIME: u64 = 3600;
/// The longest validity NetSuite accepts for a mapped certificate (two years, plus a day of slack).
const MAX_CERT_DAYS: u64 = 731;
/// The smallest RSA key NetSuite accepts for M2M.
const MIN_RSA_BITS: usize = 3072;

/// A verified assertion: who it is and which scopes it asks for.
#[derive(Debug)]
pub(crate) struct Verified {
    pub client_id: String,
    pub scopes: Vec<String>,
    /// `jti` and `exp`, to record once the grant succeeds.
    pub jti: Option<(String, u64)>,
}

fn req(d: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_request", d)
}

fn client(d: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_client", d)
}

/// Verifies `signature` over `input` with the public key of `cert_pem`, for JWS algorithm `alg`.
pub(crate) fn verify_signature(
    cert_pem: &str,
    alg: &str,
    input: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let cert = Certificate::from_pem(cert_pem.as_bytes())
        .map_err(|e| format!("the mapped certificate is not X.509 PEM: {e}"))?;
    let validity = &cert.tbs_certificate.validity;
    let (nb, na) = (
        validity.not_before.to_unix_duration().as_secs(),
        validity.not_after.to_unix_duration().as_secs(),
    );
    let t = now();
    if t < nb || t > na {
        return Err("the mapped certificate is not valid now".into());
    }
    if na.saturating_sub(nb) > MAX_CERT_DAYS * 86_400 {
        return Err("the mapped certificate is valid for more than two years".into());
    }
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let bad = |_| "the signature does not verify with the mapped certificate".to_owned();
    match alg {
        "PS256" | "PS384" | "PS512" => {
            let der = spki.to_der().map_err(|e| e.to_string())?;
            let key = rsa::RsaPublicKey::from_public_key_der(&der)
                .map_err(|_| format!("{alg} needs an RSA certificate"))?;
            if key.size() * 8 < MIN_RSA_BITS {
                return Err(format!("RSA keys must have at least {MIN_RSA_BITS} bits"));
            }
            let sig = rsa::pss::Signature::try_from(signature).map_err(bad)?;
            match alg {
                "PS256" => rsa::pss::VerifyingKey::<sha2::Sha256>::new(key).verify(input, &sig),
                "PS384" => rsa::pss::VerifyingKey::<sha2::Sha384>::new(key).verify(input, &sig),
                _ => rsa::pss::VerifyingKey::<sha2::Sha512>::new(key).verify(input, &sig),
            }
            .map_err(bad)
        }
        "ES256" | "ES384" | "ES512" => {
            let point = spki.subject_public_key.raw_bytes();
            let wrong = |_| format!("{alg} needs an EC certificate on the matching curve");
            match alg {
                "ES256" => {
                    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(wrong)?;
                    key.verify(
                        input,
                        &p256::ecdsa::Signature::from_slice(signature).map_err(bad)?,
                    )
                    .map_err(bad)
                }
                "ES384" => {
                    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(wrong)?;
                    key.verify(
                        input,
                        &p384::ecdsa::Signature::from_slice(signature).map_err(bad)?,
                    )
                    .map_err(bad)
                }
                _ => {
                    let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(wrong)?;
                    key.verify(
                        input,
                        &p521::ecdsa::Signature::from_slice(signature).map_err(bad)?,
                    )
                    .map_err(bad)
                }
            }
        }
        _ => Err(format!("algorithm {alg} is not accepted")),
    }
}

/// What NetSuite checks when an administrator maps a certificate: X.509 PEM, a key it accepts,
/// valid now and for at most two years. Returns the end of validity (Unix seconds).
pub(crate) fn check_mapping(cert_pem: &str) -> Result<u64, String> {
    let cert = Certificate::from_pem(cert_pem.as_bytes())
        .map_err(|e| format!("the certificate is not X.509 PEM: {e}"))?;
    let validity = &cert.tbs_certificate.validity;
    let (nb, na) = (
        validity.not_before.to_unix_duration().as_secs(),
        validity.not_after.to_unix_duration().as_secs(),
    );
    if na.saturating_sub(nb) > MAX_CERT_DAYS * 86_400 {
        return Err("the certificate is valid for more than two years".into());
    }
    if na <= now() {
        return Err("the certificate has expired".into());
    }
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let der = spki.to_der().map_err(|e| e.to_string())?;
    if let Ok(key) = rsa::RsaPublicKey::from_public_key_der(&der) {
        if key.size() * 8 < MIN_RSA_BITS {
            return Err(format!("RSA keys must have at least {MIN_RSA_BITS} bits"));
        }
        return Ok(na);
    }
    let point = spki.subject_public_key.raw_bytes();
    let ec = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).is_ok()
        || p384::ecdsa::VerifyingKey::from_sec1_bytes(point).is_ok()
        || p521::ecdsa::VerifyingKey::from_sec1_bytes(point).is_ok();
    if ec {
        Ok(na)
    } else {
        Err("the key must be RSA 3072/4096 or EC P-256/384/521".into())
    }
}

/// The end of validity (Unix seconds) of a mapped certificate; 0 when it does not parse.
pub(crate) fn not_after(cert_pem: &str) -> u64 {
    Certificate::from_pem(cert_pem.as_bytes())
        .map(|c| {
            c.tbs_certificate
                .validity
                .not_after
                .to_unix_duration()
                .as_secs()
        })
        .unwrap_or(0)
}

fn int(claims: &serde_json::Map<String, Value>, name: &str) -> Result<u64, OAuthError> {
    claims
        .get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| req(format!("the assertion needs a numeric {name} claim")))
}

/// Comma-separated scopes of an assertion, each allowed for the client, `mcp` only alone.
fn scopes(
    claims: &serde_json::Map<String, Value>,
    spec: &ClientSpec,
) -> Result<Vec<String>, OAuthError> {
    let raw = match claims.get("scope") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(req("scope must be a comma-separated string, not an array")),
        None => return Err(req("the assertion has no scope claim")),
    };
    let mut out: Vec<String> = Vec::new();
    for s in raw.split(',').map(str::trim) {
        if s.is_empty() || !spec.scopes.iter().any(|a| a == s) {
            return Err(OAuthError::new(
                "invalid_scope",
                format!("scope {s:?} is not enabled for this integration"),
            ));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    if out.len() > 1 && out.iter().any(|s| s == "mcp") {
        return Err(OAuthError::new(
            "invalid_scope",
            "the mcp scope cannot be combined with other scopes",
        ));
    }
    Ok(out)
}

/// Checks a client assertion completely, except that a replayed `jti` is checked (and recorded)
/// by the caller under the same lock as the grant.
pub(crate) fn verify(sh: &Shared, assertion: &str) -> Result<Verified, OAuthError> {
    let jws = jwt::parse(assertion).map_err(req)?;
    if jws.header.get("typ").and_then(Value::as_str) != Some("JWT") {
        return Err(req("the assertion header must have typ JWT"));
    }
    let alg = jws
        .header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if alg == "RS256" {
        return Err(req(
            "RS256 is not accepted; sign with PS256, PS384, PS512, ES256, ES384 or ES512",
        ));
    }
    if !ALGORITHMS.contains(&alg) {
        return Err(req(format!(
            "algorithm {alg:?} is not accepted; use one of {}",
            ALGORITHMS.join(", ")
        )));
    }
    let kid = jws
        .header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| req("the assertion header has no kid"))?;
    let c = &jws.claims;
    let iss = c
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| req("the assertion has no iss claim"))?;
    let spec = sh
        .lock()
        .clients
        .get(iss)
        .cloned()
        .ok_or_else(|| client("iss is not a known client ID"))?;
    if spec.certificates.is_empty() {
        return Err(client(
            "the client credentials flow is not enabled for this integration",
        ));
    }
    let cert = spec
        .certificates
        .iter()
        .find(|m| m.kid == kid)
        .ok_or_else(|| client("kid is not a certificate mapped to this integration"))?;
    verify_signature(
        &cert.certificate_pem,
        alg,
        jws.signing_input.as_bytes(),
        &jws.signature,
    )
    .map_err(client)?;
    match c.get("aud") {
        Some(Value::String(a)) if *a == sh.token_url() => {}
        Some(Value::String(_)) => {
            return Err(client(format!(
                "aud must be the token URL {}",
                sh.token_url()
            )))
        }
        Some(_) => return Err(req("aud must be a single string (the token URL)")),
        None => return Err(req("the assertion has no aud claim")),
    }
    match c.get("sub") {
        None => {}
        Some(Value::String(s)) if s == iss => {}
        Some(_) => return Err(client("sub must equal the client ID")),
    }
    let (iat, exp, t) = (int(c, "iat")?, int(c, "exp")?, now());
    if iat > t + SKEW {
        return Err(client("iat is in the future"));
    }
    if c.contains_key("nbf") && int(c, "nbf")? > t + SKEW {
        return Err(client("nbf is in the future"));
    }
    if exp <= t {
        return Err(client("the assertion expired"));
    }
    if exp <= iat || exp - iat > MAX_LIFETIME {
        return Err(client(
            "exp must be after iat and at most 60 minutes after it",
        ));
    }
    let jti = match c.get("jti") {
        None => None,
        Some(Value::String(j)) if !j.is_empty() => Some((j.clone(), exp)),
        Some(_) => return Err(req("jti must be a non-empty string")),
    };
    let scopes = scopes(c, &spec)?;
    Ok(Verified {
        client_id: spec.client_id,
        scopes,
        jti,
    })
}
