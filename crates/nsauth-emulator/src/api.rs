//! A sliver of the REST API (to prove a token works) and the OpenID configuration document.

use crate::assertion::ALGORITHMS;
use crate::respond::{json_response, too_large, BODY_LIMIT};
use crate::state::Shared;
use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::Arc;

/// The scope the REST web services need.
const REST_SCOPE: &str = "rest_webservices";

fn ns_error(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.{}", u16::from(status) - 399),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "o:errorDetails": [{ "detail": detail, "o:errorCode": code }],
    });
    json_response(status, &body)
}

/// Counts the call and checks `Authorization: Bearer <access token>` with the REST scope;
/// `Some` is the refusal to send.
fn refused(sh: &Shared, headers: &HeaderMap) -> Option<Response> {
    bearer(sh, headers).err().map(|why| {
        let mut resp = ns_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_LOGIN",
            &format!("Invalid login attempt ({why}). For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail."),
        );
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        resp
    })
}

fn bearer(sh: &Shared, headers: &HeaderMap) -> Result<(), &'static str> {
    sh.lock().counters.api_calls += 1;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim())
        });
    let scopes = sh.check_access(token.ok_or("no bearer token")?)?;
    if !scopes.iter().any(|s| s == REST_SCOPE) {
        return Err("the token lacks the rest_webservices scope");
    }
    Ok(())
}

/// `GET /services/rest/record/v1/metadata-catalog`
pub(crate) async fn metadata_catalog(
    Extract(sh): Extract<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    if let Some(resp) = refused(&sh, &headers) {
        return resp;
    }
    let base = format!("{}/services/rest/record/v1/metadata-catalog", sh.base_url);
    let items: Vec<Value> = ["account", "customer", "employee", "salesorder"]
        .iter()
        .map(|n| json!({ "name": n, "links": [{ "rel": "canonical", "href": format!("{base}/{n}") }] }))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "items": items, "links": [{ "rel": "self", "href": base }] }),
    )
}

/// `POST /services/rest/query/v1/suiteql` (with `Prefer: transient`, JSON `{"q": "..."}`)
pub(crate) async fn suiteql(
    Extract(sh): Extract<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(resp) = refused(&sh, &headers) {
        return resp;
    }
    let transient = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("transient"));
    if !transient {
        return ns_error(
            StatusCode::BAD_REQUEST,
            "INVALID_HEADER",
            "SuiteQL requests need the header Prefer: transient.",
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return too_large();
    };
    let q = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("q").and_then(Value::as_str).map(str::to_owned));
    let Some(q) = q else {
        return ns_error(
            StatusCode::BAD_REQUEST,
            "INVALID_CONTENT",
            "The body must be JSON like {\"q\": \"SELECT ...\"}.",
        );
    };
    let calls = sh.lock().counters.api_calls;
    let body = json!({
        "links": [],
        "count": 1,
        "hasMore": false,
        "offset": 0,
        "totalResults": 1,
        "items": [{ "links": [], "q": q, "api_calls": calls }],
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /.well-known/openid-configuration`
pub(crate) async fn openid_configuration(Extract(sh): Extract<Arc<Shared>>) -> Response {
    let b = &sh.base_url;
    let body = json!({
        "issuer": "https://system.netsuite.com",
        "authorization_endpoint": format!("{b}/app/login/oauth2/authorize.nl"),
        "token_endpoint": format!("{b}/services/rest/auth/oauth2/v1/token"),
        "revocation_endpoint": format!("{b}/services/rest/auth/oauth2/v1/revoke"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes_supported": ["restlets", "rest_webservices", "suite_analytics", "mcp"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "prompt_values_supported": ["none", "login", "consent"],
    });
    json_response(StatusCode::OK, &body)
}
