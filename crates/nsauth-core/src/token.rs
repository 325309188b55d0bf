//! Token sets and NetSuite's token response.

use crate::secret::{AccessToken, RefreshToken};

use base64::Engine;
use serde::Deserialize;
use time::OffsetDateTime;

pub use nsauth_store::token::TokenSet;

/// The JSON body of a successful token response. `expires_in` may be a string (NetSuite
/// sends `"3600"`) or a number.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    /// Access token.
    pub access_token: AccessToken,
    /// Refresh token, if any.
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// Lifetime of the access token in seconds.
    #[serde(default, deserialize_with = "de_expires_in")]
    pub expires_in: Option<i64>,
    /// Token type, `bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
}

fn de_expires_in<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        I(i64),
        F(f64),
        S(String),
    }
    Ok(match Option::<N>::deserialize(d)? {
        None => None,
        Some(N::I(i)) => Some(i),
        Some(N::F(f)) if f.is_finite() => Some(f as i64),
        Some(N::F(_)) => {
            return Err(serde::de::Error::custom(
                "expires_in is not a finite number",
            ))
        }
        Some(N::S(s)) => Some(
            s.trim()
                .parse::<i64>()
                .map_err(|_| serde::de::Error::custom("expires_in is not a number"))?,
        ),
    })
}

/// Parses a token endpoint body. The error never contains the body (it may hold secrets).
pub fn parse_token_response(body: &[u8]) -> Result<TokenResponse, String> {
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        let looks_html = body.iter().take(64).any(|b| *b == b'<');
        if looks_html {
            "the token endpoint answered with an HTML page instead of JSON".to_string()
        } else if e.to_string().contains("missing field `access_token`") {
            "the token endpoint's answer has no access_token".to_string()
        } else {
            format!(
                "the token endpoint's answer is not valid token JSON ({})",
                e.classify_str()
            )
        }
    })?;
    if parsed.access_token.secret().is_empty() {
        return Err("the token endpoint returned an empty access_token".into());
    }
    if let Some(t) = &parsed.token_type {
        if !t.eq_ignore_ascii_case("bearer") {
            return Err("the token endpoint returned a token_type other than bearer".into());
        }
    }
    if matches!(parsed.expires_in, Some(e) if e <= 0 || e > 86_400 * 366) {
        return Err("the token endpoint returned an unusable expires_in".into());
    }
    Ok(parsed)
}

trait ClassifyStr {
    fn classify_str(&self) -> &'static str;
}
impl ClassifyStr for serde_json::Error {
    fn classify_str(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Data => "unexpected fields or types",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

/// Reads the `exp` claim of a JWT without verifying it. `None` when the token is not a JWT
/// or has no usable `exp`.
pub fn jwt_exp(token: &str) -> Option<OffsetDateTime> {
    if token.len() > 64 * 1024 {
        return None;
    }
    let mut parts = token.split('.');
    let (_h, payload, _s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(Deserialize)]
    struct Claims {
        exp: Option<serde_json::Number>,
    }
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.exp?.as_f64()?;
    if !exp.is_finite() || !(0.0..=253_402_300_799.0).contains(&exp) {
        return None;
    }
    OffsetDateTime::from_unix_timestamp(exp as i64).ok()
}

impl TokenResponse {
    /// Builds the token set to store. `previous_refresh` is kept when the server did not send
    /// a new refresh token (confidential clients reuse theirs).
    pub fn into_token_set(
        self,
        now: OffsetDateTime,
        previous: Option<(&RefreshToken, Option<OffsetDateTime>)>,
        fallback_validity_hours: u32,
    ) -> TokenSet {
        let expires_in = self.expires_in.unwrap_or(3600);
        let (refresh_token, refresh_expires_at) = match self.refresh_token {
            Some(rt) => {
                let end = jwt_exp(rt.secret())
                    .unwrap_or(now + time::Duration::hours(i64::from(fallback_validity_hours)));
                (Some(rt), Some(end))
            }
            None => match previous {
                Some((rt, end)) => (Some(rt.clone()), end),
                None => (None, None),
            },
        };
        TokenSet {
            access_token: self.access_token,
            access_expires_at: now + time::Duration::seconds(expires_in),
            refresh_token,
            refresh_expires_at,
            obtained_at: now,
        }
    }
}

/// Formats a time for people: `2026-11-20 14:02 UTC`.
pub fn format_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_string_or_number() {
        let a = parse_token_response(
            br#"{"access_token":"a","expires_in":"3600","token_type":"bearer"}"#,
        )
        .unwrap();
        assert_eq!(a.expires_in, Some(3600));
        let b = parse_token_response(br#"{"access_token":"a","expires_in":1800}"#).unwrap();
        assert_eq!(b.expires_in, Some(1800));
        assert!(parse_token_response(br#"{"access_token":"a","expires_in":"soon"}"#).is_err());
    }

    #[test]
    fn errors_do_not_echo_the_body() {
        let e = parse_token_response(br#"{"refresh_token":"SECRET-RT"}"#).unwrap_err();
        assert!(!e.contains("SECRET"));
        assert!(e.contains("no access_token"), "{e}");
        let h = parse_token_response(b"<html>Bad gateway SECRET</html>").unwrap_err();
        assert!(h.contains("HTML"));
    }

    #[test]
    fn reads_jwt_exp() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1900000000}"#);
        let t = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig");
        assert_eq!(jwt_exp(&t).unwrap().unix_timestamp(), 1_900_000_000);
        assert!(jwt_exp("not-a-jwt").is_none());
        assert!(jwt_exp("a.b.c").is_none());
    }
}
