//! [`ApiError`]: every refusal the admin API answers, as one JSON shape
//! `{"error": code, "message": ..., "field": ...}` with its status and headers.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dakoku_admin::AdminError;
use serde::Serialize;

/// A refusal: status, stable code, a message that says what to do, and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`invalid`, `unauthorized`...).
    pub code: &'static str,
    /// What is wrong and what to do.
    pub message: String,
    /// The request field or path parameter at fault (422), else `None`.
    pub field: Option<String>,
    /// Seconds to wait before retrying (503).
    pub retry_after: Option<u32>,
}

/// The JSON body of every error.
#[derive(Debug, Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 422: `field` is wrong.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
        }
    }

    /// 401: no usable admin token (answered with `WWW-Authenticate: Bearer`).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a valid token for another tenant.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 for a path the API does not serve.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such path; the routes are listed in GET /openapi.yaml",
        )
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this path; see GET /openapi.yaml",
        )
    }

    /// 413: the body is over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self {
            field: Some("body".into()),
            ..Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body over {limit} bytes; send only the documented fields"),
            )
        }
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(message: impl Into<String>, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }

    /// The answer to an operation's refusal; `retry_after` for [`AdminError::Unavailable`].
    pub fn from_admin(error: AdminError, retry_after: u32) -> Self {
        match error {
            AdminError::Invalid { field, .. } => {
                let message = error.to_string();
                Self::invalid(field, message)
            }
            AdminError::NotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
            }
            AdminError::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message),
            AdminError::Unavailable(message) => {
                tracing::warn!(%message, "operation unavailable");
                Self::unavailable(message, retry_after)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: self.code,
            message: &self.message,
            field: self.field.as_deref(),
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dakoku-admin\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_refusals_map_to_their_statuses() {
        let cases = [
            (
                AdminError::invalid("reason", "required"),
                422,
                Some("reason"),
            ),
            (
                AdminError::NotFound {
                    what: "employee",
                    id: "acme/E9".into(),
                },
                404,
                None,
            ),
            (AdminError::Conflict("already closed".into()), 409, None),
            (AdminError::Unavailable("Kafka down".into()), 503, None),
        ];
        for (error, status, field) in cases {
            let api = ApiError::from_admin(error, 7);
            assert_eq!(api.status.as_u16(), status, "{api:?}");
            assert_eq!(api.field.as_deref(), field);
            assert_eq!(api.retry_after.is_some(), status == 503);
        }
    }

    #[test]
    fn headers_follow_the_status() {
        let response = ApiError::unauthorized("no token").into_response();
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"dakoku-admin\""
        );
        let response = ApiError::unavailable("later", 5).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
