//! The audit trail: one JSON line per thing nsauth did to a profile's credentials.
//!
//! Each line says when, what (`login`, `refresh`, `token`, `revoke`, ...), who (user, host and
//! the CI job, when there is one), which profile in which store, how it ended, and the
//! [fingerprint](crate::secret::AccessToken::fingerprint) of the token involved — never a
//! token or a secret. The file is append-only, created 0600 in a 0700 directory, and each line
//! goes out in one `write`, so concurrent nsauth processes do not interleave.
//!
//! Writing never fails a command: a log that cannot be written is a warning on stderr.
//!
//! ```
//! use nsauth_core::audit::{AuditEvent, AuditFilter, AuditLog};
//! let dir = tempfile::tempdir().unwrap();
//! let log = AuditLog::new(dir.path().join("audit.jsonl"));
//! log.record(&AuditEvent::new("token", "prod", "local:///tmp/x.db").fingerprint("0123456789ab"));
//! let all = log.read(&AuditFilter::default()).unwrap();
//! assert_eq!(all[0].fields.event, "token");
//! assert_eq!(all[0].fields.outcome, "ok");
//! ```

use crate::{Error, TokenStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Environment variables naming a CI run, in the order they are looked for; the first one set
/// is recorded.
pub const CI_RUN_VARS: &[&str] = &["GITHUB_RUN_ID", "CI_JOB_ID", "BUILD_ID", "CIRCLE_BUILD_NUM"];
/// Environment variables naming the CI project, recorded when set.
pub const CI_PROJECT_VARS: &[&str] = &["GITHUB_REPOSITORY", "CI_PROJECT_PATH"];

const MAX_FIELD: usize = 200;

/// What happened: the part of a line a command supplies. [`AuditLog::record`] adds the time
/// and the actor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// `login`, `refresh`, `token`, `revoke`, `share-export`, `share-import`, `migrate`,
    /// `profile-set`, `profile-delete` (or `doctor`).
    pub event: String,
    /// The profile name.
    pub profile: String,
    /// The store, as its secret-free [`describe`](crate::TokenStore::describe).
    pub store: String,
    /// `ok`, or what failed; the CLI writes the error kind and exit code: `login-needed (exit 3)`.
    pub outcome: String,
    /// The 12-hex-digit fingerprint of the token involved (never the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_fingerprint: Option<String>,
    /// A short, secret-free note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event with outcome `ok`, no fingerprint and no detail.
    pub fn new(event: &str, profile: &str, store: &str) -> Self {
        Self {
            event: event.to_owned(),
            profile: profile.to_owned(),
            store: store.to_owned(),
            outcome: "ok".into(),
            token_fingerprint: None,
            detail: None,
        }
    }

    /// Sets the token fingerprint (from `AccessToken::fingerprint()` or
    /// `RefreshToken::fingerprint()`).
    pub fn fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.token_fingerprint = Some(fingerprint.into());
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the outcome: `ok` (the default) or what the failure was. The CLI writes the
    /// error's [`outcome_of`] and its exit code, e.g. `login-needed (exit 3)`.
    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = outcome.into();
        self
    }
}

/// A failure's name in the audit log, e.g. `login-needed` or `store-denied`: finer than its
/// [`kind`](Error::kind), and never its message (that may name paths or hosts).
pub fn outcome_of(err: &Error) -> &'static str {
    use crate::store::StoreError;
    match err {
        Error::Invalid(_) => "invalid",
        Error::LoginNeeded(_) => "login-needed",
        Error::Store(StoreError::NotFound(_)) => "not-found",
        Error::Store(StoreError::Conflict(_)) => "store-conflict",
        Error::Store(StoreError::Unavailable { .. }) => "store-unavailable",
        Error::Store(StoreError::Corrupt { .. }) => "store-corrupt",
        Error::Store(StoreError::Denied(_)) => "store-denied",
        Error::Store(StoreError::Config(_)) => "store-config",
        Error::Store(_) => "store-error",
        Error::Unreachable(_) => "unreachable",
        Error::Rejected(_) => "rejected",
        _ => "error",
    }
}

/// Who did it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `$USER` (or `$USERNAME`).
    pub user: String,
    /// The host name.
    pub host: String,
    /// The CI run and project variables that were set, e.g. `{"GITHUB_RUN_ID": "123",
    /// "GITHUB_REPOSITORY": "acme/ops"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ci: BTreeMap<String, String>,
}

impl Actor {
    /// This process's user, host and CI run.
    pub fn current() -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let user = env("USER")
            .or_else(|| env("USERNAME"))
            .unwrap_or_else(|| "unknown".into());
        let host = env("HOSTNAME")
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|s| s.trim().to_owned())
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let mut ci = BTreeMap::new();
        if let Some((k, v)) = CI_RUN_VARS.iter().find_map(|k| env(k).map(|v| (*k, v))) {
            ci.insert(k.to_owned(), clean(&v, 100));
        }
        for k in CI_PROJECT_VARS {
            if let Some(v) = env(k) {
                ci.insert((*k).to_owned(), clean(&v, 100));
            }
        }
        Self {
            user: clean(&user, 64),
            host: clean(&host, 128),
            ci,
        }
    }

    /// `user@host`, plus the CI run: `alice@ci-7 (GITHUB_RUN_ID=123)`.
    pub fn display(&self) -> String {
        let mut s = format!("{}@{}", self.user, self.host);
        if let Some((k, v)) = CI_RUN_VARS
            .iter()
            .find_map(|k| self.ci.get(*k).map(|v| (k, v)))
        {
            s.push_str(&format!(" ({k}={v})"));
        }
        s
    }
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, in UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// What happened.
    #[serde(flatten)]
    pub fields: AuditEvent,
    /// Who did it.
    pub actor: Actor,
}

/// Which lines [`AuditLog::read`] returns.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only this profile.
    pub profile: Option<String>,
    /// Only events at or after this time.
    pub since: Option<OffsetDateTime>,
}

impl AuditFilter {
    fn accepts(&self, r: &AuditRecord) -> bool {
        self.profile.as_ref().is_none_or(|p| *p == r.fields.profile)
            && self.since.is_none_or(|s| r.time >= s)
    }
}

/// The result of reading the log: the matching records and how many lines were unreadable.
#[derive(Clone, Debug, Default)]
pub struct AuditRead {
    /// Matching records, oldest first.
    pub records: Vec<AuditRecord>,
    /// Lines that were not audit records (torn by a crash, or damaged) and were skipped.
    pub skipped: usize,
}

/// An audit log file.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// A log at `path`. Nothing is opened or created until the first [`record`](Self::record).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Where the log of `store` lives by default: `audit.jsonl` beside a
    /// [local](crate::store::Capabilities::local) store (next to its database file, or next
    /// to its directory — not inside it), and `$XDG_STATE_HOME/nsauth/audit.jsonl`
    /// (`~/.local/state/nsauth/audit.jsonl`) otherwise. `None` when no home directory is known.
    ///
    /// A local store's [`describe`](crate::TokenStore::describe) is `SCHEME://` and its absolute
    /// path; nothing here depends on which scheme.
    pub fn default_path(store: &dyn TokenStore) -> Option<PathBuf> {
        let beside = Some(store)
            .filter(|s| s.capabilities().local)
            .and_then(|s| local_location(&s.describe()))
            .and_then(|location| location.parent().map(Path::to_path_buf));
        match beside {
            Some(dir) => Some(dir.join("audit.jsonl")),
            None => Some(
                nsauth_store_local::paths::nsauth_dir(nsauth_store_local::paths::Base::State)?
                    .join("audit.jsonl"),
            ),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line for `ev`, stamped now with this process's [`Actor`]. Failures are
    /// logged as warnings and otherwise ignored: the audit trail never fails a command.
    pub fn record(&self, ev: &AuditEvent) {
        let rec = AuditRecord {
            time: OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or_else(|_| OffsetDateTime::now_utc()),
            fields: sanitize(ev),
            actor: Actor::current(),
        };
        if let Err(e) = self.append(&rec) {
            tracing::warn!(
                "cannot write the audit log {}: {e}; the {} event of profile {} was not recorded",
                self.path.display(),
                rec.fields.event,
                rec.fields.profile
            );
        }
    }

    /// Appends a complete record (the time and actor as given).
    pub fn append(&self, rec: &AuditRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if let Some(dir) = self.path.parent() {
            crate::seal::create_private_dir(dir)?;
        }
        let mut o = std::fs::OpenOptions::new();
        o.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&self.path)?;
        #[cfg(unix)]
        {
            // A log created by hand (or by another tool) with a wider mode is narrowed.
            use std::os::unix::fs::PermissionsExt;
            let mode = f.metadata()?.permissions().mode();
            if mode & 0o077 != 0 {
                f.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
            }
        }
        // O_APPEND and a single write: concurrent writers' lines do not interleave.
        let n = f.write(&line)?;
        if n != line.len() {
            return Err(std::io::Error::other(format!(
                "short write ({n} of {} bytes)",
                line.len()
            )));
        }
        Ok(())
    }

    /// The records matching `filter`, oldest first; a missing file is an empty log. Damaged
    /// lines are skipped (see [`read_all`](Self::read_all) for their count).
    pub fn read(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, Error> {
        Ok(self.read_all(filter)?.records)
    }

    /// Like [`read`](Self::read), also counting the lines that were skipped. A line torn by a
    /// crash and continued by the next writer is salvaged from the last record start in it.
    pub fn read_all(&self, filter: &AuditFilter) -> Result<AuditRead, Error> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuditRead::default()),
            Err(e) => {
                return Err(Error::Other(format!(
                    "cannot read the audit log {}: {e}",
                    self.path.display()
                )))
            }
        };
        let mut out = AuditRead::default();
        let mut reader = std::io::BufReader::new(file);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(|e| {
                Error::Other(format!(
                    "cannot read the audit log {}: {e}",
                    self.path.display()
                ))
            })?;
            if n == 0 {
                break;
            }
            let line = buf.trim_ascii();
            if line.is_empty() {
                continue;
            }
            match parse_line(line) {
                Some((rec, torn)) => {
                    out.skipped += usize::from(torn);
                    if filter.accepts(&rec) {
                        out.records.push(rec);
                    }
                }
                None => out.skipped += 1,
            }
        }
        if out.skipped > 0 {
            tracing::warn!(
                "skipped {} damaged line(s) in the audit log {}",
                out.skipped,
                self.path.display()
            );
        }
        Ok(out)
    }
}

/// Parses a line; on failure tries the text after the last `{"time":` in it (a torn line
/// followed by a whole one). The flag says a torn prefix was dropped.
fn parse_line(line: &[u8]) -> Option<(AuditRecord, bool)> {
    if let Ok(r) = serde_json::from_slice::<AuditRecord>(line) {
        return Some((r, false));
    }
    const START: &[u8] = b"{\"time\":";
    let at = line
        .windows(START.len())
        .rposition(|w| w == START)
        .filter(|&i| i > 0)?;
    serde_json::from_slice::<AuditRecord>(&line[at..])
        .ok()
        .map(|r| (r, true))
}

fn sanitize(ev: &AuditEvent) -> AuditEvent {
    AuditEvent {
        event: clean(&ev.event, 40),
        profile: clean(&ev.profile, 80),
        store: clean(&strip_password(&ev.store), MAX_FIELD),
        outcome: clean(&ev.outcome, 80),
        token_fingerprint: ev.token_fingerprint.as_deref().map(|f| clean(f, 64)),
        detail: ev.detail.as_deref().map(|d| clean(d, MAX_FIELD)),
    }
}

/// Control characters out, length capped.
fn clean(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
}

/// The absolute path a local store's description names, if it names one.
fn local_location(described: &str) -> Option<PathBuf> {
    let (_, rest) = described.split_once("://")?;
    let path = Path::new(rest);
    path.is_absolute().then(|| path.to_path_buf())
}

/// Defence in depth: a store description is meant to be secret-free, but a password in a URI's
/// user part is dropped anyway.
fn strip_password(store: &str) -> String {
    match url::Url::parse(store) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => store.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that describes itself as told, with or without the `local` capability.
    #[derive(Debug)]
    struct Described(&'static str, bool);

    #[async_trait::async_trait]
    impl TokenStore for Described {
        fn describe(&self) -> String {
            self.0.into()
        }
        fn capabilities(&self) -> crate::store::Capabilities {
            crate::store::Capabilities {
                compare_and_swap: true,
                local: self.1,
                ..Default::default()
            }
        }
        async fn load(
            &self,
            _: &crate::ProfileName,
        ) -> Result<Option<crate::store::Versioned>, crate::StoreError> {
            Ok(None)
        }
        async fn put(
            &self,
            _: &crate::ProfileName,
            _: &crate::Record,
            _: crate::store::Precondition,
        ) -> Result<crate::store::Version, crate::StoreError> {
            unreachable!("the audit log never writes to the store")
        }
        async fn delete(
            &self,
            _: &crate::ProfileName,
            _: Option<&crate::store::Version>,
        ) -> Result<(), crate::StoreError> {
            unreachable!("the audit log never writes to the store")
        }
        async fn list(&self) -> Result<Vec<crate::ProfileName>, crate::StoreError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn default_paths() {
        let beside = |described, local| AuditLog::default_path(&Described(described, local));
        assert_eq!(
            beside("db:///var/lib/nsauth/ns.db", true),
            Some(PathBuf::from("/var/lib/nsauth/audit.jsonl"))
        );
        assert_eq!(
            beside("dir:///srv/nsauth/profiles", true),
            Some(PathBuf::from("/srv/nsauth/audit.jsonl"))
        );
        // Any scheme: what counts is the capability.
        assert_eq!(
            beside("newfangled:///srv/x/store.bin", true),
            Some(PathBuf::from("/srv/x/audit.jsonl"))
        );
        let state = beside("vault://vault:8200/secret/nsauth", false);
        for p in [
            state.clone(),
            // A remote store is never mistaken for a local path, whatever its description.
            beside("memory:///srv/x/store.bin", false),
            // A "local" store naming no absolute path falls back to the state directory.
            beside("odd://relative/store.db", true),
            beside("no scheme at all", true),
        ] {
            assert_eq!(p, state);
            if let Some(p) = p {
                assert!(p.ends_with("nsauth/audit.jsonl"), "{}", p.display());
            }
        }
    }

    #[test]
    fn record_read_filter_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("state/nsauth/audit.jsonl"));
        log.record(&AuditEvent::new("login", "prod", "local:///x.db").fingerprint("aaaaaaaaaaaa"));
        log.record(
            &AuditEvent::new("refresh", "dev", "vault+http://u:hunter2@h/secret/x")
                .outcome(outcome_of(&Error::LoginNeeded("x".into())))
                .detail("line\nbreak"),
        );
        let all = log.read(&AuditFilter::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].fields.token_fingerprint.as_deref(),
            Some("aaaaaaaaaaaa")
        );
        assert_eq!(all[1].fields.outcome, "login-needed");
        assert_eq!(all[1].fields.detail.as_deref(), Some("linebreak"));
        assert!(!all[1].fields.store.contains("hunter2"));
        let prod = AuditFilter {
            profile: Some("prod".into()),
            since: None,
        };
        assert_eq!(log.read(&prod).unwrap().len(), 1);
        let future = AuditFilter {
            profile: None,
            since: Some(OffsetDateTime::now_utc() + time::Duration::hours(1)),
        };
        assert!(log.read(&future).unwrap().is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(log.path()), 0o600);
            assert_eq!(mode(log.path().parent().unwrap()), 0o700);
        }
    }

    #[test]
    fn torn_and_garbage_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"));
        log.record(&AuditEvent::new("token", "a", "s"));
        let whole = std::fs::read_to_string(log.path()).unwrap();
        let torn = &whole[..whole.len() / 2];
        let text = format!("{whole}garbage\n{torn}{whole}\u{0}\u{1}\n{torn}");
        std::fs::write(log.path(), text).unwrap();
        let read = log.read_all(&AuditFilter::default()).unwrap();
        assert_eq!(
            read.records.len(),
            2,
            "the whole line after a torn one is salvaged"
        );
        assert_eq!(read.skipped, 4);
    }

    #[test]
    fn missing_log_is_empty() {
        let log = AuditLog::new(PathBuf::from("/nonexistent/nsauth/audit.jsonl"));
        assert!(log.read(&AuditFilter::default()).unwrap().is_empty());
    }
}
