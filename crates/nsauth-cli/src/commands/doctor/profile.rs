//! The checks that need only the stored record: the profile, its account and endpoints, the
//! redirect URI, scopes, key and certificate, and the tokens.

use super::checks::Check;
use nsauth_core::m2m;
use nsauth_core::profile::{
    is_loopback_host, validate_redirect_uri, validate_scopes, GrantKind, Profile, ProfileName,
};
use nsauth_core::store::{FailureKind, Record};
use nsauth_core::token::format_time;
use time::OffsetDateTime;

/// A refresh token ending sooner than this is a warning.
pub const REFRESH_WARN: time::Duration = time::Duration::hours(72);
/// A certificate ending sooner than this is a warning.
pub const CERTIFICATE_WARN: time::Duration = time::Duration::days(30);

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
        Err(why) => Check::fail(
            "profile",
            FailureKind::Invalid,
            why,
            format!("correct it: {set} ..."),
        ),
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
            out.extend(m2m_checks(
                p,
                &set,
                &format!("nsauth --profile {name} m2m rotate"),
                now,
            ));
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
        return Check::fail(
            "redirect-uri",
            FailureKind::Invalid,
            "no redirect URI is set",
            fix,
        );
    };
    if let Err(why) = validate_redirect_uri(uri) {
        return Check::fail(
            "redirect-uri",
            FailureKind::Invalid,
            format!("{uri}: {why}"),
            fix,
        );
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
            FailureKind::Invalid,
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
            FailureKind::LoginNeeded,
            format!(
                "the tokens were moved to {} at {}; this copy no longer refreshes",
                m.to,
                format_time(m.at)
            ),
            format!("use the store they were moved to, or log in again here: {login}"),
        );
    }
    let Some(t) = &rec.tokens else {
        return Check::fail(
            "tokens",
            FailureKind::LoginNeeded,
            "not logged in: there are no tokens",
            login,
        );
    };
    if let Some(f) = rec
        .last_failure
        .as_ref()
        .filter(|f| f.kind == FailureKind::LoginNeeded && f.at >= t.obtained_at)
    {
        return Check::fail(
            "tokens",
            FailureKind::LoginNeeded,
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
                FailureKind::LoginNeeded,
                "no refresh token and the access token has ended",
                login,
            )
        };
    }
    match t.refresh_expires_at {
        Some(end) if end <= now => Check::fail(
            "tokens",
            FailureKind::LoginNeeded,
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

fn m2m_checks(p: &Profile, set: &str, rotate: &str, now: OffsetDateTime) -> Vec<Check> {
    let keygen = format!("nsauth m2m keygen --out DIR, upload DIR/certificate.pem to NetSuite, then: {set} --certificate-id ID --private-key-file DIR/private-key.pem");
    let mut out = Vec::new();
    let key = match &p.private_key {
        None => {
            out.push(Check::fail(
                "private-key",
                FailureKind::Invalid,
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
        Ok(c) => certificate_check(&c, now, &keygen, rotate),
    });
    if let Some(key) = key {
        out.push(match m2m::certificate_matches_key(pem, key) {
            Ok(true) => Check::ok("key-certificate-match", "the certificate certifies the private key"),
            Ok(false) => Check::fail(
                "key-certificate-match",
                FailureKind::Invalid,
                "the stored certificate does not certify the stored private key; NetSuite will refuse the assertions",
                format!("{set} --private-key-file KEY --certificate-file CERT with the pair uploaded to NetSuite"),
            ),
            Err(e) => Check::from_error("key-certificate-match", &e, keygen),
        });
    }
    out
}

fn certificate_check(
    c: &m2m::CertificateInfo,
    now: OffsetDateTime,
    keygen: &str,
    rotate: &str,
) -> Check {
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
            FailureKind::Invalid,
            format!("{what}: NetSuite accepts RSA 3072/4096 or EC P-256/384/521 keys only"),
            keygen,
        );
    }
    if c.not_before > now {
        return Check::fail(
            "certificate",
            FailureKind::Invalid,
            format!("{what} is not valid until {}", relative(c.not_before, now)),
            "check this machine's clock, or make a new certificate",
        );
    }
    if c.not_after <= now {
        return Check::fail(
            "certificate",
            FailureKind::LoginNeeded,
            format!("{what} expired {}", relative(c.not_after, now)),
            keygen,
        );
    }
    if c.not_after - now < CERTIFICATE_WARN {
        return Check::warn(
            "certificate",
            format!("{what} expires {}", relative(c.not_after, now)),
            format!(
                "rotate before then (the current certificate keeps working meanwhile): {rotate}"
            ),
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
