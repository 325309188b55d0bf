//! Mapping Secrets Manager failures to the store error kinds a caller can act on.
//!
//! AWS error messages name secrets, versions and actions, never secret values, so they are
//! safe to show.

use crate::config::one_line;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use nsauth_store::StoreError;

/// The backend name used in [`StoreError::Backend`].
pub(crate) const STORE: &str = "aws-sm";

/// The error code of a service error, if the call got that far.
pub(crate) fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// A one-line description of any error, with its causes.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    one_line(&DisplayErrorContext(err).to_string())
}

/// An error with a fixed message, boxed as the source of [`StoreError::Backend`].
#[derive(Debug)]
struct Message(String);
impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Message {}

/// A backend error carrying `message`.
pub(crate) fn backend(message: String) -> StoreError {
    StoreError::Backend {
        store: STORE,
        source: Box::new(Message(message)),
    }
}

/// Maps a failed `action` (the IAM action name, e.g. `GetSecretValue`) on `secret`.
/// `profile` names the record in `NotFound`.
pub(crate) fn map<E>(
    err: SdkError<E, aws_sdk_secretsmanager::config::http::HttpResponse>,
    action: &str,
    secret: &str,
    profile: &str,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let what = format!("secretsmanager:{action} on secret {secret}");
    match &err {
        SdkError::DispatchFailure(d) => {
            let kind = if d.is_timeout() {
                "timed out"
            } else if d.is_io() {
                "connection failed"
            } else {
                "request failed"
            };
            return StoreError::Unavailable {
                message: format!(
                    "cannot reach AWS Secrets Manager for {what}: {kind} ({}); check the network and the endpoint, then try again",
                    describe(&err)
                ),
                retryable: true,
            };
        }
        SdkError::TimeoutError(_) => {
            return StoreError::Unavailable {
                message: format!("AWS Secrets Manager did not answer {what} in time; try again"),
                retryable: true,
            }
        }
        SdkError::ConstructionFailure(_) => {
            let text = describe(&err);
            if text.to_ascii_lowercase().contains("credential") {
                return StoreError::Denied(format!(
                    "cannot sign {what}: {text}; refresh your AWS credentials (e.g. `aws sso login`)"
                ));
            }
            return backend(format!("cannot build {what}: {text}"));
        }
        SdkError::ResponseError(_) => {
            return StoreError::Unavailable {
                message: format!(
                    "unreadable answer from AWS Secrets Manager to {what} ({}); check the endpoint, then try again",
                    describe(&err)
                ),
                retryable: true,
            };
        }
        _ => {}
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = code(&err).unwrap_or("").to_owned();
    let message = one_line(err.message().unwrap_or(""));
    match code.as_str() {
        "ResourceNotFoundException" => StoreError::NotFound(profile.to_owned()),
        "AccessDeniedException" | "AccessDenied" => StoreError::Denied(format!(
            "AWS refused {what} ({message}); the caller needs secretsmanager:{action} on arn:aws:secretsmanager:*:*:secret:{prefix}/* (see docs/stores/aws.md)",
            prefix = secret.rsplit_once('/').map_or(secret, |(p, _)| p)
        )),
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => StoreError::Denied(format!(
            "AWS rejected the credentials for {what} ({code}: {message}); refresh or fix your AWS credentials (e.g. `aws sso login`)"
        )),
        "DecryptionFailure" | "EncryptionFailure" | "KMSAccessDeniedException" => {
            StoreError::Denied(format!(
                "AWS KMS refused {what} ({code}: {message}); the caller needs kms:Decrypt and kms:GenerateDataKey on the secret's KMS key"
            ))
        }
        "ThrottlingException" | "Throttling" | "TooManyRequestsException"
        | "RequestLimitExceeded" | "InternalServiceError" | "InternalFailure"
        | "ServiceUnavailable" => StoreError::Unavailable {
            message: format!("AWS Secrets Manager is busy or failing ({code}) on {what}; try again"),
            retryable: true,
        },
        _ if status.is_some_and(|s| s >= 500) => StoreError::Unavailable {
            message: format!(
                "AWS Secrets Manager failed {what} (HTTP {}, {code} {message}); try again",
                status.unwrap_or_default()
            ),
            retryable: true,
        },
        "LimitExceededException" => StoreError::Unavailable {
            message: format!("an AWS Secrets Manager quota was reached on {what} ({message})"),
            retryable: false,
        },
        _ => backend(format!("{what} failed: {code} {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::config::http::HttpResponse;
    use aws_sdk_secretsmanager::error::ErrorMetadata;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

    /// The error the SDK returns for an AWS answer with `status` and `code`. (moto does not
    /// enforce IAM by default, so the live tests cannot produce AccessDenied or throttling.)
    fn answer(status: u16, code: &str) -> SdkError<GetSecretValueError, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("User: arn:aws:iam::123456789012:user/ci is not authorized")
            .build();
        SdkError::service_error(
            GetSecretValueError::generic(meta),
            HttpResponse::new(status.try_into().unwrap(), "".into()),
        )
    }

    fn mapped(status: u16, code: &str) -> StoreError {
        map(
            answer(status, code),
            "GetSecretValue",
            "nsauth/prod/sb1",
            "sb1",
        )
    }

    #[test]
    fn service_errors_map_to_kinds_a_caller_can_act_on() {
        match mapped(400, "AccessDeniedException") {
            StoreError::Denied(m) => {
                assert!(m.contains("secretsmanager:GetSecretValue"), "{m}");
                assert!(m.contains("secret:nsauth/prod/*"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            mapped(400, "ExpiredTokenException"),
            StoreError::Denied(m) if m.contains("aws sso login")
        ));
        assert!(matches!(
            mapped(400, "DecryptionFailure"),
            StoreError::Denied(m) if m.contains("kms:Decrypt")
        ));
        assert!(
            matches!(mapped(400, "ResourceNotFoundException"), StoreError::NotFound(p) if p == "sb1")
        );
        for (status, code) in [
            (400, "ThrottlingException"),
            (500, "InternalServiceError"),
            (503, "Whatever"),
        ] {
            let e = mapped(status, code);
            assert!(e.is_retryable(), "{code}: {e:?}");
        }
        assert!(matches!(
            mapped(400, "LimitExceededException"),
            StoreError::Unavailable {
                retryable: false,
                ..
            }
        ));
        let other = mapped(400, "InvalidParameterException").to_string();
        assert!(
            other.contains("aws-sm store error") && other.contains("InvalidParameterException"),
            "{other}"
        );
    }
}
