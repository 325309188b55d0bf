//! Versions are never reused for a name, even across delete: a very stale compare-and-swap
//! writer can never match a record it never saw.

use crate::checks::{assert_conflict, cleanup};
use crate::sample::{sample_record, scratch_name};
use crate::Fixture;
use nsauth_core::store::{Precondition, Record, Version};
use nsauth_core::{ProfileName, StoreError, TokenStore};
use std::sync::Arc;
use std::time::Duration;

/// Three incarnations of one name (create, update, update, delete; three times). Every
/// version handed out differs from every earlier one; a write or delete at a version of an
/// earlier incarnation fails with `Conflict` (or, while the name is absent, with `Conflict`
/// for a write and `NotFound` for a delete) and changes nothing.
pub async fn version_never_reused_across_delete(fx: &dyn Fixture) {
    let store = fx.open().await;
    let name = scratch_name(fx, "reuse");
    let mut seen: Vec<Version> = Vec::new();
    for incarnation in 1..=3 {
        let record = sample_record(&format!("incarnation-{incarnation}"));
        let first = store
            .put(&name, &record, Precondition::Create)
            .await
            .unwrap_or_else(|e| panic!("create incarnation {incarnation}: {e}"));
        let mut current = first;
        let mut last = record;
        for update in 1..=2 {
            remember(&mut seen, &current, incarnation);
            stale_writes_change_nothing(store.as_ref(), &name, &seen, &current, &last).await;
            let mut next = sample_record(&format!("incarnation-{incarnation}-update-{update}"));
            next.meta.refresh_count = update;
            current = store
                .put(&name, &next, Precondition::Match(current.clone()))
                .await
                .unwrap_or_else(|e| panic!("update {update} of incarnation {incarnation}: {e}"));
            last = next;
        }
        remember(&mut seen, &current, incarnation);
        stale_writes_change_nothing(store.as_ref(), &name, &seen, &current, &last).await;
        // From another handle, as another process would.
        fx.open()
            .await
            .delete(&name, Some(&current))
            .await
            .unwrap_or_else(|e| panic!("delete incarnation {incarnation}: {e}"));
        absent_name_refuses_old_versions(store.as_ref(), &name, &seen).await;
    }
    cleanup(store.as_ref(), &[&name]).await;
}

/// Adds `version` to `seen`, panicking if it was handed out before.
fn remember(seen: &mut Vec<Version>, version: &Version, incarnation: u32) {
    assert!(
        !seen.contains(version),
        "version {version} of incarnation {incarnation} was handed out before (all: {seen:?}); \
         a version must never be reused for a name, even across delete"
    );
    seen.push(version.clone());
}

/// Writes and deletes at every version in `seen` except `current` fail with `Conflict`, and
/// the record stays `last` at `current`.
async fn stale_writes_change_nothing(
    store: &dyn TokenStore,
    name: &ProfileName,
    seen: &[Version],
    current: &Version,
    last: &Record,
) {
    let stale = sample_record("stale-writer");
    for old in seen.iter().filter(|v| *v != current) {
        assert_conflict(
            store
                .put(name, &stale, Precondition::Match(old.clone()))
                .await,
            &format!("write at old version {old} while the record is at {current}"),
        );
        assert_conflict(
            store.delete(name, Some(old)).await,
            &format!("delete at old version {old} while the record is at {current}"),
        );
    }
    let got = store
        .load(name)
        .await
        .expect("load")
        .expect("the record still exists after refused stale writes");
    assert_eq!(
        &got.version, current,
        "refused stale writes must not change the version"
    );
    assert_eq!(
        &got.record, last,
        "refused stale writes must not change the record"
    );
}

/// While the name is deleted, a write at any old version is a `Conflict` that creates
/// nothing, and a delete at any old version is `NotFound`.
async fn absent_name_refuses_old_versions(
    store: &dyn TokenStore,
    name: &ProfileName,
    seen: &[Version],
) {
    let stale = sample_record("stale-after-delete");
    for old in seen {
        assert_conflict(
            store
                .put(name, &stale, Precondition::Match(old.clone()))
                .await,
            &format!("write at version {old} after the record was deleted"),
        );
        match store.delete(name, Some(old)).await {
            Err(StoreError::NotFound(_)) => {}
            other => panic!(
                "delete at version {old} after the record was deleted: expected NotFound, got {other:?}"
            ),
        }
    }
    assert!(
        store.load(name).await.expect("load").is_none(),
        "a stale write after delete must not bring the record back"
    );
    assert!(
        !store.list().await.expect("list").contains(name),
        "a deleted record is not listed"
    );
}

/// A delete and four writers, each on its own handle, all holding the same version, race:
/// exactly one of them wins, sixteen times over. A store without a conditional delete that reads
/// the version and then deletes lets a writer win too, and its write is then lost (or the
/// deleted record comes back).
pub async fn delete_races_writers(fx: &dyn Fixture) {
    const WRITERS: usize = 4;
    const ROUNDS: usize = 16;
    let store = fx.open().await;
    let name = scratch_name(fx, "delete-race");
    for round in 0..ROUNDS {
        let version = store
            .put(&name, &sample_record("race"), Precondition::Create)
            .await
            .unwrap_or_else(|e| panic!("round {round}: create: {e}"));
        let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS + 1));
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let (handle, barrier) = (fx.open().await, Arc::clone(&barrier));
            let (name, version) = (name.clone(), version.clone());
            writers.push(tokio::spawn(async move {
                let mut record = sample_record(&format!("writer-{writer}"));
                record.meta.updated_by = format!("writer-{writer}");
                barrier.wait().await;
                // Spread the writers over the delete's requests (0 to 3 ms after it starts),
                // so that the rounds try different interleavings, not only "all at once".
                tokio::time::sleep(Duration::from_micros(spread(round, writer))).await;
                let result = handle
                    .put(&name, &record, Precondition::Match(version))
                    .await;
                (record, result)
            }));
        }
        let deleter = fx.open().await;
        barrier.wait().await;
        let deleted = deleter.delete(&name, Some(&version)).await;

        let mut winners: Vec<String> = Vec::new();
        let mut written = None;
        match &deleted {
            Ok(()) => winners.push("the delete".into()),
            Err(StoreError::Conflict(_)) => {}
            Err(e) if e.is_retryable() => {}
            Err(e) => panic!("round {round}: delete: unexpected {e:?}"),
        }
        for task in writers {
            let (record, result) = task.await.expect("writer task");
            match result {
                Ok(v) => {
                    winners.push(record.meta.updated_by.clone());
                    written = Some((v, record));
                }
                Err(StoreError::Conflict(_)) => {}
                Err(e) if e.is_retryable() => {}
                Err(e) => panic!("round {round}: writer: unexpected {e:?}"),
            }
        }
        assert!(
            winners.len() <= 1,
            "round {round}: {winners:?} all won at version {version}: a delete and a write \
             at the same version must exclude each other"
        );
        let now = store.load(&name).await.expect("load");
        match (deleted.is_ok(), written, now) {
            (true, _, None) => {}
            (false, Some((v, record)), Some(got)) => {
                assert_eq!((got.version, got.record), (v, record), "round {round}");
            }
            (false, None, Some(got)) => assert_eq!(got.version, version, "round {round}"),
            (deleted, written, now) => panic!(
                "round {round}: delete won: {deleted}, a write won: {}, but the record is {}",
                written.is_some(),
                if now.is_some() { "there" } else { "gone" }
            ),
        }
        cleanup(store.as_ref(), &[&name]).await;
    }
}

/// How long writer `writer` of round `round` lets the delete run first, in microseconds.
fn spread(round: usize, writer: usize) -> u64 {
    ((round * 7 + writer * 3) % 16) as u64 * 200
}
