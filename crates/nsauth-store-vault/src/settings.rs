//! [`VaultSettings`]: Vault's own environment conventions, read once by
//! [`VaultStore::from_uri`](crate::VaultStore::from_uri) or built by hand.

use nsauth_store::StoreError;
use std::fmt;
use std::path::PathBuf;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A Vault token, AppRole secret ID or JWT: redacted in `Debug`, no `Display`, zeroed on drop.
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
/// Authentication: with [`auth_method`](Self::auth_method) (`NSAUTH_VAULT_AUTH_METHOD`) set,
/// that method and nothing else (`jwt`, `kubernetes`, `approle` or `token`; see
/// docs/stores/vault.md). Without it, tried in this order on first use:
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
    /// `NSAUTH_VAULT_AUTH_METHOD`: log in with this method only.
    pub auth_method: Option<VaultAuthMethod>,
    /// `NSAUTH_VAULT_AUTH_MOUNT`: where the method is mounted (default: the method's name;
    /// for AppRole, [`approle_mount`](Self::approle_mount)).
    pub auth_mount: Option<String>,
    /// `NSAUTH_VAULT_AUTH_ROLE`: the JWT or Kubernetes role to log in as.
    pub auth_role: Option<String>,
    /// `NSAUTH_VAULT_AUTH_JWT_PATH`: the file holding the JWT (read at every login). For
    /// `kubernetes` it defaults to the pod's service-account token.
    pub jwt_path: Option<PathBuf>,
    /// `NSAUTH_VAULT_AUTH_JWT_ENV`: the *name* of the environment variable holding the JWT
    /// (GitLab CI's `id_tokens`), read at every login.
    pub jwt_env: Option<String>,
    /// `NSAUTH_VAULT_AUTH_AUDIENCE`: the audience asked of GitHub Actions' OIDC provider.
    pub audience: Option<String>,
    /// GitHub Actions' OIDC provider (`ACTIONS_ID_TOKEN_REQUEST_URL`,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`), the JWT source of `jwt` when no file or variable
    /// is named.
    pub github_oidc: Option<GithubOidc>,
}

/// The login methods of [`VaultSettings::auth_method`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultAuthMethod {
    /// `VAULT_TOKEN` or the token file; no login.
    Token,
    /// AppRole: `VAULT_ROLE_ID` and `VAULT_SECRET_ID`.
    AppRole,
    /// JWT/OIDC role login with a JWT from a file, a variable or GitHub Actions.
    Jwt,
    /// Kubernetes auth with the pod's service-account token.
    Kubernetes,
}

impl std::str::FromStr for VaultAuthMethod {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "token" => Ok(Self::Token),
            "approle" => Ok(Self::AppRole),
            "jwt" => Ok(Self::Jwt),
            "kubernetes" => Ok(Self::Kubernetes),
            _ => Err(StoreError::Config(format!(
                "NSAUTH_VAULT_AUTH_METHOD \"{}\" is not a method nsauth knows; use jwt, kubernetes, approle or token",
                s.chars().take(40).flat_map(char::escape_default).collect::<String>()
            ))),
        }
    }
}

/// Where GitHub Actions hands out the job's OIDC token (`permissions: id-token: write`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GithubOidc {
    /// `ACTIONS_ID_TOKEN_REQUEST_URL`.
    pub request_url: String,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, sent as a bearer token.
    pub request_token: VaultSecret,
}

impl GithubOidc {
    /// The provider at `request_url`, authenticated with `request_token`.
    pub fn new(request_url: impl Into<String>, request_token: VaultSecret) -> Self {
        Self {
            request_url: request_url.into(),
            request_token,
        }
    }
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
            auth_method: None,
            auth_mount: None,
            auth_role: None,
            jwt_path: None,
            jwt_env: None,
            audience: None,
            github_oidc: None,
        }
    }
}

impl VaultSettings {
    /// Reads `VAULT_ADDR`, `VAULT_TOKEN`, `~/.vault-token` (its path only; the file is read on
    /// first use), `VAULT_NAMESPACE`, `VAULT_CACERT`, `VAULT_SKIP_VERIFY`, `VAULT_ROLE_ID`,
    /// `VAULT_SECRET_ID`, `NSAUTH_VAULT_APPROLE_MOUNT`, the `NSAUTH_VAULT_AUTH_*` variables
    /// (method, mount, role, JWT path or variable name, audience) and GitHub Actions'
    /// `ACTIONS_ID_TOKEN_REQUEST_URL` / `_TOKEN`. Empty variables count as unset.
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
            auth_method: var("NSAUTH_VAULT_AUTH_METHOD")
                .map(|m| m.parse())
                .transpose()?,
            auth_mount: var("NSAUTH_VAULT_AUTH_MOUNT").map(|m| m.trim().to_owned()),
            auth_role: var("NSAUTH_VAULT_AUTH_ROLE").map(|r| r.trim().to_owned()),
            jwt_path: var("NSAUTH_VAULT_AUTH_JWT_PATH").map(PathBuf::from),
            jwt_env: var("NSAUTH_VAULT_AUTH_JWT_ENV").map(|n| n.trim().to_owned()),
            audience: var("NSAUTH_VAULT_AUTH_AUDIENCE").map(|a| a.trim().to_owned()),
            github_oidc: match (
                var("ACTIONS_ID_TOKEN_REQUEST_URL"),
                var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
            ) {
                (Some(url), Some(token)) => {
                    Some(GithubOidc::new(url.trim(), VaultSecret::new(token.trim())))
                }
                _ => None,
            },
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
            github_oidc: Some(GithubOidc::new(
                "https://token.actions.example/?x=1",
                VaultSecret::new("actions-request-bearer"),
            )),
            ..VaultSettings::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(!shown.contains("secret-id-value"), "{shown}");
        assert!(!shown.contains("actions-request-bearer"), "{shown}");
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
