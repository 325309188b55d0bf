//! The token endpoint answers, and this machine's clock agrees with NetSuite's.

use super::checks::Check;
use nsauth_core::http::{ClientAuth, Http};
use nsauth_core::profile::Profile;
use nsauth_core::store::FailureKind;
use time::OffsetDateTime;

/// Clock skew above this many seconds is a warning.
pub const SKEW_WARN_SECONDS: i64 = 60;
/// Clock skew above this many seconds fails: NetSuite checks the `iat`/`exp` of assertions.
pub const SKEW_FAIL_SECONDS: i64 = 300;

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
            FailureKind::Invalid,
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
