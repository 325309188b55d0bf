//! The deadlines of one record: access token end, refresh-token chain end, certificate end.

use base64::Engine;
use nsauth_store::profile::{GrantKind, DEFAULT_REFRESH_VALIDITY_HOURS};
use nsauth_store::token::TokenSet;
use nsauth_store::{Profile, Record};
use time::{Duration, OffsetDateTime};

/// How long one refresh token of a public client lives at most (NetSuite: 3 hours). A token
/// whose life is shorter than this was cut short by the end of its rotation chain.
pub const PUBLIC_REFRESH_TTL: Duration = Duration::hours(3);

/// When a profile's tokens and certificate stop working.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadlines {
    /// When the current access token ends.
    pub access_expires_at: Option<OffsetDateTime>,
    /// When the refresh-token chain ends: no refresh can get past it; then a NetSuite user
    /// must log in again. `None` without a refresh token (client credentials, logged out)
    /// and for a profile whose tokens moved to another store.
    pub refresh_chain_end: Option<OffsetDateTime>,
    /// The M2M certificate's `notAfter`, when the profile holds the certificate.
    pub certificate_not_after: Option<OffsetDateTime>,
}

/// The deadlines of `record`. Reads no clock and calls nothing: `/metrics` uses it too.
///
/// - Confidential clients keep one refresh token until its end: the chain end is the
///   recorded `refresh_expires_at` (its JWT `exp`, or the configured validity).
/// - Public clients get a new refresh token (3 hours) on every refresh, but NetSuite counts
///   the chain from its first token (the `oit` claim): the chain ends at `oit` plus the
///   Refresh Token Validity (the profile's `--refresh-token-validity`, else 7 days), so it
///   does not move on refresh. When a token's own life was cut short (less than 3 hours
///   from `iat` to `exp`), its `exp` *is* the chain end and is used as is. Without an `oit`
///   claim the recorded `refresh_expires_at` is all nsauth knows, and is used.
/// - The certificate's end is read from `certificate_pem`; an unreadable certificate gives
///   `None` (`nsauth doctor` reports it).
pub fn deadlines(record: &Record) -> Deadlines {
    let tokens = record.tokens.as_ref();
    let refresh_chain_end = match (record.moved.as_ref(), tokens, record.profile.grant) {
        (None, Some(t), GrantKind::AuthorizationCode) => chain_end(&record.profile, t),
        _ => None,
    };
    let certificate_not_after = record
        .profile
        .certificate_pem
        .as_deref()
        .and_then(|pem| nsauth_core::m2m::inspect_certificate(pem).ok())
        .map(|c| c.not_after);
    Deadlines {
        access_expires_at: tokens.map(|t| t.access_expires_at),
        refresh_chain_end,
        certificate_not_after,
    }
}

/// The end the watch compares with `now`: the chain end, unless the current refresh token
/// itself has already lapsed (a public client not refreshed for 3 hours): then its end.
pub(crate) fn effective_refresh_end(
    record: &Record,
    deadlines: &Deadlines,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let chain = deadlines.refresh_chain_end?;
    let own = record.tokens.as_ref().and_then(|t| t.refresh_expires_at);
    Some(match own {
        Some(own) if own <= now && own < chain => own,
        _ => chain,
    })
}

fn chain_end(profile: &Profile, tokens: &TokenSet) -> Option<OffsetDateTime> {
    let rt = tokens.refresh_token.as_ref()?;
    let recorded = tokens.refresh_expires_at;
    if !profile.is_public() {
        return recorded;
    }
    let Some(claims) = claims(rt.secret()) else {
        return recorded;
    };
    let Some(oit) = claims.oit.and_then(unix) else {
        return recorded;
    };
    let own_end = recorded.or(claims.exp.and_then(unix));
    if let (Some(end), Some(iat)) = (own_end, claims.iat.and_then(unix)) {
        if end - iat < PUBLIC_REFRESH_TTL - Duration::minutes(1) {
            return Some(end);
        }
    }
    let hours = profile
        .refresh_token_validity_hours
        .unwrap_or(DEFAULT_REFRESH_VALIDITY_HOURS);
    let chain = oit + Duration::hours(i64::from(hours));
    Some(own_end.map_or(chain, |own| chain.max(own)))
}

#[derive(serde::Deserialize)]
struct Claims {
    oit: Option<f64>,
    iat: Option<f64>,
    exp: Option<f64>,
}

/// The time claims of a JWT, unverified (only ever used to warn earlier, never to trust).
fn claims(token: &str) -> Option<Claims> {
    if token.len() > 64 * 1024 {
        return None;
    }
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn unix(secs: f64) -> Option<OffsetDateTime> {
    if !secs.is_finite() || !(0.0..=253_402_300_799.0).contains(&secs) {
        return None;
    }
    OffsetDateTime::from_unix_timestamp(secs as i64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsauth_store::account::AccountId;
    use nsauth_store::secret::{AccessToken, ClientSecret, RefreshToken};

    fn jwt(claims: &str) -> String {
        let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
        format!("eyJhbGciOiJIUzI1NiJ9.{p}.sig")
    }

    fn record(public: bool, rt: &str, recorded: Option<OffsetDateTime>) -> Record {
        let mut p = Profile::new(AccountId::parse("1234567").unwrap(), "cid");
        if !public {
            p.client_secret = Some(ClientSecret::new("s"));
        }
        let mut r = Record::new(p);
        r.tokens = Some(TokenSet {
            access_token: AccessToken::new("a"),
            access_expires_at: OffsetDateTime::UNIX_EPOCH + Duration::hours(1),
            refresh_token: Some(RefreshToken::new(rt)),
            refresh_expires_at: recorded,
            obtained_at: OffsetDateTime::UNIX_EPOCH,
        });
        r
    }

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn a_public_chain_ends_at_oit_plus_validity_and_does_not_move_on_refresh() {
        let day = 86_400;
        // First token of the chain, then a rotated one two days later: same chain end.
        for (iat, exp) in [
            (1_000, 1_000 + 3 * 3600),
            (1_000 + 2 * day, 1_000 + 2 * day + 3 * 3600),
        ] {
            let rt = jwt(&format!(r#"{{"oit":1000,"iat":{iat},"exp":{exp}}}"#));
            let r = record(true, &rt, Some(t(exp)));
            assert_eq!(deadlines(&r).refresh_chain_end, Some(t(1_000 + 7 * day)));
        }
        // Validity configured on the profile.
        let rt = jwt(r#"{"oit":1000,"iat":1000,"exp":11800}"#);
        let mut r = record(true, &rt, Some(t(11_800)));
        r.profile.refresh_token_validity_hours = Some(48);
        assert_eq!(deadlines(&r).refresh_chain_end, Some(t(1_000 + 2 * day)));
    }

    #[test]
    fn a_public_token_cut_short_by_the_chain_gives_the_exact_end() {
        let rt = jwt(r#"{"oit":1000,"iat":50000,"exp":51000}"#);
        let r = record(true, &rt, Some(t(51_000)));
        assert_eq!(deadlines(&r).refresh_chain_end, Some(t(51_000)));
    }

    #[test]
    fn without_oit_or_jwt_the_recorded_end_is_used() {
        for rt in ["opaque-token", &jwt(r#"{"exp":5000}"#), "a.%%%.c"] {
            let r = record(true, rt, Some(t(5_000)));
            assert_eq!(deadlines(&r).refresh_chain_end, Some(t(5_000)), "{rt}");
        }
    }

    #[test]
    fn confidential_clients_use_the_recorded_end_and_m2m_or_moved_have_none() {
        let rt = jwt(r#"{"oit":1000,"iat":1000,"exp":9000}"#);
        let r = record(false, &rt, Some(t(9_000)));
        assert_eq!(deadlines(&r).refresh_chain_end, Some(t(9_000)));
        let mut m2m = r.clone();
        m2m.profile.grant = GrantKind::ClientCredentials;
        assert_eq!(deadlines(&m2m).refresh_chain_end, None);
        let mut moved = r.clone();
        moved.moved = Some(nsauth_store::Moved {
            at: t(0),
            to: "share bundle".into(),
            fingerprints: vec![],
        });
        assert_eq!(deadlines(&moved).refresh_chain_end, None);
        let mut out = r;
        out.tokens = None;
        assert_eq!(deadlines(&out), Deadlines::default());
    }

    #[test]
    fn a_lapsed_public_token_ends_the_chain_early() {
        let rt = jwt(r#"{"oit":1000,"iat":1000,"exp":11800}"#);
        let r = record(true, &rt, Some(t(11_800)));
        let d = deadlines(&r);
        assert_eq!(effective_refresh_end(&r, &d, t(5_000)), d.refresh_chain_end);
        assert_eq!(effective_refresh_end(&r, &d, t(11_800)), Some(t(11_800)));
    }
}
