//! Encryption at rest for the local stores (SQLite, file).
//!
//! Records are serialised to JSON and sealed with XChaCha20-Poly1305. The associated data
//! binds a sealed record to its profile name, so a record copied under another name does
//! not open. The 32-byte key comes from `NSAUTH_STORE_KEY` (base64), else from a key file that
//! is created with mode 0600 on first use, or — with `NSAUTH_STORE_KEY_SOURCE=keyring` and the
//! `keyring` feature — from the OS keychain ([`crate::keychain`]).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use nsauth_store::profile::ProfileName;
use nsauth_store::{decode_record, encode_record, Record, StoreError};
use sha2::Digest;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Environment variable holding a base64 32-byte store key.
pub const STORE_KEY_ENV: &str = "NSAUTH_STORE_KEY";
/// Environment variable naming the key file.
pub const STORE_KEY_FILE_ENV: &str = "NSAUTH_STORE_KEY_FILE";
/// Environment variable choosing where the key lives when `NSAUTH_STORE_KEY` is unset:
/// `file` (the default) or `keyring` (the OS keychain).
pub const STORE_KEY_SOURCE_ENV: &str = "NSAUTH_STORE_KEY_SOURCE";

const PREFIX: &str = "nsauth-sealed-v1";

/// A 32-byte store key. Zeroed on drop, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StoreKey([u8; 32]);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreKey(id={})", self.id())
    }
}

impl StoreKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        getrandom::getrandom(&mut b).expect("OS random source");
        Self(b)
    }

    /// Parses a base64 key (32 bytes).
    pub fn from_base64(s: &str) -> Result<Self, String> {
        let mut bytes = B64
            .decode(s.trim())
            .map_err(|_| "the store key is not valid base64".to_string())?;
        if bytes.len() != 32 {
            bytes.zeroize();
            return Err("the store key must be 32 bytes, base64-encoded (try: head -c32 /dev/urandom | base64)".into());
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(&bytes);
        bytes.zeroize();
        Ok(Self(k))
    }

    #[cfg(feature = "keyring")]
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public identifier of the key (first 8 hex digits of its SHA-256).
    pub fn id(&self) -> String {
        hex::encode(&sha2::Sha256::digest(self.0)[..4])
    }

    /// The default key file: `$NSAUTH_STORE_KEY_FILE`, else `$XDG_CONFIG_HOME/nsauth/store.key`
    /// (`~/.config/nsauth/store.key`).
    pub fn default_key_file() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(STORE_KEY_FILE_ENV).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        Some(crate::paths::nsauth_dir(crate::paths::Base::Config)?.join("store.key"))
    }

    /// Resolves the key: `NSAUTH_STORE_KEY`, else — `NSAUTH_STORE_KEY_SOURCE=keyring` — the
    /// OS keychain, else `key_file` (or the default key file), created 0600 with a random key
    /// if missing. A key file named while the keychain is chosen is a configuration error.
    pub fn resolve(key_file: Option<&Path>) -> Result<Self, StoreError> {
        if let Ok(v) = std::env::var(STORE_KEY_ENV) {
            if !v.is_empty() {
                return Self::from_base64(&v)
                    .map_err(|e| StoreError::Config(format!("{STORE_KEY_ENV}: {e}")));
            }
        }
        if key_source()? == KeySource::Keyring {
            return Self::from_keychain(key_file);
        }
        let path = match key_file {
            Some(p) => p.to_path_buf(),
            None => Self::default_key_file().ok_or_else(|| {
                StoreError::Config(format!(
                    "no store key: set {STORE_KEY_ENV} or {STORE_KEY_FILE_ENV}, or HOME"
                ))
            })?,
        };
        Self::load_or_create(&path)
    }

    fn from_keychain(key_file: Option<&Path>) -> Result<Self, StoreError> {
        let named = key_file.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(STORE_KEY_FILE_ENV)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        });
        if let Some(p) = named {
            return Err(StoreError::Config(format!(
                "{STORE_KEY_SOURCE_ENV}=keyring, but a key file is named too ({}); choose one: unset {STORE_KEY_FILE_ENV} (or drop ?key-file= from the store URI), or unset {STORE_KEY_SOURCE_ENV}",
                p.display()
            )));
        }
        let dir = crate::paths::nsauth_dir(crate::paths::Base::Config).ok_or_else(|| {
            StoreError::Config(format!(
                "{STORE_KEY_SOURCE_ENV}=keyring needs HOME or XDG_CONFIG_HOME (the keychain entry is named after the key file it replaces)"
            ))
        })?;
        keychain_key(&dir)
    }

    /// Reads the key file, or creates it if missing. Creation is atomic: the key is written
    /// to a private temporary file, fsynced, then hard-linked into place, which fails if a
    /// key file appeared meanwhile; so processes racing on a first run never see a half-written
    /// key and all end up with the one key that won. A key file that group or others may read
    /// is refused, as ssh refuses such a private key.
    fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        let unavailable = |what: &str, e: std::io::Error| StoreError::Unavailable {
            message: format!("cannot {what} key file {}: {e}", path.display()),
            retryable: false,
        };
        // Another process may delete a key between our failed link and our read (it should
        // not, but bound the loop anyway).
        for _ in 0..8 {
            match read_private(path) {
                Ok(s) if s.trim().is_empty() => {
                    return Err(StoreError::Corrupt {
                        what: format!("key file {}", path.display()),
                        why: "it is empty (left by an interrupted first run of an older nsauth?); no record can have been sealed with it: delete it and run again".into(),
                    })
                }
                Ok(mut s) => {
                    let key = Self::from_base64(&s).map_err(|e| StoreError::Corrupt {
                        what: format!("key file {}", path.display()),
                        why: e,
                    });
                    s.zeroize();
                    return key;
                }
                Err(ReadKey::Exposed(mode)) => {
                    return Err(StoreError::Denied(format!(
                        "key file {} is readable by other users (mode {mode:03o}); run: chmod 600 {} (and treat the key as exposed)",
                        path.display(),
                        path.display()
                    )))
                }
                Err(ReadKey::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(ReadKey::Io(e)) => return Err(unavailable("read", e)),
            }
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            create_private_dir(dir).map_err(|e| unavailable("create the directory of", e))?;
            let key = Self::generate();
            let mut encoded = B64.encode(key.0);
            encoded.push('\n');
            let tmp = dir.join(format!(".store.key.tmp-{}", uuid::Uuid::new_v4().simple()));
            let written = write_new_private(&tmp, encoded.as_bytes());
            encoded.zeroize();
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(unavailable("create", e));
            }
            let mut linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            if linked
                .as_ref()
                .is_err_and(|e| e.kind() != std::io::ErrorKind::AlreadyExists)
            {
                // A file system without hard links (FAT, some network shares): create-only in
                // place. Still never clobbers a key, but a racer may read it half-written
                // and fail once.
                let mut encoded = B64.encode(key.0);
                encoded.push('\n');
                linked = write_new_private(path, encoded.as_bytes());
                encoded.zeroize();
            }
            match linked {
                Ok(()) => {
                    sync_dir(dir).map_err(|e| unavailable("sync the directory of", e))?;
                    return Ok(key);
                }
                // Another first run won: use its key.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(unavailable("create", e)),
            }
        }
        Err(StoreError::Unavailable {
            message: format!(
                "key file {} keeps disappearing; is another program deleting it?",
                path.display()
            ),
            retryable: false,
        })
    }

    /// Seals `plaintext` for the record named `name`.
    pub fn seal(&self, name: &ProfileName, plaintext: &[u8]) -> String {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        getrandom::getrandom(&mut nonce).expect("OS random source");
        let aad = aad(name);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(24 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        format!("{PREFIX}:{}:{}", self.id(), B64.encode(out))
    }

    /// Opens a sealed string. Errors say whether the key is wrong or the data damaged.
    pub fn open(&self, name: &ProfileName, sealed: &str) -> Result<Vec<u8>, StoreError> {
        let corrupt = |why: String| StoreError::Corrupt {
            what: format!("for profile {:?}", name.as_str()),
            why,
        };
        let mut parts = sealed.trim().splitn(3, ':');
        let (Some(PREFIX), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt("it is not an nsauth sealed record".into()));
        };
        if key_id.len() != 8 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(corrupt("its key id is damaged".into()));
        }
        if key_id != self.id() {
            return Err(corrupt(format!(
                "it was encrypted with store key {key_id}, but the current key is {}; set {STORE_KEY_ENV} or {STORE_KEY_FILE_ENV} to the right key",
                self.id()
            )));
        }
        let raw = B64
            .decode(body)
            .map_err(|_| corrupt("its ciphertext is not valid base64".into()))?;
        if raw.len() < 24 + 16 {
            return Err(corrupt("its ciphertext is truncated".into()));
        }
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let aad = aad(name);
        cipher
            .decrypt(
                XNonce::from_slice(&raw[..24]),
                Payload {
                    msg: &raw[24..],
                    aad: &aad,
                },
            )
            .map_err(|_| {
                corrupt("authentication failed (damaged, or sealed for another profile)".into())
            })
    }

    /// Serialises and seals a record.
    pub fn seal_record(&self, name: &ProfileName, record: &Record) -> String {
        let mut json = encode_record(record);
        let sealed = self.seal(name, &json);
        json.zeroize();
        sealed
    }

    /// Opens and parses a record, refusing schemas newer than this build understands.
    pub fn open_record(&self, name: &ProfileName, sealed: &str) -> Result<Record, StoreError> {
        let mut json = self.open(name, sealed)?;
        let parsed = decode_record(&json).map_err(|why| StoreError::Corrupt {
            what: format!("for profile {:?}", name.as_str()),
            why,
        });
        json.zeroize();
        parsed
    }
}

/// Where the key lives when `NSAUTH_STORE_KEY` is unset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeySource {
    File,
    Keyring,
}

fn key_source() -> Result<KeySource, StoreError> {
    parse_key_source(std::env::var(STORE_KEY_SOURCE_ENV).ok().as_deref())
}

fn parse_key_source(value: Option<&str>) -> Result<KeySource, StoreError> {
    match value.map(str::trim) {
        None | Some("") | Some("file") => Ok(KeySource::File),
        Some("keyring") => Ok(KeySource::Keyring),
        Some(_) => Err(StoreError::Config(format!(
            "{STORE_KEY_SOURCE_ENV} must be file (the default) or keyring"
        ))),
    }
}

/// The keychain's key for the configuration directory `dir`: account `dir/store.key`,
/// creation serialised by `dir/.store-key.lock`.
#[cfg(feature = "keyring")]
fn keychain_key(dir: &Path) -> Result<StoreKey, StoreError> {
    let account = dir.join("store.key");
    crate::keychain::load_or_create(&account.to_string_lossy(), &dir.join(".store-key.lock"))
}

#[cfg(not(feature = "keyring"))]
fn keychain_key(_: &Path) -> Result<StoreKey, StoreError> {
    Err(StoreError::Config(format!(
        "{STORE_KEY_SOURCE_ENV}=keyring, but this build has no keychain support (cargo feature `keyring` of nsauth-store-local, or nsauth-cli's `keyring`); unset {STORE_KEY_SOURCE_ENV} to use the key file"
    )))
}

fn aad(name: &ProfileName) -> Vec<u8> {
    let mut a = b"nsauth-record:".to_vec();
    a.extend_from_slice(name.as_str().as_bytes());
    a
}

/// Creates a directory (and parents) with mode 0700 on Unix.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Why a key file could not be read.
enum ReadKey {
    Io(std::io::Error),
    /// Group or others may read it (the mode bits).
    Exposed(u32),
}

/// Reads a key file, refusing one that group or others may read.
fn read_private(path: &Path) -> Result<String, ReadKey> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(ReadKey::Io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = f.metadata().map_err(ReadKey::Io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ReadKey::Exposed(mode));
        }
    }
    let mut s = String::new();
    f.read_to_string(&mut s).map_err(ReadKey::Io)?;
    Ok(s)
}

/// Makes a new directory entry in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes a new file with mode 0600; fails if it exists.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests;
