//! What a user would see on disk: private files, no plaintext secrets, names that cannot
//! leave the directory, and damaged files reported and left byte-for-byte untouched.

use nsauth_conformance::{sample_record, unique_name};
use nsauth_store::{Precondition, Version};
use nsauth_store::{ProfileName, StoreError, TokenStore};
use nsauth_store_file::FileStore;
use nsauth_store_local::seal::StoreKey;
use std::path::Path;

fn assert_corrupt<T: std::fmt::Debug>(r: Result<T, StoreError>, needle: &str) {
    match r {
        Err(e @ StoreError::Corrupt { .. }) => assert!(e.to_string().contains(needle), "{e}"),
        other => panic!("expected Corrupt mentioning {needle:?}, got {other:?}"),
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(unix)]
#[tokio::test]
async fn files_and_directories_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/profiles");
    let store = FileStore::open(&dir, StoreKey::generate()).unwrap();
    let name = unique_name("p");
    let v1 = store
        .put(&name, &sample_record("p"), Precondition::Create)
        .await
        .unwrap();
    store
        .put(&name, &sample_record("p2"), Precondition::Match(v1))
        .await
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&tmp.path().join("a")), 0o700);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(format!("{name}.json"))), 0o600);
    assert_eq!(mode(&dir.join(".lock")), 0o600);
    assert_eq!(
        entries(&dir),
        [".lock".to_string(), format!("{name}.json")],
        "no temporary file is left behind"
    );
}

#[tokio::test]
async fn no_secret_reaches_the_disk_in_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path(), StoreKey::generate()).unwrap();
    let name = unique_name("plain");
    let record = sample_record("plain");
    store
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();
    let bytes = std::fs::read(tmp.path().join(format!("{name}.json"))).unwrap();
    let tokens = record.tokens.as_ref().unwrap();
    let refresh = tokens.refresh_token.as_ref().unwrap().secret();
    for s in [
        refresh,
        &refresh[refresh.len() / 2..refresh.len() / 2 + 32],
        tokens.access_token.secret(),
        record.pending[0].verifier.secret(),
        &record.profile.client_id,
    ] {
        assert!(
            !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
            "a secret is on disk in plaintext"
        );
    }
    assert!(bytes
        .starts_with(br#"{"format":"nsauth-file-record","version":1,"sealed":"nsauth-sealed-v1:"#));
}

#[tokio::test]
async fn a_damaged_file_is_corrupt_and_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path(), StoreKey::generate()).unwrap();
    let name = unique_name("damaged");
    let path = tmp.path().join(format!("{name}.json"));
    for damage in [
        &b"this is not json"[..],
        br#"{"format":"nsauth-file-record","version":1,"sealed":"nsauth-sealed-v1:garbage"}"#,
        br#"{"format":"nsauth-file-record","version":1}"#,
        b"",
    ] {
        std::fs::write(&path, damage).unwrap();
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
        let create = store
            .put(&name, &sample_record("x"), Precondition::Create)
            .await;
        assert!(
            matches!(
                create,
                Err(StoreError::Conflict(_) | StoreError::Corrupt { .. })
            ),
            "{create:?}"
        );
        assert_corrupt(
            store.delete(&name, Some(&Version("1".into()))).await,
            "unreadable",
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            damage,
            "the damaged file must be left untouched"
        );
        assert_eq!(
            store.list().await.unwrap(),
            std::slice::from_ref(&name),
            "a damaged record is still listed"
        );
    }
    // An unconditional delete is how a user clears it.
    store.delete(&name, None).await.unwrap();
    assert!(!path.exists());
}

#[tokio::test]
async fn a_record_under_another_key_is_corrupt_and_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let right = StoreKey::generate();
    let name = unique_name("key");
    let record = sample_record("key");
    let v1 = FileStore::open(tmp.path(), right.clone())
        .unwrap()
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();
    let path = tmp.path().join(format!("{name}.json"));
    let before = std::fs::read(&path).unwrap();

    let wrong = FileStore::open(tmp.path(), StoreKey::generate()).unwrap();
    assert_corrupt(wrong.load(&name).await, "store key");
    assert_corrupt(
        wrong
            .put(&name, &sample_record("x"), Precondition::Match(v1.clone()))
            .await,
        "store key",
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let back = FileStore::open(tmp.path(), right)
        .unwrap()
        .load(&name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((back.record, back.version), (record, v1));
}

#[tokio::test]
async fn a_record_file_copied_under_another_name_does_not_open() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path(), StoreKey::generate()).unwrap();
    let (a, b) = (unique_name("a"), unique_name("b"));
    store
        .put(&a, &sample_record("a"), Precondition::Create)
        .await
        .unwrap();
    std::fs::copy(
        tmp.path().join(format!("{a}.json")),
        tmp.path().join(format!("{b}.json")),
    )
    .unwrap();
    assert_corrupt(store.load(&b).await, "sealed for another profile");
}

#[tokio::test]
async fn names_cannot_escape_and_stray_files_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("profiles");
    let store = FileStore::open(&dir, StoreKey::generate()).unwrap();
    for bad in ["../evil", "..", "/etc/passwd", "a/b", ".hidden", "a\\b"] {
        assert!(
            ProfileName::parse(bad).is_err(),
            "{bad:?} must not be a profile name"
        );
    }
    // Names that merely contain dots stay inside the directory.
    let dotted = ProfileName::parse("a..b").unwrap();
    store
        .put(&dotted, &sample_record("d"), Precondition::Create)
        .await
        .unwrap();
    assert!(dir.join("a..b.json").is_file());
    assert_eq!(
        entries(tmp.path()),
        ["profiles"],
        "nothing is written outside the directory"
    );

    for stray in [
        ".hidden.json",
        "bad name.json",
        ".tmp-0123",
        "notes.txt",
        "prod.json.bak",
        ".json",
    ] {
        std::fs::write(dir.join(stray), b"{}").unwrap();
    }
    std::fs::create_dir(dir.join("sub.json")).unwrap();
    assert_eq!(store.list().await.unwrap(), std::slice::from_ref(&dotted));
    assert!(store.load(&dotted).await.unwrap().is_some());
}

#[tokio::test]
async fn from_uri_opens_with_a_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my profiles");
    let key = tmp.path().join("keys/store.key");
    let uri = format!(
        "file://{}?key-file={}",
        dir.display().to_string().replace(' ', "%20"),
        key.display()
    );
    let store = FileStore::from_uri(&uri).unwrap();
    assert_eq!(store.describe(), format!("file://{}", dir.display()));
    assert_eq!(store.dir(), dir);
    let name = unique_name("uri");
    store
        .put(&name, &sample_record("u"), Precondition::Create)
        .await
        .unwrap();
    if std::env::var_os(nsauth_store_local::seal::STORE_KEY_ENV).is_none() {
        assert!(key.exists(), "the key file is created on first use");
        assert!(FileStore::from_uri(&uri)
            .unwrap()
            .load(&name)
            .await
            .unwrap()
            .is_some());
    }
    for bad in [
        "file://",
        "file:///tmp/profiles?bogus=1",
        "file:///tmp/profiles?key-file=",
        "sqlite:///tmp/profiles",
    ] {
        match FileStore::from_uri(bad) {
            Err(e @ StoreError::Config(_)) => {
                assert!(e.to_string().contains("expected file://DIR"), "{bad}: {e}")
            }
            other => panic!("{bad}: expected a configuration error (exit 2), got {other:?}"),
        }
    }
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    match FileStore::open(&file, StoreKey::generate()) {
        Err(e @ StoreError::Config(_)) => {
            assert!(e.to_string().contains("not a directory"), "{e}")
        }
        other => panic!("a file is not a store directory: expected Config, got {other:?}"),
    }
}

/// A record file written before incarnations (`{"format":…,"version":3,"sealed":…}`) loads
/// at version "3", a writer holding "3" wins, and from then on the file has an incarnation:
/// "3" never matches again, not even after a delete and a re-create.
#[tokio::test]
async fn an_old_file_without_incarnation_stays_readable_and_writable() {
    let tmp = tempfile::tempdir().unwrap();
    let key = StoreKey::generate();
    let name = unique_name("old");
    let old = sample_record("old");
    let sealed = key.seal_record(&name, &old);
    std::fs::write(
        tmp.path().join(format!("{name}.json")),
        format!(r#"{{"format":"nsauth-file-record","version":3,"sealed":"{sealed}"}}"#),
    )
    .unwrap();
    let store = FileStore::open(tmp.path(), key).unwrap();
    let got = store.load(&name).await.unwrap().expect("the old record");
    assert_eq!((got.version.0.as_str(), &got.record), ("3", &old));

    let newer = sample_record("newer");
    let v4 = store
        .put(&name, &newer, Precondition::Match(got.version.clone()))
        .await
        .unwrap();
    assert!(v4.0.ends_with(".4") && v4.0.len() > 10, "{v4}");
    let stale = store
        .put(
            &name,
            &sample_record("stale"),
            Precondition::Match(got.version.clone()),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");

    store.delete(&name, Some(&v4)).await.unwrap();
    let again = store
        .put(&name, &sample_record("again"), Precondition::Create)
        .await
        .unwrap();
    assert!(again != v4 && again != got.version, "{again}");
    for old in [&got.version, &v4] {
        let stale = store
            .put(
                &name,
                &sample_record("stale"),
                Precondition::Match(old.clone()),
            )
            .await;
        assert!(
            matches!(stale, Err(StoreError::Conflict(_))),
            "{old}: {stale:?}"
        );
    }
}
