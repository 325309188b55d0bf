//! The token endpoint (three grants, client authentication, injected faults) and the
//! revocation endpoint.

use crate::assertion;
use crate::authorize::{parse_scopes, pkce_ok};
use crate::config::{ClientSpec, Fault};
use crate::jwt;
use crate::respond::{html, json_response, parse_form, too_large, OAuthError, BODY_LIMIT};
use crate::state::{now, random_id, Shared, Subject};
use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// The only `client_assertion_type` NetSuite takes.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

type Params = HashMap<String, String>;

/// Why a form body could not be read: an OAuth error, or 413.
enum BodyError {
    OAuth(OAuthError),
    TooLarge,
}

async fn read_form(headers: &HeaderMap, body: Body) -> Result<Params, BodyError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(BodyError::OAuth(OAuthError::new(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        )));
    }
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| BodyError::TooLarge)?;
    parse_form(&bytes).map_err(|e| BodyError::OAuth(OAuthError::new("invalid_request", e)))
}

/// Authenticates the client of an authorization code, refresh or revoke request: HTTP Basic for
/// confidential clients, `client_id` in the body (and no secret) for public clients.
fn authenticate(sh: &Shared, headers: &HeaderMap, p: &Params) -> Result<ClientSpec, OAuthError> {
    let fail = |d: &str| OAuthError::new("invalid_client", d);
    if p.contains_key("client_secret") {
        return Err(fail("client_secret in the request body is not accepted; send it with HTTP Basic authentication"));
    }
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let auth = auth
            .to_str()
            .map_err(|_| fail("malformed Authorization header"))?;
        let (scheme, cred) = auth
            .split_once(' ')
            .ok_or_else(|| fail("malformed Authorization header"))?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(fail("client authentication must use HTTP Basic"));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(cred.trim())
            .map_err(|_| fail("malformed Basic credentials"))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| fail("malformed Basic credentials"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| fail("malformed Basic credentials"))?;
        let spec = sh
            .lock()
            .clients
            .get(id)
            .cloned()
            .ok_or_else(|| fail("unknown client or wrong secret"))?;
        if spec.client_secret.as_deref() != Some(secret) {
            return Err(fail("unknown client or wrong secret"));
        }
        if p.get("client_id").is_some_and(|c| c != id) {
            return Err(OAuthError::new(
                "invalid_request",
                "client_id in the body differs from the authenticated client",
            ));
        }
        return Ok(spec);
    }
    let id = p.get("client_id").ok_or_else(|| {
        fail("no client authentication: use HTTP Basic, or client_id for a public client")
    })?;
    let spec = sh
        .lock()
        .clients
        .get(id)
        .cloned()
        .ok_or_else(|| fail("unknown client"))?;
    if spec.is_confidential() {
        return Err(fail(
            "this is a confidential client: authenticate with HTTP Basic client_id:client_secret",
        ));
    }
    Ok(spec)
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a String, OAuthError> {
    p.get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_request", format!("{name} is missing")))
}

fn tokens(access: String, ttl: u64, refresh: Option<String>) -> Value {
    let mut v =
        json!({ "access_token": access, "expires_in": ttl.to_string(), "token_type": "bearer" });
    if let Some(r) = refresh {
        v["refresh_token"] = json!(r);
    }
    v
}

fn authorization_code(sh: &Shared, spec: &ClientSpec, p: &Params) -> Result<Value, OAuthError> {
    let grant = |d: &str| OAuthError::new("invalid_grant", d);
    let (code, redirect_uri, verifier) = (
        required(p, "code")?,
        required(p, "redirect_uri")?,
        required(p, "code_verifier")?,
    );
    let mut st = sh.lock();
    let g = st
        .codes
        .get_mut(code)
        .filter(|g| g.client_id == spec.client_id)
        .ok_or_else(|| grant("the authorization code is invalid"))?;
    if g.used {
        // RFC 6749 section 4.1.2: a reused code revokes what was issued from it.
        let chain = g.chain.clone();
        if let Some(c) = chain {
            st.revoke_chain(&c);
        }
        return Err(grant(
            "the authorization code was already used; tokens issued from it are revoked",
        ));
    }
    g.used = true;
    if g.expires <= now() {
        return Err(grant("the authorization code expired"));
    }
    if g.redirect_uri != *redirect_uri {
        return Err(grant(
            "redirect_uri differs from the one in the authorization request",
        ));
    }
    if !pkce_ok(verifier) {
        return Err(OAuthError::new(
            "invalid_request",
            "code_verifier must be 43 to 128 unreserved characters",
        ));
    }
    if jwt::b64(&Sha256::digest(verifier.as_bytes())) != g.code_challenge {
        return Err(grant("code_verifier does not match the code_challenge"));
    }
    let chain = random_id(16);
    g.chain = Some(chain.clone());
    let subject = Subject {
        client_id: spec.client_id.clone(),
        scopes: g.scopes.clone(),
        entity: g.entity,
        chain,
    };
    let (access, ttl) = sh.issue_access(&mut st, &subject, "a-c");
    let oit = now();
    let exp = st.refresh_exp(!spec.is_confidential(), oit, oit);
    let refresh = sh.issue_refresh(&mut st, &subject, oit, exp);
    st.counters.authorization_code += 1;
    Ok(tokens(access, ttl, Some(refresh)))
}

fn refresh_token(sh: &Shared, spec: &ClientSpec, p: &Params) -> Result<Value, OAuthError> {
    let grant = |d: &str| OAuthError::new("invalid_grant", d);
    let token = required(p, "refresh_token")?;
    let jti = sh
        .our_jti(token)
        .ok_or_else(|| grant("the refresh token is invalid"))?;
    let mut st = sh.lock();
    let rec = st
        .refresh
        .get(&jti)
        .filter(|r| r.token == *token)
        .ok_or_else(|| grant("the refresh token is invalid"))?;
    if rec.client_id != spec.client_id {
        return Err(grant("the refresh token was issued to another client"));
    }
    if st.chain_revoked(&rec.chain) {
        return Err(grant("the refresh token was revoked"));
    }
    if rec.used {
        if spec.revoke_on_reuse {
            let chain = rec.chain.clone();
            st.revoke_chain(&chain);
            return Err(grant(
                "the refresh token was already used; reuse detected, every token of this grant is revoked",
            ));
        }
        return Err(grant(
            "the refresh token was already used (a public client's refresh token is single use)",
        ));
    }
    let t = now();
    if rec.exp <= t {
        return Err(grant("the refresh token expired"));
    }
    let scopes = match p.get("scope") {
        Some(s) => parse_scopes(s, &rec.scopes).map_err(|e| OAuthError::new("invalid_scope", e))?,
        None => rec.scopes.clone(),
    };
    let (chain, entity, oit, all_scopes, same) = (
        rec.chain.clone(),
        rec.entity,
        rec.oit,
        rec.scopes.clone(),
        rec.token.clone(),
    );
    let subject = Subject {
        client_id: spec.client_id.clone(),
        scopes,
        entity,
        chain,
    };
    let (access, ttl) = sh.issue_access(&mut st, &subject, "a-r");
    let refresh = if spec.is_confidential() {
        // Confidential clients keep their refresh token until it expires.
        same
    } else {
        // Public clients get a new one; the old one dies at once.
        if let Some(r) = st.refresh.get_mut(&jti) {
            r.used = true;
        }
        let exp = st.refresh_exp(true, oit, t);
        sh.issue_refresh(
            &mut st,
            &Subject {
                scopes: all_scopes,
                ..subject
            },
            oit,
            exp,
        )
    };
    st.counters.refresh_token += 1;
    Ok(tokens(access, ttl, Some(refresh)))
}

fn client_credentials(sh: &Shared, headers: &HeaderMap, p: &Params) -> Result<Value, OAuthError> {
    if headers.contains_key(header::AUTHORIZATION) || p.contains_key("client_secret") {
        return Err(OAuthError::new(
            "invalid_request",
            "client_credentials authenticates with client_assertion only",
        ));
    }
    if required(p, "client_assertion_type")? != JWT_BEARER {
        return Err(OAuthError::new(
            "invalid_request",
            format!("client_assertion_type must be {JWT_BEARER}"),
        ));
    }
    let v = assertion::verify(sh, required(p, "client_assertion")?)?;
    if p.get("client_id").is_some_and(|c| *c != v.client_id) {
        return Err(OAuthError::new(
            "invalid_client",
            "client_id differs from the assertion's iss",
        ));
    }
    let mut st = sh.lock();
    st.sweep(now());
    if let Some((jti, exp)) = v.jti {
        let key = format!("{}|{jti}", v.client_id);
        if st.seen_assertions.contains_key(&key) {
            return Err(OAuthError::new(
                "invalid_client",
                "this assertion's jti was already used",
            ));
        }
        st.seen_assertions.insert(key, exp);
    }
    let subject = Subject {
        client_id: v.client_id,
        scopes: v.scopes,
        entity: 0,
        chain: random_id(16),
    };
    let (access, ttl) = sh.issue_access(&mut st, &subject, "a-cc");
    st.counters.client_credentials += 1;
    Ok(tokens(access, ttl, None))
}

fn grant(sh: &Shared, headers: &HeaderMap, p: &Params) -> Result<Value, OAuthError> {
    match required(p, "grant_type")?.as_str() {
        "authorization_code" => authorization_code(sh, &authenticate(sh, headers, p)?, p),
        "refresh_token" => refresh_token(sh, &authenticate(sh, headers, p)?, p),
        "client_credentials" => client_credentials(sh, headers, p),
        other => Err(OAuthError::new(
            "unsupported_grant_type",
            format!("grant_type {other:?} is not supported"),
        )),
    }
}

/// The answer for an injected fault (all but [`Fault::Delay`]).
fn fault_response(f: Fault) -> Response {
    match f {
        Fault::Status {
            status,
            retry_after,
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = if code.is_server_error() {
                html(
                    code,
                    "Service Unavailable",
                    "<p>NetSuite is temporarily unavailable. Try again later.</p>",
                )
            } else {
                let error = match status {
                    401 => "invalid_client",
                    429 => "temporarily_unavailable",
                    _ => "invalid_request",
                };
                json_response(
                    code,
                    &json!({ "error": error, "error_description": format!("emulated fault: HTTP {status}") }),
                )
            };
            if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Fault::GarbageJson => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{not json",
        )
            .into_response(),
        Fault::HtmlPage => html(
            StatusCode::OK,
            "NetSuite Maintenance",
            "<p>NetSuite is undergoing scheduled maintenance.</p>",
        ),
        Fault::Oversized => {
            let mut body = Vec::with_capacity(20 * 1024 * 1024 + 64);
            body.extend_from_slice(b"{\"access_token\":\"");
            body.resize(20 * 1024 * 1024, b'A');
            body.extend_from_slice(b"\",\"token_type\":\"bearer\",\"expires_in\":\"3600\"}");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Fault::MissingAccessToken => json_response(
            StatusCode::OK,
            &json!({ "token_type": "bearer", "expires_in": "3600" }),
        ),
        Fault::Delay(_) | Fault::AnswerLost => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `POST /services/rest/auth/oauth2/v1/token`
pub(crate) async fn token(
    Extract(sh): Extract<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let fault = {
        let mut st = sh.lock();
        st.counters.token_requests += 1;
        st.faults.pop_front()
    };
    let answer_lost = match fault {
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            false
        }
        Some(Fault::AnswerLost) => true,
        Some(f) => return fault_response(f),
        None => false,
    };
    let result = match read_form(&headers, body).await {
        Ok(p) => grant(&sh, &headers, &p),
        Err(BodyError::OAuth(e)) => Err(e),
        Err(BodyError::TooLarge) => {
            sh.lock().counters.token_errors += 1;
            return too_large();
        }
    };
    if answer_lost {
        // Unwinding out of the handler ends the connection task: the client sees the
        // connection close without an answer. `resume_unwind` runs no panic hook, so
        // nothing is printed.
        std::panic::resume_unwind(Box::new("emulated fault: answer lost"));
    }
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => {
            sh.lock().counters.token_errors += 1;
            tracing::debug!(error = e.code, description = %e.description, "token request refused");
            e.into_response(&sh.account_id)
        }
    }
}

/// `POST /services/rest/auth/oauth2/v1/revoke`: revokes a refresh token's chain (or one access
/// token). Unknown tokens are answered 200 too (RFC 7009).
pub(crate) async fn revoke(
    Extract(sh): Extract<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let p = match read_form(&headers, body).await {
        Ok(p) => p,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::OAuth(e)) => return e.into_response(&sh.account_id),
    };
    let spec = match authenticate(&sh, &headers, &p) {
        Ok(s) => s,
        Err(e) => return e.into_response(&sh.account_id),
    };
    let token = match required(&p, "token") {
        Ok(t) => t,
        Err(e) => return e.into_response(&sh.account_id),
    };
    let jti = sh.our_jti(token);
    let mut st = sh.lock();
    if let Some(jti) = jti {
        let chain = st
            .refresh
            .get(&jti)
            .filter(|r| r.client_id == spec.client_id)
            .map(|r| r.chain.clone());
        if let Some(chain) = chain {
            st.revoke_chain(&chain);
        } else if let Some(a) = st
            .access
            .get_mut(&jti)
            .filter(|a| a.client_id == spec.client_id)
        {
            a.revoked = true;
        }
    }
    st.counters.revoke += 1;
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}
