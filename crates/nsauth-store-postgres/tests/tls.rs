//! `sslmode` against the live server, given a certificate for `localhost` signed by a test CA
//! (the superuser turns TLS on with `ALTER SYSTEM` and a reload; connections without TLS, as
//! every other test makes, keep working meanwhile).

mod common;

use nsauth_store::{StoreError, TokenStore};
use nsauth_store_local::seal::StoreKey;
use nsauth_store_postgres::PostgresStore;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = p.self_signed(&key).unwrap().pem();
    Ca {
        pem,
        issuer: Issuer::new(p, key),
    }
}

/// Writes `text` to `dir/name`, owned like the server's data directory (the server reads it).
fn write_for_server(dir: &Path, name: &str, text: &str, owner: (u32, u32)) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&path, Some(owner.0), Some(owner.1)).unwrap();
    path
}

/// `uri` as the store's user with `sslmode` and more, on `host`.
fn store(pg: &common::Pg, host: &str, params: &str) -> PostgresStore {
    let uri = pg
        .uri_for(&common::unique_table(), params)
        .replace("sslmode=disable", "")
        .replace("@127.0.0.1:", &format!("@{host}:"));
    PostgresStore::open(&uri, StoreKey::generate()).unwrap()
}

#[tokio::test]
async fn sslmode_checks_the_certificate_as_libpq_does() {
    use std::os::unix::fs::MetadataExt;
    let Some(pg) = common::pg() else { return };
    let pgdata = std::env::var("NSAUTH_TEST_PGDATA").expect("NSAUTH_TEST_PGDATA");
    let meta = std::fs::metadata(&pgdata).unwrap();
    let owner = (meta.uid(), meta.gid());
    let dir = std::env::temp_dir().join(format!("nsauth-pg-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(owner.0), Some(owner.1)).unwrap();

    let (trusted, other) = (ca(), ca());
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &trusted.issuer)
        .unwrap();
    let cert = write_for_server(&dir, "server.crt", &server_cert.pem(), owner);
    let key = write_for_server(&dir, "server.key", &server_key.serialize_pem(), owner);
    let trusted_pem = write_for_server(&dir, "trusted.pem", &trusted.pem, owner);
    let other_pem = write_for_server(&dir, "other.pem", &other.pem, owner);
    let admin = pg.admin().await;
    for sql in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display()),
        "ALTER SYSTEM SET ssl = on".to_owned(),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    // The reload is asynchronous: wait until the server offers TLS.
    let required = |host: &str| store(&pg, host, "&sslmode=require");
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = required("127.0.0.1").list().await {
        assert!(Instant::now() < deadline, "TLS never came up: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let root = |p: &Path| format!("&sslrootcert={}", p.display());
    let ok = [
        ("127.0.0.1", "&sslmode=prefer".to_owned()),
        ("127.0.0.1", "&sslmode=disable".to_owned()),
        (
            "localhost",
            format!("&sslmode=verify-full{}", root(&trusted_pem)),
        ),
        // verify-ca leaves the name alone; require with a root certificate is verify-ca.
        (
            "127.0.0.1",
            format!("&sslmode=verify-ca{}", root(&trusted_pem)),
        ),
        (
            "127.0.0.1",
            format!("&sslmode=require{}", root(&trusted_pem)),
        ),
    ];
    for (host, params) in &ok {
        let got = store(&pg, host, params).list().await;
        assert!(got.is_ok(), "{host} {params}: {got:?}");
    }
    let refused = [
        (
            "127.0.0.1",
            format!("&sslmode=verify-full{}", root(&trusted_pem)),
        ),
        (
            "localhost",
            format!("&sslmode=verify-full{}", root(&other_pem)),
        ),
        (
            "127.0.0.1",
            format!("&sslmode=verify-ca{}", root(&other_pem)),
        ),
        ("127.0.0.1", format!("&sslmode=require{}", root(&other_pem))),
    ];
    for (host, params) in &refused {
        match store(&pg, host, params).list().await {
            Err(e @ StoreError::Unavailable { .. }) => {
                assert!(!e.is_retryable(), "{host} {params}: {e}");
                assert!(e.to_string().contains("sslmode"), "{host} {params}: {e}");
            }
            other => panic!("{host} {params}: expected a TLS failure, got {other:?}"),
        }
    }

    for sql in [
        "ALTER SYSTEM RESET ssl",
        "ALTER SYSTEM RESET ssl_cert_file",
        "ALTER SYSTEM RESET ssl_key_file",
        "SELECT pg_reload_conf()",
    ] {
        admin.batch_execute(sql).await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
