//! # nsauth-conformance
//!
//! The one behaviour suite every [`TokenStore`] backend runs. A backend passes it or it does
//! not ship.
//!
//! The checks are plain `async fn`s over a [`Fixture`], which opens new, independent handles
//! (connections, clients) to one underlying store, so that the concurrency checks exercise
//! compare-and-swap across handles the way separate processes would. Every check uses profile
//! names with a random part after the fixture's [`Fixture::scratch_prefix`] and cleans up
//! after itself, so checks can share one live server.
//!
//! [`ALL_CHECKS`] lists every check once, with its [`Group`]; it and [`store_suite!`]'s tests
//! are expanded from one list, so they always agree. [`Run`] runs checks against any
//! [`Fixture`] (for instance a [`UriFixture`] over a store URI, which is what
//! `nsauth conformance --store URI` does): each check in its own task with a time limit, a
//! panic becoming the check's failure reason, every name under a run-specific prefix that is
//! deleted afterwards.
//!
//! A backend's `tests/conformance.rs` turns the suite into one test per check:
//!
//! ```ignore
//! use async_trait::async_trait;
//! use nsauth_conformance::Fixture;
//! use nsauth_store::TokenStore;
//! use std::sync::Arc;
//!
//! struct MyFixture { /* a temp dir, a server address, ... */ }
//!
//! #[async_trait]
//! impl Fixture for MyFixture {
//!     async fn open(&self) -> Arc<dyn TokenStore> {
//!         Arc::new(MyStore::connect(/* ... */).unwrap())
//!     }
//! }
//!
//! nsauth_conformance::store_suite!(MyFixture::new());
//! ```
//!
//! The generated tests use `#[tokio::test]`, so the calling crate needs `tokio` with the
//! `macros` and `rt-multi-thread` features.
//!
//! Or, at run time, with a report per check:
//!
//! ```ignore
//! let fixture = Arc::new(nsauth_conformance::UriFixture::new(uri, nsauth::open_store));
//! let report = nsauth_conformance::Run::new()
//!     .run(fixture, nsauth_conformance::ALL_CHECKS, |check| println!("{check:?}"))
//!     .await;
//! assert!(report.passed());
//! ```
#![warn(missing_docs)]

pub mod broker;
pub mod broker_clock;
pub mod broker_journal;
mod checks;
mod runner;
mod sample;
mod setup;
mod stress;
mod suite;
mod versions;

pub use checks::{cas_conflict, create_only, delete, list, missing_is_none, round_trip};
pub use runner::{failing_checks, CheckReport, Cleanup, Opener, Run, RunReport, UriFixture};
pub use sample::{jwt_like, sample_record, scratch_name, unique_name};
pub use stress::{concurrent_writers, large_record, odd_names};
pub use suite::{find, Check, CheckInfo, Group, ALL_CHECKS, CONTRACT_CHECKS};
pub use versions::{delete_races_writers, version_never_reused_across_delete};

use async_trait::async_trait;
use nsauth_core::TokenStore;
use std::sync::Arc;

/// Opens handles to the store under test.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// A new, independent handle (its own connection or client) to the same underlying
    /// store every other call returns. Panics if the store cannot be opened.
    async fn open(&self) -> Arc<dyn TokenStore>;

    /// How every profile name a check creates on this fixture begins (see [`scratch_name`]).
    /// The [`Run`]ner sets a prefix of its own per run and deletes every name that starts
    /// with it afterwards; the default, `t`, keeps the names the suite always used.
    fn scratch_prefix(&self) -> &str {
        "t"
    }
}
