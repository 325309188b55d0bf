//! Mapping SQLite and I/O failures to the store error kinds a caller can act on.

use nsauth_store::StoreError;
use rusqlite::ErrorCode;
use std::path::Path;

/// A damaged or foreign database file.
pub(crate) fn corrupt_file(path: &Path, why: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what: format!("in sqlite store {}", path.display()),
        why: why.into(),
    }
}

/// Maps a SQLite failure on the store at `path`. SQLite's messages name tables and columns,
/// never values, so they are safe to show.
pub(crate) fn sqlite(err: rusqlite::Error, path: &Path) -> StoreError {
    let shown = path.display();
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Unavailable {
            message: format!("sqlite store {shown} is locked by another process (waited 5 s); try again"),
            retryable: true,
        },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            corrupt_file(path, format!("the file is damaged or not a SQLite database ({err}); restore it from a backup or move it away"))
        }
        Some(ErrorCode::ReadOnly) => StoreError::Denied(format!(
            "sqlite store {shown} is read-only; make the file and its directory writable by you, or choose another --store"
        )),
        Some(ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => StoreError::Denied(format!(
            "cannot open sqlite store {shown} ({err}); check that the file and its directory exist and belong to you"
        )),
        Some(ErrorCode::DiskFull) => StoreError::Unavailable {
            message: format!("the disk holding sqlite store {shown} is full; free some space and try again"),
            retryable: false,
        },
        Some(ErrorCode::SystemIoFailure) => StoreError::Unavailable {
            message: format!("I/O error on sqlite store {shown} ({err}); check the disk and the file system"),
            retryable: false,
        },
        _ => StoreError::Backend { store: "sqlite", source: Box::new(err) },
    }
}

/// Maps a file-system failure while doing `what` (e.g. "create the directory") on `path`.
pub(crate) fn io(err: std::io::Error, what: &str, path: &Path) -> StoreError {
    let shown = path.display();
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => StoreError::Denied(format!(
            "cannot {what} {shown}: permission denied; check that it belongs to you"
        )),
        std::io::ErrorKind::ReadOnlyFilesystem => StoreError::Denied(format!(
            "cannot {what} {shown}: the file system is read-only; choose another --store"
        )),
        _ => StoreError::Unavailable {
            message: format!("cannot {what} {shown}: {err}"),
            retryable: false,
        },
    }
}
