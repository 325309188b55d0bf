//! The one list of checks. [`__checks!`](crate::__checks) names every check once, with its
//! group; the runtime catalogue ([`ALL_CHECKS`], [`CONTRACT_CHECKS`]) and the tests
//! [`store_suite!`](crate::store_suite) generates are both expanded from it, so they cannot
//! drift apart.

use crate::Fixture;
use std::future::Future;
use std::pin::Pin;

/// One check of the suite, callable through a list: `|fx| Box::pin(check(fx))`.
pub type Check = for<'a> fn(&'a dyn Fixture) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What a check exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// The storage contract itself: compare-and-swap, versions, list, concurrency.
    Contract,
    /// The broker's single-flight refresh and lease on top of the store (runs an emulator).
    Broker,
    /// The recovery journal on top of the store (runs an emulator).
    Journal,
    /// The refresh lease across hosts whose clocks disagree (runs an emulator).
    Clock,
}

impl Group {
    /// The group's name in reports: `contract`, `broker`, `journal` or `clock`.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Contract => "contract",
            Group::Broker => "broker",
            Group::Journal => "journal",
            Group::Clock => "clock",
        }
    }
}

/// A check, its name (the name of the test [`store_suite!`](crate::store_suite) makes of it)
/// and its group.
#[derive(Clone, Copy)]
pub struct CheckInfo {
    /// The check's name, e.g. `cas_conflict`.
    pub name: &'static str,
    /// What it exercises.
    pub group: Group,
    /// The check.
    pub run: Check,
}

impl std::fmt::Debug for CheckInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckInfo")
            .field("name", &self.name)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// Every check of the suite, in the order `store_suite!` declares their tests and the runner
/// runs them: the contract checks first, then those that need an emulator.
pub const ALL_CHECKS: &[CheckInfo] = crate::__checks!(all);

/// The checks of the storage contract itself, by the names [`store_suite!`](crate::store_suite)
/// gives their tests: everything it runs except the broker, journal and clock checks, which
/// need an emulator. The [`Group::Contract`] part of [`ALL_CHECKS`].
pub const CONTRACT_CHECKS: &[(&str, Check)] = crate::__checks!(contract);

/// The check called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static CheckInfo> {
    ALL_CHECKS.iter().find(|c| c.name == name)
}

/// The list: every check once, as `Group name => path`. Expands to what the mode asks for:
/// `all` (a `&[CheckInfo]`), `contract` (a `&[(&str, Check)]`) or `tests FIXTURE` (one
/// `#[tokio::test]` per check, and a test that the tests and [`ALL_CHECKS`] agree).
#[doc(hidden)]
#[macro_export]
macro_rules! __checks {
    ($($mode:tt)*) => {
        $crate::__expand_checks! { ($($mode)*)
            Contract round_trip => $crate::round_trip,
            Contract create_only => $crate::create_only,
            Contract cas_conflict => $crate::cas_conflict,
            Contract delete => $crate::delete,
            Contract list => $crate::list,
            Contract missing_is_none => $crate::missing_is_none,
            Contract version_never_reused_across_delete => $crate::version_never_reused_across_delete,
            Contract delete_races_writers => $crate::delete_races_writers,
            Contract large_record => $crate::large_record,
            Contract odd_names => $crate::odd_names,
            Contract concurrent_writers => $crate::concurrent_writers,
            Broker single_flight_refresh => $crate::broker::single_flight_refresh,
            Broker dead_lease_is_taken_over => $crate::broker::dead_lease_is_taken_over,
            Journal journal_keeps_rotated_token_when_store_fails => $crate::broker::journal_keeps_rotated_token_when_store_fails,
            Journal journal_entry_of_another_grant_is_kept_aside => $crate::broker_journal::journal_entry_of_another_grant_is_kept_aside,
            Journal unreadable_journal_entry_is_quarantined => $crate::broker_journal::unreadable_journal_entry_is_quarantined,
            Journal recovery_clears_the_journaled_holders_lease => $crate::broker_journal::recovery_clears_the_journaled_holders_lease,
            Clock skewed_clock_waiter_leaves_a_live_lease_alone => $crate::broker_clock::skewed_clock_waiter_leaves_a_live_lease_alone,
            Clock fast_clock_dead_lease_is_taken_over_in_lease_time => $crate::broker_clock::fast_clock_dead_lease_is_taken_over_in_lease_time,
            Clock holder_renews_its_lease_during_a_slow_refresh => $crate::broker_clock::holder_renews_its_lease_during_a_slow_refresh,
        }
    };
}

/// Implementation detail of [`__checks!`](crate::__checks): turns the list into the mode's
/// output.
#[doc(hidden)]
#[macro_export]
macro_rules! __expand_checks {
    ((all) $($group:ident $name:ident => $check:path,)*) => {
        &[$(
            $crate::CheckInfo {
                name: stringify!($name),
                group: $crate::Group::$group,
                run: |fx| Box::pin($check(fx)),
            },
        )*]
    };
    ((contract) $($list:tt)*) => {
        $crate::__expand_checks! { (@contract) [] $($list)* }
    };
    ((@contract) [$($kept:tt)*]) => {
        &[$($kept)*]
    };
    ((@contract) [$($kept:tt)*] Contract $name:ident => $check:path, $($rest:tt)*) => {
        $crate::__expand_checks! { (@contract)
            [$($kept)* (stringify!($name), |fx| Box::pin($check(fx))),] $($rest)*
        }
    };
    ((@contract) [$($kept:tt)*] $group:ident $name:ident => $check:path, $($rest:tt)*) => {
        $crate::__expand_checks! { (@contract) [$($kept)*] $($rest)* }
    };
    ((tests $fixture:expr) $($group:ident $name:ident => $check:path,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let fixture = $fixture;
                $check(&fixture).await;
            }
        )*

        /// `store_suite!` made exactly one test per check of `ALL_CHECKS`, in its order.
        #[test]
        fn store_suite_runs_every_check() {
            let tests: &[&str] = &[$(stringify!($name)),*];
            let checks: Vec<&str> = $crate::ALL_CHECKS.iter().map(|c| c.name).collect();
            assert_eq!(tests, checks.as_slice(), "store_suite! and ALL_CHECKS disagree");
        }
    };
}

/// Expands to one `#[tokio::test]` per conformance check (every check of [`ALL_CHECKS`],
/// named as there), each building its fixture with the given expression (which may
/// `.await`), and one test that they are all there.
///
/// ```ignore
/// nsauth_conformance::store_suite!(SqliteFixture::new());
/// ```
#[macro_export]
macro_rules! store_suite {
    ($fixture:expr) => {
        $crate::__checks! { tests $fixture }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_snake_case_and_findable() {
        let mut seen = HashSet::new();
        for c in ALL_CHECKS {
            assert!(seen.insert(c.name), "{} is listed twice", c.name);
            assert!(
                c.name
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{}",
                c.name
            );
            assert_eq!(find(c.name).map(|f| f.name), Some(c.name));
        }
        assert_eq!(ALL_CHECKS.len(), 20);
        assert!(find("no_such_check").is_none());
    }

    #[test]
    fn contract_checks_are_the_contract_group_in_order() {
        let contract: Vec<&str> = ALL_CHECKS
            .iter()
            .filter(|c| c.group == Group::Contract)
            .map(|c| c.name)
            .collect();
        let listed: Vec<&str> = CONTRACT_CHECKS.iter().map(|(n, _)| *n).collect();
        assert_eq!(listed, contract);
        assert_eq!(listed.len(), 11);
        // The emulator checks come after every contract check.
        let first_other = ALL_CHECKS
            .iter()
            .position(|c| c.group != Group::Contract)
            .expect("there are broker checks");
        assert_eq!(first_other, contract.len());
        for g in [Group::Broker, Group::Journal, Group::Clock] {
            assert!(ALL_CHECKS.iter().any(|c| c.group == g), "{g:?} is empty");
        }
    }

    /// docs/adding-a-store.md lists every check, in tables whose first column is the name.
    #[test]
    fn the_guide_lists_every_check() {
        let doc = include_str!("../../../docs/adding-a-store.md");
        let documented: HashSet<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        for c in ALL_CHECKS {
            assert!(
                documented.contains(c.name),
                "docs/adding-a-store.md does not list {}",
                c.name
            );
        }
    }
}
