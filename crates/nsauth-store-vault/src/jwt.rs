//! Where a `jwt` or `kubernetes` login finds its JWT: a file (read afresh at every login, as
//! Kubernetes rotates projected tokens), an environment variable named in the settings
//! (GitLab CI's `id_tokens`), or GitHub Actions' OIDC provider.

use crate::auth::JwtSource;
use crate::client::{read_capped, Client};
use crate::settings::{GithubOidc, VaultSecret};
use nsauth_store::StoreError;
use reqwest::StatusCode;
use std::path::Path;
use zeroize::Zeroize;

fn config(msg: impl Into<String>) -> StoreError {
    StoreError::Config(msg.into())
}

impl Client {
    pub(crate) async fn fetch_jwt(&self, source: &JwtSource) -> Result<VaultSecret, StoreError> {
        match source {
            JwtSource::File(path) => {
                read_jwt_file(path, "the JWT file (NSAUTH_VAULT_AUTH_JWT_PATH)")
            }
            JwtSource::Env(name) => {
                let value = std::env::var(name).unwrap_or_default();
                let jwt = VaultSecret::new(value.trim());
                drop(zeroize::Zeroizing::new(value));
                if jwt.secret().is_empty() {
                    return Err(config(format!(
                        "{name} (named by NSAUTH_VAULT_AUTH_JWT_ENV) is empty; in GitLab CI add `id_tokens: {name}: aud: ...` to the job"
                    )));
                }
                Ok(jwt)
            }
            JwtSource::GitHub { oidc, audience } => {
                self.github_jwt(oidc, audience.as_deref()).await
            }
        }
    }

    /// GitHub Actions' OIDC provider: `GET URL&audience=AUD` with the request token as the
    /// bearer; the answer is `{"value": JWT}`.
    async fn github_jwt(
        &self,
        oidc: &GithubOidc,
        audience: Option<&str>,
    ) -> Result<VaultSecret, StoreError> {
        let bad_url = || {
            config("ACTIONS_ID_TOKEN_REQUEST_URL is not an https:// URL (http:// only on loopback)")
        };
        let mut url = url::Url::parse(&oidc.request_url).map_err(|_| bad_url())?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err(bad_url());
        }
        if let Some(aud) = audience {
            url.query_pairs_mut().append_pair("audience", aud);
        }
        let origin = url.origin().ascii_serialization();
        let resp = self
            .http
            .get(url)
            .bearer_auth(oidc.request_token.secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| StoreError::Unavailable {
                message: format!(
                    "cannot reach GitHub Actions' OIDC provider at {origin} ({}); try again",
                    if e.is_timeout() {
                        "timed out"
                    } else {
                        "connection failed"
                    }
                ),
                retryable: true,
            })?;
        let status = resp.status();
        // A token answer is a few KiB; anything else is not GitHub's provider.
        let body = read_capped(resp, 64 * 1024).await.unwrap_or_default();
        if !status.is_success() {
            return Err(
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    StoreError::Unavailable {
                    message: format!("GitHub Actions' OIDC provider at {origin} answered {status}; try again"),
                    retryable: true,
                }
                } else {
                    StoreError::Denied(format!(
                    "GitHub Actions' OIDC provider at {origin} refused the token request ({status}); \
                     the job needs `permissions: id-token: write`"
                ))
                },
            );
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            value: String,
        }
        let mut answer: Answer = serde_json::from_slice(&body).unwrap_or(Answer {
            value: String::new(),
        });
        let jwt = VaultSecret::new(answer.value.trim());
        answer.value.zeroize();
        if jwt.secret().is_empty() {
            return Err(StoreError::Denied(format!(
                "GitHub Actions' OIDC provider at {origin} returned no token"
            )));
        }
        Ok(jwt)
    }
}

/// Reads a JWT file afresh (Kubernetes rotates projected tokens).
pub(crate) fn read_jwt_file(path: &Path, what: &str) -> Result<VaultSecret, StoreError> {
    let mut text = std::fs::read_to_string(path).map_err(|e| {
        config(format!(
            "cannot read {what} {}: {e}; set NSAUTH_VAULT_AUTH_JWT_PATH to the file that holds it",
            path.display()
        ))
    })?;
    let jwt = VaultSecret::new(text.trim());
    text.zeroize();
    if jwt.secret().is_empty() {
        return Err(config(format!("{what} {} is empty", path.display())));
    }
    Ok(jwt)
}
