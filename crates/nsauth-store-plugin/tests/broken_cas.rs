//! The suite catches a plugin that ignores preconditions, and names the checks it fails.

mod support;

use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_fails_a_plugin_that_ignores_preconditions_naming_the_cas_checks() {
    let broken = support::PyDirFixture::new(&[
        ("PYDIR_IGNORE_PRECONDITIONS", "1"),
        ("NSAUTH_PLUGIN_ENV", "PYDIR_IGNORE_PRECONDITIONS"),
    ]);
    let failing = nsauth_conformance::failing_checks(Arc::new(broken)).await;
    eprintln!("failing: {failing:?}");
    for check in ["create_only", "cas_conflict", "concurrent_writers"] {
        assert!(failing.contains(&check), "{check} must fail: {failing:?}");
    }
    // The checks that do not depend on preconditions still pass: the suite names the fault
    // instead of failing everything.
    for check in [
        "round_trip",
        "list",
        "missing_is_none",
        "large_record",
        "odd_names",
    ] {
        assert!(
            !failing.contains(&check),
            "{check} should pass: {failing:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_plugin_with_preconditions_passes_the_contract_checks() {
    let good = support::PyDirFixture::new(&[]);
    let failing = nsauth_conformance::failing_checks(Arc::new(good)).await;
    assert!(failing.is_empty(), "{failing:?}");
}
