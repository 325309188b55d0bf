//! The proxy's own answers: a JSON error `{"error", "message", "exit_code"}` whose kind,
//! HTTP status and exit code match the token route's.

use super::body::Fault;
use crate::body::Body;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use nsauth::Error;
use nsauth_core::store::FailureKind;

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
        let mut resp = crate::reply::json_error(
            self.status,
            self.error,
            &crate::reply::one_line(&self.message),
            self.kind,
        );
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
/// it too (`reply::classify`).
pub(super) fn from_error(e: &Error) -> Refusal {
    let (kind, status, _) = crate::reply::classify(e);
    Refusal::new(status, kind, &e.to_string(), e.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsauth::StoreError;

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
            assert_eq!(nsauth::exit_code(refusal.kind), code, "{e:?}");
            assert_eq!(refusal.into_response().status(), status, "{e:?}");
        }
    }
}
