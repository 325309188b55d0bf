//! [`Request`]: an HTTP request as plain data, so that callers of [`Http::send`](super::Http::send)
//! need no HTTP client types and the client library stays an implementation detail.

use crate::error::Error;
use crate::secret::AccessToken;
use url::Url;

/// One HTTP request for [`Http::send`](super::Http::send): method, URL, headers, an optional
/// bearer token (kept in its secret newtype, so `Debug` never shows it) and body bytes.
///
/// ```
/// use nsauth_core::http::Request;
/// use nsauth_core::secret::AccessToken;
/// let req = Request::new("GET", "https://1234567.suitetalk.api.netsuite.com/services/rest/record/v1/metadata-catalog".parse().unwrap())
///     .header("accept", "application/json")
///     .bearer(AccessToken::new("eyJ..."));
/// assert!(!format!("{req:?}").contains("eyJ"));
/// ```
#[derive(Clone, Debug)]
pub struct Request {
    /// The method, e.g. `GET` (case-sensitive, as HTTP says).
    pub method: String,
    /// The URL.
    pub url: Url,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// Sent as `Authorization: Bearer …` when set.
    pub bearer: Option<AccessToken>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: impl Into<String>, url: Url) -> Self {
        Self {
            method: method.into(),
            url,
            headers: Vec::new(),
            bearer: None,
            body: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the bearer token.
    pub fn bearer(mut self, token: AccessToken) -> Self {
        self.bearer = Some(token);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Checks method and headers once, before anything is sent.
    pub(super) fn prepare(&self) -> Result<Prepared, Error> {
        let method = reqwest::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| Error::Invalid(format!("invalid HTTP method {:?}", self.method)))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &self.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Error::Invalid(format!("invalid HTTP header name {k:?}")))?;
            let value = reqwest::header::HeaderValue::from_str(v).map_err(|_| {
                Error::Invalid(format!(
                    "invalid value for HTTP header {k:?} (control characters?)"
                ))
            })?;
            headers.append(name, value);
        }
        if let Some(t) = &self.bearer {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.secret())).map_err(
                    |_| Error::Invalid("the access token is not a valid header value".into()),
                )?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(Prepared { method, headers })
    }
}

/// A [`Request`]'s method and headers, checked.
pub(super) struct Prepared {
    method: reqwest::Method,
    headers: reqwest::header::HeaderMap,
}

impl Prepared {
    /// The request for one attempt.
    pub(super) fn build(&self, c: &reqwest::Client, req: &Request) -> reqwest::RequestBuilder {
        let rb = c
            .request(self.method.clone(), req.url.clone())
            .headers(self.headers.clone());
        match &req.body {
            Some(b) => rb.body(b.clone()),
            None => rb,
        }
    }
}
