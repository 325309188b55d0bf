//! Unit tests of sealing and of the key file: binding, permissions, racing first runs.
use super::*;

#[test]
fn round_trip_and_binding() {
    let k = StoreKey::generate();
    let a = ProfileName::parse("a").unwrap();
    let b = ProfileName::parse("b").unwrap();
    let s = k.seal(&a, b"top secret");
    assert!(!s.contains("top secret"));
    assert_eq!(k.open(&a, &s).unwrap(), b"top secret");
    assert!(matches!(k.open(&b, &s), Err(StoreError::Corrupt { .. })));
    let other = StoreKey::generate();
    let err = other.open(&a, &s).unwrap_err().to_string();
    assert!(err.contains("store key"), "{err}");
}

#[test]
fn key_file_is_created_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/store.key");
    let k1 = StoreKey::load_or_create(&path).unwrap();
    let k2 = StoreKey::load_or_create(&path).unwrap();
    assert_eq!(k1.id(), k2.id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
}

#[test]
fn racing_first_runs_agree_on_one_complete_key() {
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nsauth/store.key");
        let barrier = std::sync::Barrier::new(12);
        let ids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..12)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        StoreKey::load_or_create(&path).map(|k| k.id())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap()
                        .unwrap_or_else(|e| panic!("round {round}: {e}"))
                })
                .collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: {ids:?}");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["store.key"], "round {round}: temporary files left");
    }
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.key");
    let k = StoreKey::load_or_create(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = StoreKey::load_or_create(&path).unwrap_err();
    assert!(matches!(err, StoreError::Denied(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("chmod 600") && msg.contains("644"), "{msg}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(StoreKey::load_or_create(&path).unwrap().id(), k.id());
    assert!(
        std::fs::read_to_string(&path).unwrap().len() > 40,
        "the key was not replaced"
    );
}

#[test]
fn an_empty_key_file_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.key");
    write_new_private(&path, b"").unwrap();
    let err = StoreKey::load_or_create(&path).unwrap_err().to_string();
    assert!(err.contains("empty") && err.contains("delete it"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"", "left as it was");
}

#[test]
fn the_key_source_is_file_unless_keyring_is_named() {
    for v in [None, Some(""), Some("file"), Some(" file ")] {
        assert_eq!(parse_key_source(v).unwrap(), KeySource::File, "{v:?}");
    }
    assert_eq!(
        parse_key_source(Some("keyring")).unwrap(),
        KeySource::Keyring
    );
    for v in ["Keyring", "keychain", "env", "file,keyring"] {
        let err = parse_key_source(Some(v)).unwrap_err();
        assert!(matches!(err, StoreError::Config(_)), "{v}: {err:?}");
        assert!(err.to_string().contains("file") && err.to_string().contains("keyring"));
    }
}

#[test]
fn the_keychain_and_a_named_key_file_together_are_a_configuration_error() {
    let err = StoreKey::from_keychain(Some(Path::new("/tmp/k"))).unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("/tmp/k") && msg.contains("choose one"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}

#[cfg(not(feature = "keyring"))]
#[test]
fn without_the_feature_the_keychain_says_how_to_fall_back() {
    let dir = tempfile::tempdir().unwrap();
    let err = keychain_key(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("keyring") && msg.contains("unset NSAUTH_STORE_KEY_SOURCE"),
        "{msg}"
    );
}
