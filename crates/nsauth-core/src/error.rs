//! nsauth's error type, grouped by what the user must do about it ([`Error::kind`]).
//!
//! Core decides kinds, never exit codes: the CLI maps each [`FailureKind`] to its documented
//! exit code in one function.

use crate::store::{FailureKind, StoreError};

/// Everything that can go wrong, grouped by what the user must do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input or configuration.
    #[error("{0}")]
    Invalid(String),
    /// A NetSuite login is needed.
    #[error("{0}")]
    LoginNeeded(String),
    /// The store failed (or was not found or is configured wrongly: see [`Error::kind`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// NetSuite is unreachable or keeps failing.
    #[error("{0}")]
    Unreachable(String),
    /// NetSuite refused the request for a reason a login would not fix.
    #[error("{0}")]
    Rejected(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// What kind of failure this is. A profile missing from the store and a store configured
    /// wrongly (a bad URI, a missing setting) are [`FailureKind::Invalid`]: the caller's input
    /// is what must change; every other store error is [`FailureKind::Store`].
    pub fn kind(&self) -> FailureKind {
        match self {
            Error::Invalid(_) => FailureKind::Invalid,
            Error::LoginNeeded(_) => FailureKind::LoginNeeded,
            Error::Store(StoreError::NotFound(_) | StoreError::Config(_)) => FailureKind::Invalid,
            Error::Store(_) => FailureKind::Store,
            Error::Unreachable(_) => FailureKind::Unreachable,
            Error::Rejected(_) => FailureKind::Rejected,
            Error::Other(_) => FailureKind::Other,
        }
    }
}

impl From<crate::account::InvalidAccountId> for Error {
    fn from(e: crate::account::InvalidAccountId) -> Self {
        Error::Invalid(e.to_string())
    }
}

impl From<crate::profile::InvalidProfileName> for Error {
    fn from(e: crate::profile::InvalidProfileName) -> Self {
        Error::Invalid(e.to_string())
    }
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
