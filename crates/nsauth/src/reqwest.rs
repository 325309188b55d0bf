//! Calling the NetSuite REST API with [`reqwest`] (feature `reqwest`, on by default).
//!
//! [`Api`] adds `Authorization: Bearer …` to requests for the profile's REST base — and only
//! those: a request for any other scheme, host or port is refused before anything is sent, so
//! the token never reaches another host. When NetSuite answers 401, it gets a new token (one
//! forced refresh, shared with every other caller that got the 401 for the same token, see
//! [`Client::token_after_rejection`]) and sends the request once more — for idempotent
//! methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) unless [`Api::retry_any_method`] opts in,
//! and only when the body can be cloned (a streamed body is not sent twice; the 401 is
//! returned).
//!
//! ```no_run
//! # async fn run() -> Result<(), nsauth::Error> {
//! let client = nsauth::Client::from_env()?;
//! let api = client.http(client.profile());
//! let catalog = api.get("record/v1/metadata-catalog").await?;
//! println!("{}", catalog.status());
//! # Ok(()) }
//! ```

use crate::client::{Client, Token};
use crate::rest::{api_url, same_origin};
use nsauth_core::Error;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, Response};
use std::time::Duration;

/// A `reqwest::ClientBuilder` on nsauth's TLS (rustls with an explicit ring provider, the
/// platform's certificate verifier), for requests of your own to pass to [`Api::send`]: nsauth
/// builds reqwest without a crypto provider and installs none process-wide.
pub use nsauth_core::http::tls::client_builder;

/// The REST API of one profile, through reqwest. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Api {
    client: Client,
    profile: String,
    http: reqwest::Client,
    min_ttl: Duration,
    any_method: bool,
}

impl Client {
    /// The REST API of `profile`, through reqwest (see [`Api`]).
    pub fn http(&self, profile: &str) -> Api {
        Api {
            client: self.clone(),
            profile: profile.to_owned(),
            http: no_redirects(),
            min_ttl: Duration::from_secs(60),
            any_method: false,
        }
    }
}

/// The client [`Api`] builds requests on: rustls, no redirects followed (a 30x is returned),
/// nsauth's user agent.
fn no_redirects() -> reqwest::Client {
    nsauth_core::http::tls::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("nsauth/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

impl Api {
    /// Builds requests on `http` instead of nsauth's own client (which follows no redirects).
    /// reqwest drops the `Authorization` header when a redirect leaves the host.
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// How long the token must stay valid when a request is sent (default 60 s).
    pub fn min_ttl(mut self, min_ttl: Duration) -> Self {
        self.min_ttl = min_ttl;
        self
    }

    /// Also retry non-idempotent requests (POST, PATCH) once after a 401. NetSuite refuses
    /// a request with a bad token before acting on it, so this is safe there; it is off by
    /// default because a proxy in between might not be so careful.
    pub fn retry_any_method(mut self, yes: bool) -> Self {
        self.any_method = yes;
        self
    }

    /// The HTTP client requests are built on.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.http
    }

    /// A request for `path` under the profile's REST base, e.g. `record/v1/customer/42` or
    /// `query/v1/suiteql?limit=5`, to finish and pass to [`Api::send`]. A path that could lead
    /// elsewhere (`//host`, `..`, `\`, a scheme, control characters) is [`Error::Invalid`].
    pub async fn request(&self, method: Method, path: &str) -> Result<RequestBuilder, Error> {
        let token = self.token().await?;
        let url = api_url(&token.rest_url, path)?;
        Ok(self.http.request(method, url))
    }

    /// `GET path` under the REST base, sent with [`Api::send`].
    pub async fn get(&self, path: &str) -> Result<Response, Error> {
        let rb = self.request(Method::GET, path).await?;
        self.send(rb).await
    }

    /// Sends `request` with the bearer token, once more after a 401 (see the module docs).
    /// The request may come from any reqwest client, but its URL must be under the profile's
    /// REST origin, else [`Error::Invalid`] and nothing is sent. Any HTTP answer, 401
    /// included, is `Ok`; a transport failure is [`Error::Unreachable`].
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        let (http, request) = request.build_split();
        let request = request.map_err(|e| {
            Error::Invalid(format!("invalid REST API request: {}", e.without_url()))
        })?;
        let token = self.token().await?;
        if !same_origin(request.url(), &token.rest_url) {
            return Err(Error::Invalid(format!(
                "refusing to send the token of profile {} to {}: it is not the profile's REST base {}",
                self.profile,
                request.url().origin().ascii_serialization(),
                token.rest_url.origin().ascii_serialization()
            )));
        }
        let retry = (self.any_method || idempotent(request.method()))
            .then(|| request.try_clone())
            .flatten();
        let first = execute(&http, request, &token).await?;
        let Some(again) = retry.filter(|_| first.status() == reqwest::StatusCode::UNAUTHORIZED)
        else {
            return Ok(first);
        };
        drop(first);
        let fresh = self
            .client
            .token_after_rejection(&self.profile, &token.access_token)
            .await?;
        if !same_origin(again.url(), &fresh.rest_url) {
            return Err(Error::Invalid(format!(
                "the REST base of profile {} changed to {}; not retrying",
                self.profile,
                fresh.rest_url.origin().ascii_serialization()
            )));
        }
        execute(&http, again, &fresh).await
    }

    async fn token(&self) -> Result<Token, Error> {
        self.client.token(&self.profile, self.min_ttl).await
    }
}

async fn execute(
    http: &reqwest::Client,
    mut request: reqwest::Request,
    token: &Token,
) -> Result<Response, Error> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.access_token.secret()))
        .map_err(|_| Error::Invalid("the access token is not a valid header value".into()))?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    let what = format!("{} {}", request.method(), request.url().path());
    http.execute(request).await.map_err(|e| {
        Error::Unreachable(format!(
            "NetSuite REST API {what}: {}; check the network and NetSuite status, then try again",
            e.without_url()
        ))
    })
}

/// RFC 9110's idempotent methods.
fn idempotent(m: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(m)
}
