//! The recovery journal: a refreshed token set that could not be written to the store is
//! kept here, sealed like the local stores and mode 0600, and written to the store first
//! thing on the next run — so a public client's rotated (single-use) refresh token is never
//! dropped, even when the store fails in the middle of a refresh.

use crate::profile::ProfileName;
use crate::seal::{create_private_dir, StoreKey};
use crate::store::StoreError;
use crate::token::TokenSet;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Environment variable naming the journal directory.
pub const JOURNAL_DIR_ENV: &str = "NSAUTH_JOURNAL_DIR";

/// A directory of pending recoveries, one sealed file per (store, profile).
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    key: OnceLock<Result<StoreKey, String>>,
    key_file: Option<PathBuf>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    store: String,
    profile: ProfileName,
    tokens: TokenSet,
}

impl Journal {
    /// A journal in `dir`; the key is resolved like the local stores' (`NSAUTH_STORE_KEY`, or
    /// `key_file`, or the default key file), only when an entry is read or written.
    pub fn new(dir: PathBuf, key_file: Option<PathBuf>) -> Self {
        Self {
            dir,
            key: OnceLock::new(),
            key_file,
        }
    }

    /// `$NSAUTH_JOURNAL_DIR`, else `$XDG_STATE_HOME/nsauth/journal` (`~/.local/state/...`).
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(JOURNAL_DIR_ENV).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
        Some(base.join("nsauth").join("journal"))
    }

    /// The journal at the default place, if there is one.
    pub fn open_default() -> Option<Self> {
        Self::default_dir().map(|d| Self::new(d, None))
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key(&self) -> Result<&StoreKey, StoreError> {
        self.key
            .get_or_init(|| StoreKey::resolve(self.key_file.as_deref()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| StoreError::Unavailable {
                message: format!("recovery journal key: {e}"),
                retryable: false,
            })
    }

    fn path(&self, store: &str, name: &ProfileName) -> PathBuf {
        let mut h = sha2::Sha256::new();
        h.update(store.as_bytes());
        h.update([0]);
        h.update(name.as_str().as_bytes());
        self.dir
            .join(format!("{}.journal", hex::encode(&h.finalize()[..12])))
    }

    fn aad_name(store: &str, name: &ProfileName) -> ProfileName {
        // The seal binds to a profile name; bind to the store too through a derived name.
        let mut h = sha2::Sha256::new();
        h.update(store.as_bytes());
        h.update([0]);
        h.update(name.as_str().as_bytes());
        ProfileName::parse(&format!("j{}", hex::encode(&h.finalize()[..16])))
            .expect("hex is a valid name")
    }

    /// `true` when a recovery is pending for this store and profile (one `stat`, no key).
    pub fn has(&self, store: &str, name: &ProfileName) -> bool {
        self.path(store, name).exists()
    }

    /// Keeps `tokens` for a later write to `store`. Atomic (temp file, fsync, rename), 0600.
    pub fn save(
        &self,
        store: &str,
        name: &ProfileName,
        tokens: &TokenSet,
    ) -> Result<PathBuf, StoreError> {
        let io = |what: &str, e: std::io::Error| StoreError::Unavailable {
            message: format!(
                "cannot {what} the recovery journal in {}: {e}",
                self.dir.display()
            ),
            retryable: false,
        };
        create_private_dir(&self.dir).map_err(|e| io("create", e))?;
        let entry = Entry {
            store: store.to_owned(),
            profile: name.clone(),
            tokens: tokens.clone(),
        };
        let mut json =
            zeroize::Zeroizing::new(serde_json::to_vec(&entry).expect("entries serialise"));
        let sealed = self.key()?.seal(&Self::aad_name(store, name), &json);
        use zeroize::Zeroize;
        json.zeroize();
        let path = self.path(store, name);
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        crate::seal::write_new_private(&tmp, sealed.as_bytes()).map_err(|e| io("write", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io("write", e)
        })?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(path)
    }

    /// Reads a pending recovery. `Ok(None)` when there is none.
    pub fn load(&self, store: &str, name: &ProfileName) -> Result<Option<TokenSet>, StoreError> {
        let path = self.path(store, name);
        let sealed = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::Unavailable {
                    message: format!("cannot read the recovery journal {}: {e}", path.display()),
                    retryable: false,
                })
            }
        };
        let json =
            zeroize::Zeroizing::new(self.key()?.open(&Self::aad_name(store, name), &sealed)?);
        let entry: Entry = serde_json::from_slice(&json).map_err(|_| StoreError::Corrupt {
            what: format!("recovery journal {}", path.display()),
            why: "not a journal entry".into(),
        })?;
        if entry.store != store || &entry.profile != name {
            return Err(StoreError::Corrupt {
                what: format!("recovery journal {}", path.display()),
                why: "it belongs to another store or profile".into(),
            });
        }
        Ok(Some(entry.tokens))
    }

    /// Drops a recovery once the store holds it.
    pub fn remove(&self, store: &str, name: &ProfileName) {
        let _ = std::fs::remove_file(self.path(store, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{AccessToken, RefreshToken};

    #[test]
    fn save_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key");
        let j = Journal::new(dir.path().join("journal"), Some(key_file));
        let name = ProfileName::parse("prod").unwrap();
        let now = time::OffsetDateTime::now_utc();
        let t = TokenSet {
            access_token: AccessToken::new("AT-secret"),
            access_expires_at: now,
            refresh_token: Some(RefreshToken::new("RT-secret")),
            refresh_expires_at: None,
            obtained_at: now,
        };
        assert!(!j.has("sqlite:///x", &name));
        let path = j.save("sqlite:///x", &name, &t).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(9).any(|w| w == b"RT-secret"),
            "journal must be sealed"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(j.has("sqlite:///x", &name));
        assert!(!j.has("sqlite:///y", &name), "entries are per store");
        assert_eq!(j.load("sqlite:///x", &name).unwrap().unwrap(), t);
        j.remove("sqlite:///x", &name);
        assert!(j.load("sqlite:///x", &name).unwrap().is_none());
    }
}
