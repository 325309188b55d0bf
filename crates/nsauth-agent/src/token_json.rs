//! The token object: what `GET /v1/token` answers and what `nsauth token --json` prints, from
//! the store or from an agent (`--via`). One serializer, so that the two cannot drift:
//!
//! ```json
//! {"schema":1,"access_token":"…","token_type":"Bearer","expires_at":"2026-11-20T14:02:00Z",
//!  "account_id":"1234567_SB1","rest_url":"https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/"}
//! ```
//!
//! `expires_at` is RFC 3339 in UTC, whole seconds. Under `schema` 1 fields may be added, never
//! renamed, retyped or given another meaning (docs/cli.md, "Machine-readable output").

use nsauth_store::secret::AccessToken;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The version of nsauth's JSON output; raised only on an incompatible change.
pub const SCHEMA: u32 = 1;

/// The fields, in the order written.
#[derive(serde::Serialize)]
struct Body<'a> {
    schema: u32,
    access_token: &'a str,
    token_type: &'static str,
    expires_at: String,
    account_id: &'a str,
    rest_url: &'a str,
}

/// The token object as one line of JSON (no newline). It holds the token: zeroed on drop,
/// and written into one buffer large enough from the start (no copy left behind by a
/// reallocation).
pub fn render(
    access_token: &AccessToken,
    expires_at: OffsetDateTime,
    account_id: &str,
    rest_url: &str,
) -> Zeroizing<String> {
    let body = Body {
        schema: SCHEMA,
        access_token: access_token.secret(),
        token_type: "Bearer",
        expires_at: rfc3339_utc(expires_at),
        account_id,
        rest_url,
    };
    // JSON escaping at most sextuples a character (\u00XX); 160 covers the field names.
    let room = 6 * (body.access_token.len() + account_id.len() + rest_url.len()) + 160;
    let mut buf = Zeroizing::new(Vec::with_capacity(room));
    if serde_json::to_writer(&mut *buf, &body).is_err() {
        return Zeroizing::new(String::new());
    }
    Zeroizing::new(String::from_utf8(std::mem::take(&mut *buf)).unwrap_or_default())
}

/// `2026-11-20T14:02:00Z`: UTC, whole seconds.
pub fn rfc3339_utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Parses an `expires_at` as [`render`] writes it (any RFC 3339 offset is accepted).
pub fn parse_expires_at(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_has_the_schema_and_every_field_with_utc_seconds() {
        let at = time::macros::datetime!(2026-11-20 16:02:03.456 +02:00);
        let text = render(&AccessToken::new("tok"), at, "123_SB1", "https://x/");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"schema": 1, "access_token": "tok", "token_type": "Bearer",
                "expires_at": "2026-11-20T14:02:03Z", "account_id": "123_SB1", "rest_url": "https://x/"})
        );
        assert!(
            text.starts_with(r#"{"schema":1,"access_token":"tok","#),
            "{}",
            *text
        );
        assert_eq!(
            parse_expires_at("2026-11-20T14:02:03Z"),
            Some(at.replace_nanosecond(0).unwrap())
        );
    }
}
