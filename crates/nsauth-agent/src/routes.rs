//! The agent's HTTP routes: `GET /v1/token`, `/v1/proxy/NAME/...`, `GET /healthz`,
//! `GET /metrics`. Requests on a TCP listener must carry the serve key.

use crate::body::Body;
use crate::key::ServeKey;
use crate::reply::{bad_request, json, json_error};
use crate::token::Tokens;
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use nsauth_core::store::FailureKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest request target the agent reads (a proxied REST query included).
const MAX_TARGET: usize = 8192;
/// The default `min_ttl`, as `nsauth token --min-ttl`.
const DEFAULT_MIN_TTL: u64 = 60;
/// The most `min_ttl` can ask (NetSuite access tokens live 60 minutes).
const MAX_MIN_TTL: u64 = 3300;

/// What every request handler shares.
#[derive(Debug)]
pub struct App {
    /// The token cache.
    pub tokens: Arc<Tokens>,
    /// The serve key (TCP listeners).
    pub key: Option<ServeKey>,
    /// When the agent started.
    pub started: Instant,
}

/// Answers one request. `keyed`: it came over TCP and must carry the serve key.
pub async fn handle(app: Arc<App>, keyed: bool, req: Request<Incoming>) -> Response<Body> {
    if keyed {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if !app.key.as_ref().is_some_and(|k| k.accepts(given)) {
            let mut r = json_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer <serve key> (the key is in the file nsauth serve printed at start)",
                FailureKind::Invalid,
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > MAX_TARGET {
        return bad_request(&format!(
            "the request target is {target_len} bytes; the agent reads at most {MAX_TARGET}"
        ));
    }
    let path = req.uri().path().to_owned();
    if path.starts_with("/v1/proxy/") {
        return proxy(&app, req).await;
    }
    let route = match path.as_str() {
        "/v1/token" => Route::Token,
        "/healthz" => Route::Health,
        "/metrics" => Route::Metrics,
        _ => {
            return json_error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no route {}; the agent serves /v1/token, /v1/proxy/NAME/..., /healthz and /metrics", crate::reply::one_line(&path)),
                FailureKind::Invalid,
            )
        }
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("{} takes GET", path),
            FailureKind::Invalid,
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match route {
        Route::Token => token(&app, req.uri().query().unwrap_or("")).await,
        Route::Health => health(&app),
        Route::Metrics => {
            let text = app.tokens.metrics().render(time::OffsetDateTime::now_utc());
            let mut r = Response::new(crate::body::full(text));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
    }
}

enum Route {
    Token,
    Health,
    Metrics,
}

/// `/v1/proxy/NAME/REST`: forwarded by the proxy module to the REST base of a profile this
/// agent serves; the status is counted per profile.
async fn proxy(app: &App, req: Request<Incoming>) -> Response<Body> {
    let target = req
        .uri()
        .path_and_query()
        .map_or("", |p| p.as_str())
        .to_owned();
    let Some((name, rest)) = split_proxy_target(&target) else {
        return bad_request(
            "a proxy request is /v1/proxy/PROFILE/<path under services/rest/>, e.g. /v1/proxy/prod/record/v1/metadata-catalog",
        );
    };
    if let Err(e) = app.tokens.serves(&name) {
        return crate::reply::error(&e);
    }
    let resp = crate::proxy::forward(app.tokens.client(), &name, rest, req).await;
    if resp
        .extensions()
        .get::<crate::proxy::Outcome>()
        .is_some_and(|o| o.retried)
    {
        // NetSuite refused the token the cache may still hold: the next request asks the
        // broker, which has the replacement.
        app.tokens.invalidate(&name);
    }
    app.tokens
        .metrics()
        .proxy_status(&name, resp.status().as_u16());
    resp
}

/// `/v1/proxy/NAME/REST?QUERY` → (NAME decoded, `REST?QUERY` still percent-encoded).
fn split_proxy_target(target: &str) -> Option<(String, &str)> {
    let after = target.strip_prefix("/v1/proxy/")?;
    let (name, rest) = after.split_once('/')?;
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()?;
    (!name.is_empty() && !name.contains('?')).then(|| (name.into_owned(), rest))
}

/// The query of `/v1/token`: `profile` (required) and `min_ttl` (seconds, default 60).
#[derive(Debug, PartialEq, Eq)]
pub struct TokenQuery {
    /// The profile.
    pub profile: String,
    /// Seconds the token must stay valid.
    pub min_ttl: Duration,
}

/// Parses the `/v1/token` query; a one-line message on anything odd.
pub fn parse_token_query(query: &str) -> Result<TokenQuery, String> {
    let mut profile = None;
    let mut min_ttl = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .map_err(|_| format!("the value of {} is not UTF-8", crate::reply::one_line(k)))?;
        let slot = match k {
            "profile" => &mut profile,
            "min_ttl" => &mut min_ttl,
            _ => {
                return Err(format!(
                "unknown query parameter {:?}; /v1/token takes profile=NAME and min_ttl=SECONDS",
                crate::reply::one_line(k)
                    .chars()
                    .take(40)
                    .collect::<String>()
            ))
            }
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(format!("{k} is given twice"));
        }
    }
    let profile = profile.ok_or("profile=NAME is required, e.g. /v1/token?profile=prod")?;
    let min_ttl = match min_ttl {
        None => DEFAULT_MIN_TTL,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= MAX_MIN_TTL)
            .ok_or_else(|| {
                format!("min_ttl must be a number of seconds from 0 to {MAX_MIN_TTL} (NetSuite access tokens live 60 minutes)")
            })?,
    };
    Ok(TokenQuery {
        profile,
        min_ttl: Duration::from_secs(min_ttl),
    })
}

async fn token(app: &App, query: &str) -> Response<Body> {
    let q = match parse_token_query(query) {
        Ok(q) => q,
        Err(msg) => return bad_request(&msg),
    };
    match app.tokens.get(&q.profile, q.min_ttl).await {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => {
            app.tokens
                .metrics()
                .served_errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            crate::reply::error(&e)
        }
    }
}

fn health(app: &App) -> Response<Body> {
    let metrics = app.tokens.metrics();
    let unhealthy: Vec<_> = metrics
        .unhealthy()
        .into_iter()
        .map(|u| {
            serde_json::json!({"profile": u.profile, "error": u.error, "message": u.message, "exit_code": u.exit_code})
        })
        .collect();
    let body = serde_json::json!({
        "status": "ok",
        "uptime_seconds": app.started.elapsed().as_secs(),
        "profiles": app.tokens.names(),
        "unhealthy": unhealthy,
    });
    json(StatusCode::OK, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_targets_split_into_profile_and_the_encoded_rest() {
        assert_eq!(
            split_proxy_target("/v1/proxy/prod/record/v1/customer/42?limit=5"),
            Some(("prod".into(), "record/v1/customer/42?limit=5"))
        );
        assert_eq!(
            split_proxy_target("/v1/proxy/caf%C3%A9/a%2Fb"),
            Some(("café".into(), "a%2Fb")),
            "the rest stays encoded: %2F must not become a slash"
        );
        assert_eq!(
            split_proxy_target("/v1/proxy/prod/"),
            Some(("prod".into(), ""))
        );
        for bad in [
            "/v1/proxy/prod",
            "/v1/proxy//x",
            "/v1/proxy/%FF/x",
            "/v1/proxy/?a/x",
        ] {
            assert_eq!(split_proxy_target(bad), None, "{bad}");
        }
    }

    #[test]
    fn token_queries_are_strict() {
        assert_eq!(
            parse_token_query("profile=prod&min_ttl=300").unwrap(),
            TokenQuery {
                profile: "prod".into(),
                min_ttl: Duration::from_secs(300)
            }
        );
        assert_eq!(
            parse_token_query("profile=caf%C3%A9").unwrap().profile,
            "café"
        );
        assert_eq!(
            parse_token_query("profile=p").unwrap().min_ttl,
            Duration::from_secs(60)
        );
        for (bad, says) in [
            ("", "profile=NAME is required"),
            ("min_ttl=5", "profile=NAME is required"),
            ("profile=a&profile=b", "twice"),
            ("profile=a&debug=1", "unknown query parameter"),
            ("profile=a&min_ttl=3301", "min_ttl must be"),
            ("profile=a&min_ttl=-1", "min_ttl must be"),
            ("profile=a&min_ttl=1e3", "min_ttl must be"),
            ("profile=%FF", "not UTF-8"),
        ] {
            let e = parse_token_query(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
