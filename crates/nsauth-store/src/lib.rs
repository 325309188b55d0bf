//! # nsauth-store
//!
//! The storage contract of nsauth, and nothing else: the [`TokenStore`] trait every backend
//! implements, the [`Record`] it stores, [`Version`]s and [`Precondition`]s for
//! compare-and-swap writes, the [`StoreError`] kinds, [`Capabilities`], the record codec
//! ([`decode_record`], [`encode_record`]) and [`MemoryStore`], a correct in-memory store for
//! tests and examples.
//!
//! A backend crate depends on this crate (and, for local files, `nsauth-store-local`), never
//! on `nsauth-core`: it compiles no OAuth, share or signing code. The rules a backend keeps
//! are written on [`TokenStore`]; `nsauth-conformance` checks them.
//!
//! ```
//! use nsauth_store::account::AccountId;
//! use nsauth_store::{MemoryStore, Precondition, Profile, ProfileName, Record, StoreError, TokenStore};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = MemoryStore::new();
//! let name = ProfileName::parse("prod").unwrap();
//! let record = Record::new(Profile::new(AccountId::parse("1234567").unwrap(), "client-id"));
//! let v1 = store.put(&name, &record, Precondition::Create).await.unwrap();
//! // A second create, or a write against an old version, is a conflict.
//! let again = store.put(&name, &record, Precondition::Create).await;
//! assert!(matches!(again, Err(StoreError::Conflict(_))));
//! let v2 = store.put(&name, &record, Precondition::Match(v1.clone())).await.unwrap();
//! assert!(store.put(&name, &record, Precondition::Match(v1)).await.is_err());
//! assert_eq!(store.load(&name).await.unwrap().unwrap().version, v2);
//! # }
//! ```
#![warn(missing_docs)]

pub mod account;
mod memory;
pub mod profile;
pub mod record;
pub mod secret;
pub mod token;

pub use memory::MemoryStore;
pub use profile::{Profile, ProfileName};
pub use record::{
    actor, decode_record, encode_record, Lease, Metadata, Moved, PendingLogin, Record,
    RefreshFailure, RECORD_SCHEMA,
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An opaque version token handed out by a backend; a write succeeds only against the
/// version the writer read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Version(pub String);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Condition for a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Only if no record exists.
    Create,
    /// Only if the stored record is at this version.
    Match(Version),
}

/// What a backend can do, declared up front instead of discovered by failing at run time.
///
/// Build one with struct-update syntax from [`Capabilities::default`] (which claims nothing):
///
/// ```
/// use nsauth_store::Capabilities;
/// let caps = Capabilities { compare_and_swap: true, versioned_history: true, ..Capabilities::default() };
/// assert!(!caps.local);
/// ```
///
/// Always end the literal with `..Capabilities::default()`: fields may be added in minor
/// versions (defaulting to `false`), and that form keeps compiling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Writes are atomic compare-and-swap on the version (required: the broker's
    /// single-flight refresh is built on it; stores without it are refused).
    pub compare_and_swap: bool,
    /// The backend keeps older versions of a record (Vault, Secrets Manager), so a person can
    /// recover an overwritten refresh token there.
    pub versioned_history: bool,
    /// Records are encrypted before they leave nsauth (local stores seal them with the store
    /// key); when `false`, the backend is trusted to protect them.
    pub encrypts_at_rest: bool,
    /// The data stays on this machine, in files under this user's control: the audit trail
    /// then sits beside the store and the store key is a local secret.
    pub local: bool,
}

impl Capabilities {
    /// A local, encrypted, CAS-capable store (the `sqlite://` and `file://` stores).
    pub const LOCAL: Capabilities = Capabilities {
        compare_and_swap: true,
        versioned_history: false,
        encrypts_at_rest: true,
        local: true,
    };

    /// A remote secret manager with compare-and-swap and version history (`vault://`,
    /// `aws-sm://`).
    pub const REMOTE_VERSIONED: Capabilities = Capabilities {
        compare_and_swap: true,
        versioned_history: true,
        encrypts_at_rest: false,
        local: false,
    };
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
    /// The store is configured wrongly (a bad URI, a missing setting): fixing the
    /// configuration, not retrying, helps. The message says what to change.
    #[error("{0}")]
    Config(String),
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

/// The storage contract. Object-safe; backends implement six methods (a seventh,
/// [`wait_for_change`](TokenStore::wait_for_change), is optional).
///
/// # Rules every backend keeps (the conformance suite checks each one)
/// - **Compare-and-swap.** [`put`](TokenStore::put) with [`Precondition::Create`] succeeds only
///   when no record exists; with [`Precondition::Match`] only when the stored record is still at
///   that version. Otherwise it fails with [`StoreError::Conflict`] and changes nothing. Of
///   many concurrent writers holding the same version, exactly one wins.
/// - **A version is never reused for a name, even across delete.** Once a version has been
///   handed out for a name, no later record under that name (after any number of deletes and
///   re-creates) may carry it, so a very stale writer can never match a record it never saw.
///   Counters that restart at 1 on re-create break this; prefix them with something unique
///   to the incarnation, or keep the counter across deletes.
/// - [`load`](TokenStore::load) returns exactly what the last successful `put` wrote,
///   with the version that `put` returned.
/// - [`delete`](TokenStore::delete) with a version deletes only that version; a missing
///   record is [`StoreError::NotFound`].
/// - [`list`](TokenStore::list) returns every stored name, sorted, each once.
/// - Errors are mapped to the kinds of [`StoreError`]; a backend decides which failures are
///   temporary (`Unavailable { retryable: true }`), and never puts a secret in a message.
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

    /// Waits until the record `name` may have changed from version `seen`, or until
    /// `timeout` has passed, whichever comes first, and returns `true`; a hint for callers
    /// waiting on another process's refresh, who read the record again afterwards either
    /// way (so waking early, or for a change to another record, is harmless).
    ///
    /// Backends that are told of changes (PostgreSQL's `LISTEN`/`NOTIFY`) override this.
    /// The default returns `false` at once: "no notifications here", and the caller pauses
    /// on its own schedule.
    async fn wait_for_change(
        &self,
        name: &ProfileName,
        seen: &Version,
        timeout: std::time::Duration,
    ) -> bool {
        let _ = (name, seen, timeout);
        false
    }
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
