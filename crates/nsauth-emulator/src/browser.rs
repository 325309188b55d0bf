//! A scripted person with a browser: opens the authorization URL, fills in the login form,
//! answers the consent form, and reports where the browser would be sent.

use crate::authorize::COOKIE;
use reqwest::header::{COOKIE as COOKIE_HEADER, LOCATION, SET_COOKIE};
use reqwest::{Response, Url};
use std::sync::Arc;

/// A browser with its own cookie (so a second authorization request may find the user still
/// logged in, as `prompt=none` needs). [`browser_login`] uses a fresh one each time.
#[derive(Debug, Clone)]
pub struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// The text of the page's error paragraph, or a short excerpt of the page.
fn page_error(text: &str) -> String {
    let msg = between(text, "<p id=\"error\"", "</p>")
        .and_then(|p| p.split_once('>'))
        .map(|(_, m)| m.to_owned());
    msg.unwrap_or_else(|| text.chars().take(200).collect())
}

impl Browser {
    /// A browser with no cookies that does not follow redirects.
    pub fn new() -> Self {
        // The emulator speaks plain HTTP: rustls on ring with no trusted roots, given
        // explicitly (reqwest has no provider of its own; see nsauth_core::http::tls).
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http, cookie: None }
    }

    fn remember(&mut self, resp: &Response) {
        for v in resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            if let Some(value) = v
                .split(';')
                .next()
                .and_then(|c| c.trim().strip_prefix(COOKIE))
                .and_then(|c| c.strip_prefix('='))
            {
                self.cookie = Some(value.to_owned());
            }
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Result<Response, String> {
        let req = match &self.cookie {
            Some(c) => req.header(COOKIE_HEADER, format!("{COOKIE}={c}")),
            None => req,
        };
        let resp = req
            .send()
            .await
            .map_err(|e| format!("the browser could not reach the emulator: {e}"))?;
        self.remember(&resp);
        Ok(resp)
    }

    /// Opens `authorize_url`, logs in as `email`/`password` when the login form shows, approves
    /// (or denies) the consent form when it shows, and returns the URL the browser is redirected
    /// to, without visiting it. An error page or a refused login is an `Err`.
    pub async fn login(
        &mut self,
        authorize_url: &str,
        email: &str,
        password: &str,
        approve: bool,
    ) -> Result<String, String> {
        let mut resp = self.send(self.http.get(authorize_url)).await?;
        let mut logged_in = false;
        for _ in 0..4 {
            if resp.status().is_redirection() {
                let loc = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok());
                return loc
                    .map(str::to_owned)
                    .ok_or_else(|| "a redirect without Location".to_owned());
            }
            let (status, page_url) = (resp.status(), resp.url().clone());
            let text = resp.text().await.map_err(|e| e.to_string())?;
            let action = between(&text, "action=\"", "\"").unwrap_or_default();
            let target: Url = page_url.join(action).map_err(|e| e.to_string())?;
            let session = between(&text, "name=\"session\" value=\"", "\"")
                .unwrap_or_default()
                .to_owned();
            if text.contains("<form id=\"login\"") {
                if logged_in {
                    return Err(format!("login refused: {}", page_error(&text)));
                }
                logged_in = true;
                let form = [
                    ("session", session.as_str()),
                    ("email", email),
                    ("password", password),
                ];
                resp = self.send(self.http.post(target).form(&form)).await?;
            } else if text.contains("<form id=\"consent\"") {
                let form = [
                    ("session", session.as_str()),
                    ("decision", if approve { "approve" } else { "deny" }),
                ];
                resp = self.send(self.http.post(target).form(&form)).await?;
            } else {
                return Err(format!(
                    "the emulator answered HTTP {status}: {}",
                    page_error(&text)
                ));
            }
        }
        Err("too many pages without a redirect".into())
    }
}

/// Acts as the user's browser: GETs the authorization URL, submits the emulator's login form as
/// (`email`, `password`), approves consent if shown (when `approve`), and returns the URL the
/// browser would be redirected to (the `Location` header, with `code` and `state`, or `error`)
/// without visiting it.
pub async fn browser_login(
    authorize_url: &str,
    email: &str,
    password: &str,
    approve: bool,
) -> Result<String, String> {
    Browser::new()
        .login(authorize_url, email, password, approve)
        .await
}
