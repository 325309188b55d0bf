//! A store file written by an older nsauth (schema 1: versions from a per-row counter that
//! restarted at 1 after a delete) opens, its records load and stay compare-and-swap
//! writable, and from then on no version is handed out twice.

use nsauth_conformance::{sample_record, unique_name};
use nsauth_store::{Precondition, StoreError, TokenStore, Version};
use nsauth_store_local::seal::StoreKey;
use nsauth_store_sqlite::SqliteStore;

/// Writes a schema-1 store file, as nsauth wrote it before the version counter, holding
/// one record at `version`; returns that record.
fn old_store(
    path: &std::path::Path,
    key: &StoreKey,
    name: &str,
    version: i64,
) -> nsauth_store::Record {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE records (
            name TEXT PRIMARY KEY NOT NULL,
            version INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            sealed TEXT NOT NULL
        ) STRICT;
        PRAGMA application_id = 1853055349; PRAGMA user_version = 1;",
    )
    .unwrap();
    let profile = nsauth_store::ProfileName::parse(name).unwrap();
    let record = sample_record("old");
    let sealed = key.seal_record(&profile, &record);
    conn.execute(
        "INSERT INTO records (name, version, updated_at, sealed) VALUES (?1, ?2, '2026-01-01T00:00:00Z', ?3)",
        rusqlite::params![name, version, sealed],
    )
    .unwrap();
    record
}

#[tokio::test]
async fn a_schema_1_store_keeps_its_records_and_never_reuses_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nsauth.db");
    let key = StoreKey::generate();
    let name = unique_name("old");
    let old = old_store(&path, &key, name.as_str(), 7);

    let store = SqliteStore::open(&path, key).unwrap();
    let got = store.load(&name).await.unwrap().expect("the old record");
    assert_eq!(got.version, Version("7".into()));
    assert_eq!(got.record, old);

    // A writer holding the old version still wins its compare-and-swap.
    let v8 = store
        .put(
            &name,
            &sample_record("new"),
            Precondition::Match(got.version),
        )
        .await
        .unwrap();
    assert_eq!(v8, Version("8".into()));
    // A brand-new name starts above every version already in the file.
    let other = unique_name("new");
    let first = store
        .put(&other, &sample_record("o"), Precondition::Create)
        .await
        .unwrap();
    assert_eq!(first, Version("9".into()));

    // Delete and re-create: the new record's version is new, and the old ones do not match.
    store.delete(&name, Some(&v8)).await.unwrap();
    let recreated = sample_record("again");
    let again = store
        .put(&name, &recreated, Precondition::Create)
        .await
        .unwrap();
    assert_eq!(again, Version("10".into()));
    for old in ["7", "8"] {
        let stale = store
            .put(
                &name,
                &sample_record("stale"),
                Precondition::Match(Version(old.into())),
            )
            .await;
        assert!(
            matches!(stale, Err(StoreError::Conflict(_))),
            "{old}: {stale:?}"
        );
    }
    assert_eq!(store.load(&name).await.unwrap().unwrap().record, recreated);

    // Reopening (a second process) continues the same counter.
    drop(store);
    let reopened = SqliteStore::open(&path, StoreKey::generate());
    assert!(reopened.is_ok(), "the migrated file opens again");
}
