//! The signed JWT a client credentials token request carries (RFC 7523, as NetSuite reads it).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use time::OffsetDateTime;

use super::key::LoadedKey;
use crate::secret::PrivateKeyPem;
use crate::Error;

/// NetSuite refuses assertions whose `exp` is more than 60 minutes after `iat`.
const MAX_TTL_SECS: i64 = 3600;

/// Signs a NetSuite client credentials assertion.
///
/// Header `{"typ":"JWT","alg":..,"kid":kid}` with `alg` PS256 for RSA keys and
/// ES256/ES384/ES512 for EC P-256/384/521 keys. Claims: `iss` and `sub` = `client_id`,
/// `aud` = `token_url` (one string), `scope` = `scopes` joined with `,` (a string: NetSuite
/// refuses an array), `iat` = `now`, `exp` = `now + ttl_secs`, and a random `jti`.
///
/// `ttl_secs` must be 1..=3600. ECDSA signatures are in the JWS `r || s` form; RSA signatures
/// are RSASSA-PSS with SHA-256 and a 32-byte salt.
pub fn sign_assertion(
    key: &PrivateKeyPem,
    kid: &str,
    client_id: &str,
    token_url: &str,
    scopes: &[String],
    now: OffsetDateTime,
    ttl_secs: i64,
) -> Result<String, Error> {
    if !(1..=MAX_TTL_SECS).contains(&ttl_secs) {
        return Err(Error::Invalid(format!(
            "the assertion lifetime must be 1 to {MAX_TTL_SECS} seconds (NetSuite refuses exp more than 60 minutes after iat); got {ttl_secs}"
        )));
    }
    require(kid, "the certificate ID (kid) is empty; copy it from NetSuite's OAuth 2.0 Client Credentials (M2M) Setup page")?;
    require(
        client_id,
        "the client ID is empty; copy it from the NetSuite integration record",
    )?;
    require(
        token_url,
        "the token URL is empty; set the profile's account ID",
    )?;
    let scopes: Vec<&str> = scopes
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if scopes.is_empty() {
        return Err(Error::Invalid(
            "no scope given; NetSuite needs at least one, e.g. rest_webservices or restlets".into(),
        ));
    }

    let key = LoadedKey::load(key)?;
    let header = json!({
        "typ": "JWT",
        "alg": key.algorithm().jws_alg(),
        "kid": kid,
    });
    let iat = now.unix_timestamp();
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "scope": scopes.join(","),
        "iat": iat,
        "exp": iat + ttl_secs,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign_jws(signing_input.as_bytes())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

fn require(value: &str, message: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        Err(Error::Invalid(message.to_owned()))
    } else {
        Ok(())
    }
}
