//! # nsauth-store-sqlite
//!
//! The default nsauth [`TokenStore`](nsauth_store::TokenStore): every profile is one row of
//! one SQLite file, in WAL mode with a busy timeout so that concurrent processes on one
//! machine neither block readers nor lose an update. Each write is `BEGIN IMMEDIATE` plus a
//! conditional `INSERT`/`UPDATE` on the version read, which gives the compare-and-swap the
//! broker's single-flight refresh is built on.
//!
//! Records are sealed with the [`StoreKey`](nsauth_store_local::seal::StoreKey) before they reach
//! the file: only the profile name, the version and the update time are in plaintext. The
//! file is created 0600 inside a 0700 directory. A file that is not an nsauth database, or a
//! record that does not decrypt, is reported as [`StoreError::Corrupt`] and never written to.
//!
//! ```
//! use nsauth_store_local::seal::StoreKey;
//! use nsauth_store_sqlite::SqliteStore;
//! use nsauth_store::TokenStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(&dir.path().join("nsauth.db"), StoreKey::generate()).unwrap();
//! assert!(store.describe().starts_with("sqlite://"));
//! assert!(store.capabilities().compare_and_swap);
//! ```
//!
//! [`StoreError::Corrupt`]: nsauth_store::StoreError::Corrupt
#![warn(missing_docs)]

mod errors;
mod schema;
mod store;

pub use store::SqliteStore;

/// The URI scheme of this store.
pub const SCHEME: &str = "sqlite";

/// The URI syntax, as shown by `nsauth backends`.
pub const URI_HELP: &str = "sqlite://PATH  (one SQLite file; ?key-file=PATH)";
