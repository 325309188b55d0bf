//! # nsauth-tls
//!
//! The one TLS set-up shared by every nsauth crate that makes TLS connections (the HTTP
//! client of `nsauth-core`, the Vault and PostgreSQL stores): rustls on the **ring** provider,
//! built explicitly — the process-wide default provider is never read or written, so a
//! library never installs one behind its user's back and no second crypto stack is linked.
//!
//! A server certificate is checked by one of:
//! - [`platform_verifier`]: the platform's verifier (on Linux the system's CA certificates, so
//!   `SSL_CERT_FILE` / `SSL_CERT_DIR` name a custom CA; the OS verifier on macOS and
//!   Windows), with extra roots if given;
//! - a [`CertificateCheck`] of the caller's wrapped by [`verifier_with`], for the few cases a
//!   caller decides itself (accept any certificate on `VAULT_SKIP_VERIFY` or PostgreSQL's
//!   `sslmode=require`, check the chain but not the name for `verify-ca`, refuse every server
//!   with a message saying what to install). Whatever the check decides, the handshake's
//!   signatures are verified with ring's algorithms, in one place.
#![warn(missing_docs)]

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::fmt;
use std::sync::Arc;

pub use rustls;

/// The ring provider, built explicitly.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config on ring (rustls' safe default protocol versions) that checks servers with
/// `verifier` and presents no client certificate.
pub fn config(verifier: Arc<dyn ServerCertVerifier>) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// A client config on ring that trusts no certificate at all: for plain-HTTP clients that
/// must still be given a TLS config (loading CA certificates would be most of their cost).
pub fn config_without_roots() -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

/// The platform's verifier on ring, trusting `extra` roots besides the system's.
/// `Err` (the reason) when the platform's CA certificates cannot be loaded.
pub fn platform_verifier(
    extra: Vec<CertificateDer<'static>>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let v = if extra.is_empty() {
        rustls_platform_verifier::Verifier::new(provider())
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider())
    };
    v.map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
        .map_err(|e| e.to_string())
}

/// A caller's decision on a server's certificate chain (see [`verifier_with`]).
pub trait CertificateCheck: fmt::Debug + Send + Sync + 'static {
    /// Accepts or refuses the chain presented for `server_name`, as
    /// [`ServerCertVerifier::verify_server_cert`].
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error>;
}

/// A verifier that decides on certificates with `check` and verifies the handshake's
/// signatures with ring's algorithms.
pub fn verifier_with(check: impl CertificateCheck) -> Arc<dyn ServerCertVerifier> {
    Arc::new(Checked {
        check,
        provider: provider(),
    })
}

/// Accepts any certificate chain (the handshake's signatures are still verified): encryption
/// without authentication, for `VAULT_SKIP_VERIFY` and PostgreSQL's `sslmode=require`.
#[derive(Debug, Clone, Copy)]
pub struct AcceptAnyCertificate;

impl CertificateCheck for AcceptAnyCertificate {
    fn check(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
}

/// Refuses every server with this message (say what to install or set).
#[derive(Debug, Clone)]
pub struct RefuseEvery(pub String);

impl CertificateCheck for RefuseEvery {
    fn check(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Err(rustls::Error::General(self.0.clone()))
    }
}

#[derive(Debug)]
struct Checked<C> {
    check: C,
    provider: Arc<CryptoProvider>,
}

impl<C: CertificateCheck> ServerCertVerifier for Checked<C> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check
            .check(end_entity, intermediates, server_name, ocsp_response, now)
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(v: &dyn ServerCertVerifier) -> Result<ServerCertVerified, rustls::Error> {
        v.verify_server_cert(
            &CertificateDer::from(vec![]),
            &[],
            &ServerName::try_from("example.com").unwrap(),
            &[],
            UnixTime::now(),
        )
    }

    #[test]
    fn the_check_decides_and_ring_lists_the_signature_schemes() {
        let refuse = verifier_with(RefuseEvery("install ca-certificates".into()));
        let e = decide(refuse.as_ref()).unwrap_err().to_string();
        assert!(e.contains("install ca-certificates"), "{e}");
        assert!(decide(verifier_with(AcceptAnyCertificate).as_ref()).is_ok());
        assert_eq!(
            refuse.supported_verify_schemes(),
            provider()
                .signature_verification_algorithms
                .supported_schemes()
        );
    }

    #[test]
    fn configs_are_built_without_touching_the_process_default() {
        let _ = config(verifier_with(AcceptAnyCertificate));
        let _ = config_without_roots();
        assert!(CryptoProvider::get_default().is_none());
    }
}
