//! The TLS of nsauth's HTTP clients (reqwest 0.13 on an explicit ring config, the platform's
//! verifier): a server signed by a private CA is refused, and trusted once `SSL_CERT_FILE`
//! names that CA — the documented way to add a corporate CA on Linux. Its own test binary,
//! since it sets `SSL_CERT_FILE` for the process.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback TLS server whose certificate a fresh CA signed; returns its address and the
/// CA's PEM.
async fn server() -> (std::net::SocketAddr, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(leaf.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(sock).await else {
                continue;
            };
            let mut buf = [0u8; 4096];
            let _ = tls.read(&mut buf).await;
            let _ = tls
                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .await;
            let _ = tls.shutdown().await;
        }
    });
    (addr, ca_cert.pem())
}

fn chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

#[tokio::test]
async fn a_private_ca_is_refused_until_ssl_cert_file_names_it() {
    let (addr, ca_pem) = server().await;
    let url = format!("https://{addr}/");

    let client = nsauth_core::http::tls::client_builder().build().unwrap();
    let err = client.get(&url).send().await.unwrap_err();
    let why = chain(&err);
    assert!(
        why.contains("certificate") || why.contains("UnknownIssuer"),
        "refused for the certificate: {why}"
    );

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    std::env::set_var("SSL_CERT_FILE", &ca_file);
    let client = nsauth_core::http::tls::client_builder().build().unwrap();
    let resp = client.get(&url).send().await;
    std::env::remove_var("SSL_CERT_FILE");
    assert_eq!(
        resp.map(|r| r.status().as_u16()).map_err(|e| chain(&e)),
        Ok(204)
    );
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "nsauth-core installed a process-wide rustls provider"
    );
}
