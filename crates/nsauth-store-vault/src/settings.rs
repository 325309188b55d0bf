//! [`VaultSettings`]: Vault's own environment conventions, read once by
//! [`VaultStore::from_uri`](crate::VaultStore::from_uri) or built by hand.

use nsauth_store::StoreError;
use std::fmt;
use std::path::PathBuf;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A Vault token or AppRole secret ID: redacted in `Debug`, no `Display`, zeroed on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct VaultSecret(String);

impl VaultSecret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself.
    ///
    /// # Security
    /// Never log, print or put this value into an error message or a command line.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VaultSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultSecret([redacted])")
    }
}

/// How to reach and authenticate to Vault, apart from the store URI.
///
/// [`VaultSettings::from_env`] reads Vault's own variables; tests and embedding programs can
/// start from [`VaultSettings::default`] and set the fields instead of touching the process
/// environment.
///
/// Authentication, tried in this order on first use:
/// 1. [`token`](Self::token) (`VAULT_TOKEN`);
/// 2. AppRole login with [`role_id`](Self::role_id) and [`secret_id`](Self::secret_id)
///    (`VAULT_ROLE_ID`, `VAULT_SECRET_ID`) at `auth/`[`approle_mount`](Self::approle_mount);
/// 3. the token in [`token_file`](Self::token_file) (`~/.vault-token`, written by
///    `vault login` / `bao login`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VaultSettings {
    /// `VAULT_ADDR`: the server for `vault:///MOUNT/PREFIX` URIs.
    pub addr: Option<String>,
    /// `VAULT_TOKEN`.
    pub token: Option<VaultSecret>,
    /// The token helper file, `~/.vault-token` by default.
    pub token_file: Option<PathBuf>,
    /// `VAULT_NAMESPACE` (Vault Enterprise / OpenBao namespaces), sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// `VAULT_CACERT`: a PEM file of CA certificates to trust in addition to the system's.
    pub ca_cert: Option<PathBuf>,
    /// `VAULT_SKIP_VERIFY`: do not verify the server's TLS certificate (testing only).
    pub skip_verify: bool,
    /// `VAULT_ROLE_ID`: AppRole role ID.
    pub role_id: Option<String>,
    /// `VAULT_SECRET_ID`: AppRole secret ID.
    pub secret_id: Option<VaultSecret>,
    /// Where the AppRole auth method is mounted (`NSAUTH_VAULT_APPROLE_MOUNT`, default
    /// `approle`).
    pub approle_mount: String,
}

impl Default for VaultSettings {
    fn default() -> Self {
        Self {
            addr: None,
            token: None,
            token_file: None,
            namespace: None,
            ca_cert: None,
            skip_verify: false,
            role_id: None,
            secret_id: None,
            approle_mount: "approle".into(),
        }
    }
}

impl VaultSettings {
    /// Reads `VAULT_ADDR`, `VAULT_TOKEN`, `~/.vault-token` (its path only; the file is read on
    /// first use), `VAULT_NAMESPACE`, `VAULT_CACERT`, `VAULT_SKIP_VERIFY`, `VAULT_ROLE_ID`,
    /// `VAULT_SECRET_ID` and `NSAUTH_VAULT_APPROLE_MOUNT`. Empty variables count as unset.
    pub fn from_env() -> Result<Self, StoreError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let skip_verify = match var("VAULT_SKIP_VERIFY") {
            None => false,
            Some(v) => parse_bool(&v).ok_or_else(|| {
                StoreError::Config("VAULT_SKIP_VERIFY must be true or false (or 1 or 0)".into())
            })?,
        };
        Ok(Self {
            addr: var("VAULT_ADDR"),
            token: var("VAULT_TOKEN").map(|t| VaultSecret::new(t.trim())),
            token_file: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".vault-token")),
            namespace: var("VAULT_NAMESPACE"),
            ca_cert: var("VAULT_CACERT").map(PathBuf::from),
            skip_verify,
            role_id: var("VAULT_ROLE_ID").map(|r| r.trim().to_owned()),
            secret_id: var("VAULT_SECRET_ID").map(|s| VaultSecret::new(s.trim())),
            approle_mount: var("NSAUTH_VAULT_APPROLE_MOUNT").unwrap_or_else(|| "approle".into()),
        })
    }
}

/// Go's `strconv.ParseBool`, which Vault uses for its boolean variables.
fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = VaultSettings {
            token: Some(VaultSecret::new("hvs.very-secret-token")),
            secret_id: Some(VaultSecret::new("secret-id-value")),
            role_id: Some("role".into()),
            ..VaultSettings::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(!shown.contains("secret-id-value"), "{shown}");
        assert!(shown.contains("VaultSecret([redacted])"), "{shown}");
    }

    #[test]
    fn booleans_follow_go() {
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("f"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
