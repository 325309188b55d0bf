//! The HTML a person sees: the login form and the consent form.

use crate::respond::{escape, html};
use axum::http::StatusCode;
use axum::response::Response;

/// Where the login form posts.
pub(crate) const LOGIN_PATH: &str = "/app/login/oauth2/login.nl";
/// Where the consent form posts.
pub(crate) const CONSENT_PATH: &str = "/app/login/oauth2/consent.nl";

/// The login form: e-mail, password and the pending login's hidden session id.
pub(crate) fn login(
    session: &str,
    client_id: &str,
    account_id: &str,
    error: Option<&str>,
) -> Response {
    let err = error
        .map(|e| format!("<p id=\"error\" style=\"color:#a00\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<p>An application (client <code>{client}</code>) asks to connect to NetSuite account <b>{account}</b>. \
         Log in to continue.</p>\n{err}\
         <form id=\"login\" method=\"post\" action=\"{LOGIN_PATH}\">\n\
         <input type=\"hidden\" name=\"session\" value=\"{session}\">\n\
         <p><label>Email <input type=\"email\" name=\"email\" autocomplete=\"username\" required></label></p>\n\
         <p><label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label></p>\n\
         <p><button type=\"submit\">Log In</button></p>\n</form>",
        client = escape(client_id),
        account = escape(account_id),
        session = escape(session),
    );
    html(
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        "NetSuite Login (emulator)",
        &body,
    )
}

/// The consent form: approve or deny access for `scopes`.
pub(crate) fn consent(session: &str, client_id: &str, email: &str, scopes: &[String]) -> Response {
    let items: String = scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(s)))
        .collect();
    let body = format!(
        "<p>The application <code>{client}</code> asks for access, as <b>{email}</b>, to:</p>\n<ul>{items}</ul>\n\
         <form id=\"consent\" method=\"post\" action=\"{CONSENT_PATH}\">\n\
         <input type=\"hidden\" name=\"session\" value=\"{session}\">\n\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Continue</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button>\n</form>",
        client = escape(client_id),
        email = escape(email),
        session = escape(session),
    );
    html(
        StatusCode::OK,
        "Authorize Application Access (emulator)",
        &body,
    )
}
