//! The proxy's own answers: a JSON error `{"error", "message", "exit_code"}` whose kind,
//! HTTP status and exit code match the token route's.

use super::body::Fault;
use crate::body::{full, Body};
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use nsauth::{Error, StoreError};
use nsauth_core::store::FailureKind;

/// A JSON error response `{"error", "message", "exit_code"}` (`exit_code` has the meaning of
/// the CLI's exit codes: 2 bad input, 3 login needed, 4 store, 5 NetSuite), never cached; the
/// same shape as the server's `reply::json_error`, which may replace it.
fn error_response(status: StatusCode, error: &str, message: &str, exit_code: u8) -> Response<Body> {
    let message = one_line(message);
    let body = serde_json::json!({ "error": error, "message": message, "exit_code": exit_code });
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    resp
}

/// Why the proxy answers instead of NetSuite; becomes an `error_response`.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    error: &'static str,
    message: String,
    kind: FailureKind,
}

impl Refusal {
    pub(super) fn new(
        status: StatusCode,
        error: &'static str,
        message: &str,
        kind: FailureKind,
    ) -> Self {
        Self {
            status,
            error,
            message: message.to_owned(),
            kind,
        }
    }

    pub(super) fn into_response(self) -> Response<Body> {
        let code = exit_code(self.kind);
        let mut resp = error_response(self.status, self.error, &self.message, code);
        if self.status == StatusCode::SERVICE_UNAVAILABLE && self.error == "busy" {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

pub(super) fn busy() -> Refusal {
    Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "too many proxied requests at once; try again in a moment",
        FailureKind::Unreachable,
    )
}

pub(super) fn body_fault(f: &Fault) -> Refusal {
    match f {
        Fault::Slow => Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body arrived too slowly; send it without pauses",
            FailureKind::Invalid,
        ),
        Fault::Broken => Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request body could not be read",
            FailureKind::Invalid,
        ),
    }
}

/// The response for an nsauth error: the kind, status and exit code the token route gives
/// it too (`reply::classify` of the server).
pub(super) fn from_error(e: &Error) -> Refusal {
    let (status, kind) = match e {
        Error::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
        Error::Store(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "unknown_profile"),
        Error::Store(StoreError::Config(_)) => (StatusCode::INTERNAL_SERVER_ERROR, "store_config"),
        Error::Store(StoreError::Denied(_)) => (StatusCode::SERVICE_UNAVAILABLE, "store_denied"),
        Error::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        Error::LoginNeeded(_) => (StatusCode::CONFLICT, "login_needed"),
        Error::Unreachable(_) => (StatusCode::BAD_GATEWAY, "netsuite_unreachable"),
        Error::Rejected(_) => (StatusCode::FORBIDDEN, "netsuite_rejected"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    Refusal::new(status, kind, &e.to_string(), e.kind())
}

/// The exit code of the CLI for a kind of failure, as the JSON's `exit_code` carries it.
fn exit_code(kind: FailureKind) -> u8 {
    nsauth::exit_code(kind)
}

/// The first line of `text`, without control characters, at most 300 characters.
fn one_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_get_the_status_that_fits_and_the_cli_exit_code() {
        let cases = [
            (Error::Invalid("x".into()), 400, 2),
            (Error::Store(StoreError::NotFound("x".into())), 404, 2),
            (Error::LoginNeeded("x".into()), 409, 3),
            (Error::Unreachable("x".into()), 502, 5),
        ];
        for (e, status, code) in cases {
            let refusal = from_error(&e);
            assert_eq!(exit_code(refusal.kind), code, "{e:?}");
            assert_eq!(refusal.into_response().status(), status, "{e:?}");
        }
    }
}
