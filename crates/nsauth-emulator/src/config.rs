//! What a test or demo configures: integration records (clients), certificates, faults, and
//! the counters it reads back.

use std::time::Duration;

/// The scopes a client created by [`ClientSpec::public`], [`ClientSpec::confidential`] or
/// [`ClientSpec::m2m`] may ask for.
pub const DEFAULT_SCOPES: [&str; 3] = ["restlets", "rest_webservices", "suite_analytics"];

/// The integration record's "Consent Policy".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConsentPolicy {
    /// No consent screen unless `prompt=consent`; the user still has to log in.
    #[default]
    NeverAsk,
    /// A consent screen the first time per user, client and scopes, or when `prompt=consent`.
    AskFirstTime,
    /// A consent screen every time, whatever `prompt` says (even `none`).
    AlwaysAsk,
}

/// A certificate mapped to an integration for the client credentials (M2M) grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateMapping {
    /// The certificate ID NetSuite shows; the assertion's `kid` header.
    pub kid: String,
    /// The X.509 certificate, PEM.
    pub certificate_pem: String,
}

/// How many unexpired certificates NetSuite (2026.1) maps to one integration at a time.
pub const MAX_ACTIVE_CERTIFICATES: usize = 5;

/// Why [`crate::Emulator::map_certificate`] refused a certificate, as NetSuite's setup page does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateRefused {
    /// No integration with that client ID.
    UnknownClient(String),
    /// The integration already has [`MAX_ACTIVE_CERTIFICATES`] unexpired certificates.
    TooMany,
    /// Not PEM, a key NetSuite does not take, expired, or valid for more than two years.
    Invalid(String),
}

impl std::fmt::Display for CertificateRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownClient(id) => write!(f, "no integration with client ID {id:?}"),
            Self::TooMany => write!(
                f,
                "the integration already has {MAX_ACTIVE_CERTIFICATES} active certificates; remove one first"
            ),
            Self::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for CertificateRefused {}

/// An integration record.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSpec {
    /// The client ID.
    pub client_id: String,
    /// The client secret; `None` makes a public client.
    pub client_secret: Option<String>,
    /// Redirect URIs; the authorization request must match one exactly.
    pub redirect_uris: Vec<String>,
    /// The consent policy.
    pub consent: ConsentPolicy,
    /// Allows `http://127.0.0.1`, `http://localhost` and `http://[::1]` redirect URIs.
    /// NetSuite documents `http://` as unsupported, so this is off by default.
    pub allow_loopback_http: bool,
    /// Certificates for the client credentials grant; empty means M2M is not enabled.
    pub certificates: Vec<CertificateMapping>,
    /// The scopes this client may ask for.
    pub scopes: Vec<String>,
    /// Refresh token reuse detection, as some OAuth servers do: a public client presenting a
    /// refresh token that was already used revokes the whole grant (every token of its
    /// chain). Off by default.
    pub revoke_on_reuse: bool,
}

impl std::fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSpec")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("redirect_uris", &self.redirect_uris)
            .field("consent", &self.consent)
            .field("allow_loopback_http", &self.allow_loopback_http)
            .field(
                "certificates",
                &self.certificates.iter().map(|c| &c.kid).collect::<Vec<_>>(),
            )
            .field("scopes", &self.scopes)
            .field("revoke_on_reuse", &self.revoke_on_reuse)
            .finish()
    }
}

impl ClientSpec {
    fn base(client_id: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: None,
            redirect_uris: Vec::new(),
            consent: ConsentPolicy::NeverAsk,
            allow_loopback_http: false,
            certificates: Vec::new(),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            revoke_on_reuse: false,
        }
    }

    /// This client with refresh token reuse detection ([`ClientSpec::revoke_on_reuse`]).
    pub fn with_reuse_detection(self) -> Self {
        Self {
            revoke_on_reuse: true,
            ..self
        }
    }

    /// A public client (no secret, PKCE only) with one redirect URI.
    pub fn public(client_id: &str, redirect_uri: &str) -> Self {
        Self {
            redirect_uris: vec![redirect_uri.to_owned()],
            ..Self::base(client_id)
        }
    }

    /// A confidential client (HTTP Basic authentication) with one redirect URI.
    pub fn confidential(client_id: &str, secret: &str, redirect_uri: &str) -> Self {
        Self {
            client_secret: Some(secret.to_owned()),
            ..Self::public(client_id, redirect_uri)
        }
    }

    /// A machine-to-machine client; map certificates with [`crate::Emulator::add_certificate`].
    pub fn m2m(client_id: &str) -> Self {
        Self::base(client_id)
    }

    /// `true` for a client with a secret.
    pub fn is_confidential(&self) -> bool {
        self.client_secret.is_some()
    }
}

/// How many requests of each kind the emulator saw. A snapshot from [`crate::Emulator::counters`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every request that reached the token endpoint, whatever its outcome, faulted ones included.
    pub token_requests: u64,
    /// Authorization codes exchanged successfully.
    pub authorization_code: u64,
    /// Refresh token grants answered successfully.
    pub refresh_token: u64,
    /// Client credentials grants answered successfully.
    pub client_credentials: u64,
    /// Revocation requests answered with 200.
    pub revoke: u64,
    /// Token endpoint requests answered with an OAuth error (injected faults not included).
    pub token_errors: u64,
    /// Requests to the REST API (metadata catalog, SuiteQL), accepted or not.
    pub api_calls: u64,
    /// Successful logins on the login page.
    pub logins: u64,
    /// Consent pages shown.
    pub consents_shown: u64,
}

/// A fault for the next token endpoint request. Each fault consumes one request; queued faults
/// apply in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (5xx: a small HTML page; others: a JSON error), with a
    /// `Retry-After` header when set.
    Status {
        /// The HTTP status.
        status: u16,
        /// Seconds for `Retry-After`.
        retry_after: Option<u64>,
    },
    /// Wait, then answer normally.
    Delay(Duration),
    /// 200 with a body that is not JSON.
    GarbageJson,
    /// 200 with an HTML page (what a proxy or a maintenance page sends).
    HtmlPage,
    /// 200 with a 20 MB body.
    Oversized,
    /// 200 with JSON that lacks `access_token`.
    MissingAccessToken,
    /// Process the request as usual (a refresh token is spent, new tokens are issued), then
    /// close the connection without answering: the answer is lost in transit.
    AnswerLost,
}

/// What [`crate::Emulator::install_demo_fixtures`] set up.
#[derive(Clone, PartialEq, Eq)]
pub struct DemoFixtures {
    /// The user's login e-mail.
    pub email: String,
    /// The user's password.
    pub password: String,
    /// The public client's ID.
    pub public_client_id: String,
    /// The confidential client's ID.
    pub confidential_client_id: String,
    /// The confidential client's secret, to feed through stdin or the environment.
    pub client_secret: String,
    /// The redirect URI both clients have.
    pub redirect_uri: String,
}

impl std::fmt::Debug for DemoFixtures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoFixtures")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .field("public_client_id", &self.public_client_id)
            .field("confidential_client_id", &self.confidential_client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}
