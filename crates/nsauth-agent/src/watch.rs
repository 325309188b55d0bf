//! The deadline watch: for each profile, the refresh-token chain end and the M2M
//! certificate's `notAfter`, announced at thresholds, **only on state changes**.
//!
//! The agent calls [`Watcher::check`] for a profile after every refresh attempt (with the
//! error, if it failed) and on its watch tick (with `None`). The watcher compares the
//! record's [`deadlines`] with `now`, decides what changed (rules in [`state`]), builds the
//! [`Event`]s and hands them to the [`Notifier`], which delivers
//! them off the refresh path.
//!
//! Events (`event` field of the JSON, schema 1; full description in docs/notifications.md):
//!
//! | event | when |
//! |---|---|
//! | `refresh_token_expiring` | the refresh-token chain end came within a threshold (default 72 h, 24 h, 4 h), once per band |
//! | `refresh_token_expired` | it has passed |
//! | `certificate_expiring` | the certificate's end came within a threshold (default 30, 14, 3 days), once per band |
//! | `certificate_expired` | it has passed |
//! | `reapproval_needed` | a refresh (or mint) was refused with "login needed"; for authorization-code profiles it carries a `handoff_url` with a stored pending login |
//! | `recovered` | after any of the above: the deadline moved later (a login, a new certificate) or tokens work again; one per profile per check |
//!
//! What the watcher remembers lives in memory only: after a restart, a deadline already
//! inside a band is announced once more, an outstanding re-approval is raised again (with a
//! new link) at the next refused refresh, and a recovery that happens while the agent is
//! down is not announced. A duplicate after a restart is preferred to a missed warning.

pub mod deadline;
pub mod event;
mod message;
pub mod state;

pub use deadline::{deadlines, Deadlines};
pub use event::{format_threshold, Event, EventKind, EVENT_SCHEMA};

use crate::notify::{Limits, Notifier, Stats};
use message::{merge_recovered, reapproval, Kind};
use nsauth_store::profile::GrantKind;
use nsauth_store::{ProfileName, Record, TokenStore};
use state::{Approval, Change, ProfileState};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;
use url::Url;

/// How long the handoff link of a `reapproval_needed` event stays valid: long enough for a
/// weekend.
pub const HANDOFF_TTL: time::Duration = time::Duration::hours(72);

/// The longest a check waits for the store to keep the handoff's pending login; without it
/// the event goes out without a link.
pub const HANDOFF_STORE_LIMIT: Duration = Duration::from_secs(10);

/// What to watch for and where to send it. Its `Debug` hides the webhook URL's path and
/// query (a Slack webhook's path is its key).
#[derive(Clone)]
pub struct WatchConfig {
    /// Refresh-token thresholds (default 72 h, 24 h, 4 h).
    pub refresh_thresholds: Vec<Duration>,
    /// Certificate thresholds (default 30, 14, 3 days).
    pub certificate_thresholds: Vec<Duration>,
    /// `--notify-command`: run with `/bin/sh -c`, event JSON on stdin.
    pub notify_command: Option<String>,
    /// `--notify-webhook`: JSON POST with a Slack-compatible `text` field.
    pub notify_webhook: Option<Url>,
}

impl std::fmt::Debug for WatchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchConfig")
            .field("refresh_thresholds", &self.refresh_thresholds)
            .field("certificate_thresholds", &self.certificate_thresholds)
            .field("notify_command", &self.notify_command)
            .field(
                "notify_webhook",
                &self.notify_webhook.as_ref().map(crate::notify::redact),
            )
            .finish()
    }
}

impl Default for WatchConfig {
    fn default() -> Self {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        WatchConfig {
            refresh_thresholds: vec![hours(72), hours(24), hours(4)],
            certificate_thresholds: vec![hours(30 * 24), hours(14 * 24), hours(3 * 24)],
            notify_command: None,
            notify_webhook: None,
        }
    }
}

/// Parses a threshold list for the CLI flags: `72h,24h,4h`, `30d,14d,3d`, `90m`, seconds
/// (`3600`), or `none` for no advance warnings (only "expired"). Returns them largest first.
pub fn parse_thresholds(s: &str) -> Result<Vec<Duration>, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let shown: String = part
            .chars()
            .take(20)
            .flat_map(char::escape_default)
            .collect();
        let bad = || {
            format!("invalid threshold {shown:?}: use a comma-separated list like 72h,24h,4h or 30d,14d,3d (units s, m, h, d), or none")
        };
        let (digits, unit) = match part.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => part.split_at(i),
            None => (part, "s"),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => Some(n),
            "m" => n.checked_mul(60),
            "h" => n.checked_mul(3600),
            "d" => n.checked_mul(86_400),
            _ => None,
        }
        .ok_or_else(bad)?;
        if secs == 0 || secs > 366 * 86_400 {
            return Err(format!(
                "invalid threshold {shown:?}: it must be more than 0 and at most 366d"
            ));
        }
        out.push(Duration::from_secs(secs));
    }
    out.sort_unstable_by(|a, b| b.cmp(a));
    if out.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!("threshold list {s:?} names the same time twice"));
    }
    Ok(out)
}

/// Watches the deadlines of every profile it is shown. `Send + Sync`; share it in an `Arc`.
pub struct Watcher {
    refresh: Vec<(time::Duration, Duration)>,
    certificate: Vec<(time::Duration, Duration)>,
    command: Option<String>,
    webhook: Option<Url>,
    limits: Limits,
    profiles: Mutex<HashMap<ProfileName, ProfileState>>,
    notifier: OnceLock<Notifier>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("refresh", &self.refresh)
            .field("certificate", &self.certificate)
            .field("command", &self.command)
            .field("webhook", &self.webhook.as_ref().map(crate::notify::redact))
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What one check found, before links and messages.
struct Found {
    changes: Vec<(Kind, Change)>,
    approval: Option<Approval>,
}

impl Watcher {
    /// A watcher with `config`. Delivery starts with the first event (inside the runtime).
    pub fn new(config: WatchConfig) -> Self {
        let sorted = |mut v: Vec<Duration>| {
            v.sort_unstable_by(|a, b| b.cmp(a));
            v.dedup();
            v.into_iter()
                .map(|d| {
                    (
                        time::Duration::try_from(d).unwrap_or(time::Duration::MAX),
                        d,
                    )
                })
                .collect()
        };
        Watcher {
            refresh: sorted(config.refresh_thresholds),
            certificate: sorted(config.certificate_thresholds),
            command: config.notify_command,
            webhook: config.notify_webhook,
            limits: Limits::default(),
            profiles: Mutex::new(HashMap::new()),
            notifier: OnceLock::new(),
        }
    }

    /// Other delivery limits (tests use short ones).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Checks one profile and queues what changed for delivery. Never fails: a store
    /// failure while keeping the handoff login only leaves the link out of the event.
    pub async fn check(
        &self,
        store: &dyn TokenStore,
        name: &ProfileName,
        record: &Record,
        refresh_error: Option<&nsauth_core::Error>,
        now: OffsetDateTime,
    ) {
        let events = self.evaluate(store, name, record, refresh_error, now).await;
        if events.is_empty() {
            return;
        }
        let notifier = self.notifier.get_or_init(|| {
            Notifier::spawn(
                self.command.clone(),
                self.webhook.clone(),
                self.limits.clone(),
            )
        });
        for e in events {
            notifier.send(e);
        }
    }

    /// [`Watcher::check`] without delivery: updates the state and returns the events.
    pub async fn evaluate(
        &self,
        store: &dyn TokenStore,
        name: &ProfileName,
        record: &Record,
        refresh_error: Option<&nsauth_core::Error>,
        now: OffsetDateTime,
    ) -> Vec<Event> {
        if record.moved.is_some() {
            // Its tokens live in another store now; this copy is not used any more.
            return Vec::new();
        }
        let found = self.step(name, record, refresh_error, now);
        let mut events = Vec::new();
        let recovered: Vec<Event> = found
            .changes
            .iter()
            .filter_map(|(k, c)| match c {
                Change::Recovered { end } => Some(message::recovered(*k, name, record, *end, now)),
                Change::Crossed { .. } => None,
            })
            .collect();
        let approved = found.approval == Some(Approval::Recovered);
        if approved || !recovered.is_empty() {
            events.push(merge_recovered(recovered, approved, name, record, now));
        }
        for (k, c) in &found.changes {
            if let Change::Crossed { level, end } = c {
                let list = match k {
                    Kind::Refresh => &self.refresh,
                    Kind::Certificate => &self.certificate,
                };
                events.push(message::crossed(*k, list, *level, *end, name, record, now));
            }
        }
        if found.approval == Some(Approval::Needed) {
            events.push(reapproval(store, name, record, refresh_error, now).await);
        }
        events
    }

    /// Forgets a profile (removed from the agent).
    pub fn forget(&self, name: &ProfileName) {
        self.lock().remove(name);
    }

    /// Delivery counts (all zero before the first event).
    pub fn stats(&self) -> Stats {
        self.notifier.get().map(Notifier::stats).unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProfileName, ProfileState>> {
        self.profiles.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn step(
        &self,
        name: &ProfileName,
        record: &Record,
        refresh_error: Option<&nsauth_core::Error>,
        now: OffsetDateTime,
    ) -> Found {
        let d = deadlines(record);
        let refresh_end = deadline::effective_refresh_end(record, &d, now);
        let t = |v: &[(time::Duration, Duration)]| v.iter().map(|(t, _)| *t).collect::<Vec<_>>();
        let login_needed = matches!(refresh_error, Some(nsauth_core::Error::LoginNeeded(_)));
        let tokens = record.tokens.as_ref();
        let usable = tokens.is_some_and(|t| match record.profile.grant {
            GrantKind::AuthorizationCode => t.refresh_usable(now),
            GrantKind::ClientCredentials => t.access_expires_at > now,
        });
        let fingerprint = tokens.map(|t| t.access_token.fingerprint());
        let mut profiles = self.lock();
        let st = profiles.entry(name.clone()).or_default();
        let mut changes: Vec<(Kind, Change)> = Vec::new();
        for c in st.refresh.step(refresh_end, now, &t(&self.refresh)) {
            changes.push((Kind::Refresh, c));
        }
        for c in st
            .certificate
            .step(d.certificate_not_after, now, &t(&self.certificate))
        {
            changes.push((Kind::Certificate, c));
        }
        let approval =
            st.reapproval
                .step(login_needed, refresh_error.is_some(), fingerprint, usable);
        Found { changes, approval }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watcher_is_shareable_and_its_debug_hides_the_webhook_key() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Watcher>();
        let config = WatchConfig {
            notify_webhook: Some(
                Url::parse("https://hooks.slack.com/services/T0/B0/webhook-key?x=1").unwrap(),
            ),
            ..WatchConfig::default()
        };
        let shown = format!("{config:?} {:?}", Watcher::new(config.clone()));
        assert!(
            !shown.contains("webhook-key") && !shown.contains("x=1"),
            "{shown}"
        );
        assert!(shown.contains("hooks.slack.com"), "{shown}");
    }
}
