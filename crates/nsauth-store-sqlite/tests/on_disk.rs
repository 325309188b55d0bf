//! What a user would see on disk: private files, no plaintext secrets, and damaged or
//! foreign files reported and left byte-for-byte untouched.

use nsauth_conformance::{sample_record, unique_name};
use nsauth_store::{Precondition, Version};
use nsauth_store::{StoreError, TokenStore};
use nsauth_store_local::seal::StoreKey;
use nsauth_store_sqlite::SqliteStore;
use std::path::{Path, PathBuf};

fn db_files(path: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            PathBuf::from(p)
        })
        .collect()
}

fn assert_corrupt<T: std::fmt::Debug>(r: Result<T, StoreError>, needle: &str) {
    match r {
        Err(e @ StoreError::Corrupt { .. }) => assert!(e.to_string().contains(needle), "{e}"),
        other => panic!("expected Corrupt mentioning {needle:?}, got {other:?}"),
    }
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn files_and_directories_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a/b/nsauth.db");
    let store = SqliteStore::open(&path, StoreKey::generate()).unwrap();
    store
        .put(&unique_name("p"), &sample_record("p"), Precondition::Create)
        .await
        .unwrap();
    assert_eq!(mode(&tmp.path().join("a")), 0o700);
    assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
    for f in db_files(&path) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    drop(store);

    // A store file made world-readable by someone else is made private again on open.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = SqliteStore::open(&path, StoreKey::generate()).unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn no_secret_reaches_the_disk_in_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nsauth.db");
    let store = SqliteStore::open(&path, StoreKey::generate()).unwrap();
    let name = unique_name("plain");
    let record = sample_record("plain");
    let v1 = store
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();
    store
        .put(&name, &sample_record("second"), Precondition::Match(v1))
        .await
        .unwrap();

    let tokens = record.tokens.as_ref().unwrap();
    let refresh = tokens.refresh_token.as_ref().unwrap().secret();
    let secrets = [
        refresh,
        &refresh[refresh.len() / 2..refresh.len() / 2 + 32],
        tokens.access_token.secret(),
        record.pending[0].verifier.secret(),
        &record.profile.client_id,
    ];
    let mut seen = 0;
    for f in db_files(&path) {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        seen += bytes.len();
        for s in secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{} holds a secret in plaintext",
                f.display()
            );
        }
    }
    assert!(seen > 4096, "the store files were read");
    // The name is plaintext by design (it is the key), which the check above must not hide.
    let all: Vec<u8> = db_files(&path)
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .flatten()
        .collect();
    assert!(all
        .windows(name.as_str().len())
        .any(|w| w == name.as_str().as_bytes()));
}

fn assert_refused_untouched(path: &Path, needle: &str) {
    let before = std::fs::read(path).unwrap();
    assert_corrupt(SqliteStore::open(path, StoreKey::generate()), needle);
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the file must not be modified"
    );
    for side in &db_files(path)[1..] {
        assert!(!side.exists(), "{} must not be created", side.display());
    }
}

#[test]
fn a_file_that_is_not_a_database_is_corrupt_and_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nsauth.db");
    std::fs::write(
        &path,
        "refresh_token=this is a text file, not a database\n".repeat(50),
    )
    .unwrap();
    assert_refused_untouched(&path, "not a SQLite database");

    let mut garbage = b"SQLite format 3\0".to_vec();
    garbage.extend(std::iter::repeat_n(0xA5u8, 8192));
    std::fs::write(&path, &garbage).unwrap();
    assert_refused_untouched(&path, "not a SQLite database");

    std::fs::write(&path, b"SQLite format 3\0short").unwrap();
    assert_refused_untouched(&path, "not a SQLite database");
}

#[test]
fn a_database_of_another_program_or_a_newer_nsauth_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let foreign = tmp.path().join("other.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
        .unwrap();
    assert_refused_untouched(&foreign, "another program");

    let newer = tmp.path().join("newer.db");
    drop(SqliteStore::open(&newer, StoreKey::generate()).unwrap());
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.execute_batch(
        "PRAGMA user_version = 99; PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;",
    )
    .unwrap();
    drop(conn);
    assert_refused_untouched(&newer, "upgrade nsauth");
}

#[tokio::test]
async fn a_record_under_another_key_is_corrupt_and_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nsauth.db");
    let right = StoreKey::generate();
    let name = unique_name("key");
    let record = sample_record("key");
    let v1 = SqliteStore::open(&path, right.clone())
        .unwrap()
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();

    let wrong = SqliteStore::open(&path, StoreKey::generate()).unwrap();
    assert_corrupt(wrong.load(&name).await, "store key");
    assert_corrupt(
        wrong
            .put(&name, &sample_record("x"), Precondition::Match(v1.clone()))
            .await,
        "store key",
    );
    assert!(matches!(
        wrong
            .put(&name, &sample_record("x"), Precondition::Create)
            .await,
        Err(StoreError::Conflict(_))
    ));

    let back = SqliteStore::open(&path, right)
        .unwrap()
        .load(&name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (back.record, back.version),
        (record, v1),
        "the record is intact"
    );
}

#[tokio::test]
async fn a_damaged_row_is_corrupt_and_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nsauth.db");
    let store = SqliteStore::open(&path, StoreKey::generate()).unwrap();
    let name = unique_name("damaged");
    store
        .put(&name, &sample_record("d"), Precondition::Create)
        .await
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE records SET sealed = 'nsauth-sealed-v1:garbage' WHERE name = ?1",
        [name.as_str()],
    )
    .unwrap();

    assert_corrupt(store.load(&name).await, "unreadable");
    assert_corrupt(
        store
            .put(
                &name,
                &sample_record("x"),
                Precondition::Match(Version("1".into())),
            )
            .await,
        "unreadable",
    );
    assert_corrupt(
        store.delete(&name, Some(&Version("1".into()))).await,
        "unreadable",
    );
    let sealed: String = raw
        .query_row(
            "SELECT sealed FROM records WHERE name = ?1",
            [name.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sealed, "nsauth-sealed-v1:garbage");
    // An unconditional delete is how a user clears it.
    store.delete(&name, None).await.unwrap();
    assert!(store.load(&name).await.unwrap().is_none());
}

#[tokio::test]
async fn a_held_write_lock_is_a_retryable_busy_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nsauth.db");
    let store = SqliteStore::open(&path, StoreKey::generate()).unwrap();
    let name = unique_name("busy");
    let v1 = store
        .put(&name, &sample_record("b"), Precondition::Create)
        .await
        .unwrap();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();

    // Readers are not blocked by a writer (WAL).
    assert!(store.load(&name).await.unwrap().is_some());
    match store
        .put(&name, &sample_record("b2"), Precondition::Match(v1.clone()))
        .await
    {
        Err(
            e @ StoreError::Unavailable {
                retryable: true, ..
            },
        ) => assert!(e.to_string().contains("try again"), "{e}"),
        other => panic!("expected a retryable Unavailable, got {other:?}"),
    }
    holder.execute_batch("ROLLBACK").unwrap();
    store
        .put(&name, &sample_record("b2"), Precondition::Match(v1))
        .await
        .expect("works once the lock is released");
}

#[tokio::test]
async fn from_uri_opens_with_a_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("d b").join("nsauth.db");
    let key = tmp.path().join("keys/store.key");
    let uri = format!(
        "sqlite://{}?key-file={}",
        db.display().to_string().replace(' ', "%20"),
        key.display()
    );
    let store = SqliteStore::from_uri(&uri).unwrap();
    assert_eq!(store.describe(), format!("sqlite://{}", db.display()));
    assert_eq!(store.path(), db);
    let name = unique_name("uri");
    store
        .put(&name, &sample_record("u"), Precondition::Create)
        .await
        .unwrap();
    if std::env::var_os(nsauth_store_local::seal::STORE_KEY_ENV).is_none() {
        assert!(key.exists(), "the key file is created on first use");
        let again = SqliteStore::from_uri(&uri).unwrap();
        assert!(
            again.load(&name).await.unwrap().is_some(),
            "the same key file opens the record"
        );
    }

    for bad in [
        "sqlite://",
        "sqlite:///tmp/x.db?bogus=1",
        "sqlite:///tmp/x.db?key-file=",
        "sqlite:///tmp/x.db?key-file=a&key-file=b",
        "sqlite:///tmp/x\n.db",
        "file:///tmp/x.db",
    ] {
        match SqliteStore::from_uri(bad) {
            Err(e @ StoreError::Config(_)) => {
                let shown = e.to_string();
                assert!(shown.contains("expected sqlite://PATH"), "{bad}: {shown}");
                assert!(!shown.contains('\n'), "one line: {shown}");
            }
            other => panic!("{bad}: expected a configuration error (exit 2), got {other:?}"),
        }
    }
    match SqliteStore::open(tmp.path(), StoreKey::generate()) {
        Err(e @ StoreError::Config(_)) => assert!(e.to_string().contains("is a directory"), "{e}"),
        other => panic!("a directory is not a store file: expected Config, got {other:?}"),
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_read_only_store_says_which_file_and_what_to_do() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nsauth.db");
    let store = SqliteStore::open(&path, StoreKey::generate()).unwrap();
    let name = unique_name("ro");
    let v1 = store
        .put(&name, &sample_record("r"), Precondition::Create)
        .await
        .unwrap();
    drop(store);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        eprintln!("skipped: running as a user that ignores file permissions (root)");
        return;
    }
    let err = match SqliteStore::open(&path, StoreKey::generate()) {
        Err(e) => e,
        Ok(store) => store
            .put(&name, &sample_record("r2"), Precondition::Match(v1))
            .await
            .unwrap_err(),
    };
    assert!(
        matches!(
            err,
            StoreError::Denied(_)
                | StoreError::Unavailable {
                    retryable: false,
                    ..
                }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}
