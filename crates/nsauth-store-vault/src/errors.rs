//! Mapping Vault's HTTP answers and transport failures to the store error kinds a caller can
//! act on. Vault's error strings name paths and reasons, never secret values; they are still
//! cut short before they reach a message.

use nsauth_store::StoreError;
use reqwest::StatusCode;
use std::error::Error as _;

/// Vault's answer when `options.cas` does not match the current version.
const CAS_MISMATCH: &str = "check-and-set parameter did not match the current version";

/// What a request was for: says which capability on which policy path it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `GET MOUNT/data/PREFIX/NAME`.
    Read,
    /// `POST MOUNT/data/PREFIX/NAME`.
    Write,
    /// `GET MOUNT/metadata/PREFIX/NAME`.
    ReadMetadata,
    /// `PATCH MOUNT/metadata/PREFIX/NAME`.
    PatchMetadata,
    /// `POST MOUNT/destroy/PREFIX/NAME`.
    Destroy,
    /// `LIST MOUNT/metadata/PREFIX/`.
    List,
    /// `POST auth/MOUNT/login` (AppRole, JWT, Kubernetes).
    Login,
    /// `GET sys/internal/ui/mounts/MOUNT`.
    MountCheck,
}

impl Op {
    fn what(self) -> &'static str {
        match self {
            Op::Read => "reading a profile",
            Op::Write => "writing a profile",
            Op::ReadMetadata => "reading a profile's metadata",
            Op::PatchMetadata => "recording the writer in the custom metadata",
            Op::Destroy => "destroying a deleted profile's versions",
            Op::List => "listing profiles",
            Op::Login => "logging in",
            Op::MountCheck => "checking the mount",
        }
    }

    /// `(capabilities, "data" | "metadata")` the policy must grant.
    fn needs(self) -> Option<(&'static str, &'static str)> {
        match self {
            Op::Read => Some((r#""read""#, "data")),
            Op::Write => Some((r#""create","update""#, "data")),
            Op::ReadMetadata => Some((r#""read""#, "metadata")),
            Op::PatchMetadata => Some((r#""patch""#, "metadata")),
            Op::Destroy => Some((r#""update""#, "destroy")),
            Op::List => Some((r#""list""#, "metadata")),
            Op::Login | Op::MountCheck => None,
        }
    }
}

/// Where the request went, for messages.
pub(crate) struct Target<'a> {
    /// `https://host:port` as shown to people.
    pub addr: &'a str,
    pub mount: &'a str,
    pub prefix: &'a str,
    pub namespace: Option<&'a str>,
}

impl Target<'_> {
    fn in_namespace(&self) -> String {
        self.namespace
            .map(|n| format!(" in namespace \"{n}\""))
            .unwrap_or_default()
    }
}

/// Vault's `{"errors": [...]}`, flattened to one short line.
pub(crate) fn vault_errors(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<String>,
    }
    let joined = serde_json::from_slice::<Body>(body)
        .map(|b| b.errors.join("; "))
        .unwrap_or_default();
    let flat = joined
        .replace("1 error occurred:", "")
        .replace('*', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut short: String = flat.chars().take(300).collect();
    if short.is_empty() {
        short = "no error message".into();
    }
    short
}

/// Whether a 400 answer is a compare-and-swap mismatch.
pub(crate) fn is_cas_mismatch(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::BAD_REQUEST && String::from_utf8_lossy(body).contains(CAS_MISMATCH)
}

/// Whether a 404 says there is no secrets engine at the path at all (a wrong mount), rather
/// than no secret.
pub(crate) fn is_missing_mount(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("no handler for route")
}

/// The store URI names a mount that does not exist.
pub(crate) fn missing_mount(body: &[u8], t: &Target<'_>) -> StoreError {
    StoreError::Unavailable {
        message: format!(
            "Vault at {}{} has no secrets engine mounted at \"{}\" ({}); check the mount in the store URI \
             (bao secrets list shows the mounts)",
            t.addr,
            t.in_namespace(),
            t.mount,
            vault_errors(body)
        ),
        retryable: false,
    }
}

/// Maps an HTTP answer that the caller does not handle itself.
pub(crate) fn status(op: Op, status: StatusCode, body: &[u8], t: &Target<'_>) -> StoreError {
    let errors = vault_errors(body);
    let ns = t.in_namespace();
    match status {
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => match op.needs() {
            Some((caps, kind)) => StoreError::Denied(format!(
                "Vault at {addr}{ns} refused {what} ({errors}): the token needs {caps} on {mount}/{kind}/{prefix}/* \
                 (see docs/stores/vault-policy.hcl), or the token has expired or is not valid; check it with: bao token lookup",
                addr = t.addr,
                what = op.what(),
                mount = t.mount,
                prefix = t.prefix,
            )),
            None => StoreError::Denied(format!(
                "Vault at {addr}{ns} refused {what} ({errors})",
                addr = t.addr,
                what = op.what()
            )),
        },
        StatusCode::SERVICE_UNAVAILABLE if errors.to_ascii_lowercase().contains("sealed") => {
            StoreError::Unavailable {
                message: format!("Vault at {} is sealed; unseal it (bao operator unseal) and try again", t.addr),
                retryable: true,
            }
        }
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::PRECONDITION_FAILED => {
            StoreError::Unavailable {
                message: format!("Vault at {} answered {s} to {} ({errors}); try again", t.addr, op.what()),
                retryable: true,
            }
        }
        s => StoreError::Backend {
            store: "vault",
            source: format!(
                "Vault at {}{ns} answered {s} to {} on mount \"{}\" ({errors}); is \"{}\" a KV version 2 mount?",
                t.addr,
                op.what(),
                t.mount,
                t.mount
            )
            .into(),
        },
    }
}

/// Maps a transport failure (no HTTP answer at all).
pub(crate) fn transport(op: Op, err: &reqwest::Error, t: &Target<'_>) -> StoreError {
    let mut chain = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = err.source();
    while let Some(e) = cur {
        chain.push(e.to_string());
        cur = e.source();
    }
    let cause = chain.last().cloned().unwrap_or_else(|| err.to_string());
    let tls = chain
        .iter()
        .any(|c| c.contains("certificate") || c.contains("UnknownIssuer") || c.contains("tls"));
    if tls {
        return StoreError::Unavailable {
            message: format!(
                "TLS to Vault at {} failed while {} ({cause}); set VAULT_CACERT to the CA certificate file, \
                 or use vault+http:// for a plain-HTTP dev server",
                t.addr,
                op.what()
            ),
            retryable: false,
        };
    }
    let why = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        format!("cannot connect: {cause}")
    } else {
        cause
    };
    StoreError::Unavailable {
        message: format!(
            "cannot reach Vault at {} while {} ({why}); check that the server runs and VAULT_ADDR or the store URI is right",
            t.addr,
            op.what()
        ),
        retryable: true,
    }
}

/// A redirect, which nsauth does not follow: the request carried the Vault token.
pub(crate) fn redirected(
    op: Op,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    t: &Target<'_>,
) -> StoreError {
    // Only the origin of the target is shown: a query could hold anything.
    let to = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| url::Url::parse(l).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .map(|o| format!(" to {}", o.chars().take(120).collect::<String>()))
        .unwrap_or_default();
    StoreError::Unavailable {
        message: format!(
            "Vault at {} answered HTTP {}{to} while {}; nsauth follows no redirect, so that the Vault token never goes \
             anywhere else: point VAULT_ADDR or the store URI at the address that answers directly (the active node)",
            t.addr,
            status.as_u16(),
            op.what()
        ),
        retryable: false,
    }
}

/// An answer over the size limit.
pub(crate) fn too_large(op: Op, limit: usize, t: &Target<'_>) -> StoreError {
    StoreError::Unavailable {
        message: format!(
            "Vault at {} sent an answer larger than {} KiB while {}; that is not a Vault answer nsauth expects \
             (a proxy or another server at that address?); nothing was stored",
            t.addr,
            limit / 1024,
            op.what()
        ),
        retryable: false,
    }
}

/// A secret that is not an nsauth record.
pub(crate) fn corrupt(
    t: &Target<'_>,
    name: &str,
    version: u64,
    why: impl Into<String>,
) -> StoreError {
    StoreError::Corrupt {
        what: format!(
            "at Vault {}/data/{}/{name} (version {version})",
            t.mount, t.prefix
        ),
        why: why.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target<'static> {
        Target {
            addr: "https://vault:8200",
            mount: "secret",
            prefix: "nsauth",
            namespace: None,
        }
    }

    #[test]
    fn forbidden_names_the_policy_path() {
        let e = status(
            Op::Write,
            StatusCode::FORBIDDEN,
            br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#,
            &target(),
        );
        let msg = e.to_string();
        assert!(matches!(e, StoreError::Denied(_)), "{e:?}");
        assert!(
            msg.contains(r#"needs "create","update" on secret/data/nsauth/*"#),
            "{msg}"
        );
        assert!(msg.contains("(permission denied)"), "{msg}");
    }

    #[test]
    fn sealed_and_server_errors_are_retryable() {
        let e = status(
            Op::Read,
            StatusCode::SERVICE_UNAVAILABLE,
            br#"{"errors":["Vault is sealed"]}"#,
            &target(),
        );
        assert!(e.is_retryable() && e.to_string().contains("sealed"), "{e}");
        let e = status(
            Op::List,
            StatusCode::INTERNAL_SERVER_ERROR,
            b"oops",
            &target(),
        );
        assert!(e.is_retryable(), "{e}");
    }

    #[test]
    fn cas_mismatch_is_recognised() {
        assert!(is_cas_mismatch(
            StatusCode::BAD_REQUEST,
            br#"{"errors":["check-and-set parameter did not match the current version"]}"#
        ));
        assert!(!is_cas_mismatch(
            StatusCode::BAD_REQUEST,
            br#"{"errors":["no data provided"]}"#
        ));
    }
}
