//! Realistic records and unique names for the checks.

use crate::Fixture;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use nsauth_core::account::AccountId;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile, ProfileName};
use nsauth_core::secret::{AccessToken, CodeVerifier, RefreshToken};
use nsauth_core::store::{PendingLogin, Record};
use nsauth_core::token::TokenSet;
use time::{Duration, OffsetDateTime};

const REDIRECT: &str = "https://127.0.0.1:53682/callback";

/// A profile name no other check (or earlier run against a live server) uses:
/// `t<10 random hex digits>-<tag>`. `tag` must keep the name valid and at most 64 characters.
pub fn unique_name(tag: &str) -> ProfileName {
    prefixed_name("t", tag)
}

/// A profile name for a check on `fx`: like [`unique_name`], under the fixture's
/// [`Fixture::scratch_prefix`] (`<prefix><10 random hex digits>-<tag>`), so that a run can
/// find and delete every name its checks made.
pub fn scratch_name(fx: &dyn Fixture, tag: &str) -> ProfileName {
    prefixed_name(fx.scratch_prefix(), tag)
}

fn prefixed_name(prefix: &str, tag: &str) -> ProfileName {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let raw = format!("{prefix}{}-{tag}", &id[..10]);
    ProfileName::parse(&raw).unwrap_or_else(|e| panic!("test profile name: {e}"))
}

/// A string that looks like a NetSuite JWT (ES256 header, claims, signature) of about `len`
/// characters, with random content so that two calls never return the same token.
pub fn jwt_like(kind: &str, len: usize) -> String {
    let header = B64URL.encode(br#"{"alg":"ES256","typ":"JWT","kid":"nsauth-conformance-key"}"#);
    let mut signature_bytes = Vec::with_capacity(64);
    for _ in 0..4 {
        signature_bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    let signature = B64URL.encode(signature_bytes);
    let kind: String = kind.chars().filter(char::is_ascii_alphanumeric).collect();
    let exp = OffsetDateTime::now_utc().unix_timestamp() + 7 * 86_400;
    let claims = format!(
        r#"{{"sub":"12345;-5","iss":"https://system.netsuite.com","aud":["1234567_SB1"],"kind":"{kind}","jti":"{}","exp":{exp},"pad":""#,
        uuid::Uuid::new_v4()
    );
    // base64 grows 4/3; leave room for the header, dots and signature.
    let budget = len.saturating_sub(header.len() + signature.len() + 2) * 3 / 4;
    let filler = budget.saturating_sub(claims.len() + 2);
    let mut payload = claims;
    payload.extend(std::iter::repeat_n('x', filler));
    payload.push_str(r#""}"#);
    format!("{header}.{}.{signature}", B64URL.encode(payload))
}

/// A realistic record: a public-client authorization-code profile for account `1234567_SB1`,
/// logged in (a ~1 KB access token and a ~1.5 KB refresh token), with one pending login.
/// Every call returns different secrets; `name_hint` is folded into the client ID.
pub fn sample_record(name_hint: &str) -> Record {
    let now = OffsetDateTime::now_utc();
    let hint: String = name_hint
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    let profile = Profile {
        account_id: AccountId::parse("1234567_SB1").expect("valid account"),
        client_id: format!("{}{hint}", uuid::Uuid::new_v4().simple()),
        client_secret: None,
        redirect_uri: Some(REDIRECT.parse().expect("valid url")),
        scopes: vec!["rest_webservices".into(), "restlets".into()],
        grant: GrantKind::AuthorizationCode,
        certificate_id: None,
        private_key: None,
        certificate_pem: None,
        endpoints: EndpointOverrides::default(),
        refresh_token_validity_hours: Some(168),
    };
    let mut record = Record::new(profile);
    record.tokens = Some(TokenSet {
        access_token: AccessToken::new(jwt_like("access", 1024)),
        access_expires_at: now + Duration::hours(1),
        refresh_token: Some(RefreshToken::new(jwt_like("refresh", 1536))),
        refresh_expires_at: Some(now + Duration::days(7)),
        obtained_at: now,
    });
    record.pending.push(PendingLogin {
        state: uuid::Uuid::new_v4().simple().to_string(),
        verifier: CodeVerifier::new(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )),
        redirect_uri: REDIRECT.into(),
        expires_at: now + Duration::minutes(5),
    });
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_look_like_jwts_of_the_asked_size() {
        for len in [1024, 1536, 16 * 1024] {
            let t = jwt_like("refresh", len);
            assert_eq!(t.split('.').count(), 3);
            assert!(t.len().abs_diff(len) < 64, "asked {len}, got {}", t.len());
            assert!(nsauth_core::token::jwt_exp(&t).is_some() || len > 64 * 1024);
        }
        assert_ne!(jwt_like("a", 100), jwt_like("a", 100));
    }

    #[test]
    fn sample_is_a_valid_logged_in_profile() {
        let r = sample_record("prod");
        r.profile.validate().unwrap();
        assert!(r.profile.is_public());
        assert!(
            r.tokens
                .as_ref()
                .unwrap()
                .refresh_token
                .as_ref()
                .unwrap()
                .secret()
                .len()
                >= 1400
        );
        assert_ne!(sample_record("prod").tokens, r.tokens);
        assert!(unique_name("x").as_str().ends_with("-x"));
    }
}
