//! Files of share bundles and keys: bounded reads, and private, create-only writes.

use crate::error::Error;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Reads at most `limit` bytes of a file, refusing larger ones.
pub fn read_limited(path: &Path, limit: usize, what: &str) -> Result<Vec<u8>, Error> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::Invalid(format!("cannot read {what} {}: {e}", path.display())))?;
    let mut buf = Vec::new();
    f.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::Invalid(format!("cannot read {what} {}: {e}", path.display())))?;
    if buf.len() > limit {
        return Err(Error::Invalid(format!(
            "{} is larger than {limit} bytes, the limit for {what}s",
            path.display()
        )));
    }
    Ok(buf)
}

/// A bundle written to a temporary file (mode 0600) beside its destination, not yet
/// visible under its final name. Dropping it removes the temporary file.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
}

impl Staged {
    /// Writes `bytes` to a temporary file beside `path`; fails if `path` already exists.
    pub fn write(path: &Path, bytes: &[u8]) -> Result<Self, Error> {
        if path.symlink_metadata().is_ok() {
            return Err(exists(path));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let file_name = path
            .file_name()
            .ok_or_else(|| Error::Invalid(format!("{} names no file", path.display())))?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            file_name.to_string_lossy(),
            uuid::Uuid::new_v4().simple()
        ));
        crate::seal::write_new_private(&tmp, bytes)
            .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", path.display())))?;
        Ok(Staged {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Puts the file in place under its final name, never replacing an existing file:
    /// a hard link fails if the name exists (a rename after a last check where the file
    /// system has no hard links).
    pub fn publish(self) -> Result<(), Error> {
        match std::fs::hard_link(&self.tmp, &self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists(&self.path)),
            Err(_) if self.path.symlink_metadata().is_err() => {
                std::fs::rename(&self.tmp, &self.path).map_err(|e| {
                    Error::Invalid(format!("cannot write {}: {e}", self.path.display()))
                })
            }
            Err(_) => Err(exists(&self.path)),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

fn exists(path: &Path) -> Error {
    Error::Invalid(format!(
        "{} already exists; choose another file name (nothing was overwritten)",
        path.display()
    ))
}
