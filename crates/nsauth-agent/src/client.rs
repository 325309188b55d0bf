//! Asking a running agent for a token (`nsauth token --via`, `NSAUTH_AGENT`). When no agent
//! answers — no socket, connection refused, the connection dropped before an answer — the
//! caller falls back to the store ([`FetchError::NoAgent`]); when the agent answers with an
//! error, that error (and its exit code) is the result ([`FetchError::Agent`]).

use crate::config::{self, Listen};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{header, Request};
use hyper_util::rt::TokioIo;
use nsauth_core::{Error, StoreError};
use nsauth_store::secret::AccessToken;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// How long an agent may take to answer (it may be waiting for a refresh).
const ANSWER_LIMIT: Duration = Duration::from_secs(150);
/// The largest answer read.
const MAX_ANSWER: usize = 256 * 1024;

/// A token from the agent.
#[derive(Debug)]
pub struct AgentToken {
    /// The access token.
    pub access_token: AccessToken,
    /// When it expires (RFC 3339).
    pub expires_at: String,
    /// The NetSuite account.
    pub account_id: String,
    /// The REST base URL.
    pub rest_url: String,
}

impl AgentToken {
    /// The token object ([`crate::token_json`]) — the same as the store path of
    /// `nsauth token --json` prints.
    pub fn to_json(&self) -> Result<zeroize::Zeroizing<String>, Error> {
        let expires_at =
            crate::token_json::parse_expires_at(&self.expires_at).ok_or_else(|| {
                Error::Other("the agent answered with an expires_at that is not RFC 3339".into())
            })?;
        Ok(crate::token_json::render(
            &self.access_token,
            expires_at,
            &self.account_id,
            &self.rest_url,
        ))
    }
}

/// Why no token came from the agent.
#[derive(Debug)]
pub enum FetchError {
    /// No agent answered: use the store instead. Says what happened.
    NoAgent(String),
    /// The agent answered with this error.
    Agent(Error),
}

/// Where to find the agent: `unix:PATH` or `http://127.0.0.1:PORT` (loopback only).
pub fn parse_via(text: &str) -> Result<Listen, Error> {
    Listen::parse(text.trim()).map_err(|_| {
        let shown: String = text.chars().take(60).flat_map(char::escape_default).collect();
        Error::Invalid(format!(
            "--via/NSAUTH_AGENT \"{shown}\": give unix:/ABSOLUTE/PATH or http://127.0.0.1:PORT (the agent is loopback only)"
        ))
    })
}

/// Asks the agent at `via` for a token of `profile` valid for `min_ttl` seconds. A TCP agent
/// gets the key from `key_file` (default: `NSAUTH_AGENT_KEY_FILE`, else the default path).
pub async fn fetch(
    via: &Listen,
    profile: &str,
    min_ttl: u64,
    key_file: Option<&Path>,
) -> Result<AgentToken, FetchError> {
    let query = format!(
        "/v1/token?profile={}&min_ttl={min_ttl}",
        percent_encoding::utf8_percent_encode(profile, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut req = Request::get(query).header(header::HOST, "nsauth-agent");
    let answer = match via {
        Listen::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
                FetchError::NoAgent(format!("no agent on unix:{}: {e}", path.display()))
            })?;
            let req = req
                .body(Empty::<Bytes>::new())
                .map_err(|e| FetchError::Agent(Error::Other(e.to_string())))?;
            exchange(stream, req).await
        }
        Listen::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| FetchError::NoAgent(format!("no agent on http://{addr}: {e}")))?;
            let key_path: Option<PathBuf> = match key_file {
                Some(p) => Some(p.to_owned()),
                None => Some(config::default_key_file().map_err(FetchError::Agent)?),
            };
            if let Some(key) = key_path
                .as_deref()
                .map(crate::key::read_key_file)
                .transpose()
                .map_err(FetchError::Agent)?
                .flatten()
            {
                let value = zeroize::Zeroizing::new(format!("Bearer {}", key.as_str()));
                req = req.header(header::AUTHORIZATION, value.as_str());
            }
            let req = req
                .body(Empty::<Bytes>::new())
                .map_err(|e| FetchError::Agent(Error::Other(e.to_string())))?;
            exchange(stream, req).await
        }
    }?;
    let (status, body) = answer;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        FetchError::Agent(Error::Other(format!(
            "the agent answered {status} with a body that is not JSON"
        )))
    })?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    if status == 200 {
        let token = text("access_token");
        if token.is_empty() {
            return Err(FetchError::Agent(Error::Other(
                "the agent answered without an access token".into(),
            )));
        }
        return Ok(AgentToken {
            access_token: AccessToken::new(token),
            expires_at: text("expires_at"),
            account_id: text("account_id"),
            rest_url: text("rest_url"),
        });
    }
    let message = format!("agent: {}", crate::reply::one_line(&text("message")));
    let code = v.get("exit_code").and_then(|c| c.as_i64()).unwrap_or(1);
    Err(FetchError::Agent(match code {
        2 => Error::Invalid(message),
        3 => Error::LoginNeeded(message),
        4 => Error::Store(StoreError::Unavailable {
            message,
            retryable: true,
        }),
        5 => Error::Unreachable(message),
        _ => Error::Other(message),
    }))
}

async fn exchange<S>(stream: S, req: Request<Empty<Bytes>>) -> Result<(u16, Bytes), FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let no_answer = |e: hyper::Error| FetchError::NoAgent(format!("the agent did not answer: {e}"));
    let work = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(no_answer)?;
        let driver = tokio::spawn(conn);
        let res = sender.send_request(req).await.map_err(no_answer)?;
        let status = res.status().as_u16();
        let body = Limited::new(res.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| {
                FetchError::Agent(Error::Other(format!("the agent's answer was cut: {e}")))
            })?
            .to_bytes();
        driver.abort();
        Ok((status, body))
    };
    tokio::time::timeout(ANSWER_LIMIT, work)
        .await
        .map_err(|_| {
            FetchError::Agent(Error::Unreachable(format!(
                "the agent did not answer within {ANSWER_LIMIT:?}"
            )))
        })?
}
