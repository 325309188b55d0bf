//! # nsauth-store-vault
//!
//! An nsauth [`TokenStore`](nsauth_store::TokenStore) in a HashiCorp Vault or OpenBao **KV
//! version 2** mount, for teams and CI that already keep their secrets there. Each profile is
//! one secret, `MOUNT/data/PREFIX/NAME`, holding the record JSON in its `record` field.
//!
//! - **Compare-and-swap**: every write sends KV v2's `options.cas`. A create-only write is
//!   `cas=0`; a write at [`Version`](nsauth_store::Version) `"7"` is `cas=7`, and the
//!   version is the KV version number. The broker's single-flight refresh rests on this.
//! - **History**: Vault keeps older versions; the secret's custom metadata records which
//!   nsauth process (`user@host`, plus a CI run id) wrote each recent version
//!   (`nsauth_v7 = "ci@runner-3 (GITHUB_RUN_ID=…) at 2026-…Z"`); see [`VaultStore::history`].
//! - **Delete** writes a tombstone version with check-and-set on the version read (the
//!   conditional delete KV v2 lacks: a write landing in between makes it a conflict), then
//!   destroys the data of every version. The metadata stays, so a re-created profile's
//!   versions continue from the deleted one's: a version is never reused for a name, and a
//!   writer holding a deleted version never matches. Deleting needs `update` on
//!   `MOUNT/destroy/PREFIX/*` (docs/stores/vault-policy.hcl). A secret whose current version
//!   is deleted, destroyed or a tombstone does not exist for nsauth.
//! - **Errors**: 403 is [`StoreError::Denied`] naming the policy path and capabilities that
//!   are missing; a sealed server, 5xx and connection failures are retryable
//!   [`StoreError::Unavailable`]; a secret that is not an nsauth record is
//!   [`StoreError::Corrupt`].
//!
//! The record holds tokens; Vault encrypts it at rest and guards it with its policies, so
//! nsauth does not seal it again (`encrypts_at_rest` is false: nsauth's own encryption is
//! not used). Neither the Vault token nor record contents are ever logged.
//!
//! URIs: `vault://HOST:PORT/MOUNT/PREFIX` (TLS), `vault+http://HOST:PORT/MOUNT/PREFIX`, and
//! `vault:///MOUNT/PREFIX` (server from `VAULT_ADDR`). Authentication and TLS follow Vault's
//! own conventions, plus login without long-lived secrets (`NSAUTH_VAULT_AUTH_METHOD=jwt`
//! with a CI job's OIDC token, or `kubernetes` with the pod's service-account token); see
//! [`VaultSettings`]. Opening a store does no network I/O: the token is obtained (read, or a
//! login) on first use, and a login is made again before its token's lease ends or when
//! Vault refuses the token.
//!
//! ```
//! use nsauth_store::TokenStore;
//! use nsauth_store_vault::{VaultSettings, VaultStore};
//!
//! let mut settings = VaultSettings::default();
//! settings.token = Some(nsauth_store_vault::VaultSecret::new("hvs.example"));
//! let store = VaultStore::from_uri_with("vault://vault.example.com:8200/secret/nsauth", &settings)
//!     .unwrap();
//! assert_eq!(store.describe(), "vault://vault.example.com:8200/secret/nsauth");
//! assert!(store.capabilities().compare_and_swap && store.capabilities().versioned_history);
//! assert!(!format!("{store:?}").contains("hvs.example"));
//! ```
//!
//! [`StoreError::Denied`]: nsauth_store::StoreError::Denied
//! [`StoreError::Unavailable`]: nsauth_store::StoreError::Unavailable
//! [`StoreError::Corrupt`]: nsauth_store::StoreError::Corrupt
#![warn(missing_docs)]

mod auth;
mod client;
mod delete;
mod errors;
mod jwt;
mod kv;
mod settings;
mod store;
mod tls;
mod uri;

pub use settings::{GithubOidc, VaultAuthMethod, VaultSecret, VaultSettings};
pub use store::{VaultStore, VersionInfo};

/// The URI schemes of this store.
pub const SCHEMES: &[&str] = &["vault", "vault+http"];

/// The URI syntax, as shown by `nsauth backends`.
pub const URI_HELP: &str = "vault://HOST:PORT/MOUNT/PREFIX (TLS), vault+http://..., vault:///MOUNT/PREFIX (VAULT_ADDR); auth VAULT_TOKEN, ~/.vault-token, VAULT_ROLE_ID+VAULT_SECRET_ID, or NSAUTH_VAULT_AUTH_METHOD=jwt|kubernetes with NSAUTH_VAULT_AUTH_ROLE";
