//! TLS to Vault (reqwest 0.13 on an explicit ring config): a server whose CA is only in
//! `VAULT_CACERT` is trusted with it and refused without it, with a message naming
//! `VAULT_CACERT`; `VAULT_SKIP_VERIFY` reaches it too. The server is a loopback TLS listener
//! made here that records each request and answers 404.

use nsauth_store::{ProfileName, StoreError, TokenStore};
use nsauth_store_vault::{VaultSecret, VaultSettings, VaultStore};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A CA (its PEM) and a TLS listener on 127.0.0.1 whose certificate it signed; the counter
/// counts requests that arrived over TLS.
async fn tls_server(dir: &std::path::Path) -> (std::net::SocketAddr, PathBuf, Arc<AtomicUsize>) {
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
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
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
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(sock).await else {
                continue;
            };
            let mut buf = [0u8; 4096];
            if matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {
                count.fetch_add(1, Ordering::SeqCst);
            }
            let _ = tls
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"errors\":[]}")
                .await;
            let _ = tls.shutdown().await;
        }
    });
    (addr, ca_file, served)
}

async fn load(addr: std::net::SocketAddr, settings: &VaultSettings) -> Result<(), StoreError> {
    let store = VaultStore::from_uri_with(&format!("vault://{addr}/secret/nsauth"), settings)?;
    store
        .load(&ProfileName::parse("prod").unwrap())
        .await
        .map(|_| ())
}

fn settings() -> VaultSettings {
    let mut s = VaultSettings::default();
    s.token = Some(VaultSecret::new("hvs.tls-test"));
    s
}

fn is_tls_refusal(r: &Result<(), StoreError>) -> bool {
    matches!(r, Err(e) if e.to_string().contains("TLS to Vault"))
}

#[tokio::test]
async fn a_private_ca_is_trusted_with_vault_cacert_and_refused_without() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, ca_file, served) = tls_server(dir.path()).await;

    let refused = load(addr, &settings()).await;
    assert!(is_tls_refusal(&refused), "{refused:?}");
    let msg = refused.unwrap_err().to_string();
    assert!(
        msg.contains("VAULT_CACERT"),
        "the message says what to do: {msg}"
    );
    assert_eq!(
        served.load(Ordering::SeqCst),
        0,
        "a request crossed an unchecked TLS"
    );

    let mut with_ca = settings();
    with_ca.ca_cert = Some(ca_file);
    let trusted = load(addr, &with_ca).await;
    assert!(!is_tls_refusal(&trusted), "{trusted:?}");
    assert!(
        served.load(Ordering::SeqCst) >= 1,
        "no request reached the server"
    );
}

#[tokio::test]
async fn vault_skip_verify_reaches_a_server_no_one_vouches_for() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _, served) = tls_server(dir.path()).await;
    let mut s = settings();
    s.skip_verify = true;
    let r = load(addr, &s).await;
    assert!(!is_tls_refusal(&r), "{r:?}");
    assert!(
        served.load(Ordering::SeqCst) >= 1,
        "no request reached the server"
    );
}
