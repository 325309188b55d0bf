//! The HTTP client nsauth uses to talk to NetSuite: rustls, timeouts, a capped body, and
//! retries with backoff and jitter on connection errors, 5xx and 429 (honouring
//! `Retry-After`), all inside one overall deadline.

use crate::error::Error;
use crate::retry;

mod request;
pub mod tls;
pub use request::Request;
use std::time::{Duration, Instant};
use url::Url;

/// Limits and retry policy.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Attempts in all (first try included).
    pub max_attempts: u32,
    /// Overall deadline for one call, retries included.
    pub deadline: Duration,
    /// The longest `Retry-After` nsauth honours.
    pub retry_after_cap: Duration,
    /// Largest response body read.
    pub body_limit: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_attempts: 5,
            deadline: Duration::from_secs(25),
            retry_after_cap: Duration::from_secs(10),
            body_limit: 1 << 20,
        }
    }
}

/// How the client authenticates at the token endpoint.
pub enum ClientAuth<'a> {
    /// HTTP Basic `client_id:client_secret` (confidential clients).
    Basic {
        /// Client ID.
        client_id: &'a str,
        /// Client secret.
        secret: &'a crate::secret::ClientSecret,
    },
    /// `client_id` in the form body (public clients).
    Public {
        /// Client ID.
        client_id: &'a str,
    },
    /// Nothing (the form carries a client assertion).
    None,
}

/// A response whose body has been read (up to the limit).
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// The `Date` header, if any.
    pub date: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
}

/// The HTTP client.
///
/// The underlying client (and its TLS roots) is built on first use, so commands that find a
/// valid cached token never pay for it.
#[derive(Clone, Debug)]
pub struct Http {
    client: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    cfg: HttpConfig,
}

/// The `application/x-www-form-urlencoded` body of `form` (with `client_id` first for a
/// public client).
pub fn encode_form(auth: &ClientAuth<'_>, form: &[(&str, &str)]) -> zeroize::Zeroizing<String> {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    if let ClientAuth::Public { client_id } = auth {
        ser.append_pair("client_id", client_id);
    }
    for (k, v) in form {
        ser.append_pair(k, v);
    }
    zeroize::Zeroizing::new(ser.finish())
}

fn form_request(c: &reqwest::Client, url: &Url, body: String) -> reqwest::RequestBuilder {
    c.post(url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body)
}

/// Whether a request may be sent more than once.
#[derive(Clone, Copy, Debug)]
pub enum Delivery<'a> {
    /// Retry connection failures, timeouts, cut-off answers, 5xx and 429.
    Retry,
    /// The request must not be processed twice (a public client's single-use refresh token:
    /// servers with reuse detection revoke the whole grant when a used one comes back). It is
    /// retried only when it provably never reached the server (the connection was never made)
    /// or the server said it did not process it (429, 503). A timeout, a dropped connection or
    /// a cut-off answer after sending ends the call with `if_lost` (what to do) appended to
    /// the message; so does any other 5xx when `if_lost` is not empty (with an empty one, the
    /// 5xx answer is returned to the caller).
    AtMostOnce {
        /// Advice for the user when the answer was lost after sending; empty for a generic one.
        if_lost: &'a str,
    },
}

enum Attempt {
    Done(Response),
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Fail(Error),
}

impl Http {
    /// A client with the default policy.
    pub fn new() -> Result<Self, Error> {
        Self::with_config(HttpConfig::default())
    }

    /// A client with a custom policy.
    pub fn with_config(cfg: HttpConfig) -> Result<Self, Error> {
        Ok(Self {
            client: Default::default(),
            cfg,
        })
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            tls::client_builder()
                .connect_timeout(self.cfg.connect_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("nsauth/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }

    /// The policy.
    pub fn config(&self) -> &HttpConfig {
        &self.cfg
    }

    /// POSTs a form, retrying transient failures. `what` names the endpoint in messages
    /// ("token endpoint"). Non-retryable HTTP statuses are returned as responses.
    pub async fn post_form(
        &self,
        what: &str,
        url: &Url,
        auth: ClientAuth<'_>,
        form: &[(&str, &str)],
    ) -> Result<Response, Error> {
        self.post_form_with(what, url, auth, form, Delivery::Retry)
            .await
    }

    /// [`Http::post_form`] with a chosen [`Delivery`].
    pub async fn post_form_with(
        &self,
        what: &str,
        url: &Url,
        auth: ClientAuth<'_>,
        form: &[(&str, &str)],
        delivery: Delivery<'_>,
    ) -> Result<Response, Error> {
        let body = encode_form(&auth, form);
        self.deliver(what, url, delivery, |c| {
            let rb = form_request(c, url, body.as_str().to_owned());
            match &auth {
                ClientAuth::Basic { client_id, secret } => {
                    rb.basic_auth(client_id, Some(secret.secret()))
                }
                _ => rb,
            }
        })
        .await
    }

    /// POSTs a form that must be new on every attempt (a client assertion, whose `jti` the
    /// server accepts once): `body` is called once per attempt for the encoded form (see
    /// [`encode_form`]). Same retry policy as [`Http::post_form`].
    pub async fn post_fresh_form(
        &self,
        what: &str,
        url: &Url,
        body: impl Fn() -> zeroize::Zeroizing<String>,
    ) -> Result<Response, Error> {
        self.deliver(what, url, Delivery::Retry, |c| {
            form_request(c, url, body().as_str().to_owned())
        })
        .await
    }

    /// Sends `req` with the same retry policy (for requests that may be sent more than once).
    /// `what` names the endpoint in messages ("REST API"). Redirects are never followed.
    pub async fn send(&self, what: &str, req: &Request) -> Result<Response, Error> {
        self.send_with(what, req, true).await
    }

    /// Like [`Http::send`]; when `idempotent` is false the request is retried only when it
    /// never reached the server (connection failures) or the server asked for a retry (429).
    /// A method or header that is not valid HTTP is [`Error::Invalid`], before anything is sent.
    pub async fn send_with(
        &self,
        what: &str,
        req: &Request,
        idempotent: bool,
    ) -> Result<Response, Error> {
        let prepared = req.prepare()?;
        let delivery = if idempotent {
            Delivery::Retry
        } else {
            Delivery::AtMostOnce { if_lost: "" }
        };
        self.deliver(what, &req.url, delivery, |c| prepared.build(c, req))
            .await
    }

    async fn deliver(
        &self,
        what: &str,
        url: &Url,
        delivery: Delivery<'_>,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Response, Error> {
        let start = Instant::now();
        let mut last = String::new();
        for attempt in 0..self.cfg.max_attempts {
            let remaining = self.cfg.deadline.saturating_sub(start.elapsed());
            if remaining.is_zero() {
                break;
            }
            let timeout = self.cfg.request_timeout.min(remaining);
            match self
                .once(build(self.client()).timeout(timeout), what, delivery)
                .await
            {
                Attempt::Done(r) => return Ok(r),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { why, after } => {
                    tracing::debug!(attempt, %why, "{what} failed, may retry");
                    last = why;
                    let wait = after
                        .map(|a| a.min(self.cfg.retry_after_cap))
                        .unwrap_or_else(|| retry::backoff(attempt, Duration::from_secs(4)));
                    if attempt + 1 >= self.cfg.max_attempts
                        || start.elapsed() + wait >= self.cfg.deadline
                    {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Err(Error::Unreachable(format!(
            "NetSuite {what} at {} is unreachable or failing ({last}) after {:.0?}; check the network and NetSuite status, then try again",
            redact_url(url),
            start.elapsed()
        )))
    }

    async fn once(
        &self,
        rb: reqwest::RequestBuilder,
        what: &str,
        delivery: Delivery<'_>,
    ) -> Attempt {
        let idempotent = matches!(delivery, Delivery::Retry);
        // The request may have reached the server and been processed: for a request that
        // must not run twice, that ends the call.
        let lost = |why: String| match delivery {
            Delivery::AtMostOnce { if_lost } if !if_lost.is_empty() => Attempt::Fail(
                Error::Unreachable(format!("NetSuite {what}: {why}; {if_lost}")),
            ),
            _ => Attempt::Fail(Error::Unreachable(format!(
                "NetSuite {what}: {why}; not retried because the request may have been processed"
            ))),
        };
        let resp = match rb.send().await {
            Ok(r) => r,
            // A connection that was never made carried no request.
            Err(e) if idempotent || e.is_connect() => {
                return Attempt::Retry {
                    why: describe_reqwest(&e),
                    after: None,
                }
            }
            Err(e) => return lost(describe_reqwest(&e)),
        };
        let status = resp.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let date = header(reqwest::header::DATE);
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let retry_after = header(reqwest::header::RETRY_AFTER).and_then(|v| parse_retry_after(&v));
        // 429 and 503 say the request was not processed; other 5xx (500, 502, 504: a proxy
        // that lost the upstream's answer) may come after it was.
        if status == 429 || status == 503 || (idempotent && (500..600).contains(&status)) {
            return Attempt::Retry {
                why: format!("HTTP {status}"),
                after: if status == 429 || status == 503 {
                    retry_after
                } else {
                    None
                },
            };
        }
        if let Delivery::AtMostOnce { if_lost } = delivery {
            if !if_lost.is_empty() && (500..600).contains(&status) {
                return lost(format!("HTTP {status}"));
            }
        }
        match read_capped(resp, self.cfg.body_limit).await {
            Ok(body) => Attempt::Done(Response { status, body, date, content_type }),
            Err(BodyError::TooLarge) => Attempt::Fail(Error::Unreachable(format!(
                "NetSuite {what} sent an answer larger than {} KiB; this is not NetSuite's normal answer (a proxy?); nothing was stored",
                self.cfg.body_limit / 1024
            ))),
            Err(BodyError::Io(why)) if idempotent => Attempt::Retry { why, after: None },
            Err(BodyError::Io(why)) => lost(why),
        }
    }
}

enum BodyError {
    TooLarge,
    Io(String),
}

async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|l| l > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(BodyError::Io(describe_reqwest(&e))),
        }
    }
}

fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        time::OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc2822)
            .ok()?;
    let d = when - time::OffsetDateTime::now_utc();
    Some(Duration::from_secs_f64(d.as_seconds_f64().max(0.0)))
}

/// A one-line description of a transport error, without URLs' query strings.
fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else {
        "request failed"
    };
    let mut root: &dyn std::error::Error = e;
    while let Some(s) = root.source() {
        root = s;
    }
    let detail = root.to_string();
    if detail.is_empty() || e.is_timeout() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", detail.chars().take(160).collect::<String>())
    }
}

/// The URL without query or credentials, for messages.
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

#[cfg(test)]
mod tests;
