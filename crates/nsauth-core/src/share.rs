//! Share bundles: hand a profile (and, if asked, its tokens) to a colleague or another
//! machine, encrypted with [age](https://age-encryption.org) to the receiver's public key.
//!
//! A bundle is an age file whose plaintext is a versioned JSON document (see [`Bundle`]).
//! The plaintext exists only in memory: it is encrypted before anything touches the disk,
//! and on import it is decrypted, validated and written to the store, never to a file.
//!
//! Recipients are age X25519 keys (`age1…`, from [`generate_identity`]) or SSH
//! `ssh-ed25519` / `ssh-rsa` public keys; identities are age identity files or unencrypted
//! OpenSSH private keys.
//!
//! Single-use refresh tokens decide what an export with tokens means: a public client's
//! refresh token dies on its next use, so only one copy may ever refresh again. [`export`]
//! therefore marks the source record as [`Moved`] (with compare-and-swap against the very
//! version it exported) and drops its tokens, keeping only their fingerprints: the broker
//! refuses to refresh there, and `nsauth revoke` refuses to revoke the grant it gave away. A confidential client's
//! refresh token is reused by NetSuite, so both copies keep working.
//!
//! ```
//! use nsauth_core::share::{generate_identity, Recipient};
//! let id = generate_identity();
//! let r = Recipient::parse(&id.recipient).unwrap();
//! assert_eq!(r.kind(), "age X25519");
//! ```

mod file;
mod keys;
mod review;
#[cfg(test)]
mod tests;

pub use file::{read_limited, Staged};
pub use keys::{generate_identity, GeneratedIdentity, Identity, Recipient};
pub use review::{is_netsuite_url, shown, Endpoint};

use crate::error::Error;
use crate::profile::{GrantKind, Profile, ProfileName};
use crate::store::{self, Precondition, Record, StoreError, TokenStore, Versioned};
use crate::token::TokenSet;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The `format` field of every bundle.
pub const FORMAT: &str = "nsauth-share";
/// The bundle version this build writes and reads.
pub const VERSION: u32 = 1;
/// The largest bundle (encrypted or not) nsauth reads: profiles and tokens are a few KB.
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024;
/// The largest identity or recipients file nsauth reads.
pub const MAX_KEY_FILE_BYTES: usize = 64 * 1024;

/// The decrypted content of a share bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The profile's name at the source.
    pub profile_name: ProfileName,
    /// The profile, secrets included.
    pub profile: Profile,
    /// The tokens, when exported with them.
    pub tokens: Option<TokenSet>,
    /// When it was exported.
    pub exported_at: OffsetDateTime,
    /// Who exported it (`user@host`).
    pub exported_by: String,
}

/// The JSON document inside the age file.
#[derive(Serialize, Deserialize)]
struct Wire {
    format: String,
    version: u32,
    profile_name: ProfileName,
    profile: Profile,
    tokens: Option<TokenSet>,
    #[serde(with = "time::serde::rfc3339")]
    exported_at: OffsetDateTime,
    exported_by: String,
}

impl Bundle {
    /// A bundle of `record`'s profile and, with `with_tokens`, its tokens, stamped now.
    pub fn from_record(name: &ProfileName, record: &Record, with_tokens: bool) -> Self {
        Bundle {
            profile_name: name.clone(),
            profile: record.profile.clone(),
            tokens: record.tokens.clone().filter(|_| with_tokens),
            exported_at: OffsetDateTime::now_utc(),
            exported_by: store::actor(),
        }
    }

    /// The plaintext JSON; zeroed when dropped.
    fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let wire = Wire {
            format: FORMAT.into(),
            version: VERSION,
            profile_name: self.profile_name.clone(),
            profile: self.profile.clone(),
            tokens: self.tokens.clone(),
            exported_at: self.exported_at,
            exported_by: self.exported_by.clone(),
        };
        Zeroizing::new(serde_json::to_vec(&wire).expect("bundles serialise"))
    }

    /// Parses and validates the plaintext. Errors never echo the content.
    fn from_json(json: &[u8]) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Head {
            format: Option<String>,
            version: Option<u32>,
        }
        let foreign = || {
            Error::Invalid(
                "it decrypts, but it is not an nsauth share bundle; import only files written by nsauth share export".into(),
            )
        };
        let head: Head = serde_json::from_slice(json).map_err(|_| foreign())?;
        if head.format.as_deref() != Some(FORMAT) {
            return Err(foreign());
        }
        match head.version {
            Some(VERSION) => {}
            Some(v) if v > VERSION => {
                return Err(Error::Invalid(format!(
                    "it is a version {v} bundle, but this nsauth reads version {VERSION}; upgrade nsauth"
                )))
            }
            _ => return Err(foreign()),
        }
        let wire: Wire = serde_json::from_slice(json).map_err(|e| {
            // Line and column only: the content holds secrets.
            Error::Invalid(format!(
                "its content is malformed ({:?} at line {} column {}); ask the sender to export it again",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        wire.profile.validate().map_err(|why| {
            Error::Invalid(format!(
                "the profile in it is not valid ({why}); ask the sender to fix it and export again"
            ))
        })?;
        Ok(Bundle {
            profile_name: wire.profile_name,
            profile: wire.profile,
            tokens: wire.tokens,
            exported_at: wire.exported_at,
            exported_by: wire.exported_by,
        })
    }
}

/// Encrypts `bundle` to every recipient. The output is the binary age format.
pub fn seal(bundle: &Bundle, recipients: &[Recipient]) -> Result<Vec<u8>, Error> {
    if recipients.is_empty() {
        return Err(Error::Invalid(
            "at least one --recipient is needed (age1… or an SSH public key)".into(),
        ));
    }
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(Recipient::as_age))
        .map_err(|e| Error::Invalid(format!("cannot encrypt to these recipients: {e}")))?;
    let json = bundle.to_json();
    let mut out = Vec::with_capacity(json.len() + 1024);
    let io = |e: std::io::Error| Error::Other(format!("encryption failed: {e}"));
    let mut w = encryptor.wrap_output(&mut out).map_err(io)?;
    w.write_all(&json).map_err(io)?;
    w.finish().map_err(io)?;
    Ok(out)
}

/// Decrypts and validates a bundle. Every refusal is one line that says what to do.
pub fn open(ciphertext: &[u8], identity: &Identity) -> Result<Bundle, Error> {
    use age::DecryptError as D;
    let damaged = || refusal(D::DecryptionFailed, identity);
    let map = |e| refusal(e, identity);
    if !ciphertext.starts_with(b"age-encryption.org/") {
        return Err(map(D::UnknownFormat));
    }
    let decryptor = age::Decryptor::new_buffered(ciphertext).map_err(map)?;
    if decryptor.is_scrypt() {
        return Err(Error::Invalid(format!(
            "it is encrypted with a passphrase, which nsauth does not use; {REEXPORT}"
        )));
    }
    let mut reader = match identity {
        Identity::X25519(ids) => decryptor.decrypt(ids.iter().map(|i| i as &dyn age::Identity)),
        Identity::Ssh(id) => decryptor.decrypt(std::iter::once(id as &dyn age::Identity)),
    }
    .map_err(map)?;
    let mut json = Zeroizing::new(Vec::new());
    reader
        .by_ref()
        .take(MAX_BUNDLE_BYTES as u64 + 1)
        .read_to_end(&mut json)
        .map_err(|_| damaged())?;
    if json.len() > MAX_BUNDLE_BYTES {
        return Err(Error::Invalid(format!(
            "its content is larger than {MAX_BUNDLE_BYTES} bytes, far more than a profile; {REEXPORT}"
        )));
    }
    Bundle::from_json(&json)
}

const REEXPORT: &str = "ask the sender to export it again";

/// The one-line refusal for an age decryption error.
fn refusal(e: age::DecryptError, identity: &Identity) -> Error {
    use age::DecryptError as D;
    Error::Invalid(match e {
        D::NoMatchingKeys => format!(
            "it was not encrypted to this {} identity; use the matching --identity, or {REEXPORT} with your public key as --recipient",
            identity.kind()
        ),
        D::InvalidMac | D::DecryptionFailed => format!(
            "it is damaged or was modified after export (authentication failed); {REEXPORT}"
        ),
        D::KeyDecryptionFailed => format!(
            "the identity could not unlock it; use the matching --identity, or {REEXPORT}"
        ),
        D::ExcessiveWork { .. } | D::InvalidHeader | D::UnknownFormat | D::Io(_) => {
            "it is not an nsauth share bundle (not an age-encrypted file); import the file written by nsauth share export".into()
        }
    })
}

/// What [`export`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    /// The grant of the exported profile.
    pub grant: GrantKind,
    /// The client has no secret.
    pub public_client: bool,
    /// The tokens were included.
    pub with_tokens: bool,
    /// The source was marked as moved (public client, tokens with a refresh token).
    pub source_moved: bool,
    /// When the exported refresh token ends, if known.
    pub refresh_expires_at: Option<OffsetDateTime>,
    /// The bundle holds a secret: client secret, private key or tokens.
    pub holds_secrets: bool,
}

/// Exports profile `name` to a new bundle file `out`, encrypted to `recipients`.
///
/// With `with_tokens` and a public client holding a refresh token, the source record is
/// marked [`Moved`] by a compare-and-swap against the version that was exported, before the
/// bundle appears under its name; if the record changed in between (a refresh), the staged
/// bundle is discarded and the export starts over with the new tokens, so the bundle always
/// holds the live refresh token. A refresh in progress (a live lease) is waited for.
pub async fn export(
    store: &dyn TokenStore,
    name: &ProfileName,
    recipients: &[Recipient],
    with_tokens: bool,
    out: &Path,
) -> Result<Exported, Error> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let Versioned { record, version } = store::load_existing(store, name).await?;
        let now = OffsetDateTime::now_utc();
        if with_tokens {
            if let Some(m) = &record.moved {
                return Err(Error::Invalid(format!(
                    "the tokens of profile {name} were already moved to {} at {}; export without --with-tokens, or log in again first: nsauth login --profile {name}",
                    m.to,
                    crate::token::format_time(m.at)
                )));
            }
            if record.tokens.is_none() {
                return Err(Error::Invalid(format!(
                    "profile {name} has no tokens to export; log in first (nsauth login --profile {name}) or export without --with-tokens"
                )));
            }
            // A refresh in flight would replace the tokens we are about to hand over.
            if record.lease.as_ref().is_some_and(|l| l.until > now) {
                if tokio::time::Instant::now() > deadline {
                    return Err(Error::Store(StoreError::Unavailable {
                        message: format!("a refresh of profile {name} has been in progress for too long; try the export again later"),
                        retryable: true,
                    }));
                }
                tokio::time::sleep(crate::retry::jitter(Duration::from_millis(200))).await;
                continue;
            }
        }
        let bundle = Bundle::from_record(name, &record, with_tokens);
        let staged = Staged::write(out, &seal(&bundle, recipients)?)?;
        let single_use = with_tokens
            && record.profile.grant == GrantKind::AuthorizationCode
            && record.profile.is_public()
            && record
                .tokens
                .as_ref()
                .is_some_and(|t| t.refresh_token.is_some());
        let exported = Exported {
            grant: record.profile.grant,
            public_client: record.profile.is_public(),
            with_tokens,
            source_moved: single_use,
            refresh_expires_at: bundle.tokens.as_ref().and_then(|t| t.refresh_expires_at),
            holds_secrets: bundle.tokens.is_some()
                || bundle.profile.client_secret.is_some()
                || bundle.profile.private_key.is_some(),
        };
        if !single_use {
            staged.publish()?;
            return Ok(exported);
        }
        // Mark the source first, against the version whose tokens are in the bundle, and
        // only then put the bundle in place: at no moment can both copies refresh.
        let file_name = out
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut moved = record.clone();
        let mark = store::mark_moved(&mut moved, format!("share bundle {file_name}"), now);
        // The tokens stay in the (now refresh-proof) record until the bundle is in place: a
        // crash between the two steps must not leave them nowhere but in a temporary file.
        moved.tokens = record.tokens.clone();
        moved.touch();
        let marked = match store.put(name, &moved, Precondition::Match(version)).await {
            Ok(v) => v,
            // Refreshed or changed meanwhile: start over with the current tokens.
            Err(StoreError::Conflict(_)) if tokio::time::Instant::now() < deadline => {
                drop(staged);
                tokio::time::sleep(crate::retry::jitter(Duration::from_millis(50))).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = staged.publish() {
            // No bundle, so the tokens stay here: undo the mark if it is still ours.
            let undo = store::update(store, name, |rec| {
                if rec.moved.as_ref() == Some(&mark) {
                    rec.moved = None;
                    rec.tokens = record.tokens.clone();
                }
                Ok(())
            })
            .await;
            if let Err(u) = undo {
                return Err(Error::Other(format!(
                    "{e}; and profile {name} stays marked as moved ({u}); log in again: nsauth login --profile {name}"
                )));
            }
            return Err(e);
        }
        // The bundle holds the tokens now: forget them here, keeping the fingerprints only.
        moved.tokens = None;
        moved.touch();
        if let Err(e) = store.put(name, &moved, Precondition::Match(marked)).await {
            tracing::warn!(profile = %name, error = %e,
                "the bundle is written and the profile marked as moved, but its tokens could not be removed from the store; it cannot refresh or revoke them");
        }
        return Ok(exported);
    }
}

/// Adds the bundle's profile (and tokens) to `store` under `name`, create-only: an existing
/// profile of that name is left untouched and reported.
pub async fn import(
    store: &dyn TokenStore,
    bundle: &Bundle,
    name: &ProfileName,
) -> Result<(), Error> {
    let mut record = Record::new(bundle.profile.clone());
    record.tokens = bundle.tokens.clone();
    match store.put(name, &record, Precondition::Create).await {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(Error::Invalid(format!(
            "profile {name} already exists in {}; nothing was imported; choose another name with --as NAME",
            store.describe()
        ))),
        Err(e) => Err(e.into()),
    }
}
