//! The OAuth 2.0 flows, to NetSuite's rules: authorization URL with state and PKCE S256,
//! the code exchange, refresh, client credentials and revoke.

use crate::error::Error;
use crate::http::{encode_form, ClientAuth, Delivery, Http, Response};
use crate::profile::{GrantKind, Profile};
use crate::secret::{AuthorizationCode, CodeVerifier, RefreshToken};
use crate::store::PendingLogin;
use crate::token::{parse_token_response, TokenSet};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::Digest;
use time::OffsetDateTime;
use url::Url;

/// `prompt` values NetSuite accepts.
pub const PROMPTS: &[&str] = &["none", "login", "consent", "login consent"];

fn random_urlsafe(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).expect("OS random source");
    URL_SAFE_NO_PAD.encode(b)
}

/// An authorization URL and the pending login that must be kept to finish it.
#[derive(Debug)]
pub struct AuthorizationRequest {
    /// Where the user must go.
    pub url: Url,
    /// What `login finish` needs.
    pub pending: PendingLogin,
}

/// Builds the authorization URL: 43-character random `state`, PKCE S256 with a 64-character
/// verifier, optional `prompt`.
pub fn authorization_request(
    profile: &Profile,
    prompt: Option<&str>,
    ttl: time::Duration,
) -> Result<AuthorizationRequest, Error> {
    if profile.grant != GrantKind::AuthorizationCode {
        return Err(Error::Invalid(
            "this profile uses client credentials; it needs no login (run: nsauth token)".into(),
        ));
    }
    let redirect = profile.redirect_uri.clone().ok_or_else(|| {
        Error::Invalid(
            "the profile has no redirect URI; run nsauth profile set with --redirect-uri".into(),
        )
    })?;
    if let Some(p) = prompt {
        if !PROMPTS.contains(&p) {
            return Err(Error::Invalid(format!(
                "invalid --prompt {p:?}; use none, login, consent or \"login consent\""
            )));
        }
    }
    let state = random_urlsafe(32);
    let verifier = CodeVerifier::new(random_urlsafe(48));
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.secret().as_bytes()));
    let mut url = profile.endpoints().authorize;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &profile.client_id)
            .append_pair("redirect_uri", redirect.as_str())
            .append_pair("scope", &profile.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(p) = prompt {
            q.append_pair("prompt", p);
        }
    }
    Ok(AuthorizationRequest {
        url,
        pending: PendingLogin {
            state,
            verifier,
            redirect_uri: redirect.to_string(),
            expires_at: OffsetDateTime::now_utc() + ttl,
        },
    })
}

/// What came back on the redirect.
#[derive(Debug)]
pub struct Callback {
    /// The authorization code.
    pub code: AuthorizationCode,
    /// The state echoed back.
    pub state: String,
    /// NetSuite's `company` (the account ID), when sent.
    pub company: Option<String>,
    /// NetSuite's `role`, when sent.
    pub role: Option<String>,
    /// NetSuite's `entity`, when sent.
    pub entity: Option<String>,
}

/// Largest callback input accepted.
pub const MAX_CALLBACK_LEN: usize = 16 * 1024;

/// Parses what the browser landed on: a full redirect URL, or just its query string
/// (`code=…&state=…`). Refuses `error=` answers (with NetSuite's description), missing or
/// duplicated parameters and oversized input.
pub fn parse_callback(input: &str) -> Result<Callback, Error> {
    let input = input.trim();
    if input.len() > MAX_CALLBACK_LEN {
        return Err(Error::Invalid(
            "the redirect URL is too long (over 16 KiB); paste the URL the browser landed on"
                .into(),
        ));
    }
    if input.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "the redirect URL contains control characters; paste it again".into(),
        ));
    }
    let query = match Url::parse(input) {
        Ok(u) => u.query().unwrap_or_default().to_owned(),
        Err(_) => input.trim_start_matches('?').to_owned(),
    };
    let mut seen: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if seen.iter().any(|(sk, _)| *sk == k) {
            return Err(Error::Invalid(format!("the redirect URL has the parameter {k:?} twice; paste the URL exactly as the browser shows it")));
        }
        seen.push((k.into_owned(), v.into_owned()));
    }
    let get = |name: &str| seen.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if let Some(err) = get("error") {
        let desc = get("error_description")
            .map(|d| format!(" ({})", d.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        let hint = match err.as_str() {
            "access_denied" => "the user declined; ask them to approve the request",
            "login_required" | "consent_required" | "interaction_required" => {
                "run login again without --prompt none"
            }
            "invalid_scope" => "check the scopes enabled on the integration record",
            _ => "check the integration record and try again",
        };
        let shown: String = err
            .chars()
            .take(60)
            .flat_map(char::escape_default)
            .collect();
        return Err(Error::LoginNeeded(format!(
            "NetSuite refused the login: {shown}{desc}; {hint}"
        )));
    }
    let code = get("code").filter(|c| !c.is_empty()).ok_or_else(|| Error::Invalid("the redirect URL has no code parameter; paste the full URL the browser landed on after approving".into()))?;
    let state = get("state").filter(|s| !s.is_empty()).ok_or_else(|| {
        Error::Invalid(
            "the redirect URL has no state parameter; paste the full URL the browser landed on"
                .into(),
        )
    })?;
    Ok(Callback {
        code: AuthorizationCode::new(code),
        state,
        company: get("company"),
        role: get("role"),
        entity: get("entity"),
    })
}

fn client_auth(profile: &Profile) -> ClientAuth<'_> {
    match &profile.client_secret {
        Some(secret) => ClientAuth::Basic {
            client_id: &profile.client_id,
            secret,
        },
        None => ClientAuth::Public {
            client_id: &profile.client_id,
        },
    }
}

/// Exchanges an authorization code for tokens.
pub async fn exchange_code(
    http: &Http,
    profile: &Profile,
    code: &AuthorizationCode,
    verifier: &CodeVerifier,
    redirect_uri: &str,
) -> Result<TokenSet, Error> {
    let token_url = profile.endpoints().token;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.secret()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier.secret()),
    ];
    let now = OffsetDateTime::now_utc();
    // A code is single-use, and a server that sees one twice revokes what it issued from it.
    let resp = http
        .post_form_with(
            "token endpoint",
            &token_url,
            client_auth(profile),
            &form,
            Delivery::AtMostOnce {
                if_lost: "not sent again: the code may have been used already, and a second use makes NetSuite revoke the tokens issued from it; run login again",
            },
        )
        .await?;
    let issued = issued_at(&resp, now);
    let parsed = token_result(resp, TokenCall::Exchange)?;
    Ok(parsed.into_token_set(issued, None, fallback_hours(profile)))
}

/// Uses the refresh token in `tokens` to get a new token set. Keeps the old refresh token
/// when NetSuite does not send a new one (confidential clients).
pub async fn refresh(http: &Http, profile: &Profile, tokens: &TokenSet) -> Result<TokenSet, Error> {
    let Some(rt) = &tokens.refresh_token else {
        return Err(Error::LoginNeeded(
            "there is no refresh token; a login is needed".into(),
        ));
    };
    let token_url = profile.endpoints().token;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.secret()),
    ];
    let now = OffsetDateTime::now_utc();
    let resp = http
        .post_form_with(
            "token endpoint",
            &token_url,
            client_auth(profile),
            &form,
            refresh_delivery(profile),
        )
        .await?;
    let issued = issued_at(&resp, now);
    let parsed = token_result(resp, TokenCall::Refresh)?;
    Ok(parsed.into_token_set(
        issued,
        Some((rt, tokens.refresh_expires_at)),
        fallback_hours(profile),
    ))
}

/// How a refresh may be retried. A confidential client's refresh token is reused by NetSuite,
/// so sending it again is harmless. A public client's is single-use: once a request carrying
/// it has been sent, it may be spent, and presenting a spent one again makes servers with
/// reuse detection revoke the whole grant. So that request is retried only when it provably
/// never reached the server (no connection was made) or the server said it did not process
/// it (429, 503); a timeout, a dropped connection, a cut-off answer or another 5xx after
/// sending ends the call (exit 5) instead.
pub fn refresh_delivery(profile: &Profile) -> Delivery<'static> {
    if profile.client_secret.is_some() {
        Delivery::Retry
    } else {
        Delivery::AtMostOnce {
            if_lost: "the single-use refresh token was not sent again (it may be spent, and a second use can make NetSuite revoke the whole grant); run `nsauth refresh` once when the network is stable, and if NetSuite then answers invalid_grant, run `nsauth login`",
        }
    }
}

/// Mints an access token with a signed JWT assertion (machine to machine).
pub async fn client_credentials(http: &Http, profile: &Profile) -> Result<TokenSet, Error> {
    let (Some(kid), Some(key)) = (&profile.certificate_id, &profile.private_key) else {
        return Err(Error::Invalid("client credentials need a certificate ID and a private key; run nsauth profile set --grant client-credentials --certificate-id ID --private-key-file PEM".into()));
    };
    let token_url = profile.endpoints().token;
    let now = OffsetDateTime::now_utc();
    let sign = |at: OffsetDateTime| {
        crate::m2m::sign_assertion(
            key,
            kid,
            &profile.client_id,
            token_url.as_str(),
            &profile.scopes,
            at,
            300,
        )
        .map(zeroize::Zeroizing::new)
    };
    // Signed here so that a bad key is reported before anything is sent; each retry signs
    // a new one, since NetSuite accepts an assertion's `jti` once (a retry after a lost
    // answer would otherwise be refused as a replay).
    let first = sign(now)?;
    let unsent = std::sync::Mutex::new(Some(first.clone()));
    let body = || {
        let assertion = unsent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .or_else(|| sign(OffsetDateTime::now_utc()).ok())
            .unwrap_or_else(|| first.clone());
        encode_form(
            &ClientAuth::None,
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ],
        )
    };
    let resp = http
        .post_fresh_form("token endpoint", &token_url, body)
        .await?;
    let issued = issued_at(&resp, now);
    let parsed = token_result(resp, TokenCall::Mint)?;
    let mut set = parsed.into_token_set(issued, None, fallback_hours(profile));
    set.refresh_token = None;
    set.refresh_expires_at = None;
    Ok(set)
}

/// Revokes a refresh token (and the access tokens issued from it).
pub async fn revoke(http: &Http, profile: &Profile, token: &RefreshToken) -> Result<(), Error> {
    let url = profile.endpoints().revoke;
    let resp = http
        .post_form(
            "revoke endpoint",
            &url,
            client_auth(profile),
            &[("token", token.secret())],
        )
        .await?;
    if resp.status == 200 {
        return Ok(());
    }
    Err(oauth_error(&resp, TokenCall::Revoke))
}

fn fallback_hours(profile: &Profile) -> u32 {
    profile
        .refresh_token_validity_hours
        .unwrap_or(crate::profile::DEFAULT_REFRESH_VALIDITY_HOURS)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenCall {
    Exchange,
    Refresh,
    Mint,
    Revoke,
}

/// How far the token endpoint's `Date` may be from this machine's clock and still be trusted.
const MAX_TRUSTED_SKEW: time::Duration = time::Duration::hours(1);

/// When a token answer was issued, on NetSuite's clock: its `Date` header (whole seconds,
/// rounded down, so never later than the truth), else `sent` (this machine's clock when the
/// request left). Stored expiry times are thus NetSuite's, not the clock of whichever host
/// happened to refresh: with a shared store, a host whose clock runs fast would otherwise make
/// every other host believe its tokens live longer than they do. A `Date` more than an hour
/// from this clock is not trusted (a broken proxy); the local time is used, with a warning.
fn issued_at(resp: &Response, sent: OffsetDateTime) -> OffsetDateTime {
    let Some(server) = resp.date.as_deref().and_then(|d| {
        OffsetDateTime::parse(d.trim(), &time::format_description::well_known::Rfc2822).ok()
    }) else {
        return sent;
    };
    if (server - sent).abs() > MAX_TRUSTED_SKEW {
        tracing::warn!(
            skew_seconds = (sent - server).whole_seconds(),
            "the token endpoint's Date is more than an hour from this machine's clock; expiry times use this clock (run: nsauth doctor)"
        );
        return sent;
    }
    server
}

fn token_result(resp: Response, call: TokenCall) -> Result<crate::token::TokenResponse, Error> {
    if resp.status != 200 {
        return Err(oauth_error(&resp, call));
    }
    let mut body = zeroize::Zeroizing::new(resp.body);
    let parsed = parse_token_response(&body)
        .map_err(|e| Error::Unreachable(format!("{e}; nothing was stored")));
    use zeroize::Zeroize;
    body.zeroize();
    let parsed = parsed?;
    if call == TokenCall::Exchange && parsed.refresh_token.is_none() {
        return Err(Error::Unreachable(
            "the token endpoint sent no refresh token for a login; nothing was stored".into(),
        ));
    }
    Ok(parsed)
}

/// Maps an OAuth error answer to an error kind and a one-line message with a fix.
fn oauth_error(resp: &Response, call: TokenCall) -> Error {
    #[derive(serde::Deserialize)]
    struct E {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    let parsed: Option<E> = serde_json::from_slice(&resp.body).ok();
    let Some(e) = parsed else {
        return Error::Unreachable(format!(
            "NetSuite answered HTTP {} without an OAuth error body; nothing was stored",
            resp.status
        ));
    };
    let code: String = e
        .error
        .chars()
        .take(60)
        .filter(|c| !c.is_control())
        .collect();
    let desc = e
        .error_description
        .map(|d| {
            format!(
                " ({})",
                d.chars()
                    .take(200)
                    .filter(|c| !c.is_control())
                    .collect::<String>()
            )
        })
        .unwrap_or_default();
    match code.as_str() {
        "invalid_grant" => Error::LoginNeeded(match call {
            TokenCall::Exchange => format!("NetSuite refused the authorization code: invalid_grant{desc}; codes are single-use and expire quickly: run login again"),
            TokenCall::Mint => format!("NetSuite refused the client assertion: invalid_grant{desc}; check the certificate mapping (certificate ID, role, entity)"),
            _ => format!("NetSuite refused the refresh token: invalid_grant{desc} (expired, revoked or already used)"),
        }),
        "invalid_client" | "unauthorized_client" => Error::Invalid(format!(
            "NetSuite refused the client: {code}{desc}; check the client ID, client secret and that the integration is enabled"
        )),
        "invalid_scope" => Error::Invalid(format!("NetSuite refused the scopes: {code}{desc}; enable them on the integration record")),
        _ => Error::Rejected(format!("NetSuite refused the request: HTTP {} {code}{desc}", resp.status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(date: Option<&str>) -> Response {
        Response {
            status: 200,
            body: Vec::new(),
            date: date.map(str::to_owned),
            content_type: None,
        }
    }

    #[test]
    fn tokens_are_stamped_with_netsuites_clock_not_this_hosts() {
        let server = time::macros::datetime!(2026-12-02 03:30:00 UTC);
        let date = "Wed, 02 Dec 2026 03:30:00 GMT";
        // This host runs 2 minutes fast or slow: the stamp is NetSuite's either way.
        for skew in [120, -120, 40, 0] {
            let sent = server + time::Duration::seconds(skew);
            assert_eq!(issued_at(&answer(Some(date)), sent), server, "skew {skew}");
        }
        // No usable Date, or one too far off to be NetSuite's clock: this host's clock.
        let sent = server + time::Duration::hours(2);
        assert_eq!(issued_at(&answer(Some(date)), sent), sent);
        assert_eq!(issued_at(&answer(None), server), server);
        assert_eq!(issued_at(&answer(Some("yesterday")), sent), sent);
    }

    #[test]
    fn callback_parsing() {
        let c =
            parse_callback("https://127.0.0.1:1/cb?code=abc&state=xyz&role=3&company=123").unwrap();
        assert_eq!(c.code.secret(), "abc");
        assert_eq!(c.state, "xyz");
        assert!(parse_callback("code=abc&state=x").is_ok());
        assert!(matches!(
            parse_callback("https://h/cb?state=x"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            parse_callback("https://h/cb?code=a&code=b&state=x"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            parse_callback("https://h/cb?error=access_denied&state=x"),
            Err(Error::LoginNeeded(_))
        ));
        assert!(parse_callback(&format!("https://h/cb?code={}", "a".repeat(20000))).is_err());
    }
}
