//! The handful of Vault HTTP calls this store makes, with lazy authentication.

use crate::errors::{self, Op, Target};
use crate::settings::{VaultSecret, VaultSettings};
use crate::tls::{self, Trust};
use crate::uri::StoreUri;
use nsauth_store::StoreError;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Where the token comes from.
pub(crate) enum AuthSource {
    Token(VaultSecret),
    AppRole {
        mount: String,
        role_id: String,
        secret_id: VaultSecret,
    },
    TokenFile(Option<PathBuf>),
}

impl AuthSource {
    pub(crate) fn from_settings(s: &VaultSettings) -> Result<Self, StoreError> {
        if let Some(token) = &s.token {
            return Ok(AuthSource::Token(token.clone()));
        }
        match (&s.role_id, &s.secret_id) {
            (Some(role_id), Some(secret_id)) => Ok(AuthSource::AppRole {
                mount: s.approle_mount.trim_matches('/').to_owned(),
                role_id: role_id.clone(),
                secret_id: secret_id.clone(),
            }),
            (Some(_), None) => Err(StoreError::Config(
                "VAULT_ROLE_ID is set but VAULT_SECRET_ID is not; AppRole login needs both".into(),
            )),
            (None, Some(_)) => Err(StoreError::Config(
                "VAULT_SECRET_ID is set but VAULT_ROLE_ID is not; AppRole login needs both".into(),
            )),
            (None, None) => Ok(AuthSource::TokenFile(s.token_file.clone())),
        }
    }

    /// For `Debug`: the method, never the secret.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            AuthSource::Token(_) => "token",
            AuthSource::AppRole { .. } => "approle",
            AuthSource::TokenFile(_) => "token-file",
        }
    }
}

/// An HTTP answer the caller interprets (2xx, 400 and 404; everything else is mapped to an
/// error before it gets here).
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// One client: its own connection pool and its own token.
pub(crate) struct Client {
    http: reqwest::Client,
    /// The API base, e.g. `https://vault:8200/`.
    base: Url,
    /// `https://vault:8200`, for messages.
    pub shown_addr: String,
    pub mount: String,
    pub prefix: Vec<String>,
    pub prefix_joined: String,
    pub namespace: Option<String>,
    pub auth: AuthSource,
    token: tokio::sync::Mutex<Option<Arc<VaultSecret>>>,
    mount_checked: tokio::sync::OnceCell<()>,
}

impl Client {
    /// Builds the client; reads `ca_cert` but does no network I/O.
    pub(crate) fn new(uri: StoreUri, settings: &VaultSettings) -> Result<Self, StoreError> {
        let auth = AuthSource::from_settings(settings)?;
        let extra_roots = match &settings.ca_cert {
            Some(path) => tls::read_ca_file(path)?,
            None => Vec::new(),
        };
        let trust = if settings.skip_verify {
            tracing::warn!(
                "VAULT_SKIP_VERIFY is set: the Vault server's TLS certificate is not checked"
            );
            Trust::Anything
        } else if uri.addr.scheme() == "http" {
            Trust::None
        } else {
            Trust::Platform(extra_roots)
        };
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls::client_config(trust)?)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            // Every request carries X-Vault-Token, which reqwest does not strip on a redirect
            // to another host: follow none (see `send`).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("nsauth-store-vault/", env!("CARGO_PKG_VERSION")));
        let mut headers = HeaderMap::new();
        headers.insert("X-Vault-Request", HeaderValue::from_static("true"));
        if let Some(ns) = &settings.namespace {
            let value = HeaderValue::from_str(ns).map_err(|_| {
                StoreError::Config(
                    "VAULT_NAMESPACE holds characters not allowed in an HTTP header; set it to the namespace path, e.g. admin/team-a".into(),
                )
            })?;
            headers.insert("X-Vault-Namespace", value);
        }
        let http = builder
            .default_headers(headers)
            .build()
            .map_err(|e| StoreError::Backend {
                store: "vault",
                source: Box::new(e),
            })?;
        let shown_addr = uri.addr.as_str().trim_end_matches('/').to_owned();
        Ok(Client {
            http,
            base: uri.addr,
            shown_addr,
            prefix_joined: uri.prefix.join("/"),
            mount: uri.mount,
            prefix: uri.prefix,
            namespace: settings.namespace.clone(),
            auth,
            token: tokio::sync::Mutex::new(None),
            mount_checked: tokio::sync::OnceCell::new(),
        })
    }

    pub(crate) fn target(&self) -> Target<'_> {
        Target {
            addr: &self.shown_addr,
            mount: &self.mount,
            prefix: &self.prefix_joined,
            namespace: self.namespace.as_deref(),
        }
    }

    /// `v1/MOUNT/{kind}/PREFIX.../[NAME]`; each part is one percent-encoded path segment.
    pub(crate) fn kv_url(&self, kind: &str, name: Option<&str>) -> Url {
        let mut segments = vec!["v1", self.mount.as_str(), kind];
        segments.extend(self.prefix.iter().map(String::as_str));
        segments.push(name.unwrap_or(""));
        self.url(&segments)
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("http(s) URLs have a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// The current token, logging in (AppRole) or reading the token file on first use.
    async fn token(&self) -> Result<Arc<VaultSecret>, StoreError> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref() {
            return Ok(Arc::clone(token));
        }
        let token = Arc::new(match &self.auth {
            AuthSource::Token(t) => t.clone(),
            AuthSource::TokenFile(path) => read_token_file(path.as_deref())?,
            AuthSource::AppRole {
                mount,
                role_id,
                secret_id,
            } => self.approle_login(mount, role_id, secret_id).await?,
        });
        *slot = Some(Arc::clone(&token));
        Ok(token)
    }

    async fn approle_login(
        &self,
        mount: &str,
        role_id: &str,
        secret_id: &VaultSecret,
    ) -> Result<VaultSecret, StoreError> {
        #[derive(serde::Deserialize)]
        struct Login {
            auth: Option<LoginAuth>,
        }
        #[derive(serde::Deserialize)]
        struct LoginAuth {
            client_token: String,
        }
        let mut segments = vec!["v1", "auth"];
        segments.extend(mount.split('/').filter(|s| !s.is_empty()));
        segments.push("login");
        let body = serde_json::json!({ "role_id": role_id, "secret_id": secret_id.secret() });
        let answer = self
            .send(
                Op::Login,
                Method::POST,
                self.url(&segments),
                None,
                Some(body),
            )
            .await?;
        let status = answer.status;
        if !status.is_success() {
            return Err(errors::status(
                Op::Login,
                status,
                &answer.body,
                &self.target(),
            ));
        }
        let mut login: Login = serde_json::from_slice(&answer.body).map_err(|_| {
            StoreError::Denied(format!(
                "AppRole login at Vault {} returned no token (auth/{mount}/login)",
                self.shown_addr
            ))
        })?;
        let token = login
            .auth
            .as_mut()
            .map(|a| VaultSecret::new(std::mem::take(&mut a.client_token)))
            .filter(|t| !t.secret().is_empty())
            .ok_or_else(|| {
                StoreError::Denied(format!(
                    "AppRole login at Vault {} returned no token (auth/{mount}/login)",
                    self.shown_addr
                ))
            })?;
        tracing::debug!(addr = %self.shown_addr, "logged in to Vault with AppRole");
        Ok(token)
    }

    /// Checks once per client that the mount is KV version 2. A token that may not see the
    /// mount's configuration is not an error here; the KV calls then say what is wrong.
    async fn check_mount(&self) -> Result<(), StoreError> {
        self.mount_checked
            .get_or_try_init(|| async {
                #[derive(serde::Deserialize)]
                struct Mount {
                    data: MountData,
                }
                #[derive(serde::Deserialize)]
                struct MountData {
                    #[serde(rename = "type", default)]
                    kind: String,
                    #[serde(default)]
                    options: Option<std::collections::HashMap<String, String>>,
                }
                let url = self.url(&["v1", "sys", "internal", "ui", "mounts", &self.mount]);
                let token = self.token().await?;
                let answer = self
                    .send(Op::MountCheck, Method::GET, url, Some(&token), None)
                    .await?;
                if !answer.status.is_success() {
                    return Ok(());
                }
                let Ok(mount) = serde_json::from_slice::<Mount>(&answer.body) else {
                    return Ok(());
                };
                let version = mount
                    .data
                    .options
                    .as_ref()
                    .and_then(|o| o.get("version"))
                    .map_or("1", String::as_str);
                if mount.data.kind != "kv" || version != "2" {
                    let is = if mount.data.kind == "kv" {
                        format!("KV version {version}")
                    } else {
                        format!("a \"{}\" secrets engine", mount.data.kind)
                    };
                    return Err(StoreError::Unavailable {
                        message: format!(
                            "mount \"{}\" at Vault {} is {is}, but nsauth needs KV version 2 \
                             (bao secrets enable -path={} kv-v2, or bao kv enable-versioning {})",
                            self.mount, self.shown_addr, self.mount, self.mount
                        ),
                        retryable: false,
                    });
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Sends an authenticated KV request. 2xx, 400 and 404 (of a secret, not of a missing
    /// mount) come back as an [`Answer`]; everything else is mapped to a [`StoreError`]. A token from AppRole that Vault
    /// refuses (expired) is renewed by one fresh login.
    pub(crate) async fn kv(
        &self,
        op: Op,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<Answer, StoreError> {
        self.check_mount().await?;
        let mut relogged = false;
        loop {
            let token = self.token().await?;
            let answer = self
                .send(op, method.clone(), url.clone(), Some(&token), body.clone())
                .await?;
            match answer.status {
                StatusCode::NOT_FOUND if errors::is_missing_mount(&answer.body) => {
                    return Err(errors::missing_mount(&answer.body, &self.target()))
                }
                s if s.is_success()
                    || s == StatusCode::BAD_REQUEST
                    || s == StatusCode::NOT_FOUND =>
                {
                    return Ok(answer)
                }
                StatusCode::FORBIDDEN
                    if !relogged && matches!(self.auth, AuthSource::AppRole { .. }) =>
                {
                    relogged = true;
                    let mut slot = self.token.lock().await;
                    if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, &token)) {
                        *slot = None;
                    }
                }
                s => return Err(errors::status(op, s, &answer.body, &self.target())),
            }
        }
    }

    async fn send(
        &self,
        op: Op,
        method: Method,
        url: Url,
        token: Option<&VaultSecret>,
        body: Option<serde_json::Value>,
    ) -> Result<Answer, StoreError> {
        tracing::debug!(%method, path = url.path(), "vault request");
        let mut req = self.http.request(method.clone(), url);
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token.secret()).map_err(|_| {
                StoreError::Denied(
                    "the Vault token holds characters not allowed in an HTTP header".into(),
                )
            })?;
            value.set_sensitive(true);
            req = req.header("X-Vault-Token", value);
        }
        if let Some(body) = body {
            let content_type = if method == Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(serde_json::to_vec(&body).expect("JSON values serialise"));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| errors::transport(op, &e, &self.target()))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(errors::redirected(
                op,
                status,
                resp.headers(),
                &self.target(),
            ));
        }
        let body = read_capped(resp, MAX_ANSWER).await.map_err(|e| match e {
            Capped::TooLarge => errors::too_large(op, MAX_ANSWER, &self.target()),
            Capped::Transport(e) => errors::transport(op, &e, &self.target()),
        })?;
        Ok(Answer { status, body })
    }
}

/// The largest answer read from Vault. A record is a few KiB and a list of profiles a few
/// more; anything near this is not Vault's normal answer.
pub(crate) const MAX_ANSWER: usize = 1 << 20;

enum Capped {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads the body, refusing (without reading on) one over `limit` bytes.
async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, Capped> {
    if resp.content_length().is_some_and(|l| l > limit as u64) {
        return Err(Capped::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Capped::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(Capped::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn read_token_file(path: Option<&std::path::Path>) -> Result<VaultSecret, StoreError> {
    let none = || {
        StoreError::Denied(
            "no Vault token: set VAULT_TOKEN, log in with `bao login` / `vault login` (which writes \
             ~/.vault-token), or set VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole"
                .into(),
        )
    };
    let path = path.ok_or_else(none)?;
    match std::fs::read_to_string(path) {
        Ok(mut s) => {
            let token = VaultSecret::new(s.trim());
            zeroize::Zeroize::zeroize(&mut s);
            if token.secret().is_empty() {
                Err(none())
            } else {
                Ok(token)
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(none()),
        Err(e) => Err(StoreError::Denied(format!(
            "cannot read the Vault token file {}: {e}",
            path.display()
        ))),
    }
}
