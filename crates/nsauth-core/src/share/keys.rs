//! Recipients (public keys) and identities (private keys) for share bundles.

use super::file::read_limited;
use super::MAX_KEY_FILE_BYTES;
use crate::error::Error;
use age::secrecy::ExposeSecret;
use std::fmt;
use std::path::Path;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// A public key a bundle is encrypted to.
#[derive(Clone)]
pub enum Recipient {
    /// An age X25519 recipient (`age1…`).
    X25519(age::x25519::Recipient),
    /// An SSH `ssh-ed25519` or `ssh-rsa` public key.
    Ssh(age::ssh::Recipient),
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::X25519(r) => write!(f, "{r}"),
            Recipient::Ssh(r) => write!(f, "{r}"),
        }
    }
}

/// At most `n` characters of `s`, escaped, for error messages about public input.
fn shown(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).flat_map(char::escape_default).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

impl Recipient {
    /// Parses `age1…`, `ssh-ed25519 AAAA… [comment]` or `ssh-rsa AAAA… [comment]`.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let s = input.trim();
        if s.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") || s.contains("PRIVATE KEY") {
            return Err(Error::Invalid(
                "a recipient must be a public key, but this is a private key (not shown); keep it secret and pass the age1… or ssh-… public key instead".into(),
            ));
        }
        if s.starts_with("age1") {
            return s.parse().map(Recipient::X25519).map_err(|_| {
                Error::Invalid(format!(
                    "recipient {:?} is not a valid age public key; copy the whole age1… line printed by nsauth share keygen",
                    shown(s, 24)
                ))
            });
        }
        use age::ssh::ParseRecipientKeyError as E;
        match s.parse::<age::ssh::Recipient>() {
            Ok(r) => Ok(Recipient::Ssh(r)),
            Err(E::RsaModulusTooSmall) => Err(Error::Invalid(
                "ssh-rsa keys shorter than 2048 bits are refused; use an ssh-ed25519 key or an age recipient".into(),
            )),
            Err(E::RsaModulusTooLarge) => Err(Error::Invalid(
                "this ssh-rsa key is larger than age supports; use an ssh-ed25519 key or an age recipient".into(),
            )),
            Err(E::Unsupported(kind)) => Err(Error::Invalid(format!(
                "SSH key type {:?} cannot receive share bundles; use an ssh-ed25519 or ssh-rsa key, or an age recipient from nsauth share keygen",
                shown(&kind, 40)
            ))),
            Err(_) => Err(Error::Invalid(format!(
                "recipient {:?} is neither an age public key (age1…) nor an SSH public key (ssh-ed25519 …, ssh-rsa …)",
                shown(s, 24)
            ))),
        }
    }

    /// Parses a recipients file: one recipient a line; blank lines and `#` comments skipped.
    pub fn parse_list(text: &str, source: &str) -> Result<Vec<Self>, Error> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let r = Recipient::parse(line)
                .map_err(|e| Error::Invalid(format!("{source} line {}: {e}", i + 1)))?;
            out.push(r);
        }
        if out.is_empty() {
            return Err(Error::Invalid(format!(
                "{source} lists no recipients; put one age1… or ssh-… public key on each line"
            )));
        }
        Ok(out)
    }

    /// A short description of the key type: `age X25519`, `ssh-ed25519` or `ssh-rsa`.
    pub fn kind(&self) -> &'static str {
        match self {
            Recipient::X25519(_) => "age X25519",
            Recipient::Ssh(age::ssh::Recipient::SshEd25519(..)) => "ssh-ed25519",
            Recipient::Ssh(age::ssh::Recipient::SshRsa(..)) => "ssh-rsa",
        }
    }

    pub(super) fn as_age(&self) -> &dyn age::Recipient {
        match self {
            Recipient::X25519(r) => r,
            Recipient::Ssh(r) => r,
        }
    }
}

/// A private key that opens bundles: age X25519 identities or one OpenSSH private key.
pub enum Identity {
    /// The identities of an age identity file.
    X25519(Vec<age::x25519::Identity>),
    /// An unencrypted OpenSSH (or PEM RSA) private key.
    Ssh(age::ssh::Identity),
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::X25519(ids) => write!(f, "Identity::X25519({} keys, [redacted])", ids.len()),
            Identity::Ssh(_) => f.write_str("Identity::Ssh([redacted])"),
        }
    }
}

impl Identity {
    /// Parses an age identity file (`AGE-SECRET-KEY-1…` lines, `#` comments) or an
    /// unencrypted SSH private key. `source` names the file in messages; the content is
    /// never echoed.
    pub fn parse(text: &str, source: &str) -> Result<Self, Error> {
        if text.contains("-----BEGIN") {
            return Self::parse_ssh(text, source);
        }
        let mut ids = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.parse::<age::x25519::Identity>() {
                Ok(id) => ids.push(id),
                Err(_) if line.starts_with("age1") => {
                    return Err(Error::Invalid(format!(
                        "{source} line {} is a public key (a recipient); --identity needs the private identity file made by nsauth share keygen",
                        i + 1
                    )))
                }
                Err(_) => {
                    return Err(Error::Invalid(format!(
                        "{source} line {} is not an age identity; --identity takes a file made by nsauth share keygen (or age-keygen) or an OpenSSH private key",
                        i + 1
                    )))
                }
            }
        }
        if ids.is_empty() {
            return Err(Error::Invalid(format!(
                "{source} holds no identity; --identity takes a file made by nsauth share keygen or an OpenSSH private key"
            )));
        }
        Ok(Identity::X25519(ids))
    }

    fn parse_ssh(text: &str, source: &str) -> Result<Self, Error> {
        use age::ssh::{Identity as Ssh, UnsupportedKey};
        let parsed = Ssh::from_buffer(text.as_bytes(), Some(source.to_owned())).map_err(|_| {
            Error::Invalid(format!(
                "{source} is not a private key nsauth can use; use an unencrypted OpenSSH ed25519 or RSA key, or an identity from nsauth share keygen"
            ))
        })?;
        match parsed {
            Ssh::Unencrypted(_) => Ok(Identity::Ssh(parsed)),
            Ssh::Encrypted(_) | Ssh::Unsupported(UnsupportedKey::EncryptedPem | UnsupportedKey::EncryptedSsh(_)) => {
                Err(Error::Invalid(format!(
                    "{source} is protected by a passphrase, which nsauth does not ask for; use an unencrypted copy (ssh-keygen -p -N '' -f COPY) kept private, or an identity from nsauth share keygen"
                )))
            }
            Ssh::Unsupported(UnsupportedKey::Hardware(kind) | UnsupportedKey::Type(kind)) => {
                Err(Error::Invalid(format!(
                    "{source} is an SSH key of type {:?}, which cannot open bundles; use an ssh-ed25519 or ssh-rsa key, or an identity from nsauth share keygen",
                    shown(&kind, 40)
                )))
            }
        }
    }

    /// Reads and parses an identity file.
    pub fn read_file(path: &Path) -> Result<Self, Error> {
        let bytes = Zeroizing::new(read_limited(path, MAX_KEY_FILE_BYTES, "identity file")?);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::Invalid(format!(
                "{} is not a text key file; --identity takes a file made by nsauth share keygen or an OpenSSH private key",
                path.display()
            ))
        })?;
        Self::parse(text, &path.display().to_string())
    }

    /// A short description: `age X25519` or `ssh`.
    pub fn kind(&self) -> &'static str {
        match self {
            Identity::X25519(_) => "age X25519",
            Identity::Ssh(_) => "ssh",
        }
    }
}

/// A freshly generated age identity.
pub struct GeneratedIdentity {
    /// The identity file's content (comments and the `AGE-SECRET-KEY-1…` line). Secret.
    pub file_contents: Zeroizing<String>,
    /// The matching recipient (`age1…`), to hand to senders.
    pub recipient: String,
}

impl fmt::Debug for GeneratedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedIdentity")
            .field("file_contents", &"[redacted]")
            .field("recipient", &self.recipient)
            .finish()
    }
}

/// Makes a new age X25519 identity, in the identity file format of `age-keygen`.
pub fn generate_identity() -> GeneratedIdentity {
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let created = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let secret = id.to_string();
    let file_contents = Zeroizing::new(format!(
        "# nsauth share identity: keep this file secret\n# created: {created}\n# public key: {recipient}\n{}\n",
        secret.expose_secret()
    ));
    GeneratedIdentity {
        file_contents,
        recipient,
    }
}
