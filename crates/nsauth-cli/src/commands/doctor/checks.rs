//! `nsauth doctor`: checks one profile end to end and says what to fix.
//!
//! Each [`Check`] is `ok`, `warn` or `fail`; a failure carries a fix and the exit code it maps
//! to (2 configuration, 3 login needed, 4 store, 5 NetSuite unreachable). [`exit_code`] gives
//! the process exit code: 0 without failures (warnings allowed), else the highest code among
//! the failures.
//!
//! Nothing here uses a token: the network check is an unauthenticated request to the token
//! endpoint, and the store check writes, swaps and deletes a scratch record that holds no
//! secret.

use nsauth_core::account::AccountId;
use nsauth_core::http::{ClientAuth, Http};
use nsauth_core::m2m;
use nsauth_core::profile::{
    is_loopback_host, validate_redirect_uri, validate_scopes, EndpointOverrides, GrantKind,
    Profile, ProfileName,
};
use nsauth_core::store::{Precondition, Record, StoreError, TokenStore};
use nsauth_core::token::format_time;
use nsauth_core::Error;
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;

/// Clock skew above this many seconds is a warning.
pub const SKEW_WARN_SECONDS: i64 = 60;
/// Clock skew above this many seconds fails: NetSuite checks the `iat`/`exp` of assertions.
pub const SKEW_FAIL_SECONDS: i64 = 300;
/// A refresh token ending sooner than this is a warning.
pub const REFRESH_WARN: time::Duration = time::Duration::hours(72);
/// A certificate ending sooner than this is a warning.
pub const CERTIFICATE_WARN: time::Duration = time::Duration::days(30);

const STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but needs attention.
    Warn,
    /// Broken.
    Fail,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short name: `store`, `account`, `clock-skew`, ...
    pub check: &'static str,
    /// How it ended.
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do (failures and warnings).
    pub fix: Option<String>,
    /// The exit code a failure maps to (0 otherwise).
    #[serde(skip)]
    pub exit_code: u8,
}

impl Check {
    /// A passing check.
    pub fn ok(check: &'static str, message: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Ok,
            message: message.into(),
            fix: None,
            exit_code: 0,
        }
    }

    /// A warning.
    pub fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Warn,
            message: message.into(),
            fix: Some(fix.into()),
            exit_code: 0,
        }
    }

    /// A failure mapping to `exit_code`.
    pub fn fail(
        check: &'static str,
        exit_code: u8,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check,
            status: Status::Fail,
            message: message.into(),
            fix: Some(fix.into()),
            exit_code,
        }
    }

    /// A failure from an error, with the error's exit code.
    pub fn from_error(check: &'static str, err: &Error, fix: impl Into<String>) -> Self {
        let code = u8::try_from(err.exit_code()).unwrap_or(1);
        Self::fail(check, code, err.to_string(), fix)
    }
}

/// 0 when nothing failed, else the highest exit code among the failures.
pub fn exit_code(checks: &[Check]) -> u8 {
    checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.exit_code.max(1))
        .max()
        .unwrap_or(0)
}

/// Runs every check on profile `name`: the store (reachable, create/compare-and-swap/delete),
/// the profile, the credentials, the tokens, and the token endpoint and clock.
pub async fn run(store: &dyn TokenStore, http: &Http, name: &ProfileName) -> Vec<Check> {
    let described = store.describe();
    let loaded = match tokio::time::timeout(STORE_TIMEOUT, store.load(name)).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable {
            message: format!("no answer within {}s", STORE_TIMEOUT.as_secs()),
            retryable: true,
        }),
    };
    let mut checks = Vec::new();
    let record = match loaded {
        Err(e) => {
            checks.push(Check::from_error(
                "store",
                &Error::Store(e),
                format!("make {described} reachable (address, credentials, network) or pass another --store"),
            ));
            return checks;
        }
        Ok(v) => {
            checks.push(Check::ok("store", format!("{described} is reachable")));
            v.map(|v| v.record)
        }
    };
    checks.push(store_round_trip(store).await);
    let Some(record) = record else {
        checks.push(Check::fail(
            "profile",
            2,
            format!("profile {name} is not in {described}"),
            format!("create it: nsauth profile set {name} --account-id ... --client-id ... (or pick another --profile)"),
        ));
        return checks;
    };
    let now = OffsetDateTime::now_utc();
    checks.extend(profile_checks(&record, name, now));
    checks.extend(network_checks(http, &record.profile).await);
    checks
}

/// Writes, swaps and deletes a scratch record `nsauth-doctor-<random>` (holding no secret),
/// checking that create-only and compare-and-swap are enforced. The scratch record is always
/// deleted.
pub async fn store_round_trip(store: &dyn TokenStore) -> Check {
    let scratch = ProfileName::parse(&format!(
        "nsauth-doctor-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ))
    .expect("a valid name");
    let result = tokio::time::timeout(STORE_TIMEOUT, round_trip_steps(store, &scratch)).await;
    let result =
        result.unwrap_or_else(|_| Err(format!("no answer within {}s", STORE_TIMEOUT.as_secs())));
    match result {
        Ok(()) => {
            if store.capabilities().compare_and_swap {
                Check::ok(
                    "store-round-trip",
                    "create, compare-and-swap and delete work",
                )
            } else {
                Check::warn(
                    "store-round-trip",
                    "writes work, but this store does not declare compare-and-swap",
                    "use a store with compare-and-swap (see: nsauth backends) when several processes refresh the same profile",
                )
            }
        }
        Err(why) => {
            let _ =
                tokio::time::timeout(Duration::from_secs(10), store.delete(&scratch, None)).await;
            Check::fail(
                "store-round-trip",
                4,
                format!("the scratch record {scratch} could not be written, swapped and deleted: {why}"),
                "give nsauth write and delete access to the store (Vault policy, IAM, file permissions), and check that it keeps versions",
            )
        }
    }
}

async fn round_trip_steps(store: &dyn TokenStore, scratch: &ProfileName) -> Result<(), String> {
    let profile = Profile {
        account_id: AccountId::parse("1234567").expect("valid"),
        client_id: "nsauth-doctor".into(),
        client_secret: None,
        redirect_uri: url::Url::parse("https://127.0.0.1/nsauth-doctor").ok(),
        scopes: vec!["rest_webservices".into()],
        grant: GrantKind::AuthorizationCode,
        certificate_id: None,
        private_key: None,
        certificate_pem: None,
        endpoints: EndpointOverrides::default(),
        refresh_token_validity_hours: None,
    };
    let mut rec = Record::new(profile);
    let e = |step: &str, e: StoreError| format!("{step}: {e}");
    let v1 = store
        .put(scratch, &rec, Precondition::Create)
        .await
        .map_err(|x| e("create", x))?;
    match store.put(scratch, &rec, Precondition::Create).await {
        Err(StoreError::Conflict(_)) => {}
        Ok(_) => {
            return Err("a second create-only write succeeded (create-only is not enforced)".into())
        }
        Err(x) => return Err(e("second create", x)),
    }
    let read = store
        .load(scratch)
        .await
        .map_err(|x| e("read back", x))?
        .ok_or("the record written is not found when read back")?;
    if read.record != rec || read.version != v1 {
        return Err("the record read back differs from the one written".into());
    }
    rec.meta.refresh_count = 1;
    let v2 = store
        .put(scratch, &rec, Precondition::Match(v1.clone()))
        .await
        .map_err(|x| e("compare-and-swap", x))?;
    match store.put(scratch, &rec, Precondition::Match(v1)).await {
        Err(StoreError::Conflict(_)) => {}
        Ok(_) => {
            return Err(
                "a write against a stale version succeeded (compare-and-swap is not enforced)"
                    .into(),
            )
        }
        Err(x) => return Err(e("stale compare-and-swap", x)),
    }
    store
        .delete(scratch, Some(&v2))
        .await
        .map_err(|x| e("delete", x))?;
    match store.load(scratch).await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err("the record is still there after delete".into()),
        Err(x) => Err(e("read after delete", x)),
    }
}

/// The checks that need only the stored record: profile, account and endpoints, redirect
/// URI, scopes, key and certificate (client credentials), and tokens (authorization code).
pub fn profile_checks(rec: &Record, name: &ProfileName, now: OffsetDateTime) -> Vec<Check> {
    let p = &rec.profile;
    let mut out = Vec::new();
    let set = format!("nsauth profile set {name}");
    out.push(match p.validate() {
        Ok(()) => Check::ok(
            "profile",
            format!(
                "{name}: {}, {} client {}",
                p.grant.as_str(),
                if p.is_public() {
                    "public"
                } else {
                    "confidential"
                },
                p.client_id
            ),
        ),
        Err(why) => Check::fail("profile", 2, why, format!("correct it: {set} ...")),
    });
    out.push(account_check(p, &set));
    match p.grant {
        GrantKind::AuthorizationCode => {
            out.push(redirect_check(p, &set));
            out.push(scopes_check(p, &set));
            out.push(tokens_check(rec, name, now));
        }
        GrantKind::ClientCredentials => {
            out.push(scopes_check(p, &set));
            out.extend(m2m_checks(p, &set, now));
        }
    }
    out
}

fn account_check(p: &Profile, set: &str) -> Check {
    let acct = &p.account_id;
    let host = acct.host_form();
    let e = p.endpoints();
    let mut notes = Vec::new();
    for (what, url) in [
        ("authorize", &e.authorize),
        ("token", &e.token),
        ("revoke", &e.revoke),
        ("REST", &e.rest),
    ] {
        let h = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if is_loopback_host(url) {
            continue;
        }
        if let Some(first) = h.strip_suffix(".netsuite.com") {
            let label = first.split('.').next().unwrap_or_default();
            if label != host && h != "system.netsuite.com" {
                notes.push(format!(
                    "the {what} endpoint {h} is not account {acct}'s domain ({host}.…)"
                ));
            }
        } else {
            notes.push(format!(
                "the {what} endpoint host {h} is not a NetSuite domain"
            ));
        }
    }
    if !notes.is_empty() {
        return Check::warn(
            "account",
            format!("account {acct}: {}", notes.join("; ")),
            format!("check --account-id and the endpoint overrides against Setup > Company > Company Information > Company URLs ({set} --account-id ... --token-url ...)"),
        );
    }
    let how = if p.endpoints.base_url.is_some()
        || e.token
            .host_str()
            .is_some_and(|_| is_loopback_host(&e.token))
    {
        format!("endpoints at {}", origin(&e.token))
    } else {
        format!("{host}.app.netsuite.com, {host}.suitetalk.api.netsuite.com")
    };
    Check::ok("account", format!("account {acct}: {how}"))
}

fn origin(u: &url::Url) -> String {
    u.origin().ascii_serialization()
}

fn redirect_check(p: &Profile, set: &str) -> Check {
    let fix = format!("register an https:// (or custom scheme) redirect URI on the integration record, then: {set} --redirect-uri https://127.0.0.1:53682/callback");
    let Some(uri) = &p.redirect_uri else {
        return Check::fail("redirect-uri", 2, "no redirect URI is set", fix);
    };
    if let Err(why) = validate_redirect_uri(uri) {
        return Check::fail("redirect-uri", 2, format!("{uri}: {why}"), fix);
    }
    match uri.scheme() {
        "http" => Check::warn(
            "redirect-uri",
            format!("{uri} uses http://: NetSuite documents only https:// and custom schemes; loopback http may be refused"),
            fix,
        ),
        "https" => Check::ok("redirect-uri", uri.as_str()),
        _ => Check::ok("redirect-uri", format!("{uri} (custom scheme: finish logins with nsauth login finish)")),
    }
}

fn scopes_check(p: &Profile, set: &str) -> Check {
    match validate_scopes(&p.scopes) {
        Ok(()) => Check::ok("scopes", p.scopes.join(" ")),
        Err(why) => Check::fail(
            "scopes",
            2,
            why,
            format!(
                "{set} --scope rest_webservices (the scopes enabled on the integration record)"
            ),
        ),
    }
}

fn tokens_check(rec: &Record, name: &ProfileName, now: OffsetDateTime) -> Check {
    let login = format!("nsauth login --profile {name}");
    if let Some(m) = &rec.moved {
        return Check::fail(
            "tokens",
            3,
            format!(
                "the tokens were moved to {} at {}; this copy no longer refreshes",
                m.to,
                format_time(m.at)
            ),
            format!("use the store they were moved to, or log in again here: {login}"),
        );
    }
    let Some(t) = &rec.tokens else {
        return Check::fail("tokens", 3, "not logged in: there are no tokens", login);
    };
    if let Some(f) = rec
        .last_failure
        .as_ref()
        .filter(|f| f.exit_code == 3 && f.at >= t.obtained_at)
    {
        return Check::fail(
            "tokens",
            3,
            format!("the last refresh was refused: {}", f.message),
            login,
        );
    }
    if t.refresh_token.is_none() {
        return if t.access_expires_at > now {
            Check::warn(
                "tokens",
                format!(
                    "no refresh token; the access token ends {}",
                    relative(t.access_expires_at, now)
                ),
                format!("log in again before then: {login}"),
            )
        } else {
            Check::fail(
                "tokens",
                3,
                "no refresh token and the access token has ended",
                login,
            )
        };
    }
    match t.refresh_expires_at {
        Some(end) if end <= now => Check::fail(
            "tokens",
            3,
            format!("the refresh token ended {}", relative(end, now)),
            login,
        ),
        Some(end) if end - now < REFRESH_WARN => Check::warn(
            "tokens",
            format!("the refresh token ends {}; then a NetSuite user must log in again", relative(end, now)),
            format!("log in again before then: {login} (or ask the administrator for a longer Refresh Token Validity)"),
        ),
        Some(end) => Check::ok("tokens", format!("the refresh token is valid until {}", relative(end, now))),
        None => Check::warn(
            "tokens",
            "the refresh token's end is unknown (it is not a JWT with exp)",
            format!("nsauth profile set {name} --refresh-token-validity HOURS (as on the integration record)"),
        ),
    }
}

fn m2m_checks(p: &Profile, set: &str, now: OffsetDateTime) -> Vec<Check> {
    let keygen = format!("nsauth m2m keygen --out DIR, upload DIR/certificate.pem to NetSuite, then: {set} --certificate-id ID --private-key-file DIR/private-key.pem");
    let mut out = Vec::new();
    let key = match &p.private_key {
        None => {
            out.push(Check::fail(
                "private-key",
                2,
                "no private key is stored",
                keygen.clone(),
            ));
            None
        }
        Some(k) => match m2m::inspect_private_key(k) {
            Ok(info) => {
                out.push(Check::ok(
                    "private-key",
                    format!(
                        "{}, assertions signed with {}",
                        info.description, info.jws_alg
                    ),
                ));
                Some(k)
            }
            Err(e) => {
                out.push(Check::from_error("private-key", &e, keygen.clone()));
                None
            }
        },
    };
    let Some(pem) = p.certificate_pem.as_deref() else {
        out.push(Check::warn(
            "certificate",
            "no certificate is stored, so nsauth cannot warn before it expires or check it matches the key",
            format!("{set} --certificate-file certificate.pem"),
        ));
        return out;
    };
    out.push(match m2m::inspect_certificate(pem) {
        Err(e) => Check::from_error("certificate", &e, keygen.clone()),
        Ok(c) => certificate_check(&c, now, &keygen),
    });
    if let Some(key) = key {
        out.push(match m2m::certificate_matches_key(pem, key) {
            Ok(true) => Check::ok("key-certificate-match", "the certificate certifies the private key"),
            Ok(false) => Check::fail(
                "key-certificate-match",
                2,
                "the stored certificate does not certify the stored private key; NetSuite will refuse the assertions",
                format!("{set} --private-key-file KEY --certificate-file CERT with the pair uploaded to NetSuite"),
            ),
            Err(e) => Check::from_error("key-certificate-match", &e, keygen),
        });
    }
    out
}

fn certificate_check(c: &m2m::CertificateInfo, now: OffsetDateTime, keygen: &str) -> Check {
    let what = format!("{} ({})", c.subject, c.key_description);
    let accepted = [
        "EC P-256",
        "EC P-384",
        "EC P-521",
        "RSA 3072 bits",
        "RSA 4096 bits",
    ];
    if !accepted.contains(&c.key_description.as_str()) {
        return Check::fail(
            "certificate",
            2,
            format!("{what}: NetSuite accepts RSA 3072/4096 or EC P-256/384/521 keys only"),
            keygen,
        );
    }
    if c.not_before > now {
        return Check::fail(
            "certificate",
            2,
            format!("{what} is not valid until {}", relative(c.not_before, now)),
            "check this machine's clock, or make a new certificate",
        );
    }
    if c.not_after <= now {
        return Check::fail(
            "certificate",
            3,
            format!("{what} expired {}", relative(c.not_after, now)),
            keygen,
        );
    }
    if c.not_after - now < CERTIFICATE_WARN {
        return Check::warn(
            "certificate",
            format!("{what} expires {}", relative(c.not_after, now)),
            format!("rotate before then: {keygen}"),
        );
    }
    if c.validity_days > 730 {
        return Check::warn(
            "certificate",
            format!(
                "{what} is valid for {} days; NetSuite accepts at most 2 years",
                c.validity_days
            ),
            keygen,
        );
    }
    Check::ok(
        "certificate",
        format!("{what}, valid until {}", relative(c.not_after, now)),
    )
}

/// Sends an unauthenticated, empty request to the token endpoint (NetSuite answers 400) and
/// compares its `Date` with this machine's clock.
pub async fn network_checks(http: &Http, profile: &Profile) -> Vec<Check> {
    let url = profile.endpoints().token;
    let before = OffsetDateTime::now_utc();
    let resp = http
        .post_form("token endpoint", &url, ClientAuth::None, &[])
        .await;
    let after = OffsetDateTime::now_utc();
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            return vec![Check::from_error(
                "token-endpoint",
                &e,
                "check the network, proxy (HTTPS_PROXY) and the account's domains in Setup > Company > Company Information > Company URLs",
            )]
        }
    };
    let shown = nsauth_core::http::redact_url(&url);
    let mut out = vec![match resp.status {
        400 | 401 => Check::ok(
            "token-endpoint",
            format!(
                "{shown} answers (HTTP {} to an empty request, as expected)",
                resp.status
            ),
        ),
        s => Check::warn(
            "token-endpoint",
            format!("{shown} answered HTTP {s} to an empty request; NetSuite answers 400"),
            "check the token endpoint URL (a proxy or a wrong override?)",
        ),
    }];
    out.push(clock_check(
        resp.date.as_deref(),
        before + (after - before) / 2,
    ));
    out
}

/// Compares an HTTP `Date` header with `local` (the middle of the request).
pub fn clock_check(date: Option<&str>, local: OffsetDateTime) -> Check {
    let Some(server) = date.and_then(|d| {
        OffsetDateTime::parse(d.trim(), &time::format_description::well_known::Rfc2822).ok()
    }) else {
        return Check::warn(
            "clock-skew",
            "the token endpoint sent no usable Date header, so the clock could not be compared",
            "make sure this machine's clock is synchronised (NTP)",
        );
    };
    // Date has a resolution of one second: allow for it.
    let skew = (local - server).as_seconds_f64();
    let secs = if skew.abs() < 1.0 {
        0
    } else {
        skew.round() as i64
    };
    let dir = if secs > 0 { "ahead of" } else { "behind" };
    let fix = "synchronise this machine's clock (NTP: timedatectl set-ntp true, or chronyd)";
    if secs.abs() > SKEW_FAIL_SECONDS {
        Check::fail(
            "clock-skew",
            2,
            format!("this clock is {}s {dir} NetSuite's; signed assertions (iat/exp) and expiry times will be wrong", secs.abs()),
            fix,
        )
    } else if secs.abs() > SKEW_WARN_SECONDS {
        Check::warn(
            "clock-skew",
            format!("this clock is {}s {dir} NetSuite's", secs.abs()),
            fix,
        )
    } else {
        Check::ok(
            "clock-skew",
            format!("within {}s of NetSuite's clock", secs.abs().max(1)),
        )
    }
}

fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (t - now).whole_seconds();
    let a = secs.unsigned_abs();
    let (d, h, m) = (a / 86400, (a % 86400) / 3600, (a % 3600) / 60);
    let span = if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{a}s")
    };
    let rel = if secs >= 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    };
    format!("{} ({rel})", format_time(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsauth_core::secret::{AccessToken, RefreshToken};
    use nsauth_core::token::TokenSet;

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
        assert_eq!(exit_code(&checks), 0);
    }

    #[test]
    fn refresh_token_end_warns_then_fails() {
        let now = OffsetDateTime::now_utc();
        let name = ProfileName::parse("prod").unwrap();
        let soon = profile_checks(&record(now, time::Duration::hours(10)), &name, now);
        assert_eq!(find(&soon, "tokens").status, Status::Warn);
        assert_eq!(exit_code(&soon), 0);
        let ended = profile_checks(&record(now, -time::Duration::minutes(1)), &name, now);
        let t = find(&ended, "tokens");
        assert_eq!(t.status, Status::Fail);
        assert!(t
            .fix
            .as_deref()
            .unwrap()
            .contains("nsauth login --profile prod"));
        assert_eq!(exit_code(&ended), 3);
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
        assert_eq!(exit_code(&checks), 2);
    }

    #[test]
    fn clock_skew_thresholds() {
        let server = "Wed, 21 Oct 2026 07:28:00 GMT";
        let at =
            OffsetDateTime::parse(server, &time::format_description::well_known::Rfc2822).unwrap();
        assert_eq!(clock_check(Some(server), at).status, Status::Ok);
        let c = clock_check(Some(server), at + time::Duration::seconds(90));
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("90s ahead"), "{}", c.message);
        let c = clock_check(Some(server), at - time::Duration::seconds(400));
        assert_eq!((c.status, c.exit_code), (Status::Fail, 2));
        assert_eq!(clock_check(None, at).status, Status::Warn);
    }

    #[test]
    fn worst_failure_wins() {
        let checks = [
            Check::fail("a", 3, "", ""),
            Check::warn("b", "", ""),
            Check::fail("c", 5, "", ""),
        ];
        assert_eq!(exit_code(&checks), 5);
        assert_eq!(exit_code(&checks[1..2]), 0);
    }

    #[test]
    fn json_shape() {
        let v = serde_json::to_value(Check::fail("store", 4, "down", "fix it")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"check": "store", "status": "fail", "message": "down", "fix": "fix it"})
        );
    }
}
