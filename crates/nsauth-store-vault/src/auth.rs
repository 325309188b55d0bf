//! How the store gets its Vault token: a token it is given, the token file, or a login
//! (AppRole, JWT/OIDC, Kubernetes) that is made again when the token expires.

use crate::client::Client;
use crate::errors::{self, Op};
use crate::jwt::read_jwt_file;
use crate::settings::{GithubOidc, VaultAuthMethod, VaultSecret, VaultSettings};
use nsauth_store::StoreError;
use reqwest::{Method, StatusCode};
use std::path::PathBuf;
use std::time::Duration;

/// The service-account token of a Kubernetes pod.
pub(crate) const K8S_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Where the token comes from.
pub(crate) enum AuthSource {
    Token(VaultSecret),
    TokenFile(Option<PathBuf>),
    AppRole {
        mount: String,
        role_id: String,
        secret_id: VaultSecret,
    },
    Jwt {
        mount: String,
        role: String,
        source: JwtSource,
    },
    Kubernetes {
        mount: String,
        role: String,
        path: PathBuf,
    },
}

/// Where a `jwt` login finds its JWT; each login reads it afresh.
pub(crate) enum JwtSource {
    File(PathBuf),
    /// The name of an environment variable (GitLab's `id_tokens`).
    Env(String),
    GitHub {
        oidc: GithubOidc,
        audience: Option<String>,
    },
}

fn config(msg: impl Into<String>) -> StoreError {
    StoreError::Config(msg.into())
}

/// A mount path from the settings: `/`-trimmed, no empty, `.` or `..` segments, no control
/// characters.
fn mount_path(raw: &str) -> Result<String, StoreError> {
    let trimmed = raw.trim().trim_matches('/');
    let bad = trimmed.is_empty()
        || trimmed.chars().any(char::is_control)
        || trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        let shown: String = raw
            .chars()
            .take(60)
            .flat_map(char::escape_default)
            .collect();
        return Err(config(format!(
            "NSAUTH_VAULT_AUTH_MOUNT \"{shown}\" is not an auth mount path; use the path the method is enabled at, e.g. jwt or ci/github"
        )));
    }
    Ok(trimmed.to_owned())
}

fn role(s: &VaultSettings, method: &str) -> Result<String, StoreError> {
    match s.auth_role.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() && !r.chars().any(char::is_control) => Ok(r.to_owned()),
        Some(_) => Err(config("NSAUTH_VAULT_AUTH_ROLE holds control characters; set it to the role name")),
        None => Err(config(format!(
            "NSAUTH_VAULT_AUTH_METHOD={method} needs NSAUTH_VAULT_AUTH_ROLE, the {method} role to log in as"
        ))),
    }
}

/// A variable name a shell could set: letters, digits and `_`, not starting with a digit.
fn is_var_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with(|c: char| c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl AuthSource {
    pub(crate) fn from_settings(s: &VaultSettings) -> Result<Self, StoreError> {
        let Some(method) = s.auth_method else {
            return Self::implicit(s);
        };
        let mount_or = |default: &str| mount_path(s.auth_mount.as_deref().unwrap_or(default));
        match method {
            VaultAuthMethod::Token => Ok(match &s.token {
                Some(token) => AuthSource::Token(token.clone()),
                None => AuthSource::TokenFile(s.token_file.clone()),
            }),
            VaultAuthMethod::AppRole => match (&s.role_id, &s.secret_id) {
                (Some(role_id), Some(secret_id)) => Ok(AuthSource::AppRole {
                    mount: mount_or(&s.approle_mount)?,
                    role_id: role_id.clone(),
                    secret_id: secret_id.clone(),
                }),
                _ => Err(config(
                    "NSAUTH_VAULT_AUTH_METHOD=approle needs both VAULT_ROLE_ID and VAULT_SECRET_ID",
                )),
            },
            VaultAuthMethod::Jwt => {
                let source = match (&s.jwt_path, &s.jwt_env) {
                    (Some(_), Some(_)) => {
                        return Err(config(
                            "both NSAUTH_VAULT_AUTH_JWT_PATH and NSAUTH_VAULT_AUTH_JWT_ENV are set; keep the one that holds the JWT",
                        ))
                    }
                    (Some(path), None) => JwtSource::File(path.clone()),
                    (None, Some(name)) => {
                        if !is_var_name(name) {
                            return Err(config(
                                "NSAUTH_VAULT_AUTH_JWT_ENV must be the NAME of the variable holding the JWT (e.g. NSAUTH_ID_TOKEN), not the JWT itself",
                            ));
                        }
                        if std::env::var_os(name).is_none_or(|v| v.is_empty()) {
                            return Err(config(format!(
                                "NSAUTH_VAULT_AUTH_JWT_ENV names {name}, which is not set; in GitLab CI add `id_tokens: {name}: aud: ...` to the job"
                            )));
                        }
                        JwtSource::Env(name.clone())
                    }
                    (None, None) => match &s.github_oidc {
                        Some(oidc) => JwtSource::GitHub {
                            oidc: oidc.clone(),
                            audience: s.audience.clone().filter(|a| !a.is_empty()),
                        },
                        None => return Err(config(
                            "NSAUTH_VAULT_AUTH_METHOD=jwt needs a JWT: NSAUTH_VAULT_AUTH_JWT_PATH (a file), NSAUTH_VAULT_AUTH_JWT_ENV \
                             (the name of a variable, e.g. GitLab's id_tokens) or, in GitHub Actions, `permissions: id-token: write`",
                        )),
                    },
                };
                Ok(AuthSource::Jwt {
                    mount: mount_or("jwt")?,
                    role: role(s, "jwt")?,
                    source,
                })
            }
            VaultAuthMethod::Kubernetes => {
                if s.jwt_env.is_some() {
                    return Err(config(
                        "NSAUTH_VAULT_AUTH_METHOD=kubernetes reads the service-account token from a file; use NSAUTH_VAULT_AUTH_JWT_PATH, not NSAUTH_VAULT_AUTH_JWT_ENV",
                    ));
                }
                Ok(AuthSource::Kubernetes {
                    mount: mount_or("kubernetes")?,
                    role: role(s, "kubernetes")?,
                    path: s
                        .jwt_path
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(K8S_TOKEN_PATH)),
                })
            }
        }
    }

    /// Without `NSAUTH_VAULT_AUTH_METHOD`: `VAULT_TOKEN`, AppRole, then the token file.
    fn implicit(s: &VaultSettings) -> Result<Self, StoreError> {
        let set = [
            ("NSAUTH_VAULT_AUTH_ROLE", s.auth_role.is_some()),
            ("NSAUTH_VAULT_AUTH_JWT_PATH", s.jwt_path.is_some()),
            ("NSAUTH_VAULT_AUTH_JWT_ENV", s.jwt_env.is_some()),
            ("NSAUTH_VAULT_AUTH_MOUNT", s.auth_mount.is_some()),
        ];
        if let Some((name, _)) = set.iter().find(|(_, on)| *on) {
            return Err(config(format!(
                "{name} is set but NSAUTH_VAULT_AUTH_METHOD is not; set it to jwt, kubernetes or approle"
            )));
        }
        if let Some(token) = &s.token {
            return Ok(AuthSource::Token(token.clone()));
        }
        match (&s.role_id, &s.secret_id) {
            (Some(role_id), Some(secret_id)) => Ok(AuthSource::AppRole {
                mount: mount_path(&s.approle_mount)?,
                role_id: role_id.clone(),
                secret_id: secret_id.clone(),
            }),
            (Some(_), None) => Err(config(
                "VAULT_ROLE_ID is set but VAULT_SECRET_ID is not; AppRole login needs both",
            )),
            (None, Some(_)) => Err(config(
                "VAULT_SECRET_ID is set but VAULT_ROLE_ID is not; AppRole login needs both",
            )),
            (None, None) => Ok(AuthSource::TokenFile(s.token_file.clone())),
        }
    }

    /// For `Debug`: the method, never the secret.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            AuthSource::Token(_) => "token",
            AuthSource::TokenFile(_) => "token-file",
            AuthSource::AppRole { .. } => "approle",
            AuthSource::Jwt { .. } => "jwt",
            AuthSource::Kubernetes { .. } => "kubernetes",
        }
    }

    /// Whether the token comes from a login that can be made again.
    pub(crate) fn logs_in(&self) -> bool {
        matches!(
            self,
            AuthSource::AppRole { .. } | AuthSource::Jwt { .. } | AuthSource::Kubernetes { .. }
        )
    }
}

/// A token from a login, with how long Vault said it lives.
pub(crate) struct LoggedIn {
    pub token: VaultSecret,
    pub lease: Option<Duration>,
}

impl Client {
    /// Logs in with the configured method (not for `Token` / `TokenFile`).
    pub(crate) async fn login(&self) -> Result<LoggedIn, StoreError> {
        let (mount, body, secret) = match &self.auth {
            AuthSource::Token(_) | AuthSource::TokenFile(_) => {
                unreachable!("only login methods log in")
            }
            AuthSource::AppRole {
                mount,
                role_id,
                secret_id,
            } => (
                mount,
                serde_json::json!({ "role_id": role_id, "secret_id": secret_id.secret() }),
                Some(secret_id.clone()),
            ),
            AuthSource::Jwt {
                mount,
                role,
                source,
            } => {
                let jwt = self.fetch_jwt(source).await?;
                let body = serde_json::json!({ "role": role, "jwt": jwt.secret() });
                (mount, body, Some(jwt))
            }
            AuthSource::Kubernetes { mount, role, path } => {
                let jwt = read_jwt_file(path, "the Kubernetes service-account token")?;
                let body = serde_json::json!({ "role": role, "jwt": jwt.secret() });
                (mount, body, Some(jwt))
            }
        };
        let mut segments = vec!["v1", "auth"];
        segments.extend(mount.split('/'));
        segments.push("login");
        let answer = self
            .send(
                Op::Login,
                Method::POST,
                self.url(&segments),
                None,
                Some(body),
            )
            .await?;
        if !answer.status.is_success() {
            return Err(self.login_refused(answer.status, &answer.body, secret.as_ref()));
        }
        #[derive(serde::Deserialize)]
        struct Login {
            auth: Option<LoginAuth>,
        }
        #[derive(serde::Deserialize)]
        struct LoginAuth {
            client_token: String,
            #[serde(default)]
            lease_duration: u64,
        }
        let no_token = || StoreError::Denied(format!("{} returned no token", self.login_name()));
        let mut login: Login = serde_json::from_slice(&answer.body).map_err(|_| no_token())?;
        let auth = login.auth.as_mut().ok_or_else(no_token)?;
        let token = VaultSecret::new(std::mem::take(&mut auth.client_token));
        if token.secret().is_empty() {
            return Err(no_token());
        }
        let lease = (auth.lease_duration > 0).then(|| Duration::from_secs(auth.lease_duration));
        tracing::debug!(addr = %self.shown_addr, method = self.auth.kind(), lease_secs = auth.lease_duration, "logged in to Vault");
        Ok(LoggedIn { token, lease })
    }

    /// `jwt login at Vault https://vault:8200 (role "ci", auth/jwt)`, for messages.
    fn login_name(&self) -> String {
        let ns = self
            .namespace
            .as_deref()
            .map(|n| format!(" in namespace \"{n}\""))
            .unwrap_or_default();
        match &self.auth {
            AuthSource::Jwt { mount, role, .. } | AuthSource::Kubernetes { mount, role, .. } => {
                format!(
                    "{} login at Vault {}{ns} (role \"{role}\", auth/{mount})",
                    self.auth.kind(),
                    self.shown_addr
                )
            }
            AuthSource::AppRole { mount, .. } => {
                format!(
                    "AppRole login at Vault {}{ns} (auth/{mount})",
                    self.shown_addr
                )
            }
            _ => format!("login at Vault {}{ns}", self.shown_addr),
        }
    }

    /// A refused login: denied, naming the method, role and mount, never the JWT or secret.
    fn login_refused(
        &self,
        status: StatusCode,
        body: &[u8],
        secret: Option<&VaultSecret>,
    ) -> StoreError {
        let refused = matches!(
            status,
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        );
        if !refused {
            return errors::status(Op::Login, status, body, &self.target());
        }
        // Vault does not echo the credential, but a proxy or plugin might: take it (and each
        // part of a JWT) out before the text is cut short, so no piece of it survives.
        let mut text = String::from_utf8_lossy(body).into_owned();
        if let Some(secret) = secret.map(VaultSecret::secret).filter(|s| !s.is_empty()) {
            text = text.replace(secret, "[redacted]");
            for part in secret.split('.').filter(|p| p.len() >= 16) {
                text = text.replace(part, "[redacted]");
            }
        }
        let why = errors::vault_errors(text.as_bytes());
        zeroize::Zeroize::zeroize(&mut text);
        let hint = match &self.auth {
            AuthSource::AppRole { .. } => "check VAULT_ROLE_ID and VAULT_SECRET_ID (a secret ID may have expired or run out of uses)",
            AuthSource::Jwt { .. } => "check the role's bound_audiences, bound_claims and user_claim against the JWT's claims (bao read auth/MOUNT/role/ROLE)",
            AuthSource::Kubernetes { .. } => "check the role's bound_service_account_names and _namespaces, and the mount's kubernetes_host",
            _ => "",
        };
        StoreError::Denied(format!("{} failed ({why}); {hint}", self.login_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn jwt_settings() -> VaultSettings {
        VaultSettings {
            auth_method: Some(VaultAuthMethod::Jwt),
            auth_role: Some("ci".into()),
            jwt_path: Some("/tmp/jwt".into()),
            ..VaultSettings::default()
        }
    }

    fn config_err(s: &VaultSettings, needle: &str) {
        match AuthSource::from_settings(s) {
            Err(StoreError::Config(m)) => {
                assert!(m.contains(needle), "{m}");
                assert!(!m.contains('\n'), "{m}");
            }
            Err(e) => panic!("expected Config, got {e:?}"),
            Ok(a) => panic!("expected Config, got {}", a.kind()),
        }
    }

    #[test]
    fn methods_and_their_defaults() {
        let a = AuthSource::from_settings(&jwt_settings()).unwrap();
        assert!(
            matches!(&a, AuthSource::Jwt { mount, role, source: JwtSource::File(_) } if mount == "jwt" && role == "ci")
        );
        let mut s = jwt_settings();
        s.auth_method = Some(VaultAuthMethod::Kubernetes);
        s.jwt_path = None;
        s.auth_mount = Some("/k8s/prod/".into());
        let a = AuthSource::from_settings(&s).unwrap();
        assert!(
            matches!(&a, AuthSource::Kubernetes { mount, path, .. } if mount == "k8s/prod" && path == Path::new(K8S_TOKEN_PATH))
        );
        // An explicit method wins over a VAULT_TOKEN left in the environment.
        let mut s = jwt_settings();
        s.token = Some(VaultSecret::new("hvs.stale"));
        assert_eq!(AuthSource::from_settings(&s).unwrap().kind(), "jwt");
    }

    #[test]
    fn misconfigurations_are_config_errors() {
        let mut s = jwt_settings();
        s.auth_role = None;
        config_err(&s, "NSAUTH_VAULT_AUTH_ROLE");
        let mut s = jwt_settings();
        s.jwt_path = None;
        config_err(&s, "id-token: write");
        let mut s = jwt_settings();
        s.jwt_env = Some("X".into());
        config_err(&s, "both");
        let mut s = jwt_settings();
        s.jwt_path = None;
        s.jwt_env = Some("eyJhbGciOi.x.y".into());
        config_err(&s, "NAME of the variable");
        s.jwt_env = Some("NSAUTH_TEST_SURELY_UNSET_VARIABLE".into());
        config_err(&s, "is not set");
        for bad in ["..", "a//b", "", "/", "jwt/\u{7}x"] {
            let mut s = jwt_settings();
            s.auth_mount = Some(bad.into());
            config_err(&s, "NSAUTH_VAULT_AUTH_MOUNT");
        }
        let s = VaultSettings {
            auth_role: Some("ci".into()),
            ..VaultSettings::default()
        };
        config_err(&s, "NSAUTH_VAULT_AUTH_METHOD is not");
        let mut s = jwt_settings();
        s.auth_method = Some(VaultAuthMethod::AppRole);
        config_err(&s, "VAULT_SECRET_ID");
        let e = "oidc".parse::<VaultAuthMethod>().unwrap_err();
        assert!(
            e.to_string().contains("jwt, kubernetes, approle or token"),
            "{e}"
        );
    }
}
