//! The TLS every HTTP client of nsauth's libraries uses: rustls on the ring provider, server
//! certificates checked by the platform's verifier (on Linux the system's CA certificates
//! through rustls-native-certs, so `SSL_CERT_FILE` / `SSL_CERT_DIR` still name a custom CA;
//! the OS verifier on macOS and Windows).
//!
//! Why a preconfigured config (issue #13): reqwest 0.13 is built with `rustls-no-provider`, so
//! it brings no crypto of its own (no aws-lc-rs, one TLS stack) and otherwise takes rustls'
//! process-wide default provider — panicking when none is installed. A library must not
//! install that default behind its user's back (their own `install_default` would then fail),
//! so each client built here gets this explicit ring `ClientConfig` through
//! `tls_backend_preconfigured`. The `nsauth` binary also installs ring as the process
//! default, once, in `main`, for any client built without this module.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// The ring provider, built explicitly (never read from or written to the process default).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config on ring with the platform's verifier. When the system has no CA
/// certificates at all, every TLS handshake fails with a message saying so (plain HTTP still
/// works), rather than the client failing to build.
pub fn client_config() -> rustls::ClientConfig {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions");
    let verifier: Arc<dyn ServerCertVerifier> =
        match rustls_platform_verifier::Verifier::new(provider.clone()) {
            Ok(v) => Arc::new(v),
            Err(e) => Arc::new(NoRoots {
                why: e.to_string(),
                provider,
            }),
        };
    builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// `reqwest::Client::builder()` on [`client_config`].
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(client_config())
}

/// Refuses every server: the platform verifier could not be built (no CA certificates).
#[derive(Debug)]
struct NoRoots {
    why: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoRoots {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Err(rustls::Error::General(format!(
            "cannot check the server's certificate: {}; install the system's CA certificates \
             (e.g. the ca-certificates package) or set SSL_CERT_FILE",
            self.why
        )))
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

    #[test]
    fn clients_build_on_ring_without_touching_the_process_default() {
        // reqwest would panic building a client if it fell back to the (absent) default.
        assert!(client_builder().build().is_ok());
        assert!(
            CryptoProvider::get_default().is_none(),
            "a library installed a process-wide rustls provider"
        );
    }

    #[test]
    fn no_system_roots_refuses_with_a_message_saying_what_to_do() {
        let v = NoRoots {
            why: "No CA certificates were loaded from the system".into(),
            provider: provider(),
        };
        let name = ServerName::try_from("example.com").unwrap();
        let e = v
            .verify_server_cert(
                &CertificateDer::from(vec![]),
                &[],
                &name,
                &[],
                UnixTime::now(),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("SSL_CERT_FILE"), "{e}");
        assert!(!v.supported_verify_schemes().is_empty());
    }
}
