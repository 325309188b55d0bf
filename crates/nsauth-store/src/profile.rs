//! Profiles: everything needed to talk to one NetSuite integration, and validated names.

use crate::account::AccountId;
use crate::secret::{ClientSecret, PrivateKeyPem};
use serde::{Deserialize, Serialize};
use std::fmt;
use url::Url;

/// A profile name: 1 to 64 characters, no control characters, no `/`, `\`, `..` or leading
/// dot, so that every store can use it as a key or file name without escaping its directory.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProfileName(String);

/// Why a profile name was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid profile name {shown:?}: {why}; use 1-64 letters, digits, '-', '_', '.' or '@' (unicode letters are fine)")]
pub struct InvalidProfileName {
    shown: String,
    why: &'static str,
}

impl ProfileName {
    /// Validates a profile name.
    pub fn parse(input: &str) -> Result<Self, InvalidProfileName> {
        let shown: String = input
            .chars()
            .take(40)
            .flat_map(char::escape_default)
            .collect();
        let err = |why| InvalidProfileName {
            shown: shown.clone(),
            why,
        };
        if input.is_empty() {
            return Err(err("it is empty"));
        }
        if input.chars().count() > 64 {
            return Err(err("it is longer than 64 characters"));
        }
        if input.starts_with('.') || input.starts_with('-') {
            return Err(err("it must not start with '.' or '-'"));
        }
        if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(err("it contains control or space characters"));
        }
        if !input
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
        {
            return Err(err(
                "it contains a character other than letters, digits, '-', '_', '.', '@'",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
impl TryFrom<String> for ProfileName {
    type Error = InvalidProfileName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<ProfileName> for String {
    fn from(value: ProfileName) -> Self {
        value.0
    }
}

/// How tokens are obtained for a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantKind {
    /// A NetSuite user logs in (authorization code + PKCE), then refresh.
    AuthorizationCode,
    /// Machine to machine: a signed JWT assertion, no user, no refresh token.
    ClientCredentials,
}

impl GrantKind {
    /// The CLI / JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::AuthorizationCode => "authorization-code",
            GrantKind::ClientCredentials => "client-credentials",
        }
    }
}

/// The scopes NetSuite knows.
pub const KNOWN_SCOPES: &[&str] = &["restlets", "rest_webservices", "suite_analytics", "mcp"];

/// Validates a scope list: known scopes only, no duplicates, `mcp` only alone.
pub fn validate_scopes(scopes: &[String]) -> Result<(), String> {
    if scopes.is_empty() {
        return Err(
            "at least one --scope is needed (restlets, rest_webservices, suite_analytics or mcp)"
                .into(),
        );
    }
    for s in scopes {
        if !KNOWN_SCOPES.contains(&s.as_str()) {
            let shown: String = s.chars().take(40).flat_map(char::escape_default).collect();
            return Err(format!(
                "unknown scope {shown:?}; NetSuite knows restlets, rest_webservices, suite_analytics and mcp"
            ));
        }
    }
    let mut sorted = scopes.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != scopes.len() {
        return Err("a scope is listed twice".into());
    }
    if scopes.iter().any(|s| s == "mcp") && scopes.len() > 1 {
        return Err("the mcp scope must be used alone".into());
    }
    Ok(())
}

/// Endpoint overrides. Unset URLs are derived from the account ID (or from `base_url`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointOverrides {
    /// One base URL for all endpoints (used with the emulator): `{base}/app/login/oauth2/authorize.nl`,
    /// `{base}/services/rest/auth/oauth2/v1/token`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<Url>,
    /// The authorization URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<Url>,
    /// The token URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<Url>,
    /// The revoke URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_url: Option<Url>,
    /// The REST base URL (`…/services/rest/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_url: Option<Url>,
}

/// The resolved endpoints of a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Authorization endpoint.
    pub authorize: Url,
    /// Token endpoint.
    pub token: Url,
    /// Revoke endpoint.
    pub revoke: Url,
    /// REST base, ending in `/`.
    pub rest: Url,
}

/// Everything nsauth needs to obtain tokens for one NetSuite integration.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Profile {
    /// The NetSuite account.
    pub account_id: AccountId,
    /// The integration record's client ID.
    pub client_id: String,
    /// The client secret; `None` makes this a public client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
    /// The redirect URI, exactly as on the integration record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<Url>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Grant kind.
    pub grant: GrantKind,
    /// Certificate ID (`kid`) for client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// Private key (PKCS#8 PEM) for client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PrivateKeyPem>,
    /// The certificate (PEM) matching the private key, when known (for expiry warnings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
    /// Endpoint overrides.
    #[serde(default)]
    pub endpoints: EndpointOverrides,
    /// Refresh token validity in hours, used when the refresh token's `exp` cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_validity_hours: Option<u32>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("account_id", &self.account_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("redirect_uri", &self.redirect_uri.as_ref().map(Url::as_str))
            .field("scopes", &self.scopes)
            .field("grant", &self.grant)
            .field("certificate_id", &self.certificate_id)
            .field("private_key", &self.private_key)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

/// A client-credentials certificate other than the profile's current one: the next one made by
/// `nsauth m2m rotate`, or the previous one kept after a switch-over. The key is a secret (its
/// `Debug` is redacted); the certificate is public.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredCertificate {
    /// The private key (PKCS#8 PEM).
    pub private_key: PrivateKeyPem,
    /// The self-signed certificate (PEM) to upload to NetSuite.
    pub certificate_pem: String,
    /// The certificate ID NetSuite shows, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// When nsauth made it.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// Default refresh token validity when neither the token nor the profile says: 7 days, the
/// historical NetSuite default.
pub const DEFAULT_REFRESH_VALIDITY_HOURS: u32 = 168;

impl Profile {
    /// A public authorization-code profile for `account_id` and `client_id` with the
    /// `rest_webservices` scope and NetSuite's default endpoints; set the other fields as needed.
    ///
    /// ```
    /// use nsauth_store::account::AccountId;
    /// use nsauth_store::profile::Profile;
    /// let p = Profile::new(AccountId::parse("1234567").unwrap(), "my-client-id");
    /// assert!(p.is_public());
    /// assert_eq!(p.endpoints().rest.as_str(), "https://1234567.suitetalk.api.netsuite.com/services/rest/");
    /// ```
    pub fn new(account_id: AccountId, client_id: impl Into<String>) -> Self {
        Profile {
            account_id,
            client_id: client_id.into(),
            client_secret: None,
            redirect_uri: None,
            scopes: vec!["rest_webservices".into()],
            grant: GrantKind::AuthorizationCode,
            certificate_id: None,
            private_key: None,
            certificate_pem: None,
            endpoints: EndpointOverrides::default(),
            refresh_token_validity_hours: None,
        }
    }

    /// `true` when the profile has no client secret.
    pub fn is_public(&self) -> bool {
        self.client_secret.is_none()
    }

    /// Resolves every endpoint from overrides, base URL or the account's default domains.
    pub fn endpoints(&self) -> Endpoints {
        let o = &self.endpoints;
        let host = self.account_id.host_form();
        let (login_base, api_base) = match &o.base_url {
            Some(b) => (b.clone(), b.clone()),
            None => (
                Url::parse(&format!("https://{host}.app.netsuite.com/")).expect("validated host"),
                Url::parse(&format!("https://{host}.suitetalk.api.netsuite.com/"))
                    .expect("validated host"),
            ),
        };
        let join = |base: &Url, path: &str| {
            let mut b = base.clone();
            if !b.path().ends_with('/') {
                let p = format!("{}/", b.path());
                b.set_path(&p);
            }
            b.join(path).expect("static path")
        };
        Endpoints {
            authorize: o
                .authorize_url
                .clone()
                .unwrap_or_else(|| join(&login_base, "app/login/oauth2/authorize.nl")),
            token: o
                .token_url
                .clone()
                .unwrap_or_else(|| join(&api_base, "services/rest/auth/oauth2/v1/token")),
            revoke: o
                .revoke_url
                .clone()
                .unwrap_or_else(|| join(&api_base, "services/rest/auth/oauth2/v1/revoke")),
            rest: o
                .rest_url
                .clone()
                .map(|u| join(&u, ""))
                .unwrap_or_else(|| join(&api_base, "services/rest/")),
        }
    }

    /// Checks the profile for consistency; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.client_id.trim().is_empty()
            || self.client_id.len() > 256
            || self.client_id.chars().any(|c| !c.is_ascii_graphic())
        {
            // NetSuite client IDs are hex; printable ASCII only keeps bidirectional and
            // zero-width characters (which reorder a terminal line) out of every display.
            return Err(
                "the client ID must be the ID shown on the integration record (printable ASCII, no spaces)".into(),
            );
        }
        validate_scopes(&self.scopes)?;
        match self.grant {
            GrantKind::AuthorizationCode => {
                let Some(uri) = &self.redirect_uri else {
                    return Err("an authorization-code profile needs --redirect-uri, exactly as on the integration record".into());
                };
                validate_redirect_uri(uri)?;
            }
            GrantKind::ClientCredentials => {
                if self.certificate_id.as_deref().is_none_or(str::is_empty) {
                    return Err("client credentials need --certificate-id (the ID NetSuite shows for the uploaded certificate)".into());
                }
                if self.private_key.is_none() {
                    return Err(
                        "client credentials need --private-key-file (from `nsauth m2m keygen`)"
                            .into(),
                    );
                }
            }
        }
        for url in [
            &self.endpoints.base_url,
            &self.endpoints.authorize_url,
            &self.endpoints.token_url,
            &self.endpoints.revoke_url,
            &self.endpoints.rest_url,
        ]
        .into_iter()
        .flatten()
        {
            validate_endpoint_url(url)?;
        }
        if let Some(h) = self.refresh_token_validity_hours {
            if !(1..=720).contains(&h) {
                return Err("--refresh-token-validity must be between 1 and 720 hours".into());
            }
        }
        Ok(())
    }
}

/// `true` for 127.0.0.1, ::1 and localhost.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Endpoints must be https, except loopback http (the emulator).
pub fn validate_endpoint_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(url) => Ok(()),
        _ => Err(format!(
            "endpoint {url} must use https (http is allowed only on 127.0.0.1/localhost)"
        )),
    }
}

/// Redirect URIs: https, a custom scheme (`myapp://callback`), or loopback http.
pub fn validate_redirect_uri(url: &Url) -> Result<(), String> {
    if url.fragment().is_some() {
        return Err("the redirect URI must not contain a #fragment".into());
    }
    match url.scheme() {
        "https" => {
            if url.host().is_none() {
                return Err("the https redirect URI needs a host".into());
            }
            Ok(())
        }
        "http" if is_loopback_host(url) => Ok(()),
        "http" => Err("NetSuite does not accept http:// redirect URIs; use https:// (nsauth serves https on 127.0.0.1) or a custom scheme".into()),
        "javascript" | "data" | "file" | "ftp" | "ws" | "wss" => Err(format!("{}: is not a usable redirect URI scheme", url.scheme())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_with_bidi_or_zero_width_characters_are_refused() {
        for bad in [
            "ab\u{202E}cd",
            "ab\u{200B}cd",
            "caf\u{e9}",
            "a b",
            "a\tb",
            "",
        ] {
            let p = Profile {
                account_id: AccountId::parse("1234567").unwrap(),
                client_id: bad.into(),
                client_secret: None,
                redirect_uri: Some(Url::parse("https://127.0.0.1:53682/callback").unwrap()),
                scopes: vec!["rest_webservices".into()],
                grant: GrantKind::AuthorizationCode,
                certificate_id: None,
                private_key: None,
                certificate_pem: None,
                endpoints: EndpointOverrides::default(),
                refresh_token_validity_hours: None,
            };
            assert!(p.validate().unwrap_err().contains("client ID"), "{bad:?}");
        }
    }

    #[test]
    fn profile_names() {
        for ok in ["default", "prod", "sb1.partner", "ünïcødé-名前", "a@b"] {
            ProfileName::parse(ok).unwrap();
        }
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "a\nb",
            "a b",
            &"x".repeat(65),
            "-flag",
            "a\u{0}b",
        ] {
            assert!(ProfileName::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn derived_endpoints() {
        let p = Profile::new(AccountId::parse("1234567_SB1").unwrap(), "cid");
        let e = p.endpoints();
        assert_eq!(
            e.authorize.as_str(),
            "https://1234567-sb1.app.netsuite.com/app/login/oauth2/authorize.nl"
        );
        assert_eq!(
            e.token.as_str(),
            "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token"
        );
        assert_eq!(
            e.rest.as_str(),
            "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/"
        );
        let mut q = p.clone();
        q.endpoints.base_url = Some(Url::parse("http://127.0.0.1:9000").unwrap());
        assert_eq!(
            q.endpoints().token.as_str(),
            "http://127.0.0.1:9000/services/rest/auth/oauth2/v1/token"
        );
    }

    #[test]
    fn scopes() {
        assert!(validate_scopes(&["rest_webservices".into(), "restlets".into()]).is_ok());
        assert!(validate_scopes(&["mcp".into(), "restlets".into()]).is_err());
        assert!(validate_scopes(&["openid".into()]).is_err());
        assert!(validate_scopes(&[]).is_err());
    }
}

#[cfg(test)]
mod rotation_record_tests {
    use crate::record::{decode_record, encode_record, Record};

    fn record_json() -> serde_json::Value {
        let mut p = super::Profile::new(crate::account::AccountId::parse("1234567").unwrap(), "c");
        p.certificate_id = Some("OLD".into());
        serde_json::from_slice(&encode_record(&Record::new(p))).unwrap()
    }

    #[test]
    fn records_without_rotation_fields_load_and_do_not_grow_them() {
        let json = record_json();
        assert!(json.get("next_certificate").is_none());
        let rec = decode_record(json.to_string().as_bytes()).unwrap();
        assert!(rec.next_certificate.is_none() && rec.previous_certificate.is_none());
        let again = String::from_utf8(encode_record(&rec)).unwrap();
        assert!(!again.contains("_certificate\""), "{again}");
    }

    #[test]
    fn unknown_fields_are_ignored_as_by_older_builds() {
        // Older builds derive the same way (no deny_unknown_fields): they read a record with
        // a rotation in progress, and drop it only if they write the record back.
        let mut json = record_json();
        json["profile"]["future_field"] = serde_json::json!(1);
        json["future_field"] = serde_json::json!(1);
        let rec = decode_record(json.to_string().as_bytes()).unwrap();
        assert_eq!(rec.profile.certificate_id.as_deref(), Some("OLD"));
    }

    #[test]
    fn stored_certificate_debug_redacts_the_key() {
        let c = super::StoredCertificate {
            private_key: crate::secret::PrivateKeyPem::new(
                "-----BEGIN PRIVATE KEY-----\nSECRETBYTES\n",
            ),
            certificate_pem: "PUBLIC".into(),
            certificate_id: Some("NEW".into()),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRETBYTES"), "{shown}");
        assert!(
            shown.contains("[redacted]") && shown.contains("NEW"),
            "{shown}"
        );
    }
}
