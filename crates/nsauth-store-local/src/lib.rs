//! # nsauth-store-local
//!
//! Helpers shared by the stores that keep records in local files (`sqlite://`, `file://`) and
//! by nsauth's recovery journal: sealing records with the store key ([`seal`]), parsing local
//! store URIs into absolute canonical paths ([`local_uri`]), private files and directories,
//! the XDG base directories ([`paths`]) and jittered retry pauses ([`retry`]).
//!
//! Depends on the contract (`nsauth-store`) only.
//!
//! ```
//! use nsauth_store::ProfileName;
//! use nsauth_store_local::seal::StoreKey;
//! let key = StoreKey::generate();
//! let name = ProfileName::parse("prod").unwrap();
//! let sealed = key.seal(&name, b"secret");
//! assert_eq!(key.open(&name, &sealed).unwrap(), b"secret");
//! ```
#![warn(missing_docs)]

#[cfg(feature = "keyring")]
pub mod keychain;
pub mod local_uri;
pub mod paths;
pub mod retry;
pub mod seal;
