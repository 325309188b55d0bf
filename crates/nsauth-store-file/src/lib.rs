//! # nsauth-store-file
//!
//! An nsauth [`TokenStore`](nsauth_store::TokenStore) that keeps one encrypted file per
//! profile, `DIR/<profile>.json`, for a directory you sync or inspect with ordinary tools.
//!
//! Each file is a small JSON envelope (`{"format":"nsauth-file-record","version":N,
//! "sealed":"…","incarnation":"…"}`) around the record sealed with the
//! [`StoreKey`](nsauth_store_local::seal::StoreKey): the version and a random incarnation,
//! new at every create, are in plaintext, everything else is encrypted. The version handed
//! out is `INCARNATION.N`, so it is never reused for a name, even after a delete and a
//! re-create. Writes take an advisory lock on `DIR/.lock`, check the version, write a
//! temporary file (0600), fsync it, rename it over the old one and fsync the directory, so a
//! crash leaves the old record or the new one, never half of one. Reads need no lock. A file
//! that cannot be read is reported as [`StoreError::Corrupt`] and never overwritten.
//!
//! ```
//! use nsauth_store_local::seal::StoreKey;
//! use nsauth_store::TokenStore;
//! use nsauth_store_file::FileStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = FileStore::open(&dir.path().join("profiles"), StoreKey::generate()).unwrap();
//! assert!(store.describe().starts_with("file://"));
//! assert!(store.capabilities().compare_and_swap);
//! ```
//!
//! [`StoreError::Corrupt`]: nsauth_store::StoreError::Corrupt
#![warn(missing_docs)]

mod envelope;
mod fsutil;
mod store;

pub use store::FileStore;

/// The URI scheme of this store.
pub const SCHEME: &str = "file";

/// The URI syntax, as shown by `nsauth backends`.
pub const URI_HELP: &str = "file://DIR  (one encrypted file per profile; ?key-file=PATH)";
