//! # nsauth-conformance
//!
//! The one behaviour suite every [`TokenStore`] backend runs. A backend passes it or it does
//! not ship.
//!
//! The checks are plain `async fn`s over a [`Fixture`], which opens new, independent handles
//! (connections, clients) to one underlying store, so that the concurrency checks exercise
//! compare-and-swap across handles the way separate processes would. Every check uses profile
//! names with a random prefix and cleans up after itself, so checks can share one live server.
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
#![warn(missing_docs)]

pub mod broker;
pub mod broker_clock;
pub mod broker_journal;
mod checks;
mod sample;
mod setup;
mod stress;
mod versions;

pub use checks::{cas_conflict, create_only, delete, list, missing_is_none, round_trip};
pub use sample::{jwt_like, sample_record, unique_name};
pub use stress::{concurrent_writers, large_record, odd_names};
pub use versions::{delete_races_writers, version_never_reused_across_delete};

use async_trait::async_trait;
use nsauth_core::TokenStore;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// One check of the suite, callable through a list: `|fx| Box::pin(check(fx))`.
pub type Check = for<'a> fn(&'a dyn Fixture) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The checks of the storage contract itself, by the names [`store_suite!`] gives their
/// tests: everything it runs except the broker checks, which need an emulator.
pub const CONTRACT_CHECKS: &[(&str, Check)] = &[
    ("round_trip", |fx| Box::pin(round_trip(fx))),
    ("create_only", |fx| Box::pin(create_only(fx))),
    ("cas_conflict", |fx| Box::pin(cas_conflict(fx))),
    ("delete", |fx| Box::pin(delete(fx))),
    ("list", |fx| Box::pin(list(fx))),
    ("missing_is_none", |fx| Box::pin(missing_is_none(fx))),
    ("version_never_reused_across_delete", |fx| {
        Box::pin(version_never_reused_across_delete(fx))
    }),
    ("delete_races_writers", |fx| {
        Box::pin(delete_races_writers(fx))
    }),
    ("large_record", |fx| Box::pin(large_record(fx))),
    ("odd_names", |fx| Box::pin(odd_names(fx))),
    ("concurrent_writers", |fx| Box::pin(concurrent_writers(fx))),
];

/// Runs every [`CONTRACT_CHECKS`] check on `fixture`, each in its own task, and returns the
/// names of those that failed (panicked). Empty when the store keeps the contract. For a
/// test that a broken store is caught, and for a quick report on a new backend.
pub async fn failing_checks(fixture: Arc<dyn Fixture>) -> Vec<&'static str> {
    let mut failing = Vec::new();
    for (name, check) in CONTRACT_CHECKS {
        let fx = Arc::clone(&fixture);
        let check = *check;
        if tokio::spawn(async move { check(fx.as_ref()).await })
            .await
            .is_err()
        {
            failing.push(*name);
        }
    }
    failing
}

/// Opens handles to the store under test.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// A new, independent handle (its own connection or client) to the same underlying
    /// store every other call returns. Panics if the store cannot be opened.
    async fn open(&self) -> Arc<dyn TokenStore>;
}

/// Expands to one `#[tokio::test]` per conformance check, each building its fixture with
/// the given expression (which may `.await`).
///
/// ```ignore
/// nsauth_conformance::store_suite!(SqliteFixture::new());
/// ```
#[macro_export]
macro_rules! store_suite {
    ($fixture:expr) => {
        $crate::__store_tests! { $fixture;
            round_trip => $crate::round_trip,
            create_only => $crate::create_only,
            cas_conflict => $crate::cas_conflict,
            delete => $crate::delete,
            list => $crate::list,
            missing_is_none => $crate::missing_is_none,
            version_never_reused_across_delete => $crate::version_never_reused_across_delete,
            delete_races_writers => $crate::delete_races_writers,
            large_record => $crate::large_record,
            odd_names => $crate::odd_names,
            concurrent_writers => $crate::concurrent_writers,
            single_flight_refresh => $crate::broker::single_flight_refresh,
            dead_lease_is_taken_over => $crate::broker::dead_lease_is_taken_over,
            journal_keeps_rotated_token_when_store_fails => $crate::broker::journal_keeps_rotated_token_when_store_fails,
            journal_entry_of_another_grant_is_kept_aside => $crate::broker_journal::journal_entry_of_another_grant_is_kept_aside,
            unreadable_journal_entry_is_quarantined => $crate::broker_journal::unreadable_journal_entry_is_quarantined,
            recovery_clears_the_journaled_holders_lease => $crate::broker_journal::recovery_clears_the_journaled_holders_lease,
            skewed_clock_waiter_leaves_a_live_lease_alone => $crate::broker_clock::skewed_clock_waiter_leaves_a_live_lease_alone,
            fast_clock_dead_lease_is_taken_over_in_lease_time => $crate::broker_clock::fast_clock_dead_lease_is_taken_over_in_lease_time,
            holder_renews_its_lease_during_a_slow_refresh => $crate::broker_clock::holder_renews_its_lease_during_a_slow_refresh,
        }
    };
}

/// Implementation detail of [`store_suite!`]: one test per `name => check` pair.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_tests {
    ($fixture:expr; $($name:ident => $check:path),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let fixture = $fixture;
                $check(&fixture).await;
            }
        )*
    };
}
