//! Printing helpers: one place decides what goes to stdout and what to stderr.

use nsauth_core::profile::Profile;
use nsauth_core::store::{FailureKind, Record};
use nsauth_core::token::format_time;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// RFC 3339 or null.
pub fn rfc3339(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| {
            t.to_offset(time::UtcOffset::UTC)
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(Value::String)
        .unwrap_or(Value::Null)
}

/// A profile as JSON, secrets redacted.
pub fn profile_json(name: &str, p: &Profile) -> Value {
    let e = p.endpoints();
    json!({
        "profile": name,
        "account_id": p.account_id.as_str(),
        "client_id": p.client_id,
        "client_type": if p.is_public() { "public" } else { "confidential" },
        "client_secret": p.client_secret.as_ref().map(|_| "[redacted]"),
        "grant": p.grant.as_str(),
        "redirect_uri": p.redirect_uri.as_ref().map(|u| u.as_str()),
        "scopes": p.scopes,
        "certificate_id": p.certificate_id,
        "private_key": p.private_key.as_ref().map(|_| "[redacted]"),
        "refresh_token_validity_hours": p.refresh_token_validity_hours,
        "endpoints": {
            "authorize": e.authorize.as_str(),
            "token": e.token.as_str(),
            "revoke": e.revoke.as_str(),
            "rest": e.rest.as_str(),
        },
    })
}

/// The version of every `--json` output (`"schema": 1`), the agent's token object included;
/// raised only on an incompatible change (docs/cli.md, "Machine-readable output").
pub const SCHEMA: u32 = nsauth_agent::token_json::SCHEMA;

/// `v` (an object) with `"schema"` set.
pub fn with_schema(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.insert("schema".into(), SCHEMA.into());
    }
    v
}

/// Prints a `--json` answer: the object `v` with `"schema"`, on stdout.
pub fn print_json(v: Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(&with_schema(v)).unwrap_or_default()
    );
}

/// Prints a `--json` list: `{"schema": 1, KEY: [ITEMS]}` (a bare array could not carry the
/// schema, nor gain a field later).
pub fn print_json_list(key: &str, items: impl IntoIterator<Item = Value>) {
    let mut map = serde_json::Map::new();
    map.insert(key.into(), items.into_iter().collect());
    print_json(Value::Object(map));
}

/// Prints JSON (with the schema) or key: value lines.
pub fn print_object(json_mode: bool, v: &Value) {
    if json_mode {
        print_json(v.clone());
        return;
    }
    if let Value::Object(map) = v {
        for (k, val) in map {
            match val {
                Value::Null => println!("{k}: -"),
                Value::String(s) => println!("{k}: {s}"),
                Value::Array(a) => println!(
                    "{k}: {}",
                    a.iter()
                        .map(|x| x
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| x.to_string()))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                Value::Object(_) => {
                    println!("{k}:");
                    if let Value::Object(inner) = val {
                        for (ik, iv) in inner {
                            println!(
                                "  {ik}: {}",
                                iv.as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| iv.to_string())
                            );
                        }
                    }
                }
                other => println!("{k}: {other}"),
            }
        }
    }
}

/// Health of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Fine.
    Ok,
    /// The refresh token or certificate ends soon.
    Expiring,
    /// A person must log in.
    NeedsLogin,
}

impl Health {
    /// JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Expiring => "expiring",
            Health::NeedsLogin => "needs_login",
        }
    }
}

/// How long before the end "expiring" starts, for status.
pub const EXPIRING_WINDOW: time::Duration = time::Duration::hours(72);

/// Health within `window`.
pub fn health(rec: &Record, now: OffsetDateTime, window: time::Duration) -> Health {
    use nsauth_core::profile::GrantKind;
    match rec.profile.grant {
        GrantKind::ClientCredentials => {
            let ends = rec
                .profile
                .certificate_pem
                .as_deref()
                .and_then(|pem| nsauth_core::m2m::inspect_certificate(pem).ok())
                .map(|c| c.not_after);
            match ends {
                Some(end) if end <= now => Health::NeedsLogin,
                Some(end) if end - now <= window.max(time::Duration::days(30)) => Health::Expiring,
                _ => Health::Ok,
            }
        }
        GrantKind::AuthorizationCode => {
            let Some(t) = &rec.tokens else {
                return Health::NeedsLogin;
            };
            if t.refresh_token.is_none() {
                return if t.access_expires_at > now {
                    Health::Expiring
                } else {
                    Health::NeedsLogin
                };
            }
            if rec
                .last_failure
                .as_ref()
                .is_some_and(|f| f.kind == FailureKind::LoginNeeded && f.at >= t.obtained_at)
            {
                return Health::NeedsLogin;
            }
            match t.refresh_expires_at {
                Some(end) if end <= now => Health::NeedsLogin,
                Some(end) if end - now <= window => Health::Expiring,
                _ => Health::Ok,
            }
        }
    }
}

/// The status object of one profile.
pub fn status_json(name: &str, rec: &Record, now: OffsetDateTime) -> Value {
    let t = rec.tokens.as_ref();
    json!({
        "profile": name,
        "account_id": rec.profile.account_id.as_str(),
        "grant": rec.profile.grant.as_str(),
        "scopes": rec.profile.scopes,
        "access_token_expires_at": rfc3339(t.map(|t| t.access_expires_at)),
        "refresh_token_expires_at": rfc3339(t.and_then(|t| t.refresh_expires_at)),
        "health": health(rec, now, EXPIRING_WINDOW).as_str(),
        "certificate_expires_at": rfc3339(
            rec.profile
                .certificate_pem
                .as_deref()
                .and_then(|pem| nsauth_core::m2m::inspect_certificate(pem).ok())
                .map(|c| c.not_after)
        ),
        "certificates": certificates_json(rec),
        "moved_to": rec.moved.as_ref().map(|m| m.to.clone()),
        "refresh_count": rec.meta.refresh_count,
        "updated_at": rfc3339(Some(rec.meta.updated_at)),
        "updated_by": rec.meta.updated_by,
        "pending_logins": rec.pending.iter().filter(|p| p.expires_at > now).count(),
        "last_failure": rec.last_failure.as_ref().map(|f| f.message.clone()),
    })
}

/// The certificates of a profile (active, next, previous): role, certificate ID, end of validity.
fn certificates_json(rec: &Record) -> Value {
    nsauth_core::m2m::rotate::certificates(rec)
        .into_iter()
        .map(|c| json!({"role": c.role, "certificate_id": c.certificate_id, "not_after": rfc3339(c.not_after)}))
        .collect()
}

/// A human line for a time: `2026-11-20 14:02 UTC (in 3h 2m)`.
pub fn when(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = t - now;
    let secs = d.whole_seconds();
    let rel = if secs >= 0 {
        format!("in {}", human(secs))
    } else {
        format!("{} ago", human(-secs))
    };
    format!("{} ({rel})", format_time(t))
}

fn human(secs: i64) -> String {
    let (d, h, m) = (secs / 86400, (secs % 86400) / 3600, (secs % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{secs}s")
    }
}

/// Parses `48h`, `7d`, `90m`, `30s` or bare seconds.
pub fn parse_duration(s: &str) -> Result<time::Duration, nsauth_core::Error> {
    let s = s.trim();
    let bad = || {
        nsauth_core::Error::Invalid(format!(
            "invalid duration {s:?}; use e.g. 30s, 90m, 48h or 7d"
        ))
    };
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        "d" => n.checked_mul(86400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if secs > 86400 * 3650 {
        return Err(bad());
    }
    Ok(time::Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("48h").unwrap(), time::Duration::hours(48));
        assert_eq!(parse_duration("7d").unwrap(), time::Duration::days(7));
        assert_eq!(parse_duration("90").unwrap(), time::Duration::seconds(90));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5w").is_err());
    }
}
