//! Same-machine rendezvous: processes of one machine that need the same refresh wait on a
//! local file lock instead of polling the store.
//!
//! Decisions, and why:
//! - Before taking the store's refresh lease, an operation takes an exclusive lock on a file
//!   named after the store and profile (`locks/` in the journal's directory). It keeps it
//!   until the tokens are saved or the failure is noted, and drops it then.
//! - An operation that finds the file locked knows another process of this machine is taking
//!   or holds the lease. It does not race for the store's lease (on Secrets Manager a lost
//!   race costs four calls) and does not poll the store: it blocks on the lock (on a thread,
//!   woken by the kernel) until it is released, then reads the store again. In a
//!   storm of N processes on one machine, each waiter reads the store twice (before and after)
//!   instead of at every pause, which on a store that N concurrent readers already keep busy
//!   (moto: ~150-250 reads/s here) is what lets the holder's own calls through, and it sees the
//!   token right after it is saved.
//! - A caller that finds the lock held when it starts waits for it (up to
//!   [`BEFORE_FIRST_READ`]) before its first store read: in a storm most processes start after
//!   the winner took the lock, and then read the store once instead of twice.
//! - The store's lease stays the truth. The lock is an optimisation: without a journal
//!   directory, or when the file cannot be opened or locked, everything goes through the
//!   store as before. A process that dies drops its lock with its file descriptors; one that
//!   hangs holding it is bypassed once its lease is judged dead, or after the lease time.

use crate::profile::ProfileName;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a caller that finds a refresh running on this machine waits for it before its
/// first store read.
pub(super) const BEFORE_FIRST_READ: Duration = Duration::from_secs(3);

/// The lock file of profile `name` in `store`, under `dir`.
pub(super) fn lock_path(dir: &Path, store: &str, name: &ProfileName) -> PathBuf {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(store.as_bytes());
    h.update([0]);
    h.update(name.as_str().as_bytes());
    dir.join("locks")
        .join(format!("{}.lock", hex::encode(&h.finalize()[..16])))
}

fn open(path: &Path) -> Option<File> {
    if let Some(parent) = path.parent() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(parent).ok()?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .ok()
}

/// An exclusive hold on a lock file; dropping it releases the lock.
#[derive(Debug)]
pub(super) struct Held {
    _file: File,
}

/// What trying the lock found.
#[derive(Debug)]
pub(super) enum Try {
    /// This operation holds it now.
    Taken(Held),
    /// Another operation of this machine holds it.
    Busy,
    /// No local locking here (no file, no lock support): go through the store alone.
    Unsupported,
}

/// Tries to take the lock at `path` without blocking.
pub(super) fn try_take(path: &Path) -> Try {
    let Some(file) = open(path) else {
        return Try::Unsupported;
    };
    match file.try_lock() {
        Ok(()) => Try::Taken(Held { _file: file }),
        Err(TryLockError::WouldBlock) => Try::Busy,
        Err(TryLockError::Error(_)) => Try::Unsupported,
    }
}

/// `true` while another operation holds the lock at `path` exclusively.
fn is_held(file: &File) -> bool {
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

/// What waiting on the lock found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Waited {
    /// Nobody held it (or local locking is unavailable): nothing was waited for.
    Free,
    /// Another operation held it and released it.
    Released,
    /// Another operation still holds it.
    Held,
}

/// Waits while another operation holds the lock at `path`, at most `most` and never past
/// `limit`. The wait is a blocking shared lock on a thread of its own, so the kernel wakes
/// the waiter when the holder releases: no polling, and no CPU spent by a hundred waiters.
/// After a timeout that thread stays blocked until the release or the end of the process,
/// which is harmless (it only takes and drops a shared lock).
pub(super) async fn wait_while_held(path: &Path, most: Duration, limit: Instant) -> Waited {
    let Some(file) = open(path) else {
        return Waited::Free;
    };
    if !is_held(&file) {
        return Waited::Free;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("nsauth-lock-wait".into())
        .spawn(move || {
            if file.lock_shared().is_ok() {
                let _ = file.unlock();
            }
            let _ = tx.send(());
        });
    if spawned.is_err() {
        // No thread: the caller goes through the store.
        return Waited::Free;
    }
    let until = limit.min(Instant::now() + most);
    match tokio::time::timeout_at(until.into(), rx).await {
        Ok(_) => Waited::Released,
        Err(_) => Waited::Held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_waiters_see_the_release() {
        let dir = tempfile::tempdir().unwrap();
        let name = ProfileName::parse("p").unwrap();
        let path = lock_path(dir.path(), "local:///x", &name);
        assert_ne!(path, lock_path(dir.path(), "local:///y", &name));
        let Try::Taken(held) = try_take(&path) else {
            panic!("the first operation takes the lock")
        };
        assert!(matches!(try_take(&path), Try::Busy));
        let far = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            wait_while_held(&path, Duration::from_millis(50), far).await,
            Waited::Held
        );
        // The waiter finds the lock held (polled first), then the holder lets go.
        let release = async {
            tokio::task::yield_now().await;
            drop(held);
        };
        let (seen, ()) = tokio::join!(wait_while_held(&path, Duration::from_secs(5), far), release);
        assert_eq!(seen, Waited::Released, "the release is seen");
        assert_eq!(
            wait_while_held(&path, Duration::from_secs(5), far).await,
            Waited::Free
        );
        assert!(matches!(try_take(&path), Try::Taken(_)));
    }
}
