//! The handful of Vault HTTP calls this store makes, with lazy authentication.

use crate::auth::AuthSource;
use crate::errors::{self, Op, Target};
use crate::settings::{VaultSecret, VaultSettings};
use crate::tls::{self, Trust};
use crate::uri::StoreUri;
use nsauth_store::StoreError;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// The token in use, when to log in again before it expires, and when it does (tokens from
/// a login with a lease only).
struct Held {
    token: Arc<VaultSecret>,
    renew_at: Option<Instant>,
    expires_at: Option<Instant>,
}

/// An HTTP answer the caller interprets (2xx, 400 and 404; everything else is mapped to an
/// error before it gets here).
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// One client: its own connection pool and its own token.
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    /// The API base, e.g. `https://vault:8200/`.
    base: Url,
    /// `https://vault:8200`, for messages.
    pub shown_addr: String,
    pub mount: String,
    pub prefix: Vec<String>,
    pub prefix_joined: String,
    pub namespace: Option<String>,
    pub auth: AuthSource,
    token: tokio::sync::Mutex<Option<Held>>,
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

    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("http(s) URLs have a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// The current token: read, or logged in for on first use and again when three
    /// quarters of its lease have passed. If that early login fails while the old token
    /// still lives, the old token is used (and the login tried again on the next call).
    async fn token(&self) -> Result<Arc<VaultSecret>, StoreError> {
        let mut slot = self.token.lock().await;
        let now = Instant::now();
        if let Some(held) = slot.as_ref() {
            if held.renew_at.is_none_or(|at| now < at) {
                return Ok(Arc::clone(&held.token));
            }
            tracing::debug!(
                method = self.auth.kind(),
                "Vault token near its expiry; logging in again"
            );
        }
        let held = match &self.auth {
            AuthSource::Token(t) => Held {
                token: Arc::new(t.clone()),
                renew_at: None,
                expires_at: None,
            },
            AuthSource::TokenFile(path) => Held {
                token: Arc::new(read_token_file(path.as_deref())?),
                renew_at: None,
                expires_at: None,
            },
            _ => match self.login().await {
                Ok(login) => Held {
                    token: Arc::new(login.token),
                    renew_at: login.lease.map(|l| now + l * 3 / 4),
                    expires_at: login.lease.map(|l| now + l),
                },
                Err(e) => {
                    let alive = slot
                        .as_ref()
                        .filter(|h| h.expires_at.is_some_and(|end| Instant::now() < end));
                    return match alive {
                        Some(old) => {
                            tracing::warn!(error = %e, "early Vault login failed; the current token is still valid and stays in use");
                            Ok(Arc::clone(&old.token))
                        }
                        None => Err(e),
                    };
                }
            },
        };
        let token = Arc::clone(&held.token);
        *slot = Some(held);
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
    /// mount) come back as an [`Answer`]; everything else is mapped to a [`StoreError`]. A token
    /// from a login (AppRole, JWT, Kubernetes) that Vault refuses (expired, revoked) is
    /// replaced by one fresh login and the request sent again.
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
                StatusCode::FORBIDDEN if !relogged && self.auth.logs_in() => {
                    relogged = true;
                    tracing::debug!(
                        method = self.auth.kind(),
                        "Vault refused the token; logging in again"
                    );
                    let mut slot = self.token.lock().await;
                    if slot.as_ref().is_some_and(|h| Arc::ptr_eq(&h.token, &token)) {
                        *slot = None;
                    }
                }
                s => return Err(errors::status(op, s, &answer.body, &self.target())),
            }
        }
    }

    pub(crate) async fn send(
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

pub(crate) enum Capped {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads the body, refusing (without reading on) one over `limit` bytes.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, Capped> {
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
             ~/.vault-token), set VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole, or log in with CI's OIDC \
             token: NSAUTH_VAULT_AUTH_METHOD=jwt (see docs/stores/vault.md)"
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
