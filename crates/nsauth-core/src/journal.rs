//! The recovery journal: refreshed tokens on their way to the store.
//!
//! NetSuite rotates a public client's refresh token on every refresh and the old one dies at
//! once, so a refreshed token set must never exist only in memory. The broker writes it here
//! first (sealed like the local stores, mode 0600, atomic rename), then to the store, and
//! removes it once the store holds it. If the store fails or the process dies in between,
//! the entry stays and is written to the store first thing on the next run.
//!
//! The journal is one directory per user, shared by every store and project, so an entry
//! says exactly where it belongs and whose tokens it holds:
//! - the store by its canonical identity (`describe()`, whose local paths are absolute, see
//!   `local_uri.rs`; remote stores include address, mount/prefix and region) and the profile;
//! - the grant: account, client ID, and the fingerprint of the refresh token it replaced;
//! - the holder of the refresh lease that obtained it, so that recovery can clear that lease.
//!
//! An entry is written into a record only when the record is still that grant's
//! predecessor ([`Entry::verdict`]); any other entry is moved to `kept/` and reported, never
//! applied. An entry that cannot be read (another key, damaged) is moved to `quarantine/`
//! and reported, never retried. Both stay listed by `nsauth status`.

use crate::profile::{GrantKind, ProfileName};
use crate::seal::{create_private_dir, StoreKey};
use crate::store::{Record, StoreError};
use crate::token::TokenSet;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Environment variable naming the journal directory.
pub const JOURNAL_DIR_ENV: &str = "NSAUTH_JOURNAL_DIR";

/// Subdirectory of entries that belong to no record as it is now (kept, never applied).
pub const KEPT_DIR: &str = "kept";
/// Subdirectory of entries that could not be read (moved aside, never retried).
pub const QUARANTINE_DIR: &str = "quarantine";

/// A directory of pending recoveries, one sealed file per kept token set.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    key: OnceLock<Result<StoreKey, String>>,
    key_file: Option<PathBuf>,
}

/// One kept token set, and the store, profile and grant it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The store's canonical identity (`TokenStore::describe`).
    pub store: String,
    /// The profile.
    pub profile: ProfileName,
    /// The NetSuite account of the grant (absent in entries of older versions).
    #[serde(default)]
    pub account: Option<String>,
    /// The client ID of the grant (absent in entries of older versions).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Fingerprint of the refresh token these tokens replaced (`None` for client credentials).
    #[serde(default)]
    pub replaced: Option<String>,
    /// The refresh lease holder that obtained these tokens.
    #[serde(default)]
    pub holder: Option<String>,
    /// The tokens.
    pub tokens: TokenSet,
}

/// What an entry may do to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The record still holds the refresh token these tokens replaced: write them.
    Successor,
    /// The record already holds these tokens: the entry is done.
    AlreadyStored,
    /// The record moved on (another refresh, a new login, revoked, moved away): keep aside.
    Superseded,
    /// The record is another grant (account or client ID differ, or unknown): keep aside.
    Foreign,
}

impl Entry {
    /// An entry for `tokens`, obtained under lease `holder` from `record` (the record as it
    /// was when the refresh started).
    pub fn new(
        store: String,
        name: &ProfileName,
        record: &Record,
        holder: &str,
        tokens: TokenSet,
    ) -> Self {
        Self {
            store,
            profile: name.clone(),
            account: Some(record.profile.account_id.as_str().to_owned()),
            client_id: Some(record.profile.client_id.clone()),
            replaced: record
                .tokens
                .as_ref()
                .and_then(|t| t.refresh_token.as_ref())
                .map(|r| r.fingerprint()),
            holder: Some(holder.to_owned()),
            tokens,
        }
    }

    /// Whether this entry may be written into `record`; see [`Verdict`].
    pub fn verdict(&self, record: &Record) -> Verdict {
        let p = &record.profile;
        if self.account.as_deref() != Some(p.account_id.as_str())
            || self.client_id.as_deref() != Some(p.client_id.as_str())
        {
            return Verdict::Foreign;
        }
        let current = record.tokens.as_ref();
        if current.is_some_and(|c| same_tokens(c, &self.tokens)) {
            return Verdict::AlreadyStored;
        }
        if record.moved.is_some() {
            return Verdict::Superseded;
        }
        let current_rt = current
            .and_then(|t| t.refresh_token.as_ref())
            .map(|r| r.fingerprint());
        let successor = match p.grant {
            // Client credentials rotate nothing; any stored set may be replaced by a newer one.
            GrantKind::ClientCredentials => {
                current.is_none_or(|c| c.obtained_at <= self.tokens.obtained_at)
            }
            GrantKind::AuthorizationCode => self.replaced.is_some() && current_rt == self.replaced,
        };
        if successor {
            Verdict::Successor
        } else {
            Verdict::Superseded
        }
    }
}

/// Same access and refresh token.
pub fn same_tokens(a: &TokenSet, b: &TokenSet) -> bool {
    a.access_token.secret() == b.access_token.secret()
        && a.refresh_token.as_ref().map(|r| r.secret())
            == b.refresh_token.as_ref().map(|r| r.secret())
}

/// The journal files of one store and profile, by state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Waiting to be written to the store.
    pub pending: Vec<PathBuf>,
    /// Kept aside: they belong to no record as it is now.
    pub kept: Vec<PathBuf>,
    /// Unreadable, moved aside.
    pub quarantined: Vec<PathBuf>,
}

impl Listing {
    /// Nothing at all.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.kept.is_empty() && self.quarantined.is_empty()
    }
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
        Some(
            nsauth_store_local::paths::nsauth_dir(nsauth_store_local::paths::Base::State)?
                .join("journal"),
        )
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

    fn digest(store: &str, name: &ProfileName) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        h.update(store.as_bytes());
        h.update([0]);
        h.update(name.as_str().as_bytes());
        h.finalize().into()
    }

    /// File names of one store and profile start with this.
    fn prefix(store: &str, name: &ProfileName) -> String {
        hex::encode(&Self::digest(store, name)[..12])
    }

    fn aad_name(store: &str, name: &ProfileName) -> ProfileName {
        // The seal binds to a profile name; bind to the store too through a derived name.
        ProfileName::parse(&format!(
            "j{}",
            hex::encode(&Self::digest(store, name)[..16])
        ))
        .expect("hex is a valid name")
    }

    fn files_in(dir: &Path, prefix: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.starts_with(prefix) && n.ends_with(".journal")
            })
            .map(|e| e.path())
            .collect();
        out.sort();
        out
    }

    /// Entries waiting for this store and profile (a directory read, no key).
    pub fn pending(&self, store: &str, name: &ProfileName) -> Vec<PathBuf> {
        Self::files_in(&self.dir, &Self::prefix(store, name))
    }

    /// `true` when a recovery is pending for this store and profile.
    pub fn has(&self, store: &str, name: &ProfileName) -> bool {
        !self.pending(store, name).is_empty()
    }

    /// Pending, kept and quarantined entries of this store and profile.
    pub fn listing(&self, store: &str, name: &ProfileName) -> Listing {
        let prefix = Self::prefix(store, name);
        Listing {
            pending: Self::files_in(&self.dir, &prefix),
            kept: Self::files_in(&self.dir.join(KEPT_DIR), &prefix),
            quarantined: Self::files_in(&self.dir.join(QUARANTINE_DIR), &prefix),
        }
    }

    fn io(&self, what: &str, e: std::io::Error) -> StoreError {
        StoreError::Unavailable {
            message: format!(
                "cannot {what} the recovery journal in {}: {e}",
                self.dir.display()
            ),
            retryable: false,
        }
    }

    /// Keeps `entry` until [`remove`](Self::remove). Atomic (temp file, fsync, rename), 0600.
    pub fn save(&self, entry: &Entry) -> Result<PathBuf, StoreError> {
        create_private_dir(&self.dir).map_err(|e| self.io("create", e))?;
        let mut json =
            zeroize::Zeroizing::new(serde_json::to_vec(entry).expect("entries serialise"));
        let sealed = self
            .key()?
            .seal(&Self::aad_name(&entry.store, &entry.profile), &json);
        use zeroize::Zeroize;
        json.zeroize();
        let path = self.dir.join(format!(
            "{}-{}.journal",
            Self::prefix(&entry.store, &entry.profile),
            uuid::Uuid::new_v4().simple()
        ));
        let tmp = path.with_extension("tmp");
        crate::seal::write_new_private(&tmp, sealed.as_bytes()).map_err(|e| self.io("write", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.io("write", e)
        })?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(path)
    }

    /// Reads the entry at `path`, which must belong to `store` and `name`. `Ok(None)` when it
    /// is gone (another process recovered it meanwhile).
    pub fn read(
        &self,
        path: &Path,
        store: &str,
        name: &ProfileName,
    ) -> Result<Option<Entry>, StoreError> {
        let corrupt = |why: &str| StoreError::Corrupt {
            what: format!("recovery journal {}", path.display()),
            why: why.into(),
        };
        let sealed = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(corrupt("it is not text"))
            }
            Err(e) => {
                return Err(StoreError::Unavailable {
                    message: format!("cannot read the recovery journal {}: {e}", path.display()),
                    retryable: false,
                })
            }
        };
        let json = zeroize::Zeroizing::new(
            self.key()?
                .open(&Self::aad_name(store, name), &sealed)
                .map_err(|_| {
                    corrupt("it cannot be opened with this key (another key, or damaged)")
                })?,
        );
        let entry: Entry =
            serde_json::from_slice(&json).map_err(|_| corrupt("not a journal entry"))?;
        if entry.store != store || &entry.profile != name {
            return Err(corrupt("it belongs to another store or profile"));
        }
        Ok(Some(entry))
    }

    /// Drops an entry once the store holds it.
    pub fn remove(&self, path: &Path) {
        let _ = std::fs::remove_file(path);
    }

    fn move_into(&self, path: &Path, sub: &str) -> Result<PathBuf, StoreError> {
        let dir = self.dir.join(sub);
        create_private_dir(&dir).map_err(|e| self.io("create", e))?;
        let to = dir.join(path.file_name().unwrap_or_default());
        std::fs::rename(path, &to).map_err(|e| self.io("move an entry in", e))?;
        Ok(to)
    }

    /// Moves an unreadable entry to `quarantine/`, where it is never read again.
    pub fn quarantine(&self, path: &Path) -> Result<PathBuf, StoreError> {
        self.move_into(path, QUARANTINE_DIR)
    }

    /// Moves an entry that belongs to no record as it is now to `kept/`, never applied.
    pub fn keep_aside(&self, path: &Path) -> Result<PathBuf, StoreError> {
        self.move_into(path, KEPT_DIR)
    }

    /// Keeps `entry` directly in `kept/` (tokens the store would not take as they are).
    pub fn save_kept(&self, entry: &Entry) -> Result<PathBuf, StoreError> {
        let path = self.save(entry)?;
        self.keep_aside(&path)
    }
}

#[cfg(test)]
mod tests;
