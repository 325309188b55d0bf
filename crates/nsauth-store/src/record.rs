//! The record a store keeps for one profile, and its codec.

use crate::profile::{Profile, StoredCertificate};
use crate::secret::CodeVerifier;
use crate::token::TokenSet;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The record schema this build writes. Readers accept this and older versions.
pub const RECORD_SCHEMA: u32 = 1;

/// Everything stored for one profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Record schema number, for migrations.
    pub schema: u32,
    /// The profile.
    pub profile: Profile,
    /// The current tokens, if logged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenSet>,
    /// A refresh lease held by one process while it talks to NetSuite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Logins started with `login start` and not yet finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingLogin>,
    /// The last refresh attempt that failed, so that processes waiting on the lease report
    /// it instead of each retrying NetSuite in turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<RefreshFailure>,
    /// Set when this profile's single-use tokens were moved to another store (share export
    /// with tokens, or migrate): this copy must not refresh any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved: Option<Moved>,
    /// A certificate made by `nsauth m2m rotate` and not yet switched to: it waits for the
    /// NetSuite administrator to upload it and for `profile set --certificate-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_certificate: Option<StoredCertificate>,
    /// The certificate used before the last switch-over, kept (with its key) until
    /// `nsauth m2m rotate --finish`, so that a wrong switch can be undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_certificate: Option<StoredCertificate>,
    /// Book-keeping.
    pub meta: Metadata,
}

/// Where and when a profile's tokens went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// A secret-free description of the destination ("share bundle", a store URI).
    pub to: String,
    /// Fingerprints of the tokens that went (to match the audit trail); the tokens
    /// themselves are not kept here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<String>,
}

impl Record {
    /// A fresh record for a new profile.
    pub fn new(profile: Profile) -> Self {
        Self {
            schema: RECORD_SCHEMA,
            profile,
            tokens: None,
            lease: None,
            pending: Vec::new(),
            last_failure: None,
            moved: None,
            next_certificate: None,
            previous_certificate: None,
            meta: Metadata::now(),
        }
    }

    /// Stamps `updated_at`/`updated_by` before a write.
    pub fn touch(&mut self) {
        self.meta.updated_at = OffsetDateTime::now_utc();
        self.meta.updated_by = actor();
    }
}

/// Who and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Last write.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// `user@host` (plus a CI run id when present) of the last writer.
    pub updated_by: String,
    /// How many refreshes (or mints) this profile has seen.
    #[serde(default)]
    pub refresh_count: u64,
}

impl Metadata {
    /// Metadata stamped now by this process.
    pub fn now() -> Self {
        Self {
            updated_at: OffsetDateTime::now_utc(),
            updated_by: actor(),
            refresh_count: 0,
        }
    }
}

/// `user@host`, with a CI run id when one is set.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let mut who = format!("{user}@{host}");
    for var in ["GITHUB_RUN_ID", "CI_JOB_ID", "BUILD_ID", "CIRCLE_BUILD_NUM"] {
        if let Ok(v) = std::env::var(var) {
            who.push_str(&format!(
                " ({var}={})",
                v.chars().take(40).collect::<String>()
            ));
            break;
        }
    }
    who
}

/// A short lease that says "this process is refreshing; wait for it".
///
/// Waiters never compare `until` with their own wall clock (the holder may run on a host with
/// another clock): they treat a lease as dead once they have seen the same `(holder, until)`
/// for its time-to-live by their own monotonic clock. The holder renews the lease (a new
/// `until`) while its refresh runs. See `broker.rs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Random id of the holder.
    pub holder: String,
    /// When the lease ends if the holder never releases it, by the holder's clock (for
    /// people, and a renewal marker for waiters).
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// How long the lease lasts without renewal, in milliseconds. Absent in leases written
    /// by older versions; waiters then use their own lease time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

/// A failed refresh, recorded for the processes that waited on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredFailure")]
pub struct RefreshFailure {
    /// When it failed.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What kind of failure it was.
    pub kind: FailureKind,
    /// The one-line, secret-free message.
    pub message: String,
}

/// A [`RefreshFailure`] as stored: records written before the kind was stored carry the
/// CLI's exit code instead (`"exit_code": 3`), and still read; a kind written by a newer
/// version reads as [`FailureKind::Other`] rather than making the whole record unreadable.
#[derive(Deserialize)]
struct StoredFailure {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    exit_code: Option<i64>,
    message: String,
}

impl From<StoredFailure> for RefreshFailure {
    fn from(f: StoredFailure) -> Self {
        let legacy = |code| match code {
            2 => FailureKind::Invalid,
            3 => FailureKind::LoginNeeded,
            4 => FailureKind::Store,
            5 => FailureKind::Unreachable,
            _ => FailureKind::Other,
        };
        RefreshFailure {
            at: f.at,
            kind: match (f.kind, f.exit_code) {
                (Some(k), _) => serde_json::from_value(serde_json::Value::String(k))
                    .unwrap_or(FailureKind::Other),
                (None, Some(code)) => legacy(code),
                (None, None) => FailureKind::Other,
            },
            message: f.message,
        }
    }
}

/// What kind of failure an error is: what the person or program facing it has to do. The
/// broker records it in [`RefreshFailure`] for the processes that waited on a refresh, and the
/// CLI turns it into its exit code (in one place).
///
/// Not `#[non_exhaustive]` on purpose: a new kind must be placed by every mapping that matches
/// on it, which the compiler then enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Bad input or configuration (a flag, a profile that does not exist, a store URI): fix
    /// it, then try again.
    Invalid,
    /// A NetSuite user must log in (again).
    LoginNeeded,
    /// The store failed (unreachable, refused access, unreadable record).
    Store,
    /// NetSuite is unreachable or keeps failing.
    Unreachable,
    /// NetSuite refused for a reason a login would not fix.
    Rejected,
    /// Anything else.
    Other,
}

impl FailureKind {
    /// Every kind, for code that must treat each one (tables, tests).
    pub const ALL: [FailureKind; 6] = [
        FailureKind::Invalid,
        FailureKind::LoginNeeded,
        FailureKind::Store,
        FailureKind::Unreachable,
        FailureKind::Rejected,
        FailureKind::Other,
    ];
}

/// A login started but not yet finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to NetSuite.
    pub state: String,
    /// The PKCE verifier.
    pub verifier: CodeVerifier,
    /// The redirect URI used.
    pub redirect_uri: String,
    /// When this pending login stops being accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Serialises a record to the JSON every store keeps (sealed or not).
pub fn encode_record(record: &Record) -> Vec<u8> {
    serde_json::to_vec(record).expect("records serialise")
}

/// Parses record JSON, checking its schema number. The error names the problem by line and
/// column only, never by content (a record holds secrets).
pub fn decode_record(json: &[u8]) -> Result<Record, String> {
    #[derive(serde::Deserialize)]
    struct Head {
        schema: u32,
    }
    let head: Head =
        serde_json::from_slice(json).map_err(|e| format!("not a record ({})", classify(&e)))?;
    if head.schema > RECORD_SCHEMA {
        return Err(format!(
            "it has schema {} but this nsauth reads up to {RECORD_SCHEMA}; upgrade nsauth",
            head.schema
        ));
    }
    serde_json::from_slice(json).map_err(|e| format!("not a valid record ({})", classify(&e)))
}

fn classify(e: &serde_json::Error) -> String {
    // Line/column only: never echo data, it may hold secrets.
    format!(
        "{:?} at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(json: &str) -> RefreshFailure {
        serde_json::from_str(json).expect(json)
    }

    #[test]
    fn failures_store_a_kind_not_a_number() {
        let f = RefreshFailure {
            at: OffsetDateTime::UNIX_EPOCH,
            kind: FailureKind::LoginNeeded,
            message: "invalid_grant".into(),
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"at": "1970-01-01T00:00:00Z", "kind": "login_needed", "message": "invalid_grant"})
        );
        assert_eq!(serde_json::from_value::<RefreshFailure>(v).unwrap(), f);
    }

    #[test]
    fn failures_written_by_older_versions_still_read() {
        let old = |code: &str| {
            failure(&format!(
                r#"{{"at": "2026-11-20T14:02:03Z", "exit_code": {code}, "message": "m"}}"#
            ))
            .kind
        };
        assert_eq!(old("3"), FailureKind::LoginNeeded);
        assert_eq!(old("5"), FailureKind::Unreachable);
        assert_eq!(old("4"), FailureKind::Store);
        assert_eq!(old("2"), FailureKind::Invalid);
        assert_eq!(old("1"), FailureKind::Other);
        assert_eq!(old("-9"), FailureKind::Other);
        let f = failure(r#"{"at": "2026-11-20T14:02:03Z", "exit_code": 3, "message": "refused"}"#);
        assert_eq!(f.message, "refused");
        assert_eq!(f.at.unix_timestamp(), 1_795_183_323);
        // A whole record of the older version, as a store holds it.
        let mut rec = Record::new(Profile {
            account_id: crate::account::AccountId::parse("1234567").unwrap(),
            client_id: "c".into(),
            client_secret: None,
            redirect_uri: None,
            scopes: vec!["rest_webservices".into()],
            grant: crate::profile::GrantKind::AuthorizationCode,
            certificate_id: None,
            private_key: None,
            certificate_pem: None,
            endpoints: crate::profile::EndpointOverrides::default(),
            refresh_token_validity_hours: None,
        });
        rec.last_failure = Some(f);
        let mut stored = serde_json::to_value(&rec).unwrap();
        stored["last_failure"] =
            serde_json::json!({"at": "2026-11-20T14:02:03Z", "exit_code": 3, "message": "refused"});
        let back = decode_record(&serde_json::to_vec(&stored).unwrap()).unwrap();
        assert_eq!(back.last_failure.unwrap().kind, FailureKind::LoginNeeded);
        assert!(!String::from_utf8(encode_record(&rec))
            .unwrap()
            .contains("exit_code"));
    }

    #[test]
    fn a_kind_from_a_newer_version_reads_as_other() {
        let f = failure(r#"{"at": "2026-11-20T14:02:03Z", "kind": "quantum", "message": "m"}"#);
        assert_eq!(f.kind, FailureKind::Other);
    }
}
