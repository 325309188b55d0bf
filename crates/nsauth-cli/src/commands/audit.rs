//! `nsauth audit`: read the audit trail; and the one place commands find their audit log.

use super::Ctx;
use crate::exit::Exit;
use crate::output;
use nsauth_core::audit::{AuditEvent, AuditFilter, AuditLog, AuditRecord};
use nsauth_core::{Error, TokenStore};
use std::path::PathBuf;
use time::OffsetDateTime;

/// `nsauth audit`
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Only events of this profile (default: every profile; the global --profile does not
    /// filter).
    #[arg(long, value_name = "NAME")]
    pub for_profile: Option<String>,
    /// Only events since this time: RFC 3339 (2026-11-20T14:00:00Z) or a duration ago (24h, 7d).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only the last N events (after filtering).
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
}

/// The audit log of this invocation on `store`: `--audit-log` / `NSAUTH_AUDIT_LOG`, else
/// `audit.jsonl` beside a local store, else `~/.local/state/nsauth/audit.jsonl`.
pub fn audit_log_for(ctx: &Ctx, store: &dyn TokenStore) -> AuditLog {
    let path = explicit(ctx)
        .or_else(|| AuditLog::default_path(store))
        .unwrap_or_else(|| PathBuf::from(".local/state/nsauth/audit.jsonl"));
    AuditLog::new(path)
}

/// `--audit-log` / `NSAUTH_AUDIT_LOG`, when given.
fn explicit(ctx: &Ctx) -> Option<PathBuf> {
    ctx.audit_log.clone().filter(|p| !p.as_os_str().is_empty())
}

/// Records one event in the audit log of `store` (never fails).
pub fn record(ctx: &Ctx, store: &dyn TokenStore, event: &AuditEvent) {
    audit_log_for(ctx, store).record(event);
}

pub async fn run(ctx: &Ctx, args: AuditArgs) -> Result<Exit, Error> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    // An explicit --audit-log needs no store; otherwise the log's place depends on it.
    let log = match explicit(ctx) {
        Some(path) => AuditLog::new(path),
        None => audit_log_for(ctx, ctx.store()?.as_ref()),
    };
    let read = log.read_all(&AuditFilter {
        profile: args.for_profile.clone(),
        since,
    })?;
    let mut records = read.records;
    if let Some(n) = args.last {
        let drop = records.len().saturating_sub(n);
        records.drain(..drop);
    }
    if read.skipped > 0 {
        ctx.note(format!(
            "note: {} damaged line(s) in {} were skipped",
            read.skipped,
            log.path().display()
        ));
    }
    if ctx.json {
        crate::output::print_json_list(
            "events",
            records
                .iter()
                .map(|r| serde_json::to_value(r).unwrap_or_default()),
        );
        return Ok(Exit::Success);
    }
    if records.is_empty() {
        ctx.note(format!("no audit events in {}", log.path().display()));
    }
    for r in &records {
        println!("{}", line(r));
    }
    Ok(Exit::Success)
}

/// `2026-11-20T14:02:03Z  refresh        prod  ok  token 1a2b3c4d5e6f  by alice@host (GITHUB_RUN_ID=1)  [store]: detail`
fn line(r: &AuditRecord) -> String {
    let f = &r.fields;
    let time = output::rfc3339(Some(r.time));
    let mut s = format!(
        "{}  {:<14} {}  {}",
        time.as_str().unwrap_or("-"),
        f.event,
        f.profile,
        f.outcome
    );
    if let Some(fp) = &f.token_fingerprint {
        s.push_str(&format!("  token {fp}"));
    }
    s.push_str(&format!("  by {}  in {}", r.actor.display(), f.store));
    if let Some(d) = &f.detail {
        s.push_str(&format!(": {d}"));
    }
    s
}

/// RFC 3339, or a duration (`24h`, `7d`) meaning that long ago.
fn parse_since(s: &str) -> Result<OffsetDateTime, Error> {
    if let Ok(t) = OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    output::parse_duration(s)
        .map(|d| OffsetDateTime::now_utc() - d)
        .map_err(|_| {
            Error::Invalid(format!(
                "invalid --since {:?}; use an RFC 3339 time (2026-11-20T14:00:00Z) or a duration ago (90m, 24h, 7d)",
                s.chars().take(40).collect::<String>()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let t = parse_since("2026-11-20T14:00:00Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_795_183_200);
        let ago = OffsetDateTime::now_utc() - parse_since("24h").unwrap();
        assert!((ago - time::Duration::hours(24)).abs() < time::Duration::seconds(5));
        assert!(parse_since("yesterday").is_err());
    }
}
