//! The TLS of the Vault client: rustls on the ring provider, given to reqwest as a
//! preconfigured config. reqwest 0.13 is built without a provider (one TLS stack, no
//! aws-lc-rs) and would otherwise take rustls' process-wide default; a library does not
//! install that behind its user's back (the same decision as `nsauth_core::http::tls`).
//!
//! Server certificates: the platform's verifier (the system's CA certificates on Linux,
//! `SSL_CERT_FILE` honoured) plus `VAULT_CACERT`'s; none at all for `VAULT_SKIP_VERIFY`.

use nsauth_store::StoreError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions");
    let verifier: Arc<dyn ServerCertVerifier> = match trust {
        Trust::None => {
            return Ok(builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth())
        }
        Trust::Anything => Arc::new(Anything(provider)),
        Trust::Platform(extra) => Arc::new(
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider).map_err(
                |e| {
                    StoreError::Config(format!(
                        "cannot load CA certificates to check Vault's TLS certificate ({e}); \
                         set VAULT_CACERT to the CA certificate file, or install the system's \
                         CA certificates"
                    ))
                },
            )?,
        ),
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Accepts any certificate (the handshake's signatures are still checked).
#[derive(Debug)]
struct Anything(Arc<CryptoProvider>);

impl ServerCertVerifier for Anything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
