//! Response builders: OAuth JSON errors, HTML pages, redirects, and HTML escaping.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The most a request body may hold; more is answered with 413.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// An OAuth error from the token or revoke endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub code: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// `invalid_client` is 401; everything else is 400.
    pub fn status(&self) -> StatusCode {
        if self.code == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        }
    }

    /// The JSON response; 401 carries `WWW-Authenticate: Basic realm="<account>"`.
    pub fn into_response(self, account_id: &str) -> Response {
        let status = self.status();
        let body = json!({ "error": self.code, "error_description": self.description });
        let mut resp = json_response(status, &body);
        if status == StatusCode::UNAUTHORIZED {
            if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{account_id}\"")) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

/// A JSON response that no cache keeps (RFC 6749 section 5.1).
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json;charset=UTF-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// An HTML page with `title` and an already escaped `body`.
pub(crate) fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\n\
         <body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">\n<h1>{t}</h1>\n{body}\n</body></html>\n",
        t = escape(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

/// An error page shown to the user instead of a redirect (bad client or redirect URI).
pub(crate) fn error_page(message: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        "Invalid Login Attempt",
        &format!("<p id=\"error\">{}</p>", escape(message)),
    )
}

/// A 302 to `location`, with optional extra headers such as `Set-Cookie`.
pub(crate) fn redirect(location: &str, set_cookie: Option<String>) -> Response {
    let mut resp = (StatusCode::FOUND, [(header::CACHE_CONTROL, "no-store")]).into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

/// 413 for a body over [`BODY_LIMIT`].
pub(crate) fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [(header::CONTENT_TYPE, "text/plain")],
        "request body too large\n",
    )
        .into_response()
}

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Parses an `application/x-www-form-urlencoded` body or query; a parameter given twice is an error
/// (RFC 6749 section 3.1).
pub(crate) fn parse_form(raw: &[u8]) -> Result<std::collections::HashMap<String, String>, String> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if out.insert(k.clone().into_owned(), v.into_owned()).is_some() {
            return Err(format!("parameter {k:?} is repeated"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn repeated_parameters_refused() {
        assert!(parse_form(b"a=1&a=2").is_err());
        assert_eq!(parse_form(b"a=1+2&b=%41").unwrap()["a"], "1 2");
    }
}
