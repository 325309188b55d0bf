//! Logging in without a long-lived secret, against a live OpenBao: JWT/OIDC role login with a
//! JWT from a file or from GitHub Actions' OIDC provider, Kubernetes auth against a
//! TokenReview stand-in, and a fresh login when Vault's token expires or is revoked mid-run.
//! No Vault token is given to any store here; only the root token arranges the server.

mod common;
#[path = "common/oidc.rs"]
mod oidc;

use nsauth_conformance::{sample_record, unique_name};
use nsauth_store::{Precondition, StoreError, TokenStore};
use nsauth_store_vault::{GithubOidc, VaultAuthMethod, VaultSecret, VaultSettings, VaultStore};
use oidc::{Issuer, Root};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const AUD: &str = "https://github.com/acme";

struct Setup {
    bao: common::Bao,
    root: Root,
    issuer: Arc<Issuer>,
    prefix: String,
    policy: String,
}

async fn setup() -> Option<Setup> {
    let bao = common::bao()?;
    let root = Root {
        addr: bao.addr.clone(),
        token: bao.root_token.clone(),
    };
    let prefix = bao.unique_prefix();
    let policy = root.prefix_policy(&bao.mount, &prefix).await;
    Some(Setup {
        root,
        issuer: Arc::new(Issuer::new()),
        prefix,
        policy,
        bao,
    })
}

/// Settings with no token at all: only the login method.
fn login_settings(method: VaultAuthMethod, mount: &str) -> VaultSettings {
    let mut s = VaultSettings::default();
    s.auth_method = Some(method);
    s.auth_mount = Some(mount.into());
    s.auth_role = Some("ci".into());
    s
}

fn jwt_file(dir: &tempfile::TempDir, jwt: &str) -> std::path::PathBuf {
    let path = dir.path().join("jwt");
    std::fs::write(&path, format!("{jwt}\n")).unwrap();
    path
}

async fn round_trip(store: &VaultStore) {
    let name = unique_name("oidc");
    let record = sample_record("oidc");
    let v1 = store
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();
    let got = store.load(&name).await.unwrap().unwrap();
    assert_eq!((got.record, got.version), (record, v1));
    assert_eq!(store.list().await.unwrap(), vec![name.clone()]);
    store.delete(&name, None).await.unwrap();
}

fn denied(r: Result<impl std::fmt::Debug, StoreError>, needles: &[&str], never: &str) -> String {
    match r {
        Err(e @ StoreError::Denied(_)) => {
            let msg = e.to_string();
            for n in needles {
                assert!(msg.contains(n), "{msg:?} should mention {n:?}");
            }
            assert!(!msg.contains(never), "a secret leaked into: {msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
            msg
        }
        other => panic!("expected Denied, got {other:?}"),
    }
}

#[tokio::test]
async fn jwt_login_from_a_file_reaches_only_its_prefix() {
    let Some(t) = setup().await else { return };
    let mount = oidc::jwt_role(&t.root, &t.issuer, AUD, &t.policy, "10m").await;
    let dir = tempfile::tempdir().unwrap();
    let jwt = t.issuer.ci_jwt(AUD, "acme/app");
    let mut s = login_settings(VaultAuthMethod::Jwt, &mount);
    s.jwt_path = Some(jwt_file(&dir, &jwt));
    let store = VaultStore::from_uri_with(&t.bao.uri(&t.prefix), &s).unwrap();
    assert_eq!(store.auth_method(), "jwt");
    assert!(!format!("{store:?}").contains(&jwt));
    round_trip(&store).await;

    // The role's policy is for this prefix only.
    let other = VaultStore::from_uri_with(&t.bao.uri(&t.bao.unique_prefix()), &s).unwrap();
    denied(
        other
            .put(&unique_name("x"), &sample_record("x"), Precondition::Create)
            .await,
        &[r#"needs "create","update""#],
        &jwt,
    );
}

#[tokio::test]
async fn a_jwt_for_another_audience_or_repository_is_denied_naming_role_and_mount() {
    let Some(t) = setup().await else { return };
    let mount = oidc::jwt_role(&t.root, &t.issuer, AUD, &t.policy, "10m").await;
    let dir = tempfile::tempdir().unwrap();
    for jwt in [
        t.issuer
            .ci_jwt("https://github.com/someone-else", "acme/app"),
        t.issuer.ci_jwt(AUD, "mallory/fork"),
        Issuer::new().ci_jwt(AUD, "acme/app"),
        "not-a-jwt".to_owned(),
    ] {
        let mut s = login_settings(VaultAuthMethod::Jwt, &mount);
        s.jwt_path = Some(jwt_file(&dir, &jwt));
        let store = VaultStore::from_uri_with(&t.bao.uri(&t.prefix), &s).unwrap();
        let msg = denied(
            store.load(&unique_name("aud")).await,
            &["jwt login", "role \"ci\"", &format!("auth/{mount}")],
            &jwt,
        );
        eprintln!("{msg}");
    }
}

#[tokio::test]
async fn jwt_from_github_actions_oidc_provider_with_the_audience() {
    let Some(t) = setup().await else { return };
    let mount = oidc::jwt_role(&t.root, &t.issuer, AUD, &t.policy, "10m").await;
    let request_token = "actions-request-token-7c0ffee";
    let (url, asked) = oidc::github_oidc(Arc::clone(&t.issuer), request_token, "acme/app").await;

    let mut s = login_settings(VaultAuthMethod::Jwt, &mount);
    s.github_oidc = Some(GithubOidc::new(&url, VaultSecret::new(request_token)));
    s.audience = Some(AUD.into());
    let store = VaultStore::from_uri_with(&t.bao.uri(&t.prefix), &s).unwrap();
    round_trip(&store).await;
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "one login, one OIDC request"
    );

    // Another audience than the role's is refused by OpenBao.
    s.audience = Some("https://wrong.example".into());
    let store = VaultStore::from_uri_with(&t.bao.uri(&t.prefix), &s).unwrap();
    denied(
        store.list().await,
        &["jwt login", "bound_audiences"],
        request_token,
    );

    // A request token the provider does not accept: the job lacks id-token: write.
    s.audience = Some(AUD.into());
    s.github_oidc = Some(GithubOidc::new(&url, VaultSecret::new("wrong")));
    let store = VaultStore::from_uri_with(&t.bao.uri(&t.prefix), &s).unwrap();
    denied(store.list().await, &["id-token: write"], "wrong");

    // The bearer token never goes over plain HTTP to another host.
    s.github_oidc = Some(GithubOidc::new(
        "http://token.actions.example/x?api-version=2.0",
        VaultSecret::new(request_token),
    ));
    let store = VaultStore::from_uri_with(&t.bao.uri(&t.prefix), &s).unwrap();
    match store.list().await {
        Err(StoreError::Config(m)) => assert!(m.contains("https://"), "{m}"),
        other => panic!("expected Config, got {other:?}"),
    }
}

/// Polls the server until `f` holds, for at most `secs`.
async fn until(secs: u64, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_expired_vault_token_is_replaced_by_a_fresh_login() {
    let Some(t) = setup().await else { return };
    let mount = oidc::jwt_role(&t.root, &t.issuer, AUD, &t.policy, "3s").await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = login_settings(VaultAuthMethod::Jwt, &mount);
    s.jwt_path = Some(jwt_file(&dir, &t.issuer.ci_jwt(AUD, "acme/app")));
    let store = VaultStore::from_uri_with(&t.bao.uri(&t.prefix), &s).unwrap();
    let name = unique_name("ttl");
    let record = sample_record("ttl");
    store
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();
    let first = t.root.live_logins(&mount).await;
    assert_eq!(first.len(), 1, "one login so far");

    until(30, "the store's first token has expired", async || {
        t.root.live_logins(&mount).await.is_empty()
    })
    .await;
    let got = store.load(&name).await.unwrap().unwrap();
    assert_eq!(got.record, record);
    let second = t.root.live_logins(&mount).await;
    assert_eq!(second.len(), 1, "exactly one new login");
    assert_ne!(second, first);
    store.delete(&name, None).await.unwrap();
}

#[tokio::test]
async fn a_revoked_vault_token_is_replaced_by_one_fresh_login() {
    let Some(t) = setup().await else { return };
    let mount = oidc::jwt_role(&t.root, &t.issuer, AUD, &t.policy, "10m").await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = login_settings(VaultAuthMethod::Jwt, &mount);
    s.jwt_path = Some(jwt_file(&dir, &t.issuer.ci_jwt(AUD, "acme/app")));
    let store = VaultStore::from_uri_with(&t.bao.uri(&t.prefix), &s).unwrap();
    let name = unique_name("revoked");
    let record = sample_record("revoked");
    store
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();
    let first = t.root.live_logins(&mount).await;
    assert_eq!(first.len(), 1);

    t.root
        .ok(
            "PUT",
            &format!("sys/leases/revoke-prefix/auth/{mount}/login"),
            Some(json!({})),
        )
        .await;
    until(30, "the store's token is revoked", async || {
        t.root.live_logins(&mount).await.is_empty()
    })
    .await;
    // The token's lease is far from its end: only Vault's refusal can make the store log in.
    assert_eq!(store.load(&name).await.unwrap().unwrap().record, record);
    assert_eq!(t.root.live_logins(&mount).await.len(), 1);

    // When the fresh login is refused too, the caller hears about the login, once.
    t.root
        .ok(
            "PUT",
            &format!("sys/leases/revoke-prefix/auth/{mount}/login"),
            Some(json!({})),
        )
        .await;
    t.root
        .ok("DELETE", &format!("auth/{mount}/role/ci"), None)
        .await;
    until(30, "the second token is revoked", async || {
        t.root.live_logins(&mount).await.is_empty()
    })
    .await;
    denied(
        store.load(&name).await,
        &["jwt login", "role \"ci\""],
        "eyJ",
    );
}

#[tokio::test]
async fn kubernetes_login_with_the_service_account_token_file() {
    let Some(t) = setup().await else { return };
    let sa_token = oidc::sa_token(&t.issuer);
    let (api, reviews) = oidc::token_review(sa_token.clone()).await;
    let mount = oidc::kubernetes_role(&t.root, api, &t.policy).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = login_settings(VaultAuthMethod::Kubernetes, &mount);
    s.jwt_path = Some(jwt_file(&dir, &sa_token));
    let store = VaultStore::from_uri_with(&t.bao.uri(&t.prefix), &s).unwrap();
    assert_eq!(store.auth_method(), "kubernetes");
    round_trip(&store).await;
    assert!(
        reviews.load(Ordering::SeqCst) >= 1,
        "OpenBao asked the TokenReview API"
    );

    // Another pod's token, which the API server does not authenticate.
    let forged = oidc::sa_token(&Issuer::new());
    s.jwt_path = Some(jwt_file(&dir, &forged));
    let store = VaultStore::from_uri_with(&t.bao.uri(&t.prefix), &s).unwrap();
    denied(
        store.list().await,
        &["kubernetes login", "role \"ci\"", &format!("auth/{mount}")],
        &forged,
    );

    // Outside a pod, with no token file: a configuration error naming the file.
    s.jwt_path = None;
    let store = VaultStore::from_uri_with(&t.bao.uri(&t.prefix), &s).unwrap();
    match store.list().await {
        Err(StoreError::Config(m)) => {
            assert!(
                m.contains("/var/run/secrets/kubernetes.io/serviceaccount/token"),
                "{m}"
            )
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

/// A server at the Vault address that echoes the credential in its refusal (a proxy, a
/// plugin): the error must not carry the JWT, whole or cut short, nor any of its parts.
#[tokio::test]
async fn a_refusal_that_echoes_the_jwt_does_not_leak_it() {
    let (addr, _) = oidc::serve(|req| {
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let jwt = body["jwt"].as_str().unwrap_or_default();
        // Long enough that a message cut to a few hundred characters ends inside the JWT.
        let padding = "x".repeat(200);
        (
            400,
            json!({ "errors": [format!("{padding} could not parse {jwt} and its payload {}", jwt.split('.').nth(1).unwrap_or(""))] }),
        )
    })
    .await;
    let issuer = Issuer::new();
    let jwt = issuer.ci_jwt(AUD, "acme/app");
    let dir = tempfile::tempdir().unwrap();
    let mut s = login_settings(VaultAuthMethod::Jwt, "jwt");
    s.jwt_path = Some(jwt_file(&dir, &jwt));
    let store =
        VaultStore::from_uri_with(&format!("vault+http://{addr}/secret/nsauth"), &s).unwrap();
    let msg = denied(store.list().await, &["jwt login", "role \"ci\""], &jwt);
    let parts: Vec<&str> = jwt.split('.').collect();
    for part in &parts[1..] {
        // Any 24 characters of the payload or signature.
        for window in part.as_bytes().windows(24).step_by(8) {
            let piece = std::str::from_utf8(window).unwrap();
            assert!(!msg.contains(piece), "a piece of the JWT leaked: {msg}");
        }
    }
}
