//! The authorization endpoint, the login form and the consent form.
//!
//! Until the client and the redirect URI are known to be registered, errors are shown as a
//! page and never redirected; after that they go back to the client as `error=...&state=...`.

use crate::config::{ClientSpec, ConsentPolicy};
use crate::pages;
use crate::respond::{error_page, parse_form, redirect};
use crate::state::{
    now, random_id, AuthSession, CodeGrant, Shared, State, CODE_TTL, ROLE, SESSION_TTL,
};
use axum::extract::{RawQuery, State as Extract};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Form;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use url::{Host, Url};

/// The browser session cookie set after a successful login.
pub(crate) const COOKIE: &str = "NS_EMU_SESSION";

/// Checks a registered redirect URI's form: https, a custom scheme, or (when allowed) loopback http.
pub(crate) fn redirect_form_ok(uri: &str, allow_loopback_http: bool) -> Result<(), &'static str> {
    let u = Url::parse(uri).map_err(|_| "the redirect_uri is not an absolute URI")?;
    if u.fragment().is_some() {
        return Err("a redirect_uri must not have a fragment");
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match u.host() {
                Some(Host::Domain(d)) => d == "localhost",
                Some(Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
                Some(Host::Ipv6(ip)) => ip == Ipv6Addr::LOCALHOST,
                None => false,
            };
            if loopback && allow_loopback_http {
                Ok(())
            } else {
                Err("http:// redirect URIs are not supported; use https:// or a custom scheme")
            }
        }
        "javascript" | "data" | "file" | "vbscript" | "ftp" | "ws" | "wss" => {
            Err("this redirect_uri scheme is not allowed")
        }
        _ => Ok(()),
    }
}

/// `state`: 22 to 1024 printable ASCII characters.
pub(crate) fn state_ok(s: &str) -> bool {
    (22..=1024).contains(&s.len()) && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Scopes: space-separated, non-empty, each allowed for the client, `mcp` only alone.
pub(crate) fn parse_scopes(raw: &str, allowed: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.split(' ') {
        if s.is_empty() {
            return Err("scope must be a non-empty list separated by single spaces".into());
        }
        if !allowed.iter().any(|a| a == s) {
            return Err(format!("scope {s:?} is not enabled for this integration"));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    if out.len() > 1 && out.iter().any(|s| s == "mcp") {
        return Err("the mcp scope cannot be combined with other scopes".into());
    }
    Ok(out)
}

/// A code challenge or verifier: 43 to 128 unreserved characters (RFC 7636).
pub(crate) fn pkce_ok(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

struct Checked {
    scopes: Vec<String>,
    state: String,
    challenge: String,
    prompt: Vec<String>,
}

fn check(
    p: &HashMap<String, String>,
    client: &ClientSpec,
) -> Result<Checked, (&'static str, String)> {
    let bad = |d: &str| ("invalid_request", d.to_owned());
    match p.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => return Err(bad("response_type is missing")),
        Some(_) => {
            return Err((
                "unsupported_response_type",
                "only response_type=code is supported".into(),
            ))
        }
    }
    let state = p.get("state").ok_or_else(|| bad("state is missing"))?;
    if !state_ok(state) {
        return Err(bad("state must be 22 to 1024 printable ASCII characters"));
    }
    let scopes = parse_scopes(
        p.get("scope").map(String::as_str).unwrap_or(""),
        &client.scopes,
    )
    .map_err(|e| ("invalid_scope", e))?;
    let challenge = p
        .get("code_challenge")
        .ok_or_else(|| bad("code_challenge is missing (PKCE is required)"))?;
    match p.get("code_challenge_method").map(String::as_str) {
        Some("S256") => {}
        Some("plain") => {
            return Err(bad(
                "code_challenge_method plain is not supported; use S256",
            ))
        }
        _ => return Err(bad("code_challenge_method must be S256")),
    }
    if !pkce_ok(challenge) {
        return Err(bad(
            "code_challenge must be the base64url SHA-256 of the verifier",
        ));
    }
    let prompt = match p.get("prompt").map(String::as_str) {
        None => vec![],
        Some(v @ ("none" | "login" | "consent" | "login consent")) => {
            v.split(' ').map(str::to_owned).collect()
        }
        Some(_) => {
            return Err(bad(
                "prompt must be none, login, consent or \"login consent\"",
            ))
        }
    };
    Ok(Checked {
        scopes,
        state: state.clone(),
        challenge: challenge.clone(),
        prompt,
    })
}

fn with_params(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut u) => {
            u.query_pairs_mut().extend_pairs(pairs);
            u.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

fn error_redirect(
    redirect_uri: &str,
    code: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let mut pairs = vec![("error", code), ("error_description", description)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    redirect(&with_params(redirect_uri, &pairs), None)
}

fn cookie_user(st: &State, headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find_map(|id| st.browser_sessions.get(id).cloned())
}

fn consent_key(user: &str, client_id: &str, scopes: &[String]) -> String {
    let mut s = scopes.to_vec();
    s.sort();
    format!("{user}|{client_id}|{}", s.join(" "))
}

fn needs_consent(st: &State, policy: ConsentPolicy, sess: &AuthSession, user: &str) -> bool {
    let asked = sess.prompt.iter().any(|p| p == "consent");
    match policy {
        ConsentPolicy::AlwaysAsk => true,
        ConsentPolicy::AskFirstTime => {
            asked
                || !st
                    .consents
                    .contains(&consent_key(user, &sess.client_id, &sess.scopes))
        }
        ConsentPolicy::NeverAsk => asked,
    }
}

/// Ends a pending login with a code: `redirect_uri?code&state&role&entity&company`.
fn issue_code(
    sh: &Shared,
    st: &mut State,
    sess: &AuthSession,
    user: &str,
    cookie: Option<String>,
) -> Response {
    let entity = st.users.get(user).map(|u| u.entity).unwrap_or_default();
    let code = random_id(48);
    st.codes.insert(
        code.clone(),
        CodeGrant {
            client_id: sess.client_id.clone(),
            redirect_uri: sess.redirect_uri.clone(),
            code_challenge: sess.code_challenge.clone(),
            scopes: sess.scopes.clone(),
            entity,
            expires: now() + CODE_TTL,
            used: false,
            chain: None,
        },
    );
    let (role, entity) = (ROLE.to_string(), entity.to_string());
    let pairs = [
        ("code", code.as_str()),
        ("state", sess.state.as_str()),
        ("role", &role),
        ("entity", &entity),
        ("company", &sh.account_id),
    ];
    redirect(&with_params(&sess.redirect_uri, &pairs), cookie)
}

/// After login (or with a logged-in browser): consent page, or straight to the code.
fn after_login(
    sh: &Shared,
    st: &mut State,
    id: &str,
    sess: AuthSession,
    user: &str,
    cookie: Option<String>,
) -> Response {
    let policy = st
        .clients
        .get(&sess.client_id)
        .map(|c| c.consent)
        .unwrap_or_default();
    if needs_consent(st, policy, &sess, user) {
        st.counters.consents_shown += 1;
        let email = st
            .users
            .get(user)
            .map(|u| u.email.clone())
            .unwrap_or_default();
        let mut resp = pages::consent(id, &sess.client_id, &email, &sess.scopes);
        if let Some(c) = cookie.and_then(|c| c.parse().ok()) {
            resp.headers_mut().insert(header::SET_COOKIE, c);
        }
        st.auth_sessions.insert(
            id.to_owned(),
            AuthSession {
                user: Some(user.to_owned()),
                ..sess
            },
        );
        return resp;
    }
    st.auth_sessions.remove(id);
    issue_code(sh, st, &sess, user, cookie)
}

/// `GET /app/login/oauth2/authorize.nl`
pub(crate) async fn authorize(
    Extract(sh): Extract<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = match parse_form(q.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return error_page(&e),
    };
    let Some(client_id) = p.get("client_id") else {
        return error_page("The request has no client_id.");
    };
    let Some(client) = sh.lock().clients.get(client_id).cloned() else {
        return error_page("Unknown client_id: no integration record has this client ID.");
    };
    let Some(redirect_uri) = p.get("redirect_uri") else {
        return error_page("The request has no redirect_uri.");
    };
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return error_page(
            "The redirect_uri does not match the integration record's redirect URI.",
        );
    }
    if let Err(e) = redirect_form_ok(redirect_uri, client.allow_loopback_http) {
        return error_page(e);
    }
    let c = match check(&p, &client) {
        Ok(c) => c,
        Err((code, d)) => {
            let state = p.get("state").map(String::as_str).filter(|s| state_ok(s));
            return error_redirect(redirect_uri, code, &d, state);
        }
    };
    // "Always Ask" shows the consent screen whatever prompt says, even none.
    let none = c.prompt.iter().any(|p| p == "none") && client.consent != ConsentPolicy::AlwaysAsk;
    let force_login = c.prompt.iter().any(|p| p == "login");
    let sess = AuthSession {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        scopes: c.scopes,
        state: c.state,
        code_challenge: c.challenge,
        prompt: c.prompt,
        user: None,
        expires: now() + SESSION_TTL,
    };
    let mut st = sh.lock();
    st.sweep(now());
    let user = cookie_user(&st, &headers).filter(|_| !force_login);
    let id = random_id(24);
    match user {
        Some(user) if none => {
            if needs_consent(&st, client.consent, &sess, &user) {
                error_redirect(
                    redirect_uri,
                    "consent_required",
                    "the user has not approved this application",
                    Some(&sess.state),
                )
            } else {
                issue_code(&sh, &mut st, &sess, &user, None)
            }
        }
        None if none => error_redirect(
            redirect_uri,
            "login_required",
            "the user is not logged in",
            Some(&sess.state),
        ),
        Some(user) => after_login(&sh, &mut st, &id, sess, &user, None),
        None => {
            st.auth_sessions.insert(id.clone(), sess);
            pages::login(&id, &client.client_id, &sh.account_id, None)
        }
    }
}

/// The login form's fields.
#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    session: String,
    email: String,
    password: String,
}

/// `POST` of the login form.
pub(crate) async fn login(Extract(sh): Extract<Arc<Shared>>, Form(f): Form<LoginForm>) -> Response {
    let mut st = sh.lock();
    st.sweep(now());
    let Some(sess) = st.auth_sessions.get(&f.session).cloned() else {
        return error_page("This login page has expired. Start again from the application.");
    };
    let key = f.email.trim().to_lowercase();
    let ok = st.users.get(&key).is_some_and(|u| u.password == f.password);
    if !ok {
        return pages::login(
            &f.session,
            &sess.client_id,
            &sh.account_id,
            Some("You have entered an invalid email address or password."),
        );
    }
    st.counters.logins += 1;
    let browser = random_id(24);
    st.browser_sessions.insert(browser.clone(), key.clone());
    let cookie = format!("{COOKIE}={browser}; Path=/; HttpOnly; SameSite=Lax");
    after_login(&sh, &mut st, &f.session, sess, &key, Some(cookie))
}

/// The consent form's fields.
#[derive(serde::Deserialize)]
pub(crate) struct ConsentForm {
    session: String,
    decision: String,
}

/// `POST` of the consent form.
pub(crate) async fn consent(
    Extract(sh): Extract<Arc<Shared>>,
    Form(f): Form<ConsentForm>,
) -> Response {
    let mut st = sh.lock();
    let Some(sess) = st.auth_sessions.get(&f.session).cloned() else {
        return error_page("This consent page has expired. Start again from the application.");
    };
    let Some(user) = sess.user.clone() else {
        return error_page("Log in first.");
    };
    st.auth_sessions.remove(&f.session);
    match f.decision.as_str() {
        "approve" => {
            st.consents
                .insert(consent_key(&user, &sess.client_id, &sess.scopes));
            issue_code(&sh, &mut st, &sess, &user, None)
        }
        _ => error_redirect(
            &sess.redirect_uri,
            "access_denied",
            "the user denied access",
            Some(&sess.state),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_forms() {
        assert!(redirect_form_ok("https://example.com/cb", false).is_ok());
        assert!(redirect_form_ok("com.example.app:/cb", false).is_ok());
        assert!(redirect_form_ok("http://127.0.0.1:8080/cb", false).is_err());
        assert!(redirect_form_ok("http://127.0.0.1:8080/cb", true).is_ok());
        assert!(redirect_form_ok("http://[::1]:8080/cb", true).is_ok());
        assert!(redirect_form_ok("http://localhost/cb", true).is_ok());
        assert!(redirect_form_ok("http://example.com/cb", true).is_err());
        assert!(redirect_form_ok("http://127.0.0.2/cb", true).is_err());
        assert!(redirect_form_ok("https://example.com/cb#x", false).is_err());
        assert!(redirect_form_ok("javascript:alert(1)", false).is_err());
    }

    #[test]
    fn state_bounds() {
        assert!(!state_ok(&"a".repeat(21)));
        assert!(state_ok(&"a".repeat(22)));
        assert!(state_ok(&"a".repeat(1024)));
        assert!(!state_ok(&"a".repeat(1025)));
        assert!(!state_ok(&format!("{}\u{e9}", "a".repeat(22))));
        assert!(!state_ok(&format!("{}\n", "a".repeat(22))));
    }

    #[test]
    fn scopes() {
        let allowed: Vec<String> = ["restlets", "rest_webservices", "mcp"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            parse_scopes("restlets rest_webservices", &allowed)
                .unwrap()
                .len(),
            2
        );
        assert!(parse_scopes("", &allowed).is_err());
        assert!(parse_scopes("restlets  rest_webservices", &allowed).is_err());
        assert!(parse_scopes("restlets,rest_webservices", &allowed).is_err());
        assert!(parse_scopes("suite_analytics", &allowed).is_err());
        assert!(parse_scopes("mcp", &allowed).is_ok());
        assert!(parse_scopes("mcp restlets", &allowed).is_err());
    }
}
