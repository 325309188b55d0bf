//! # nsauth-core
//!
//! The contract and the logic of nsauth: NetSuite [`profile`]s and [`account`] IDs, the OAuth
//! 2.0 flows exactly as NetSuite implements them ([`flows`], [`m2m`]), the [`store::TokenStore`]
//! trait every backend implements, and the [`broker`] that hands out fresh access tokens with
//! single-flight refresh across processes, using nothing but the store's compare-and-swap.
//!
//! No backend SDK is imported here; backends live in their own crates.
//!
//! ```
//! use nsauth_core::account::AccountId;
//! let acct = AccountId::parse("1234567_SB1").unwrap();
//! assert_eq!(acct.host_form(), "1234567-sb1");
//! ```
#![warn(missing_docs)]

pub mod audit;
pub mod broker;
pub mod error;
pub mod flows;
pub mod http;
pub mod journal;
pub mod login;
pub mod m2m;
pub mod migrate;
#[cfg(feature = "share")]
pub mod share;
pub mod store;
pub mod token;

pub use nsauth_store::{account, profile, secret};
pub use nsauth_store_local::{local_uri, retry, seal};

pub use error::{Error, Result};
pub use profile::{Profile, ProfileName};
pub use store::{Record, StoreError, TokenStore};
