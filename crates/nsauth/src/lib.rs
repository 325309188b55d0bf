//! # nsauth
//!
//! NetSuite OAuth 2.0 access tokens for Rust services, from the same stores the `nsauth` CLI
//! fills: a person (or CI) runs `nsauth login` once; services then ask for tokens and nsauth
//! keeps them fresh — one refresh per expiry, however many processes and hosts ask at once
//! (single flight over the store's compare-and-swap, with a refresh lease and a recovery
//! journal so that a rotated refresh token is never lost).
//!
//! Three lines, configured by the CLI's environment variables (`NSAUTH_STORE`,
//! `NSAUTH_PROFILE`, `NSAUTH_STORE_KEY`/`_FILE`, `NSAUTH_JOURNAL_DIR`, …):
//!
//! ```no_run
//! # async fn run() -> Result<(), nsauth::Error> {
//! let client = nsauth::Client::from_env()?;
//! let token = client.token("prod", std::time::Duration::from_secs(60)).await?;
//! println!("{} until {}", token.account_id, token.expires_at); // token.access_token.secret()
//! # Ok(()) }
//! ```
//!
//! With the `reqwest` feature, `client.http("prod").get("record/v1/metadata-catalog").await?`
//! calls the REST API with that token, refreshing once on a 401 (see [`reqwest`](mod@reqwest)).
//!
//! The same with a store built in code — here an in-memory one holding a token that is
//! still valid, so nothing goes over the network:
//!
//! ```
//! use nsauth::{Client, MemoryStore, TokenStore};
//! use nsauth_store::{account::AccountId, token::TokenSet, Precondition, Profile, ProfileName, Record};
//! use std::{sync::Arc, time::Duration};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), nsauth::Error> {
//! let store = Arc::new(MemoryStore::new());
//! let now = time::OffsetDateTime::now_utc();
//! let mut record = Record::new(Profile::new(AccountId::parse("1234567_SB1")?, "client-id"));
//! record.tokens = Some(TokenSet {
//!     access_token: nsauth::AccessToken::new("eyJ.example"),
//!     access_expires_at: now + time::Duration::minutes(50),
//!     refresh_token: None,
//!     refresh_expires_at: None,
//!     obtained_at: now,
//! });
//! store.put(&ProfileName::parse("prod")?, &record, Precondition::Create).await?;
//!
//! let client = Client::builder().store_instance(store).without_journal().build()?;
//! let token = client.token("prod", Duration::from_secs(60)).await?;
//! assert_eq!(token.access_token.secret(), "eyJ.example");
//! assert_eq!(token.account_id, "1234567_SB1");
//! assert_eq!(token.rest_url.as_str(), "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/");
//! # Ok(()) }
//! ```
//!
//! Stores are opened by URI ([`open_store`]); backends are compiled in by cargo feature
//! (`sqlite`, `file`, `vault`, `aws`, `plugin`), as is the [`reqwest`](mod@reqwest) integration
//! (`reqwest`); all are on by default. See also `docs/library.md`. Errors are [`Error`]s, whose kinds say what to do:
//! [`Error::LoginNeeded`] means a person must run `nsauth login`.
#![warn(missing_docs)]

mod builder;
mod client;
mod exit;
mod registry;
pub mod rest;

#[cfg(feature = "reqwest")]
pub mod reqwest;

pub use builder::{
    ClientBuilder, LEASE_SECONDS_ENV, PROFILE_ENV, STORE_ENV, STORE_TIMEOUT_SECONDS_ENV,
};
pub use client::{Client, Token};
pub use exit::exit_code;
pub use nsauth_core::Error;
pub use nsauth_store::record::FailureKind;
pub use nsauth_store::secret::AccessToken;
pub use nsauth_store::{MemoryStore, StoreError, TokenStore};
pub use registry::{backends, default_store_uri, open_store, Backend};
