//! Error replies: `{"error", "message", "exit_code"}` with the CLI's exit-code meaning and an
//! HTTP status that fits it.

use crate::body::{full, Body};
use hyper::{header, Response, StatusCode};
use nsauth_core::store::FailureKind;
use nsauth_core::{Error, StoreError};

/// The exit code the `nsauth` CLI gives a kind of failure ([`nsauth::exit_code`], the one
/// mapping).
pub fn exit_code(kind: FailureKind) -> i32 {
    i32::from(nsauth::exit_code(kind))
}

/// A short machine-readable kind for an error, its HTTP status and the CLI exit code.
pub fn classify(e: &Error) -> (&'static str, StatusCode, i32) {
    let code = exit_code(e.kind());
    let (kind, status) = match e {
        Error::Invalid(_) => ("invalid", StatusCode::BAD_REQUEST),
        Error::Store(StoreError::NotFound(_)) => ("unknown_profile", StatusCode::NOT_FOUND),
        Error::Store(StoreError::Config(_)) => ("store_config", StatusCode::INTERNAL_SERVER_ERROR),
        Error::Store(StoreError::Denied(_)) => ("store_denied", StatusCode::SERVICE_UNAVAILABLE),
        Error::Store(_) => ("store_unavailable", StatusCode::SERVICE_UNAVAILABLE),
        Error::LoginNeeded(_) => ("login_needed", StatusCode::CONFLICT),
        Error::Unreachable(_) => ("netsuite_unreachable", StatusCode::BAD_GATEWAY),
        Error::Rejected(_) => ("netsuite_rejected", StatusCode::FORBIDDEN),
        _ => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
    };
    (kind, status, code)
}

/// The reply for an nsauth error.
pub fn error(e: &Error) -> Response<Body> {
    let (kind, status, _) = classify(e);
    json_error(status, kind, &one_line(&e.to_string()), e.kind())
}

/// An error reply built from parts; `failure` decides the `exit_code` field.
pub fn json_error(
    status: StatusCode,
    kind: &str,
    message: &str,
    failure: FailureKind,
) -> Response<Body> {
    let exit_code = exit_code(failure);
    let body = serde_json::json!({"error": kind, "message": message, "exit_code": exit_code});
    json(status, body.to_string())
}

/// A 400 for a request the agent will not read (exit 2).
pub fn bad_request(message: &str) -> Response<Body> {
    json_error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        message,
        FailureKind::Invalid,
    )
}

/// A JSON reply.
pub fn json(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// The first line of `text`, without control characters, at most 300 characters.
pub fn one_line(text: &str) -> String {
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
    fn errors_keep_the_cli_exit_code_and_get_a_fitting_status() {
        let cases = [
            (Error::Invalid("x".into()), 400, 2),
            (Error::Store(StoreError::NotFound("p".into())), 404, 2),
            (Error::LoginNeeded("x".into()), 409, 3),
            (
                Error::Store(StoreError::Unavailable {
                    message: "down".into(),
                    retryable: true,
                }),
                503,
                4,
            ),
            (Error::Unreachable("x".into()), 502, 5),
            (Error::Rejected("x".into()), 403, 1),
        ];
        for (e, status, code) in cases {
            let (_, s, c) = classify(&e);
            assert_eq!((s.as_u16(), c), (status, code), "{e:?}");
        }
    }
}
