//! The doctor's checks judged on records and dates made up here (no store, no network).

use super::checks::{outcome, Check, Status};
use super::network::clock_check;
use super::profile::profile_checks;
use crate::exit::Exit;
use nsauth_core::account::AccountId;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile, ProfileName};
use nsauth_core::secret::{AccessToken, RefreshToken};
use nsauth_core::store::FailureKind;
use nsauth_core::store::Record;
use nsauth_core::token::TokenSet;
use time::OffsetDateTime;

fn record(now: OffsetDateTime, refresh_left: time::Duration) -> Record {
    let mut rec = Record::new(Profile {
        account_id: AccountId::parse("1234567_SB1").unwrap(),
        client_id: "cid".into(),
        client_secret: None,
        redirect_uri: url::Url::parse("https://127.0.0.1:53682/callback").ok(),
        scopes: vec!["rest_webservices".into()],
        grant: GrantKind::AuthorizationCode,
        certificate_id: None,
        private_key: None,
        certificate_pem: None,
        endpoints: EndpointOverrides::default(),
        refresh_token_validity_hours: None,
    });
    rec.tokens = Some(TokenSet {
        access_token: AccessToken::new("at"),
        access_expires_at: now + time::Duration::hours(1),
        refresh_token: Some(RefreshToken::new("rt")),
        refresh_expires_at: Some(now + refresh_left),
        obtained_at: now,
    });
    rec
}

fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks.iter().find(|c| c.check == name).expect(name)
}

#[test]
fn good_profile_is_all_ok() {
    let now = OffsetDateTime::now_utc();
    let name = ProfileName::parse("prod").unwrap();
    let checks = profile_checks(&record(now, time::Duration::days(6)), &name, now);
    assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:#?}");
    assert!(find(&checks, "account")
        .message
        .contains("1234567-sb1.suitetalk.api.netsuite.com"));
    assert_eq!(outcome(&checks), Exit::Success);
}

#[test]
fn refresh_token_end_warns_then_fails() {
    let now = OffsetDateTime::now_utc();
    let name = ProfileName::parse("prod").unwrap();
    let soon = profile_checks(&record(now, time::Duration::hours(10)), &name, now);
    assert_eq!(find(&soon, "tokens").status, Status::Warn);
    assert_eq!(outcome(&soon), Exit::Success);
    let ended = profile_checks(&record(now, -time::Duration::minutes(1)), &name, now);
    let t = find(&ended, "tokens");
    assert_eq!(t.status, Status::Fail);
    assert!(t
        .fix
        .as_deref()
        .unwrap()
        .contains("nsauth login --profile prod"));
    assert_eq!(outcome(&ended), Exit::Failed(FailureKind::LoginNeeded));
}

#[test]
fn http_redirect_and_foreign_domains() {
    let now = OffsetDateTime::now_utc();
    let name = ProfileName::parse("p").unwrap();
    let mut rec = record(now, time::Duration::days(6));
    rec.profile.redirect_uri = url::Url::parse("http://127.0.0.1:8080/cb").ok();
    rec.profile.endpoints.token_url = url::Url::parse(
        "https://7654321.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token",
    )
    .ok();
    let checks = profile_checks(&rec, &name, now);
    assert_eq!(find(&checks, "redirect-uri").status, Status::Warn);
    assert_eq!(find(&checks, "account").status, Status::Warn);
    rec.profile.redirect_uri = url::Url::parse("http://example.com/cb").ok();
    let checks = profile_checks(&rec, &name, now);
    assert_eq!(find(&checks, "redirect-uri").status, Status::Fail);
    assert_eq!(outcome(&checks), Exit::Failed(FailureKind::Invalid));
}

#[test]
fn clock_skew_thresholds() {
    let server = "Wed, 21 Oct 2026 07:28:00 GMT";
    let at = OffsetDateTime::parse(server, &time::format_description::well_known::Rfc2822).unwrap();
    assert_eq!(clock_check(Some(server), at).status, Status::Ok);
    let c = clock_check(Some(server), at + time::Duration::seconds(90));
    assert_eq!(c.status, Status::Warn);
    assert!(c.message.contains("90s ahead"), "{}", c.message);
    let c = clock_check(Some(server), at - time::Duration::seconds(400));
    assert_eq!(
        (c.status, c.failure),
        (Status::Fail, Some(FailureKind::Invalid))
    );
    assert_eq!(clock_check(None, at).status, Status::Warn);
}

#[test]
fn worst_failure_wins() {
    let checks = [
        Check::fail("a", FailureKind::LoginNeeded, "", ""),
        Check::warn("b", "", ""),
        Check::fail("c", FailureKind::Unreachable, "", ""),
    ];
    assert_eq!(outcome(&checks), Exit::Failed(FailureKind::Unreachable));
    assert_eq!(outcome(&checks[1..2]), Exit::Success);
}

#[test]
fn json_shape() {
    let v =
        serde_json::to_value(Check::fail("store", FailureKind::Store, "down", "fix it")).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"check": "store", "status": "fail", "message": "down", "fix": "fix it"})
    );
}
