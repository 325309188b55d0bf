//! The storage contract every backend implements, and the record it stores.
//!
//! Backends store whole [`Record`]s under a [`ProfileName`] and hand out an opaque
//! [`Version`] with every read. Every write is either create-only or compare-and-swap on that
//! version; everything else nsauth needs (the refresh lease, pending logins) is built on top,
//! once, in this crate.

use crate::profile::{Profile, ProfileName};
use crate::secret::CodeVerifier;
use crate::token::TokenSet;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// The record schema this build writes. Readers accept this and older versions.
pub const RECORD_SCHEMA: u32 = 1;

/// An opaque version token handed out by a backend; a write succeeds only against the
/// version the writer read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Version(pub String);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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
pub struct RefreshFailure {
    /// When it failed.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The exit code the failure maps to.
    pub exit_code: i32,
    /// The one-line, secret-free message.
    pub message: String,
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

/// Condition for a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Only if no record exists.
    Create,
    /// Only if the stored record is at this version.
    Match(Version),
}

/// What a backend can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Writes are atomic compare-and-swap (required for single-flight refresh).
    pub compare_and_swap: bool,
    /// The backend keeps older versions (Vault, Secrets Manager).
    pub versioned_history: bool,
    /// nsauth encrypts the record itself (local stores).
    pub encrypts_at_rest: bool,
    /// Data stays on this machine.
    pub local: bool,
}

impl Capabilities {
    /// Capabilities of a local, encrypted, CAS-capable store.
    pub const LOCAL: Capabilities = Capabilities {
        compare_and_swap: true,
        versioned_history: false,
        encrypts_at_rest: true,
        local: true,
    };

    /// Builds a capability set.
    pub const fn new(
        compare_and_swap: bool,
        versioned_history: bool,
        encrypts_at_rest: bool,
        local: bool,
    ) -> Self {
        Capabilities {
            compare_and_swap,
            versioned_history,
            encrypts_at_rest,
            local,
        }
    }
}

/// A record and the version it was read at.
#[derive(Clone, Debug)]
pub struct Versioned {
    /// The record.
    pub record: Record,
    /// Its version.
    pub version: Version,
}

/// Store failures, in kinds a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such record.
    #[error("profile {0:?} not found in the store")]
    NotFound(String),
    /// A precondition failed: someone else wrote first.
    #[error("profile {0:?} was changed by another writer")]
    Conflict(String),
    /// The store cannot be reached now.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// Whether trying again may help.
        retryable: bool,
    },
    /// A stored record cannot be read (damaged, undecryptable, or from a newer nsauth).
    #[error("stored record {what} is unreadable: {why}; it was left untouched")]
    Corrupt {
        /// Which record.
        what: String,
        /// Why.
        why: String,
    },
    /// The backend refused access.
    #[error("store access denied: {0}")]
    Denied(String),
    /// Any other backend failure.
    #[error("{store} store error: {source}")]
    Backend {
        /// Backend name.
        store: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable {
                retryable: true,
                ..
            }
        )
    }
}

/// The storage contract. Object-safe; backends implement five methods.
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug + 'static {
    /// A short, secret-free description (`sqlite:///path`, `vault+http://host/mount/prefix`).
    fn describe(&self) -> String;

    /// What this backend can do.
    fn capabilities(&self) -> Capabilities;

    /// Reads a record. `Ok(None)` when it does not exist.
    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError>;

    /// Writes a record if `condition` holds; returns the new version.
    /// Fails with [`StoreError::Conflict`] when it does not.
    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError>;

    /// Deletes a record; with `Some(version)`, only if it is still at that version.
    /// Deleting a missing record is [`StoreError::NotFound`].
    async fn delete(&self, name: &ProfileName, version: Option<&Version>)
        -> Result<(), StoreError>;

    /// All profile names, sorted.
    async fn list(&self) -> Result<Vec<ProfileName>, StoreError>;
}

/// Reads a record, turning "absent" into [`StoreError::NotFound`].
pub async fn load_existing(
    store: &dyn TokenStore,
    name: &ProfileName,
) -> Result<Versioned, StoreError> {
    store
        .load(name)
        .await?
        .ok_or_else(|| StoreError::NotFound(name.to_string()))
}

/// How long [`update`] may take in all, store calls and retries included.
pub const UPDATE_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Read-modify-write with CAS and bounded retries on conflict (64) and on temporary failures
/// (8), all within [`UPDATE_LIMIT`]. `f` runs on every attempt, on the freshly read record.
pub async fn update<T>(
    store: &dyn TokenStore,
    name: &ProfileName,
    f: impl FnMut(&mut Record) -> Result<T, crate::Error>,
) -> Result<(T, Version), crate::Error> {
    update_until(store, name, std::time::Instant::now() + UPDATE_LIMIT, f).await
}

/// [`update`] that gives up at `deadline`: every store call is cut off there (a hung store is
/// reported as unavailable), and no retry starts after it.
pub async fn update_until<T>(
    store: &dyn TokenStore,
    name: &ProfileName,
    deadline: std::time::Instant,
    mut f: impl FnMut(&mut Record) -> Result<T, crate::Error>,
) -> Result<(T, Version), crate::Error> {
    let mut attempt = 0u32;
    loop {
        let Versioned {
            mut record,
            version,
        } = within(deadline, load_existing(store, name)).await?;
        let out = f(&mut record)?;
        record.touch();
        let put = within(
            deadline,
            store.put(name, &record, Precondition::Match(version)),
        )
        .await;
        let pause = match put {
            Ok(v) => return Ok((out, v)),
            Err(StoreError::Conflict(_)) if attempt < 64 => {
                std::time::Duration::from_millis(5 * u64::from(attempt.min(20) + 1))
            }
            Err(StoreError::Unavailable {
                retryable: true, ..
            }) if attempt < 8 => std::time::Duration::from_millis(50 * u64::from(attempt + 1)),
            Err(e) => return Err(e.into()),
        };
        attempt += 1;
        let pause = crate::retry::jitter(pause);
        if std::time::Instant::now() + pause >= deadline {
            return Err(StoreError::Unavailable {
                message: format!("profile {name} could not be updated in time (the store kept refusing or conflicting)"),
                retryable: true,
            }
            .into());
        }
        tokio::time::sleep(pause).await;
    }
}

/// Runs a store call, reporting it as unavailable (retryable) if it has not answered by
/// `deadline`.
pub async fn within<T>(
    deadline: std::time::Instant,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout_at(deadline.into(), call).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable {
            message: "the store did not answer in time".into(),
            retryable: true,
        }),
    }
}
