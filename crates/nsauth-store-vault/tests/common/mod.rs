//! The live OpenBao server the tests run against (`cargo xtask services up`), and root-token
//! helpers to arrange what a test needs on it.
#![allow(dead_code)]

use nsauth_store_vault::{VaultSecret, VaultSettings, VaultStore};

/// The server from `.services/env`, as exported by `cargo xtask test`.
pub struct Bao {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// A token limited to the `nsauth` policy (docs/stores/vault-policy.hcl).
    pub token: String,
    pub root_token: String,
    /// The dev server's KV v2 mount, `secret`.
    pub mount: String,
}

/// The server, or `None` (after saying so) when none is configured. With
/// `NSAUTH_REQUIRE_SERVICES=1` a missing server fails the test instead.
pub fn bao() -> Option<Bao> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("NSAUTH_TEST_VAULT_ADDR"),
        var("NSAUTH_TEST_VAULT_TOKEN"),
        var("NSAUTH_TEST_VAULT_ROOT_TOKEN"),
    ) {
        (Some(addr), Some(token), Some(root_token)) => Some(Bao {
            addr: addr.trim_end_matches('/').to_owned(),
            token,
            root_token,
            mount: var("NSAUTH_TEST_VAULT_MOUNT").unwrap_or_else(|| "secret".into()),
        }),
        _ if var("NSAUTH_REQUIRE_SERVICES").as_deref() == Some("1") => panic!(
            "NSAUTH_REQUIRE_SERVICES=1 but NSAUTH_TEST_VAULT_ADDR, NSAUTH_TEST_VAULT_TOKEN or \
             NSAUTH_TEST_VAULT_ROOT_TOKEN is not set; run: cargo xtask services up, and export .services/env"
        ),
        _ => {
            eprintln!("SKIPPED: no OpenBao (run cargo xtask services up)");
            None
        }
    }
}

impl Bao {
    /// A fresh prefix for one test: `nsauth/t<random>`, inside the policy's `nsauth/*`.
    pub fn unique_prefix(&self) -> String {
        format!("nsauth/t{}", uuid::Uuid::new_v4().simple())
    }

    /// `vault+http://127.0.0.1:PORT/MOUNT/PREFIX`.
    pub fn uri(&self, prefix: &str) -> String {
        let hostport = self.addr.trim_start_matches("http://");
        format!("vault+http://{hostport}/{}/{prefix}", self.mount)
    }

    /// Settings with `token` and nothing taken from the environment.
    pub fn settings(&self, token: &str) -> VaultSettings {
        let mut s = VaultSettings::default();
        s.token = Some(VaultSecret::new(token));
        s
    }

    /// A store under `prefix` with the policy-limited token.
    pub fn store(&self, prefix: &str) -> VaultStore {
        VaultStore::from_uri_with(&self.uri(prefix), &self.settings(&self.token))
            .expect("open the vault store")
    }

    /// A root-token API call; returns the status and the JSON body (`Null` when empty).
    pub async fn root(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        // reqwest has no rustls provider of its own (see src/tls.rs); tests install ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let mut req = client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/v1/{path}", self.addr),
            )
            .header("X-Vault-Token", &self.root_token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("OpenBao answers");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    /// Like [`root`](Self::root), but panics unless the call succeeds.
    pub async fn root_ok(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let (status, json) = self.root(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {json}"
        );
        json
    }

    /// A token with only the `default` policy (no access to any KV path).
    pub async fn token_without_policy(&self) -> String {
        let json = self
            .root_ok(
                "POST",
                "auth/token/create",
                Some(serde_json::json!({ "policies": ["default"], "ttl": "10m" })),
            )
            .await;
        json["auth"]["client_token"].as_str().unwrap().to_owned()
    }
}
