//! End to end: the `nsauth` binary on a `vault://` profile with no Vault token anywhere in its
//! environment — it logs in to OpenBao with a CI job's JWT (from a file or a variable) or a
//! Kubernetes service-account token, then sets up the profile, logs in to NetSuite (the
//! emulator) and hands out tokens. Needs `cargo xtask services up`.

#[path = "../crates/nsauth-store-vault/tests/common/oidc.rs"]
mod oidc;

use nsauth_e2e::*;
use oidc::{Issuer, Root};

const AUD: &str = "https://github.com/acme";

/// OpenBao with the root token, and a fresh prefix with its least-privilege policy.
struct Bao {
    root: Root,
    /// `127.0.0.1:PORT`.
    hostport: String,
    prefix: String,
    policy: String,
}

async fn bao() -> Option<Bao> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(addr), Some(token)) = (
        get("NSAUTH_TEST_VAULT_ADDR"),
        get("NSAUTH_TEST_VAULT_ROOT_TOKEN"),
    ) else {
        assert!(
            get("NSAUTH_REQUIRE_SERVICES").as_deref() != Some("1"),
            "NSAUTH_REQUIRE_SERVICES=1 but OpenBao is not configured; run cargo xtask test"
        );
        eprintln!("SKIPPED: no OpenBao (run cargo xtask services up)");
        return None;
    };
    let root = Root { addr, token };
    let prefix = format!("nsauth/e2e-oidc-{}", uuid::Uuid::new_v4().simple());
    let policy = root.prefix_policy("secret", &prefix).await;
    let hostport = root.addr.trim_start_matches("http://").to_owned();
    Some(Bao {
        root,
        hostport,
        prefix,
        policy,
    })
}

impl Bao {
    /// A sandbox on this prefix whose only Vault setting is `env`.
    fn sandbox(&self, env: &[(&str, &str)]) -> Sandbox {
        let uri = format!("vault+http://{}/secret/{}", self.hostport, self.prefix);
        Sandbox::remote(
            uri,
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

/// `profile set`, a NetSuite login and two `token` calls (the second from the store).
async fn full_run(sb: &Sandbox) {
    let emu = emulator().await;
    set_public_profile(sb, &emu, "ci");
    login(sb, "ci").await;
    let token = sb.ok(&["--profile", "ci", "token"]);
    assert!(token_works(&emu, token.trim()).await);
    assert_eq!(sb.ok(&["--profile", "ci", "token"]), token, "cached token");
    assert_eq!(sb.ok(&["profile", "list"]).trim(), "ci");
    sb.ok(&["profile", "delete", "ci"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_login_from_a_file_without_any_vault_token() {
    let Some(b) = bao().await else { return };
    let issuer = Issuer::new();
    let mount = oidc::jwt_role(&b.root, &issuer, AUD, &b.policy, "10m").await;
    let dir = tempfile::tempdir().unwrap();
    let jwt_path = dir.path().join("jwt");
    std::fs::write(&jwt_path, issuer.ci_jwt(AUD, "acme/app")).unwrap();
    let jwt_path = jwt_path.display().to_string();
    let sb = b.sandbox(&[
        ("NSAUTH_VAULT_AUTH_METHOD", "jwt"),
        ("NSAUTH_VAULT_AUTH_MOUNT", &mount),
        ("NSAUTH_VAULT_AUTH_ROLE", "ci"),
        ("NSAUTH_VAULT_AUTH_JWT_PATH", &jwt_path),
    ]);
    assert!(sb.extra_env.iter().all(|(k, _)| k != "VAULT_TOKEN"));
    full_run(&sb).await;

    // At trace level the login is visible, the JWT is not.
    let jwt = std::fs::read_to_string(&jwt_path).unwrap();
    let args = ["-vvv", "profile", "list"];
    let out = sb.run(&args);
    assert_ok(&out, &args);
    assert!(
        contains(&out.stderr, "logged in to Vault"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!contains(&out.stderr, &jwt) && !contains(&out.stdout, &jwt));
    // Nor any part of it (a signature or payload logged on its own).
    for part in jwt.split('.') {
        assert!(!contains(&out.stderr, part), "a JWT segment was logged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_login_from_a_gitlab_id_token_variable() {
    let Some(b) = bao().await else { return };
    let issuer = Issuer::new();
    let mount = oidc::jwt_role(&b.root, &issuer, AUD, &b.policy, "10m").await;
    let jwt = issuer.ci_jwt(AUD, "acme/app");
    let sb = b.sandbox(&[
        ("NSAUTH_VAULT_AUTH_METHOD", "jwt"),
        ("NSAUTH_VAULT_AUTH_MOUNT", &mount),
        ("NSAUTH_VAULT_AUTH_ROLE", "ci"),
        ("NSAUTH_VAULT_AUTH_JWT_ENV", "NSAUTH_ID_TOKEN"),
        ("NSAUTH_ID_TOKEN", &jwt),
    ]);
    full_run(&sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_for_another_audience_is_a_store_error_naming_the_role_not_the_jwt() {
    let Some(b) = bao().await else { return };
    let issuer = Issuer::new();
    let mount = oidc::jwt_role(&b.root, &issuer, AUD, &b.policy, "10m").await;
    let jwt = issuer.ci_jwt("https://gitlab.example.com", "acme/app");
    let sb = b.sandbox(&[
        ("NSAUTH_VAULT_AUTH_METHOD", "jwt"),
        ("NSAUTH_VAULT_AUTH_MOUNT", &mount),
        ("NSAUTH_VAULT_AUTH_ROLE", "ci"),
        ("NSAUTH_VAULT_AUTH_JWT_ENV", "NSAUTH_ID_TOKEN"),
        ("NSAUTH_ID_TOKEN", &jwt),
    ]);
    let args = ["profile", "list"];
    let out = sb.run(&args);
    assert_exit(&out, 4, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("jwt login") && stderr.contains("role \"ci\""),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("auth/{mount}")), "{stderr}");
    assert!(!contains(&out.stderr, &jwt) && !contains(&out.stdout, &jwt));

    // A method nsauth does not know, or a role without a method: configuration, exit 2.
    for env in [
        vec![("NSAUTH_VAULT_AUTH_METHOD", "oidc")],
        vec![("NSAUTH_VAULT_AUTH_ROLE", "ci")],
        vec![
            ("NSAUTH_VAULT_AUTH_METHOD", "jwt"),
            ("NSAUTH_VAULT_AUTH_ROLE", "ci"),
        ],
    ] {
        let out = b.sandbox(&env).run(&args);
        assert_exit(&out, 2, &args);
        assert!(contains(&out.stderr, "NSAUTH_VAULT_AUTH_"), "{env:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_login_with_a_service_account_token() {
    let Some(b) = bao().await else { return };
    let issuer = Issuer::new();
    let sa_token = oidc::sa_token(&issuer);
    let (api, _) = oidc::token_review(sa_token.clone()).await;
    let mount = oidc::kubernetes_role(&b.root, api, &b.policy).await;
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, &sa_token).unwrap();
    let token_path = token_path.display().to_string();
    let sb = b.sandbox(&[
        ("NSAUTH_VAULT_AUTH_METHOD", "kubernetes"),
        ("NSAUTH_VAULT_AUTH_MOUNT", &mount),
        ("NSAUTH_VAULT_AUTH_ROLE", "ci"),
        ("NSAUTH_VAULT_AUTH_JWT_PATH", &token_path),
    ]);
    full_run(&sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runners_each_log_in_and_share_one_refresh() {
    let Some(b) = bao().await else { return };
    let issuer = Issuer::new();
    let mount = oidc::jwt_role(&b.root, &issuer, AUD, &b.policy, "10m").await;
    let jwt = issuer.ci_jwt(AUD, "acme/app");
    let sb = b.sandbox(&[
        ("NSAUTH_VAULT_AUTH_METHOD", "jwt"),
        ("NSAUTH_VAULT_AUTH_MOUNT", &mount),
        ("NSAUTH_VAULT_AUTH_ROLE", "ci"),
        ("NSAUTH_VAULT_AUTH_JWT_ENV", "NSAUTH_ID_TOKEN"),
        ("NSAUTH_ID_TOKEN", &jwt),
    ]);
    let emu = emulator().await;
    emu.set_access_ttl(120);
    set_public_profile(&sb, &emu, "ci");
    login(&sb, "ci").await;
    emu.set_access_ttl(3600);
    let before = emu.counters();
    let logins_before = b.root.live_logins(&mount).await.len();
    // Eight runners start at once, each with its own Vault login, all needing a refresh.
    let outs = run_concurrently((0..8).map(|_| {
        let mut c = sb.cmd();
        c.args(["--profile", "ci", "token", "--min-ttl", "300"]);
        c
    }))
    .await;
    let mut tokens = std::collections::BTreeSet::new();
    for o in &outs {
        assert_ok(o, &["token (concurrent)"]);
        tokens.insert(String::from_utf8(o.stdout.clone()).unwrap());
    }
    assert_eq!(emu.counters().refresh_token - before.refresh_token, 1);
    assert_eq!(tokens.len(), 1, "every runner gets the one refreshed token");
    assert!(token_works(&emu, tokens.first().unwrap().trim()).await);
    assert_eq!(
        b.root.live_logins(&mount).await.len() - logins_before,
        8,
        "one Vault login per process"
    );
    sb.ok(&["profile", "delete", "ci"]);
}
