//! The OS keychain as the store key's source, against a real keychain. Runs when
//! `NSAUTH_TEST_KEYRING=1` (`cargo xtask keyring-test` sets it and runs this file under a
//! private D-Bus session with gnome-keyring unlocked); skips otherwise, since a developer's
//! own keychain may prompt or be locked. Every entry made here has a random account and is
//! deleted at the end.
#![cfg(feature = "keyring")]

use nsauth_store::StoreError;
use nsauth_store_local::keychain;
use nsauth_store_local::seal::StoreKey;
use std::sync::{Arc, Barrier};

fn enabled() -> bool {
    let on = std::env::var("NSAUTH_TEST_KEYRING").as_deref() == Ok("1");
    if !on {
        eprintln!("skipped: set NSAUTH_TEST_KEYRING=1 (cargo xtask keyring-test) to run against a real keychain");
    }
    on
}

/// A fresh account, deleted when dropped.
struct Account(String);

impl Account {
    fn new() -> Self {
        Self(format!("nsauth-test-{}", uuid::Uuid::new_v4().simple()))
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = keychain::delete(&self.0);
    }
}

#[test]
fn first_use_creates_a_key_that_later_uses_get_back() {
    if !enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join(".store-key.lock");
    let account = Account::new();
    let first = keychain::load_or_create(&account.0, &lock).unwrap();
    let again = keychain::load_or_create(&account.0, &lock).unwrap();
    assert_eq!(first.id(), again.id());
    // A record sealed on the first run opens on the second.
    let name = nsauth_store::ProfileName::parse("prod").unwrap();
    let sealed = first.seal(&name, b"refresh token");
    assert_eq!(again.open(&name, &sealed).unwrap(), b"refresh token");
    // The key is in the keychain, not in a file beside the lock.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, [".store-key.lock"], "{files:?}");

    keychain::delete(&account.0).unwrap();
    let fresh = keychain::load_or_create(&account.0, &lock).unwrap();
    assert_ne!(
        fresh.id(),
        first.id(),
        "a deleted entry is replaced by a new key"
    );
}

#[test]
fn sixteen_concurrent_first_runs_adopt_one_key() {
    if !enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join(".store-key.lock");
    let account = Arc::new(Account::new());
    let start = Arc::new(Barrier::new(16));
    let runs: Vec<_> = (0..16)
        .map(|_| {
            let (account, start, lock) = (account.clone(), start.clone(), lock.clone());
            std::thread::spawn(move || {
                start.wait();
                keychain::load_or_create(&account.0, &lock).map(|k| k.id())
            })
        })
        .collect();
    let ids: Vec<String> = runs
        .into_iter()
        .map(|r| r.join().unwrap().unwrap())
        .collect();
    let stored = keychain::load_or_create(&account.0, &lock).unwrap().id();
    assert!(
        ids.iter().all(|id| *id == stored),
        "first runs used different keys: {ids:?}, the keychain holds {stored}"
    );
}

#[test]
fn resolve_reads_the_keychain_when_chosen_and_refuses_a_key_file_beside_it() {
    if !enabled() {
        return;
    }
    // The only test here that touches the environment.
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_CONFIG_HOME", home.path());
    std::env::remove_var("NSAUTH_STORE_KEY");
    std::env::remove_var("NSAUTH_STORE_KEY_FILE");
    std::env::set_var("NSAUTH_STORE_KEY_SOURCE", "keyring");
    let account = Account(
        home.path()
            .join("nsauth/store.key")
            .to_string_lossy()
            .into_owned(),
    );
    let key = StoreKey::resolve(None).unwrap();
    assert_eq!(StoreKey::resolve(None).unwrap().id(), key.id());
    assert!(
        !home.path().join("nsauth/store.key").exists(),
        "no key file is written when the keychain is the source"
    );
    let from_entry = keychain::load_or_create(&account.0, &home.path().join("l")).unwrap();
    assert_eq!(
        from_entry.id(),
        key.id(),
        "the entry is named after the key file"
    );

    std::env::set_var("NSAUTH_STORE_KEY_FILE", home.path().join("k"));
    let err = StoreKey::resolve(None).unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    std::env::remove_var("NSAUTH_STORE_KEY_FILE");
    std::env::remove_var("NSAUTH_STORE_KEY_SOURCE");
}

/// In a child process (see below): waits for the go file, takes the key, prints its id.
#[test]
fn child_first_run() {
    let (Ok(account), Ok(dir)) = (
        std::env::var("NSAUTH_TEST_KEYRING_ACCOUNT"),
        std::env::var("NSAUTH_TEST_KEYRING_DIR"),
    ) else {
        return; // not a child
    };
    let dir = std::path::PathBuf::from(dir);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !dir.join("go").exists() {
        assert!(std::time::Instant::now() < deadline, "never released");
        std::thread::yield_now();
    }
    let key = keychain::load_or_create(&account, &dir.join(".store-key.lock")).unwrap();
    println!("key-id={}", key.id());
}

#[test]
fn sixteen_concurrent_first_run_processes_adopt_one_key() {
    if !enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let account = Account::new();
    let children: Vec<_> = (0..16)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_first_run",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("NSAUTH_TEST_KEYRING_ACCOUNT", &account.0)
                .env("NSAUTH_TEST_KEYRING_DIR", dir.path())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(dir.path().join("go"), b"").unwrap();
    let ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "a first run failed");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            // libtest may print its own "test … " in front on the same line.
            let at = text.find("key-id=").expect("a first run printed no key id") + 7;
            text[at..].chars().take(8).collect::<String>()
        })
        .collect();
    let stored = keychain::load_or_create(&account.0, &dir.path().join(".store-key.lock"))
        .unwrap()
        .id();
    assert!(
        ids.iter().all(|id| *id == stored),
        "first-run processes used different keys: {ids:?}, the keychain holds {stored}"
    );
}
