//! A store URI or Vault setting that cannot work is a configuration error (exit 2 in the
//! CLI), with one line saying what to change; opening does no network I/O.

use nsauth_store::StoreError;
use nsauth_store_vault::{VaultSecret, VaultSettings, VaultStore};

fn expect_config<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str, needle: &str) {
    match r {
        Err(e @ StoreError::Config(_)) => {
            let shown = e.to_string();
            assert!(shown.contains(needle), "{what}: {shown}");
            assert!(!shown.contains('\n'), "{what}: one line: {shown}");
            assert!(!shown.contains("hvs.secret"), "{what}: no token: {shown}");
        }
        other => panic!("{what}: expected a configuration error, got {other:?}"),
    }
}

fn with_token() -> VaultSettings {
    let mut s = VaultSettings::default();
    s.token = Some(VaultSecret::new("hvs.secret"));
    s
}

#[test]
fn bad_uris_are_configuration_errors() {
    for bad in [
        "vault://",
        "vault://host:8200",
        "vault://host:8200/secret",
        "vault:///secret/nsauth",
        "vault://host/secret/p?token=x",
        "vault://user:pw@host/secret/p",
        "vault://host:99999/secret/p",
        "vault://host/secret/../p",
        "vaults://host/secret/p",
    ] {
        expect_config(
            VaultStore::from_uri_with(bad, &with_token()),
            bad,
            "expected vault://HOST:PORT/MOUNT/PREFIX",
        );
    }
}

#[test]
fn unusable_settings_are_configuration_errors() {
    let uri = "vault+http://127.0.0.1:1/secret/nsauth";
    let dir = tempfile::tempdir().unwrap();

    let mut s = with_token();
    s.ca_cert = Some(dir.path().join("missing.pem"));
    expect_config(
        VaultStore::from_uri_with(uri, &s),
        "missing CA file",
        "VAULT_CACERT",
    );

    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, b"hello").unwrap();
    s.ca_cert = Some(not_pem);
    expect_config(
        VaultStore::from_uri_with(uri, &s),
        "not a PEM file",
        "VAULT_CACERT",
    );

    let mut s = with_token();
    s.namespace = Some("team\nx".into());
    expect_config(
        VaultStore::from_uri_with(uri, &s),
        "bad namespace",
        "VAULT_NAMESPACE",
    );

    let mut s = VaultSettings::default();
    s.role_id = Some("role".into());
    expect_config(
        VaultStore::from_uri_with(uri, &s),
        "role without secret",
        "VAULT_SECRET_ID",
    );
    let mut s = VaultSettings::default();
    s.secret_id = Some(VaultSecret::new("hvs.secret"));
    expect_config(
        VaultStore::from_uri_with(uri, &s),
        "secret without role",
        "VAULT_ROLE_ID",
    );
}
