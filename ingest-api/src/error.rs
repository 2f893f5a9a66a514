//! Every refusal the acceptor gives, with the whole status policy in one `match`; and
//! [`BuildError`], why the acceptor cannot start.
//!
//! Error bodies are always `{"error": "<code>", "message": "<human text>"}`. Refusals that a
//! recorder should retry carry `Retry-After`, jittered by the caller so that thousands of
//! recorders refused in the same second do not come back in the same second.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use dakoku_token::{KeyError, TokenError};

use crate::config::ConfigError;

/// Errors building the acceptor.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration is inconsistent (or its Kafka properties file unreadable).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The token keys are unusable.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The Kafka producer could not be created.
    #[error(transparent)]
    Kafka(#[from] dakoku_kafka::Error),
}

/// Why a request was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// `Content-Type` is not `application/json`.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// No `Authorization: Bearer <token>` header.
    #[error("missing Authorization: Bearer <device token>")]
    MissingToken,
    /// The token is malformed, forged, signed by an unknown key or expired.
    #[error("{0}")]
    BadToken(TokenError),
    /// The body's `device_id` is not the token's device.
    #[error("device_id {body:?} does not match the token's device {token:?}")]
    DeviceMismatch {
        /// What the token says.
        token: String,
        /// What the body says.
        body: String,
    },
    /// The device was revoked by an operator.
    #[error("device is revoked; ask the operator for a new registration")]
    DeviceRevoked,
    /// The token's tenant is not (or no longer) in the master data.
    #[error("tenant is not registered")]
    UnknownTenant,
    /// The body exceeds the size limit.
    #[error("body exceeds {limit} bytes; send smaller batches")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More punches than allowed in one request.
    #[error("{count} punches in one request; at most {limit} are allowed, send smaller batches")]
    TooManyPunches {
        /// Punches sent.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not JSON of the contract's shape.
    #[error("{0}")]
    BadRequest(String),
    /// The client took too long to send its body.
    #[error("request body not received within {timeout_ms} ms")]
    SlowBody {
        /// The allowed time.
        timeout_ms: u64,
    },
    /// The device is over its rate limit.
    #[error("device rate limit exceeded; retry after {retry_after} s")]
    RateLimited {
        /// Seconds to wait (jittered).
        retry_after: u32,
    },
    /// An operator paused intake for this tenant, device or group.
    #[error("intake paused for this {scope} by the operator{}; retry after {retry_after} s", reason_suffix(.reason))]
    Paused {
        /// `group`, `tenant` or `device`.
        scope: &'static str,
        /// The operator's reason, if given.
        reason: String,
        /// Seconds to wait (the operator's value, jittered).
        retry_after: u32,
    },
    /// The in-flight budget is used up: the acceptor refuses instead of queueing in memory.
    #[error("acceptor at capacity; retry after {retry_after} s")]
    Overloaded {
        /// Seconds to wait (jittered).
        retry_after: u32,
    },
    /// Kafka did not take the records (unreachable, queue full, or not confirmed in time).
    #[error(
        "punch log unavailable ({detail}); nothing in this request was acked, retry after {retry_after} s"
    )]
    LogUnavailable {
        /// What failed.
        detail: String,
        /// Seconds to wait (jittered).
        retry_after: u32,
    },
    /// The master-data snapshot has not been loaded yet: routing is unknown.
    #[error("acceptor starting (master data not loaded yet); retry after {retry_after} s")]
    NotReady {
        /// Seconds to wait.
        retry_after: u32,
    },
    /// The acceptor is shutting down.
    #[error("acceptor shutting down; retry after {retry_after} s")]
    ShuttingDown {
        /// Seconds to wait.
        retry_after: u32,
    },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

impl ApiError {
    /// The status, the machine-readable code, and the `Retry-After` seconds if any.
    pub fn policy(&self) -> (StatusCode, &'static str, Option<u32>) {
        match self {
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
            ),
            Self::MissingToken => (StatusCode::UNAUTHORIZED, "missing_token", None),
            Self::BadToken(TokenError::Expired(_)) => {
                (StatusCode::UNAUTHORIZED, "token_expired", None)
            }
            Self::BadToken(_) => (StatusCode::UNAUTHORIZED, "invalid_token", None),
            Self::DeviceMismatch { .. } => (StatusCode::FORBIDDEN, "device_mismatch", None),
            Self::DeviceRevoked => (StatusCode::FORBIDDEN, "device_revoked", None),
            Self::UnknownTenant => (StatusCode::FORBIDDEN, "unknown_tenant", None),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None),
            Self::TooManyPunches { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_many_punches", None)
            }
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", None),
            Self::SlowBody { .. } => (StatusCode::REQUEST_TIMEOUT, "slow_body", None),
            Self::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                Some(*retry_after),
            ),
            Self::Paused { retry_after, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "intake_paused",
                Some(*retry_after),
            ),
            Self::Overloaded { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                Some(*retry_after),
            ),
            Self::LogUnavailable { retry_after, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "log_unavailable",
                Some(*retry_after),
            ),
            Self::NotReady { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                Some(*retry_after),
            ),
            Self::ShuttingDown { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                Some(*retry_after),
            ),
        }
    }

    /// The label used for refusal metrics.
    pub fn code(&self) -> &'static str {
        self.policy().1
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, retry_after) = self.policy();
        let mut response = (
            status,
            Json(ErrorBody {
                error: code,
                message: self.to_string(),
            }),
        )
            .into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dakoku\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_refusals_and_only_they_carry_retry_after() {
        let cases = [
            (ApiError::RateLimited { retry_after: 3 }, 429, Some(3)),
            (ApiError::Overloaded { retry_after: 7 }, 503, Some(7)),
            (
                ApiError::LogUnavailable {
                    detail: "x".into(),
                    retry_after: 9,
                },
                503,
                Some(9),
            ),
            (
                ApiError::Paused {
                    scope: "tenant",
                    reason: String::new(),
                    retry_after: 60,
                },
                503,
                Some(60),
            ),
            (ApiError::MissingToken, 401, None),
            (ApiError::BadToken(TokenError::Expired(1)), 401, None),
            (ApiError::DeviceRevoked, 403, None),
            (ApiError::BodyTooLarge { limit: 1 }, 413, None),
            (ApiError::UnsupportedMediaType, 415, None),
            (ApiError::BadRequest("x".into()), 400, None),
        ];
        for (error, status, retry_after) in cases {
            let response = error.clone().into_response();
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            let header = response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().expect("ascii").parse::<u32>().expect("seconds"));
            assert_eq!(header, retry_after, "{error:?}");
        }
    }
}
