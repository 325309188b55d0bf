//! TLS for the connection, with rustls and the ring provider (no OpenSSL): `sslmode` decides
//! whether the server's certificate is checked, as libpq does.

use crate::uri::{Settings, SslMode};
use nsauth_store::StoreError;
use nsauth_tls::CertificateCheck;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connector for `settings.sslmode`: a certificate checked against `sslrootcert` (or
/// the system's roots) for `verify-ca`/`verify-full`; for `prefer`/`require`, encryption
/// without a check, which is what libpq does in those modes.
pub(crate) fn connector(settings: &Settings) -> Result<MakeRustlsConnect, StoreError> {
    let verifier = match settings.sslmode {
        // Encrypted, but any certificate is accepted (the handshake signatures are still
        // checked). libpq behaves the same; use `verify-full` against a server you do not
        // control the network path to.
        SslMode::Disable | SslMode::Prefer | SslMode::Require => {
            nsauth_tls::verifier_with(nsauth_tls::AcceptAnyCertificate)
        }
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(roots(settings)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, nsauth_tls::provider())
                .build()
                .map_err(|e| StoreError::Config(format!("TLS set-up failed: {e}")))?;
            nsauth_tls::verifier_with(Checked {
                webpki,
                check_name: settings.sslmode == SslMode::VerifyFull,
            })
        }
    };
    Ok(MakeRustlsConnect::new(nsauth_tls::config(verifier)))
}

fn roots(settings: &Settings) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match &settings.root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    StoreError::Config(format!(
                        "cannot read the root certificate {} (sslrootcert / PGSSLROOTCERT): {e}",
                        path.display()
                    ))
                })?;
            for c in certs {
                store.add(c).map_err(|e| {
                    StoreError::Config(format!(
                        "root certificate {} is not usable: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
        }
    }
    if store.is_empty() {
        return Err(StoreError::Config(
            "no trusted root certificate for sslmode=verify-ca/verify-full: set sslrootcert=PATH or PGSSLROOTCERT".into(),
        ));
    }
    Ok(store)
}

/// `verify-ca` / `verify-full`: the chain must lead to a trusted root; the name is checked
/// only for `verify-full`.
#[derive(Debug)]
struct Checked {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl CertificateCheck for Checked {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
}
