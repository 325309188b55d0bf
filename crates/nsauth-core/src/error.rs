//! nsauth's error type: a few kinds, each mapped to one exit code.

use crate::store::StoreError;

/// Everything that can go wrong, grouped by what the user must do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input or configuration (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// A NetSuite login is needed (exit 3).
    #[error("{0}")]
    LoginNeeded(String),
    /// The store failed (exit 4).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// NetSuite is unreachable or keeps failing (exit 5).
    #[error("{0}")]
    Unreachable(String),
    /// NetSuite refused the request for a reason a login would not fix (exit 1).
    #[error("{0}")]
    Rejected(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The documented process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid(_) => 2,
            Error::LoginNeeded(_) => 3,
            Error::Store(StoreError::NotFound(_) | StoreError::Config(_)) => 2,
            Error::Store(_) => 4,
            Error::Unreachable(_) => 5,
            Error::Rejected(_) | Error::Other(_) => 1,
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
