//! Compact JWS: strict splitting and base64url, and the emulator's own HS256 tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

/// base64url without padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url; padding and other alphabets are refused.
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// A JWS in compact form, decoded but not verified.
#[derive(Debug)]
pub(crate) struct Jws {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    /// `header.payload`, what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

/// Splits and decodes a compact JWS: three base64url parts, header and claims JSON objects.
pub(crate) fn parse(token: &str) -> Result<Jws, &'static str> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS (three dot-separated parts)");
    };
    let header = b64_decode(h).ok_or("the JWT header is not base64url")?;
    let claims = b64_decode(p).ok_or("the JWT payload is not base64url")?;
    let signature = b64_decode(s).ok_or("the JWT signature is not base64url")?;
    let header: Map<String, Value> =
        serde_json::from_slice(&header).map_err(|_| "the JWT header is not a JSON object")?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&claims).map_err(|_| "the JWT payload is not a JSON object")?;
    Ok(Jws {
        header,
        claims,
        signing_input: format!("{h}.{p}"),
        signature,
    })
}

fn mac(key: &[u8], input: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(input);
    mac
}

/// Signs `claims` as an HS256 JWT with the emulator's key.
pub(crate) fn sign_hs256(key: &[u8], kid: &str, claims: &Value) -> String {
    let header = serde_json::json!({ "alg": "HS256", "typ": "JWT", "kid": kid });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = mac(key, input.as_bytes()).finalize().into_bytes();
    format!("{input}.{}", b64(&sig))
}

/// Verifies an HS256 JWT made by [`sign_hs256`] and returns its claims.
pub(crate) fn verify_hs256(key: &[u8], token: &str) -> Option<Map<String, Value>> {
    let jws = parse(token).ok()?;
    if jws.header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return None;
    }
    mac(key, jws.signing_input.as_bytes())
        .verify_slice(&jws.signature)
        .ok()?;
    Some(jws.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs256_round_trip_and_tamper() {
        let key = b"0123456789abcdef0123456789abcdef";
        let t = sign_hs256(key, "k", &serde_json::json!({"sub": "x", "exp": 5}));
        let claims = verify_hs256(key, &t).expect("valid");
        assert_eq!(claims["sub"], "x");
        assert!(verify_hs256(b"another key", &t).is_none());
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = b64(br#"{"sub":"y","exp":5}"#);
        parts[1] = &forged;
        assert!(verify_hs256(key, &parts.join(".")).is_none());
    }

    #[test]
    fn parse_is_strict() {
        assert!(parse("a.b").is_err());
        assert!(parse("a.b.c.d").is_err());
        let h = b64(br#"{"alg":"none"}"#);
        assert!(parse(&format!("{h}.{h}=.")).is_err(), "padding refused");
        assert!(
            parse(&format!("{h}.{}.", b64(b"[1]"))).is_err(),
            "payload must be an object"
        );
        assert!(parse(&format!("{h}.{h}.")).is_ok());
    }
}
