//! The words of each event: messages, thresholds, the re-approval link.

use super::deadline::{self, deadlines};
use super::event::{self, format_threshold, one_line, relative, when, Event, EventKind};
use super::{HANDOFF_STORE_LIMIT, HANDOFF_TTL};
use nsauth_store::profile::GrantKind;
use nsauth_store::{ProfileName, Record, TokenStore};
use std::time::Duration;
use time::OffsetDateTime;

/// Which deadline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The refresh-token chain end.
    Refresh,
    /// The certificate's end.
    Certificate,
}

pub(crate) fn recovered(
    kind: Kind,
    name: &ProfileName,
    record: &Record,
    end: OffsetDateTime,
    now: OffsetDateTime,
) -> Event {
    let what = match kind {
        Kind::Refresh => format!("the refresh token now lasts until {}", when(end)),
        Kind::Certificate => format!("the certificate is now valid until {}", when(end)),
    };
    base(EventKind::Recovered, name, record, now, what).deadline(end)
}

pub(crate) fn crossed(
    kind: Kind,
    thresholds: &[(time::Duration, Duration)],
    level: usize,
    end: OffsetDateTime,
    name: &ProfileName,
    record: &Record,
    now: OffsetDateTime,
) -> Event {
    let days = kind == Kind::Certificate;
    let threshold = thresholds
        .get(level - 1)
        .map(|(_, d)| format_threshold(*d, days));
    let what = match kind {
        Kind::Refresh if record.profile.is_public() => "the refresh-token rotation chain",
        Kind::Refresh => "the refresh token",
        Kind::Certificate => "the M2M certificate",
    };
    let (event, msg) = match (kind, &threshold) {
        (Kind::Refresh, Some(t)) => (
            EventKind::RefreshTokenExpiring,
            format!("{what} of profile {name} (account {}) ends {} ({}, under {t}); then a NetSuite user must log in again: nsauth login --profile {name} (or send them: nsauth login start --handoff --profile {name})", record.profile.account_id, when(end), relative(end, now)),
        ),
        (Kind::Refresh, None) => (
            EventKind::RefreshTokenExpired,
            format!("{what} of profile {name} (account {}) ended {} ({}); a NetSuite user must log in again: nsauth login --profile {name} (or send them: nsauth login start --handoff --profile {name})", record.profile.account_id, when(end), relative(end, now)),
        ),
        (Kind::Certificate, Some(t)) => (
            EventKind::CertificateExpiring,
            format!("{what} of profile {name} (account {}) ends {} ({}, under {t}); rotate it before then: nsauth m2m rotate --profile {name}", record.profile.account_id, when(end), relative(end, now)),
        ),
        (Kind::Certificate, None) => (
            EventKind::CertificateExpired,
            format!("{what} of profile {name} (account {}) ended {} ({}); NetSuite refuses it: rotate it: nsauth m2m rotate --profile {name}", record.profile.account_id, when(end), relative(end, now)),
        ),
    };
    let mut e = base(event, name, record, now, msg).deadline(end);
    e.threshold = threshold;
    e.finish()
}

fn base(
    kind: EventKind,
    name: &ProfileName,
    record: &Record,
    now: OffsetDateTime,
    msg: String,
) -> Event {
    Event::new(
        kind,
        name.as_str(),
        record.profile.account_id.as_str(),
        now,
        msg,
    )
}

pub(crate) fn merge_recovered(
    parts: Vec<Event>,
    approved: bool,
    name: &ProfileName,
    record: &Record,
    now: OffsetDateTime,
) -> Event {
    let mut what: Vec<String> = Vec::new();
    if approved {
        what.push("tokens work again".into());
    }
    what.extend(parts.iter().map(|e| e.message.clone()));
    let deadline = parts.iter().find_map(|e| e.deadline);
    let msg = format!(
        "profile {name} (account {}) recovered: {}",
        record.profile.account_id,
        what.join("; ")
    );
    let e = base(EventKind::Recovered, name, record, now, msg);
    match deadline {
        Some(d) => e.deadline(d).finish(),
        None => e.finish(),
    }
}

/// The `reapproval_needed` event; for authorization-code profiles with a stored handoff login.
pub(crate) async fn reapproval(
    store: &dyn TokenStore,
    name: &ProfileName,
    record: &Record,
    refresh_error: Option<&nsauth_core::Error>,
    now: OffsetDateTime,
) -> Event {
    let why = refresh_error
        .map(|e| one_line(&e.to_string()))
        .unwrap_or_default();
    let acct = &record.profile.account_id;
    if record.profile.grant == GrantKind::ClientCredentials {
        let msg = format!("NetSuite refused the M2M token request of profile {name} (account {acct}): {why}; the certificate may have expired, been revoked or lost its mapping: rotate it (nsauth m2m rotate --profile {name}) and check the mapping under Setup > Integration > OAuth 2.0 Client Credentials (M2M) Setup");
        let e = base(EventKind::ReapprovalNeeded, name, record, now, msg);
        return match deadlines(record).certificate_not_after {
            Some(d) => e.deadline(d).finish(),
            None => e.finish(),
        };
    }
    let started = tokio::time::timeout(
        HANDOFF_STORE_LIMIT,
        nsauth_core::login::start(store, name, None, HANDOFF_TTL),
    )
    .await;
    let mut e = match started {
        Ok(Ok((url, expires))) => {
            let msg = format!("profile {name} (account {acct}) needs a NetSuite user to approve access again ({why}); send them the handoff link (valid until {}, usable once); when their browser lands on the redirect URI, run: nsauth login finish --profile {name} and paste that URL", when(expires));
            let mut e = base(EventKind::ReapprovalNeeded, name, record, now, msg);
            e.handoff_url = Some(url.to_string());
            e.handoff_expires_at = Some(event::whole_seconds(expires));
            e
        }
        failed => {
            let reason = match failed {
                Ok(Err(err)) => one_line(&err.to_string()),
                _ => "the store did not answer in time".into(),
            };
            tracing::warn!("no handoff link for profile {name}: {reason}");
            let msg = format!("profile {name} (account {acct}) needs a NetSuite user to approve access again ({why}); no link could be prepared ({reason}): run nsauth login start --handoff --profile {name} and send the message to a NetSuite user");
            base(EventKind::ReapprovalNeeded, name, record, now, msg)
        }
    };
    if let Some(end) = deadline::effective_refresh_end(record, &deadlines(record), now) {
        e = e.deadline(end);
    }
    e.finish()
}
