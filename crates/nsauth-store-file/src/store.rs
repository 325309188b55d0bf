//! [`FileStore`]: the [`TokenStore`] implementation.

use crate::envelope::Envelope;
use crate::fsutil::{self, DirLock};
use async_trait::async_trait;
use nsauth_store::{Capabilities, Precondition, Record, Version, Versioned};
use nsauth_store::{ProfileName, StoreError, TokenStore};
use nsauth_store_local::seal::{create_private_dir, StoreKey};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A token store keeping one encrypted file per profile in a directory. Handles in one or
/// many processes coordinate through an advisory lock on `DIR/.lock`.
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    key: StoreKey,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.inner.dir)
            .field("key", &self.inner.key)
            .finish()
    }
}

impl FileStore {
    /// Opens the store in `dir`, creating it (0700) if needed.
    pub fn open(dir: &Path, key: StoreKey) -> Result<FileStore, StoreError> {
        let not_a_dir = || dir.exists() && !dir.is_dir();
        if !not_a_dir() {
            create_private_dir(dir)
                .map_err(|e| fsutil::io_error(e, "create the directory", dir))?;
        }
        if not_a_dir() {
            return Err(StoreError::Config(format!(
                "file store {} is not a directory; choose a directory for file://DIR",
                dir.display()
            )));
        }
        Ok(FileStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                key,
            }),
        })
    }

    /// Opens the store named by `file://DIR[?key-file=PATH]`, with the key from
    /// [`StoreKey::resolve`].
    pub fn from_uri(uri: &str) -> Result<FileStore, StoreError> {
        let parsed = nsauth_store_local::local_uri::LocalStoreUri::parse(
            uri,
            "file",
            "file://DIR",
            "file:///home/me/.nsauth-profiles or file://profiles?key-file=store.key",
        )
        .map_err(StoreError::Config)?;
        let key = StoreKey::resolve(parsed.key_file.as_deref())?;
        Self::open(&parsed.path, key)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs `f` in the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Backend {
                store: "file",
                source: Box::new(e),
            }),
        }
    }
}

impl Inner {
    fn file_name(&self, name: &ProfileName) -> Result<String, StoreError> {
        fsutil::record_file_name(name.as_str()).map_err(|why| {
            StoreError::Denied(format!("{why} in file store {}", self.dir.display()))
        })
    }

    /// Reads and parses the envelope of `file`; `None` when it does not exist.
    fn read(&self, file: &str) -> Result<Option<Envelope>, StoreError> {
        let path = self.dir.join(file);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fsutil::io_error(e, "read", &path)),
        };
        Envelope::parse(&bytes)
            .map(Some)
            .map_err(|why| StoreError::Corrupt {
                what: format!("file {}", path.display()),
                why,
            })
    }
}

#[async_trait]
impl TokenStore for FileStore {
    fn describe(&self) -> String {
        format!("file://{}", self.inner.dir.display())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::LOCAL
    }

    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        let name = name.clone();
        self.run(move |inner| {
            // One read of one file (replaced only by rename) gives a consistent pair.
            let Some(env) = inner.read(&inner.file_name(&name)?)? else {
                return Ok(None);
            };
            let record = inner.key.open_record(&name, &env.sealed)?;
            Ok(Some(Versioned {
                record,
                version: Version(env.store_version()),
            }))
        })
        .await
    }

    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let sealed = self.inner.key.seal_record(name, record);
        let name = name.clone();
        self.run(move |inner| {
            let file = inner.file_name(&name)?;
            let _lock = DirLock::acquire(&inner.dir)?;
            let conflict = || StoreError::Conflict(name.to_string());
            let envelope = match (condition, inner.read(&file)?) {
                (Precondition::Create, None) => {
                    Envelope::new(Envelope::new_incarnation(), 1, sealed)
                }
                (Precondition::Create, Some(_)) | (Precondition::Match(_), None) => {
                    return Err(conflict())
                }
                (Precondition::Match(want), Some(current)) => {
                    if want.0 != current.store_version() {
                        return Err(conflict());
                    }
                    // Never overwrite a record this key cannot read (wrong key, damage,
                    // newer nsauth): the caller could not have read what it replaces.
                    inner.key.open_record(&name, &current.sealed)?;
                    // A file from before incarnations gets one now.
                    let incarnation = current
                        .incarnation
                        .unwrap_or_else(Envelope::new_incarnation);
                    Envelope::new(incarnation, current.version + 1, sealed)
                }
            };
            fsutil::replace(&inner.dir, &file, &envelope.to_bytes())?;
            Ok(Version(envelope.store_version()))
        })
        .await
    }

    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        let name = name.clone();
        let want = version.cloned();
        self.run(move |inner| {
            let file = inner.file_name(&name)?;
            let _lock = DirLock::acquire(&inner.dir)?;
            if let Some(want) = want {
                // A conditional delete needs a readable record; an unconditional one removes
                // even a damaged file (the way to clear it).
                let Some(current) = inner.read(&file)? else {
                    return Err(StoreError::NotFound(name.to_string()));
                };
                if want.0 != current.store_version() {
                    return Err(StoreError::Conflict(name.to_string()));
                }
                // As for put: a version is only meaningful for a record this key can read.
                inner.key.open_record(&name, &current.sealed)?;
            }
            fsutil::remove(&inner.dir, &file).map_err(|e| match e {
                StoreError::Unavailable { .. } if !inner.dir.join(&file).exists() => {
                    StoreError::NotFound(name.to_string())
                }
                e => e,
            })
        })
        .await
    }

    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.run(|inner| {
            let entries = std::fs::read_dir(&inner.dir).map_err(|e| fsutil::io_error(e, "list", &inner.dir))?;
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| fsutil::io_error(e, "list", &inner.dir))?;
                let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                let file = entry.file_name();
                let Some(stem) = file.to_str().and_then(fsutil::profile_of) else { continue };
                match ProfileName::parse(stem) {
                    Ok(n) if is_file => names.push(n),
                    _ => tracing::debug!(file = ?file, "ignoring a file that is not a profile record"),
                }
            }
            names.sort();
            Ok(names)
        })
        .await
    }
}
