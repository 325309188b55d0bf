//! The TLS of the Vault client: rustls on the ring provider, given to reqwest as a
//! preconfigured config. reqwest 0.13 is built without a provider (one TLS stack, no
//! aws-lc-rs) and would otherwise take rustls' process-wide default; a library does not
//! install that behind its user's back (the same decision as `nsauth_core::http::tls`).
//!
//! Server certificates: the platform's verifier (the system's CA certificates on Linux,
//! `SSL_CERT_FILE` honoured) plus `VAULT_CACERT`'s; none at all for `VAULT_SKIP_VERIFY`.

use nsauth_store::StoreError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;

/// What the server's certificate is checked against.
pub(crate) enum Trust {
    /// Plain http: no CA certificates are loaded (that would be most of a `token` call's cost).
    None,
    /// The system's CA certificates and these.
    Platform(Vec<CertificateDer<'static>>),
    /// `VAULT_SKIP_VERIFY`: anything.
    Anything,
}

/// Reads `VAULT_CACERT`'s PEM file.
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let pem = std::fs::read(path).map_err(|e| {
        StoreError::Config(format!(
            "cannot read VAULT_CACERT {}: {e}; point it at a PEM file of CA certificates",
            path.display()
        ))
    })?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    let certs = certs.map_err(|e| {
        StoreError::Config(format!(
            "VAULT_CACERT {} is not a PEM certificate file: {e}",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(StoreError::Config(format!(
            "VAULT_CACERT {} holds no certificate; point it at a PEM file of CA certificates",
            path.display()
        )));
    }
    Ok(certs)
}

/// The client config for `trust`.
pub(crate) fn client_config(trust: Trust) -> Result<rustls::ClientConfig, StoreError> {
    let verifier = match trust {
        Trust::None => return Ok(nsauth_tls::config_without_roots()),
        Trust::Anything => nsauth_tls::verifier_with(nsauth_tls::AcceptAnyCertificate),
        Trust::Platform(extra) => nsauth_tls::platform_verifier(extra).map_err(|e| {
            StoreError::Config(format!(
                "cannot load CA certificates to check Vault's TLS certificate ({e}); \
                 set VAULT_CACERT to the CA certificate file, or install the system's \
                 CA certificates"
            ))
        })?,
    };
    Ok(nsauth_tls::config(verifier))
}
