//! The serve key: what a TCP client must send as `Authorization: Bearer <key>`. It lives in a
//! 0600 file whose path (never the key) is printed at start; clients read the file.

use nsauth_core::Error;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// Hex characters in a key (32 random bytes).
const KEY_LEN: usize = 64;

/// The serve key, compared in constant time.
pub struct ServeKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for ServeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServeKey([redacted])")
    }
}

impl ServeKey {
    /// The key in `path` if it is a private key file of ours, else a new key written there
    /// (0600, replaced atomically).
    pub fn load_or_create(path: &Path) -> Result<ServeKey, Error> {
        if let Some(key) = read_key_file(path)? {
            return Ok(ServeKey::from_secret(&key));
        }
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(raw.as_mut())
            .map_err(|e| Error::Other(format!("no randomness for the serve key: {e}")))?;
        let key = Zeroizing::new(hex::encode(raw.as_ref()));
        write_private(path, key.as_bytes())?;
        Ok(ServeKey::from_secret(&key))
    }

    /// A key from its text (tests).
    pub fn from_secret(key: &str) -> ServeKey {
        ServeKey {
            digest: Sha256::digest(key.trim().as_bytes()).into(),
        }
    }

    /// `true` when `header` is `Bearer <this key>`. The comparison of digests takes the same
    /// time wherever they differ.
    pub fn accepts(&self, header: Option<&[u8]>) -> bool {
        let Some(given) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given.trim_ascii()).into();
        let diff = given
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

/// The key in `path`: `None` when the file is missing; an error when it is not private or
/// not ours (never silently trusted, never silently replaced).
pub fn read_key_file(path: &Path) -> Result<Option<Zeroizing<String>>, Error> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Invalid(format!(
                "cannot read the serve key file {}: {e}",
                path.display()
            )))
        }
    };
    let me = rustix::process::getuid().as_raw();
    if meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Invalid(format!(
            "the serve key file {} is not private to you (owner {}, mode {:o}); remove it (a new one is made) or chmod 600",
            path.display(),
            meta.uid(),
            meta.permissions().mode() & 0o777
        )));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        Error::Invalid(format!(
            "cannot read the serve key file {}: {e}",
            path.display()
        ))
    })?);
    let key = text.trim();
    if key.len() != KEY_LEN || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Ok(Some(Zeroizing::new(key.to_owned())))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| {
        Error::Invalid(format!(
            "cannot write the serve key file {}: {e}",
            path.display()
        ))
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    let tmp = dir.join(format!(".serve.key.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(bytes)
        .and_then(|_| f.write_all(b"\n"))
        .and_then(|_| f.sync_all())
        .map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

use std::os::unix::fs::DirBuilderExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_checked_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/serve.key");
        let k1 = ServeKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        let secret = text.trim();
        assert!(k1.accepts(Some(format!("Bearer {secret}").as_bytes())));
        assert!(!k1.accepts(Some(format!("Bearer {secret}x").as_bytes())));
        assert!(!k1.accepts(Some(secret.as_bytes())), "scheme required");
        assert!(!k1.accepts(Some(b"Bearer ")));
        assert!(!k1.accepts(None));
        // A restart keeps the key clients already read.
        let k2 = ServeKey::load_or_create(&path).unwrap();
        assert!(k2.accepts(Some(format!("Bearer {secret}").as_bytes())));
        assert_eq!(format!("{k2:?}"), "ServeKey([redacted])");
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.key");
        std::fs::write(&path, "a".repeat(64)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ServeKey::load_or_create(&path).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e}");
        assert!(e.to_string().contains("not private"), "{e}");
    }
}
