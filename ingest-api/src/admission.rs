//! The cheap refusals of `POST /v1/punches`, decided from headers and in-memory state before a
//! byte of the body is read, and the bounded read of the body itself.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use dakoku_schemas::{DeviceId, TenantId, Topic};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use crate::error::ApiError;
use crate::limits::{self, Held};
use crate::snapshot::Admission;
use crate::state::AppState;

/// Claims of the token, checked against the snapshot, with the request's routing.
pub(crate) struct Admitted {
    pub(crate) group: dakoku_schemas::GroupId,
    pub(crate) tenant: TenantId,
    pub(crate) device: DeviceId,
    pub(crate) device_key: String,
    pub(crate) topic: String,
}

pub(crate) fn admit(state: &AppState, headers: &HeaderMap) -> Result<Admitted, ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::ShuttingDown {
            retry_after: state.retry_after(),
        });
    }
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::MissingToken)?;
    let now = chrono::Utc::now().timestamp();
    let claims = state.keys.verify(token, now).map_err(ApiError::BadToken)?;
    let device_key = dakoku_schemas::raw_key(&claims.tenant, &claims.device);

    let snapshot = state.snapshot.get().ok_or_else(|| ApiError::NotReady {
        retry_after: state.retry_after(),
    })?;
    let group = match snapshot.admit(claims.tenant.as_str(), &device_key) {
        Admission::Route(group) => group,
        Admission::UnknownTenant => return Err(ApiError::UnknownTenant),
        Admission::Revoked => return Err(ApiError::DeviceRevoked),
        Admission::Paused(scope, pause) => {
            return Err(ApiError::Paused {
                scope,
                reason: pause.reason.clone(),
                retry_after: limits::jittered_operator(pause.retry_after_seconds),
            });
        }
    };
    if !state.publisher.is_reachable() {
        return Err(ApiError::LogUnavailable {
            detail: "Kafka unreachable".into(),
            retry_after: state.retry_after(),
        });
    }
    state
        .limiter
        .check(&device_key)
        .map_err(|wait| ApiError::RateLimited {
            retry_after: limits::jittered_wait(wait),
        })?;
    Ok(Admitted {
        topic: Topic::Raw(group.clone()).name(),
        group: group.clone(),
        tenant: claims.tenant,
        device: claims.device,
        device_key,
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads the body within the size limit, the byte budget and the body timeout.
pub(crate) async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(axum::body::Bytes, Held), ApiError> {
    let limit = state.config.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    // Hold the bytes the body may take before reading it, so memory stays bounded.
    let held = state
        .body_bytes
        .try_take(declared.unwrap_or(limit).max(1))
        .ok_or_else(|| ApiError::Overloaded {
            retry_after: state.retry_after(),
        })?;
    let timeout_ms = state.config.body_read_timeout_ms;
    let collected = tokio::time::timeout(
        Duration::from_millis(timeout_ms),
        Limited::new(body, limit).collect(),
    )
    .await
    .map_err(|_| ApiError::SlowBody { timeout_ms })?;
    match collected {
        Ok(collected) => Ok((collected.to_bytes(), held)),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::BodyTooLarge { limit })
        }
        Err(error) => Err(ApiError::BadRequest(format!(
            "could not read the body: {error}"
        ))),
    }
}

/// The request's declared content type, kept in quarantine records.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
