//! The OS keychain as the store key's home (feature `keyring`, chosen with
//! `NSAUTH_STORE_KEY_SOURCE=keyring`): the Secret Service on Linux (gnome-keyring, KWallet,
//! KeePassXC; over zbus, no libdbus), the macOS Keychain, the Windows Credential Manager.
//!
//! One entry per key: service `nsauth`, account the path of the key file it stands in for
//! (`$XDG_CONFIG_HOME/nsauth/store.key`), so there is one key per user configuration
//! directory exactly as with the file, and a test's temporary `HOME` gets its own. The value
//! is the key in base64, as in the key file.
//!
//! First use creates a random key. A keychain has no create-if-absent, and on the Secret
//! Service a second writer would silently replace the first one's key — after the first had
//! sealed records with it. So creation runs under an exclusive lock on a file beside the key
//! file's place (`.store-key.lock`, 0600): inside it the entry is read again, written only
//! if still absent, then read back, and the key read back is the one used. Concurrent first
//! runs of one user on one machine therefore adopt one key; the lock does not reach other
//! machines sharing a keychain (none of the supported ones syncs Secret Service or
//! Credential Manager entries; an iCloud-synced macOS keychain item is not used).

use crate::seal::{create_private_dir, StoreKey};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use nsauth_store::StoreError;
use std::path::Path;
use zeroize::Zeroize;

/// The keychain service name of nsauth's entries.
pub const SERVICE: &str = "nsauth";

const FALLBACK: &str = "unset NSAUTH_STORE_KEY_SOURCE to use the key file, or set NSAUTH_STORE_KEY";

fn entry(account: &str) -> Result<keyring::Entry, StoreError> {
    keyring::Entry::new(SERVICE, account).map_err(|e| unavailable(account, &e))
}

/// One line, whatever the platform's message holds.
fn one_line(e: &keyring::Error) -> String {
    let s = e.to_string();
    let mut line: String = s
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    if line.is_empty() {
        line = "no reason given".into();
    }
    line
}

fn unavailable(account: &str, e: &keyring::Error) -> StoreError {
    StoreError::Unavailable {
        message: format!(
            "the OS keychain is unavailable for the store key (service {SERVICE}, account {account}): {}; {FALLBACK}",
            one_line(e)
        ),
        retryable: false,
    }
}

/// The key stored under `account`, `None` when there is no entry.
fn read(account: &str) -> Result<Option<StoreKey>, StoreError> {
    match entry(account)?.get_password() {
        Ok(mut s) => {
            let key = StoreKey::from_base64(&s).map_err(|why| StoreError::Corrupt {
                what: format!("keychain entry {SERVICE}/{account}"),
                why: format!("{why}; delete the entry only if no record was sealed with it"),
            });
            s.zeroize();
            key.map(Some)
        }
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(keyring::Error::Ambiguous(found)) => Err(StoreError::Unavailable {
            message: format!(
                "the OS keychain holds {} entries for service {SERVICE}, account {account}; keep the one whose key id matches your records and delete the others",
                found.len()
            ),
            retryable: false,
        }),
        Err(e) => Err(unavailable(account, &e)),
    }
}

/// The key under `account`, created (random) if absent; `lock_file` serialises creation
/// between processes (see the module documentation).
pub fn load_or_create(account: &str, lock_file: &Path) -> Result<StoreKey, StoreError> {
    if let Some(key) = read(account)? {
        return Ok(key);
    }
    let lock_error = |e: std::io::Error| StoreError::Unavailable {
        message: format!(
            "cannot lock {} to create the store key in the OS keychain: {e}; {FALLBACK}",
            lock_file.display()
        ),
        retryable: false,
    };
    if let Some(dir) = lock_file.parent() {
        create_private_dir(dir).map_err(lock_error)?;
    }
    let lock = open_lock(lock_file).map_err(lock_error)?;
    lock.lock().map_err(lock_error)?;
    // Another first run may have created it while we waited.
    if let Some(key) = read(account)? {
        return Ok(key);
    }
    let mut encoded = B64.encode(StoreKey::generate().bytes());
    let written = entry(account)?.set_password(&encoded);
    encoded.zeroize();
    written.map_err(|e| unavailable(account, &e))?;
    // Use what the keychain holds now, not what we meant to write.
    let stored = read(account)?.ok_or_else(|| StoreError::Unavailable {
        message: format!(
            "the OS keychain did not keep the new store key (service {SERVICE}, account {account}); {FALLBACK}"
        ),
        retryable: false,
    })?;
    drop(lock);
    Ok(stored)
}

/// Deletes the entry under `account` (absent is fine). Records sealed with its key can no
/// longer be opened.
pub fn delete(account: &str) -> Result<(), StoreError> {
    match entry(account)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(unavailable(account, &e)),
    }
}

fn open_lock(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}
