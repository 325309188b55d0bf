//! The notification event: its JSON form (schema 1) and its one-line text.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// The event schema this build writes.
pub const EVENT_SCHEMA: u32 = 1;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The refresh-token chain ends within a threshold.
    RefreshTokenExpiring,
    /// The refresh-token chain has ended.
    RefreshTokenExpired,
    /// The M2M certificate ends within a threshold.
    CertificateExpiring,
    /// The M2M certificate has ended.
    CertificateExpired,
    /// A refresh (or mint) was refused: a person must act.
    ReapprovalNeeded,
    /// What was announced before works again.
    Recovered,
}

impl EventKind {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RefreshTokenExpiring => "refresh_token_expiring",
            EventKind::RefreshTokenExpired => "refresh_token_expired",
            EventKind::CertificateExpiring => "certificate_expiring",
            EventKind::CertificateExpired => "certificate_expired",
            EventKind::ReapprovalNeeded => "reapproval_needed",
            EventKind::Recovered => "recovered",
        }
    }
}

/// One notification. Holds no secret: the handoff link's `state` and code challenge are
/// public by design (the PKCE verifier stays in the store).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Always [`EVENT_SCHEMA`].
    pub schema: u32,
    /// What happened.
    pub event: EventKind,
    /// The profile name.
    pub profile: String,
    /// The NetSuite account.
    pub account_id: String,
    /// The deadline concerned (refresh-token chain end or certificate end), if known.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deadline: Option<OffsetDateTime>,
    /// Seconds from the event to `deadline` (negative once past).
    pub seconds_left: Option<i64>,
    /// The threshold crossed (`"24h"`, `"14d"`), for `*_expiring` events.
    pub threshold: Option<String>,
    /// One secret-free sentence saying what happened and what to do.
    pub message: String,
    /// For `reapproval_needed` of an authorization-code profile: the link a NetSuite user
    /// opens to approve access again (a pending login is stored for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff_url: Option<String>,
    /// Until when `handoff_url` is accepted.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub handoff_expires_at: Option<OffsetDateTime>,
    /// When the agent noticed.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The Slack-compatible one-liner (`&`, `<`, `>` escaped, the link as `<url>`).
    pub text: String,
}

impl Event {
    /// An event without link or deadline; `text` is filled in by [`Event::finish`].
    pub(crate) fn new(
        event: EventKind,
        profile: &str,
        account_id: &str,
        at: OffsetDateTime,
        message: String,
    ) -> Self {
        let at = whole_seconds(at);
        Event {
            schema: EVENT_SCHEMA,
            event,
            profile: profile.to_owned(),
            account_id: account_id.to_owned(),
            deadline: None,
            seconds_left: None,
            threshold: None,
            message,
            handoff_url: None,
            handoff_expires_at: None,
            at,
            text: String::new(),
        }
    }

    pub(crate) fn deadline(mut self, end: OffsetDateTime) -> Self {
        let end = whole_seconds(end);
        self.deadline = Some(end);
        self.seconds_left = Some((end - self.at).whole_seconds());
        self
    }

    /// Fills in `text` from the other fields.
    pub(crate) fn finish(mut self) -> Self {
        let icon = match self.event {
            EventKind::Recovered => ":white_check_mark:",
            EventKind::RefreshTokenExpiring | EventKind::CertificateExpiring => ":warning:",
            _ => ":rotating_light:",
        };
        let mut text = format!("{icon} nsauth: {}", slack_escape(&self.message));
        if let Some(url) = &self.handoff_url {
            text.push_str(&format!(" <{}|approve access>", slack_escape(url)));
        }
        self.text = text;
        self
    }

    /// The JSON document sent to a command or webhook.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events serialise")
    }
}

/// Times in events are whole seconds.
pub(crate) fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Slack's escaping: `&`, `<` and `>` only.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A text from elsewhere (an error message) made safe for one line: control characters
/// dropped, at most 300 characters.
pub(crate) fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// `2026-11-20 14:02 UTC`.
pub(crate) fn when(t: OffsetDateTime) -> String {
    nsauth_core::token::format_time(t)
}

/// `in 2d 3h`, `in 45m`, `3h 10m ago`.
pub(crate) fn relative(end: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = end - now;
    if d.is_negative() {
        format!("{} ago", span(-d))
    } else if d.is_zero() {
        "just now".into()
    } else {
        format!("in {}", span(d))
    }
}

fn span(d: Duration) -> String {
    let (days, hours, minutes) = (d.whole_days(), d.whole_hours() % 24, d.whole_minutes() % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{}s", d.whole_seconds()),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A threshold in the flags' own syntax: `30d` (with `days`, for certificates), `72h`,
/// `90m`, `45s`.
pub fn format_threshold(d: std::time::Duration, days: bool) -> String {
    let s = d.as_secs();
    match s {
        s if days && s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_and_slack_text() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut e = Event::new(
            EventKind::ReapprovalNeeded,
            "prod",
            "1234567",
            at,
            "a <b> & c".into(),
        )
        .deadline(at - Duration::hours(1));
        e.handoff_url = Some("https://x.example/a?x=1&state=s".into());
        let e = e.finish();
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["event"], "reapproval_needed");
        assert_eq!(v["seconds_left"], -3600);
        assert_eq!(v["deadline"], "2027-01-15T07:00:00Z");
        assert!(v["threshold"].is_null());
        assert_eq!(v["handoff_url"], "https://x.example/a?x=1&state=s");
        assert_eq!(
            v["text"],
            ":rotating_light: nsauth: a &lt;b&gt; &amp; c <https://x.example/a?x=1&amp;state=s|approve access>"
        );
        let plain = Event::new(EventKind::Recovered, "p", "1", at, "ok".into()).finish();
        let v: serde_json::Value = serde_json::from_slice(&plain.to_json()).unwrap();
        assert!(v.get("handoff_url").is_none() && v["deadline"].is_null());
    }

    #[test]
    fn spans_and_thresholds() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(relative(now + Duration::minutes(150), now), "in 2h 30m");
        assert_eq!(relative(now + Duration::hours(50), now), "in 2d 2h");
        assert_eq!(relative(now - Duration::minutes(5), now), "5m ago");
        assert_eq!(relative(now + Duration::seconds(9), now), "in 9s");
        assert_eq!(relative(now, now), "just now");
        let secs = std::time::Duration::from_secs;
        assert_eq!(format_threshold(secs(72 * 3600), false), "72h");
        assert_eq!(format_threshold(secs(72 * 3600), true), "3d");
        assert_eq!(format_threshold(secs(4 * 3600), true), "4h");
        assert_eq!(format_threshold(secs(90), false), "90s");
        assert_eq!(format_threshold(secs(120), false), "2m");
        assert_eq!(one_line("a\nb\u{1b}[31m"), "a b [31m");
    }
}
