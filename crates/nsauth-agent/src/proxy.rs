//! `ANY /v1/proxy/NAME/<path>`: the app calls NetSuite's REST API through the agent and never
//! holds a token.
//!
//! # Wiring (for the server)
//!
//! ```ignore
//! // once, shared by every connection (cheap to clone):
//! let proxy = nsauth_agent::proxy::Proxy::new(nsauth_agent::proxy::Limits::default());
//! // per request routed to /v1/proxy/NAME/REST:
//! let resp: hyper::Response<nsauth_agent::body::Body> =
//!     proxy.forward(&client, name, rest_path_and_query, req).await;
//! ```
//!
//! `pub async fn forward(client: &nsauth::Client, profile: &str, rest_path_and_query: &str,
//! req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Body>` does the same with
//! one process-wide [`Proxy`] of default [`Limits`].
//!
//! `client` is any [`TokenSource`]: an [`nsauth::Client`] (tokens through the broker and the
//! store), or the server's in-memory token cache — which should then implement
//! [`TokenSource::token_after_401`] by calling `Client::token_after_rejection` and keeping the
//! new token, so that `/v1/token` stops handing out the token NetSuite refused.
//!
//! `rest_path_and_query` is the rest of the request target after `/v1/proxy/NAME/`, **still
//! percent-encoded** (e.g. `record/v1/customer/42?limit=5`): never decode it first, `%2F`
//! must stay an escape the path rules refuse rather than become a slash. The request's own
//! URI, `Host` and authority are ignored. Every outcome is a response: NetSuite's, or a JSON
//! error `{"error", "message", "exit_code"}` with the kinds, statuses and exit codes of the
//! token route (404 unknown profile, 409 login needed, 400 bad path, 502 NetSuite
//! unreachable, 504 NetSuite too slow, 408 caller too slow, 503 busy). The server counts
//! requests by the returned status; a response the proxy retried after a 401 carries
//! [`Outcome`] in its extensions.
//!
//! # What it does
//!
//! - The URL is built by [`nsauth::rest::api_url`], the rules of `nsauth api`: no `..`, no
//!   absolute or scheme-relative URL, no backslash, no control character, no escaped slash;
//!   the result must lie under the profile's REST base, so the token never goes to another
//!   host. Redirects are not followed: a 30x reaches the caller as it is (its `Location`
//!   too). `TRACE` and `CONNECT` are refused (405): a TRACE echo would hand the caller the
//!   bearer token.
//! - Headers (`proxy/headers.rs`): the caller's `Authorization` (on a TCP listener: the serve
//!   key), `Proxy-Authorization` and `Cookie`, `Host`, the hop-by-hop headers and every
//!   `X-Nsauth-*` header stay behind; `Set-Cookie` does not come back. The agent adds no
//!   `Forwarded`/`Via` header of its own.
//! - On a 401 from NetSuite: one [`nsauth::Client::token_after_rejection`] (the refused token
//!   is marked expired and single flight makes one refresh for every caller hit by it) and
//!   one retry — for GET, HEAD, OPTIONS, PUT and DELETE, or any method when the caller sends
//!   `X-Nsauth-Retry: always` (`never` turns retries off). A second 401 is returned.
//! - Bodies stream both ways. A request body that may be retried is read first, up to
//!   [`Limits::retry_buffer`] (1 MiB); a larger one (declared or found while reading) is
//!   streamed upstream as it arrives and is **not** retried — its 401 reaches the caller.
//! - Time and size limits ([`Limits`]): connecting to NetSuite, waiting for its response
//!   headers (504), NetSuite silent mid-body (the body ends in an error), a caller silent
//!   mid-upload or too slow overall (408), and at most [`Limits::max_in_flight`] proxied
//!   requests at once (503 with `Retry-After`). A caller that stops *reading* a response is
//!   the server's to cut off (its connection timeouts): the proxy cannot see it.

mod body;
mod headers;
mod refusal;

use crate::body::{Body, BodyError};
use body::{Fault, Holding, Outgoing, Pace};
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, AUTHORIZATION};
use hyper::{Method, Request, Response, StatusCode};
use nsauth::{AccessToken, Client, Error, Token};
use nsauth_core::store::FailureKind;
use refusal::{body_fault, busy, from_error, Refusal};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

/// Where the proxy gets tokens.
pub trait TokenSource: Send + Sync {
    /// A token of `profile` valid for at least `min_ttl` ([`Client::token`]).
    fn fresh_token<'a>(
        &'a self,
        profile: &'a str,
        min_ttl: Duration,
    ) -> impl Future<Output = Result<Token, Error>> + Send + 'a;

    /// Another token after NetSuite refused `rejected` with a 401: one single-flight refresh
    /// for every caller refused with it ([`Client::token_after_rejection`]).
    fn token_after_401<'a>(
        &'a self,
        profile: &'a str,
        rejected: &'a AccessToken,
    ) -> impl Future<Output = Result<Token, Error>> + Send + 'a;
}

impl TokenSource for Client {
    fn fresh_token<'a>(
        &'a self,
        profile: &'a str,
        min_ttl: Duration,
    ) -> impl Future<Output = Result<Token, Error>> + Send + 'a {
        self.token(profile, min_ttl)
    }

    fn token_after_401<'a>(
        &'a self,
        profile: &'a str,
        rejected: &'a AccessToken,
    ) -> impl Future<Output = Result<Token, Error>> + Send + 'a {
        self.token_after_rejection(profile, rejected)
    }
}

/// The header a caller sets to `always` to have a non-idempotent request retried after a
/// 401 (NetSuite refuses a bad token before acting), or `never` to have nothing retried.
pub const RETRY_HEADER: &str = "x-nsauth-retry";

/// The proxy's limits. `Limits::default()` gives the documented values; change fields on it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// The largest request body held for a retry after a 401 (1 MiB); larger ones stream.
    pub retry_buffer: usize,
    /// Connecting to NetSuite (TCP and TLS, 10 s): else 502.
    pub connect_timeout: Duration,
    /// From sending the request (a streamed upload included) to NetSuite's response headers
    /// (300 s; NetSuite's own request limit is a few minutes): else 504.
    pub response_timeout: Duration,
    /// NetSuite silent in the middle of a response body (120 s): the body ends in an error.
    pub upstream_idle: Duration,
    /// The caller silent in the middle of its request body (30 s): 408.
    pub body_idle: Duration,
    /// The caller's whole request body (15 min): 408.
    pub body_total: Duration,
    /// Proxied requests at once, bodies included (64; NetSuite allows an account far fewer
    /// concurrent REST requests): above that, 503 with `Retry-After: 1`.
    pub max_in_flight: usize,
    /// The validity a token must still have when a request is sent (60 s).
    pub min_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            retry_buffer: 1 << 20,
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(300),
            upstream_idle: Duration::from_secs(120),
            body_idle: Duration::from_secs(30),
            body_total: Duration::from_secs(15 * 60),
            max_in_flight: 64,
            min_ttl: Duration::from_secs(60),
        }
    }
}

/// What the proxy did, in the extensions of a response that came from NetSuite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// NetSuite answered 401, the token was replaced and the request sent once more.
    pub retried: bool,
}

/// Forwards requests to profiles' REST bases. Cheap to clone; clones share one HTTP client
/// (its connection pool) and one in-flight limit.
#[derive(Clone, Debug)]
pub struct Proxy {
    http: reqwest::Client,
    limits: Limits,
    in_flight: Arc<Semaphore>,
}

impl Proxy {
    /// A proxy with `limits`: rustls, no redirects followed, the environment's `HTTPS_PROXY` /
    /// `NO_PROXY` honoured as `nsauth token` does.
    pub fn new(limits: Limits) -> Self {
        let http = nsauth_core::http::tls::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(limits.connect_timeout)
            .user_agent(concat!("nsauth-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            limits,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Sends `req` to `rest_path_and_query` under the REST base of `profile` with its bearer
    /// token (see the module docs); NetSuite's response, or a JSON error.
    pub async fn forward<B>(
        &self,
        client: &impl TokenSource,
        profile: &str,
        rest_path_and_query: &str,
        req: Request<B>,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + Sync + Unpin + 'static,
        B::Error: Into<BodyError>,
    {
        match self
            .try_forward(client, profile, rest_path_and_query, req)
            .await
        {
            Ok(resp) => resp,
            Err(refusal) => refusal.into_response(),
        }
    }

    async fn try_forward<B>(
        &self,
        client: &impl TokenSource,
        profile: &str,
        path: &str,
        req: Request<B>,
    ) -> Result<Response<Body>, Refusal>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + Sync + Unpin + 'static,
        B::Error: Into<BodyError>,
    {
        let (parts, body) = req.into_parts();
        if parts.method == Method::TRACE || parts.method == Method::CONNECT {
            return Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                &format!("the proxy does not forward {} requests", parts.method),
                FailureKind::Invalid,
            ));
        }
        let retry = retry_wanted(&parts.method, &parts.headers)?;
        // The path rules first, before the store or NetSuite is asked anything.
        api_url(&placeholder_base(), path)?;
        let permit = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        let stalled = Arc::new(AtomicBool::new(false));
        let pace = Pace {
            idle: self.limits.body_idle,
            total: self.limits.body_total,
        };
        // A body held for a retry is read before the token is fetched, so that a slow upload
        // does not age the token; a streamed one starts after (its headers carry the token).
        let outgoing = body::prepare(body, retry, self.limits.retry_buffer, pace, stalled.clone())
            .await
            .map_err(|f| body_fault(&f))?;
        let token = client
            .fresh_token(profile, self.limits.min_ttl)
            .await
            .map_err(|e| from_error(&e))?;
        let headers = headers::upstream(parts.headers);
        let again = match &outgoing {
            Outgoing::Whole(bytes) if retry => Some(bytes.clone()),
            _ => None,
        };
        let send = |token: Token, body: reqwest::Body| {
            let (method, headers, stalled) = (parts.method.clone(), headers.clone(), &stalled);
            async move {
                let url = api_url(&token.rest_url, path)?;
                let mut headers = headers;
                headers.insert(AUTHORIZATION, bearer(&token)?);
                let request = self.http.request(method, url).headers(headers).body(body);
                self.send(request, stalled).await
            }
        };
        let first_body = match outgoing {
            Outgoing::Whole(bytes) => reqwest::Body::from(bytes),
            Outgoing::Stream(stream) => stream,
        };
        let first = send(token.clone(), first_body).await?;
        let (resp, retried) = match again {
            Some(bytes) if first.status() == reqwest::StatusCode::UNAUTHORIZED => {
                drop(first);
                let fresh = client
                    .token_after_401(profile, &token.access_token)
                    .await
                    .map_err(|e| from_error(&e))?;
                (send(fresh, reqwest::Body::from(bytes)).await?, true)
            }
            _ => (first, false),
        };
        Ok(relay(resp, permit, retried, self.limits.upstream_idle))
    }

    /// Sends one request: NetSuite's response headers within the response timeout.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        stalled: &AtomicBool,
    ) -> Result<reqwest::Response, Refusal> {
        let request = request.build().map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("the request cannot be forwarded: {}", e.without_url()),
                FailureKind::Invalid,
            )
        })?;
        let what = format!("{} {}", request.method(), request.url().path());
        let sent = self.http.execute(request);
        match tokio::time::timeout(self.limits.response_timeout, sent).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) if stalled.load(Ordering::SeqCst) => Err(body_fault(&Fault::Slow)),
            Ok(Err(e)) if e.is_timeout() && !e.is_connect() => Err(self.too_slow(&what)),
            Ok(Err(e)) => Err(Refusal::new(
                StatusCode::BAD_GATEWAY,
                "netsuite_unreachable",
                &format!(
                    "NetSuite REST API {what}: {}; check the network and NetSuite status, then try again",
                    e.without_url()
                ),
                FailureKind::Unreachable,
            )),
            Err(_) => Err(self.too_slow(&what)),
        }
    }

    fn too_slow(&self, what: &str) -> Refusal {
        Refusal::new(
            StatusCode::GATEWAY_TIMEOUT,
            "netsuite_timeout",
            &format!(
                "NetSuite REST API {what}: no response within {} s; try again later",
                self.limits.response_timeout.as_secs()
            ),
            FailureKind::Unreachable,
        )
    }
}

/// [`Proxy::forward`] through one process-wide [`Proxy`] with default [`Limits`].
pub async fn forward(
    client: &Client,
    profile: &str,
    rest_path_and_query: &str,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    static SHARED: OnceLock<Proxy> = OnceLock::new();
    SHARED
        .get_or_init(|| Proxy::new(Limits::default()))
        .forward(client, profile, rest_path_and_query, req)
        .await
}

/// NetSuite's response, streamed to the caller; the in-flight permit lives as long as the body.
fn relay(
    resp: reqwest::Response,
    permit: tokio::sync::OwnedSemaphorePermit,
    retried: bool,
    idle: Duration,
) -> Response<Body> {
    let resp: hyper::Response<reqwest::Body> = resp.into();
    let (mut parts, body) = resp.into_parts();
    parts.headers = headers::downstream(std::mem::take(&mut parts.headers));
    parts.version = hyper::Version::default();
    parts.extensions = hyper::http::Extensions::new();
    parts.extensions.insert(Outcome { retried });
    let body = body.map_err(|e| Box::new(e.without_url()) as BodyError);
    let body = Holding {
        body: body::upstream_guard(body, idle),
        _held: permit,
    }
    .boxed();
    Response::from_parts(parts, body)
}

/// Whether a 401 may be answered by a retry: idempotent methods, unless the caller says.
fn retry_wanted(method: &Method, headers: &hyper::HeaderMap) -> Result<bool, Refusal> {
    let idempotent = [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method);
    match headers.get(RETRY_HEADER).map(HeaderValue::as_bytes) {
        None => Ok(idempotent),
        Some(v) if v.eq_ignore_ascii_case(b"always") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case(b"never") => Ok(false),
        Some(_) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "X-Nsauth-Retry must be \"always\" or \"never\"",
            FailureKind::Invalid,
        )),
    }
}

fn bearer(token: &Token) -> Result<HeaderValue, Refusal> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.access_token.secret()))
        .map_err(|_| {
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                "invalid_token",
                "the stored access token is not a valid header value; run: nsauth refresh --force",
                FailureKind::Other,
            )
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The REST URL, or 400 for a path that could lead elsewhere.
fn api_url(base: &Url, path: &str) -> Result<Url, Refusal> {
    nsauth::rest::api_url(base, path).map_err(|e| from_error(&e))
}

/// A base to check paths against before the profile's own is known.
fn placeholder_base() -> Url {
    Url::parse("https://0000000.suitetalk.api.netsuite.com/services/rest/")
        .expect("a valid constant URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_methods_retry_unless_the_caller_says() {
        let none = hyper::HeaderMap::new();
        let mut always = hyper::HeaderMap::new();
        always.insert(RETRY_HEADER, HeaderValue::from_static("Always"));
        let mut never = hyper::HeaderMap::new();
        never.insert(RETRY_HEADER, HeaderValue::from_static("never"));
        assert!(retry_wanted(&Method::GET, &none).unwrap());
        assert!(retry_wanted(&Method::DELETE, &none).unwrap());
        assert!(!retry_wanted(&Method::POST, &none).unwrap());
        assert!(!retry_wanted(&Method::PATCH, &none).unwrap());
        assert!(retry_wanted(&Method::POST, &always).unwrap());
        assert!(!retry_wanted(&Method::GET, &never).unwrap());
        let mut odd = hyper::HeaderMap::new();
        odd.insert(RETRY_HEADER, HeaderValue::from_static("yes"));
        assert_eq!(retry_wanted(&Method::GET, &odd).unwrap_err().status, 400);
    }
}
