//! File-system helpers: safe file names, the directory lock, atomic replacement.

use nsauth_store::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Component, Path};
use std::time::{Duration, Instant};

/// How long a writer waits for another writer's lock before reporting "busy".
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest file name most file systems accept, in bytes.
const NAME_MAX: usize = 255;

/// The file name holding profile `name`, or why there is none. Profile names are validated
/// by `ProfileName` already; this refuses anything that could leave the directory anyway.
pub(crate) fn record_file_name(name: &str) -> Result<String, String> {
    let file = format!("{name}.json");
    let mut parts = Path::new(&file).components();
    let single = matches!((parts.next(), parts.next()), (Some(Component::Normal(p)), None) if p == file.as_str());
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) || !single {
        return Err(format!(
            "profile name {name:?} cannot be used as a file name"
        ));
    }
    if file.len() > NAME_MAX {
        return Err(format!(
            "profile name {name:?} is {} bytes, too long for a file name here; use a shorter name or the sqlite store",
            name.len()
        ));
    }
    Ok(file)
}

/// The profile name stored in directory entry `file`, if it is a record file.
pub(crate) fn profile_of(file: &str) -> Option<&str> {
    file.strip_suffix(".json")
        .filter(|stem| !stem.is_empty() && !stem.starts_with('.'))
}

/// Creates a file for writing with mode 0600.
fn open_private(path: &Path, create_new: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true);
    if create_new {
        o.create_new(true);
    } else {
        o.create(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Maps a file-system failure while doing `what` on `path`.
pub(crate) fn io_error(err: std::io::Error, what: &str, path: &Path) -> StoreError {
    let shown = path.display();
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => {
            StoreError::Denied(format!("cannot {what} {shown}: permission denied; check that it and its directory belong to you"))
        }
        std::io::ErrorKind::ReadOnlyFilesystem => {
            StoreError::Denied(format!("cannot {what} {shown}: the file system is read-only; choose another --store"))
        }
        _ => StoreError::Unavailable { message: format!("cannot {what} {shown}: {err}"), retryable: false },
    }
}

/// An exclusive advisory lock on `DIR/.lock`, held until dropped. Every writer in every
/// process takes it before reading the version it checks.
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        let path = dir.join(".lock");
        let file =
            open_private(&path, false).map_err(|e| io_error(e, "open the lock file", &path))?;
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(DirLock { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::Unavailable {
                        message: format!(
                            "file store {} is locked by another writer (waited 10 s); try again",
                            dir.display()
                        ),
                        retryable: true,
                    })
                }
                Err(TryLockError::Error(e)) => return Err(io_error(e, "lock", &path)),
            }
        }
    }
}

/// Replaces `dir/file` with `bytes` atomically: temporary file (0600), fsync, rename, fsync
/// of the directory. The caller holds the [`DirLock`].
pub(crate) fn replace(dir: &Path, file: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let target = dir.join(file);
    let written = open_private(&tmp, true).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &target)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(e, "write", &target));
    }
    sync_dir(dir)
}

/// Removes `dir/file` durably. The caller holds the [`DirLock`].
pub(crate) fn remove(dir: &Path, file: &str) -> Result<(), StoreError> {
    let target = dir.join(file);
    std::fs::remove_file(&target).map_err(|e| io_error(e, "remove", &target))?;
    sync_dir(dir)
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(e, "sync the directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_directory() {
        assert_eq!(record_file_name("prod").unwrap(), "prod.json");
        assert_eq!(
            record_file_name("ünïcødé-名前").unwrap(),
            "ünïcødé-名前.json"
        );
        for bad in [
            "",
            "..",
            ".",
            "../x",
            "a/b",
            "/etc/passwd",
            "a\\b",
            ".hidden",
            "a\0b",
            "x/../../y",
        ] {
            assert!(record_file_name(bad).is_err(), "accepted {bad:?}");
        }
        let e = record_file_name(&"𝔸".repeat(64)).unwrap_err();
        assert!(e.contains("too long"), "{e}");
    }

    #[test]
    fn only_record_files_are_profiles() {
        assert_eq!(profile_of("prod.json"), Some("prod"));
        for other in [
            ".lock",
            ".tmp-abc",
            ".json",
            ".hidden.json",
            "prod.json.bak",
            "prod",
        ] {
            assert_eq!(profile_of(other), None, "{other}");
        }
    }

    #[test]
    fn replace_is_private_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        replace(dir.path(), "a.json", b"one").unwrap();
        replace(dir.path(), "a.json", b"two").unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.json")).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("a.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
