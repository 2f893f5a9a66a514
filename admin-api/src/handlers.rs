//! One handler per endpoint: authorize, read the parameters, run the operation within the
//! request timeout, answer JSON. Writes are logged with their actor; the durable record is the
//! correction's `actor` and the `month_closings` row.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dakoku_admin::{AdminError, AnomalyDay, ClosingEvent, DayView};
use dakoku_schemas::Correction;
use dakoku_token::AdminClaims;
use serde::Serialize;

use crate::auth::authorize;
use crate::error::ApiError;
use crate::input;
use crate::spec::OPENAPI;
use crate::state::AppState;

type Params = Result<Path<HashMap<String, String>>, PathRejection>;
type Answer<T> = Result<T, ApiError>;

/// The path parameters, or 422 when they cannot be read (e.g. invalid percent-encoding).
fn params(path: Params) -> Answer<HashMap<String, String>> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::invalid("path", format!("unreadable path parameters: {e}")))
}

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> &'a str {
    params.get(name).map_or("", String::as_str)
}

/// Authorizes the request for the path's tenant and returns the claims and the parameters.
fn admit(
    state: &AppState,
    headers: &HeaderMap,
    path: Params,
) -> Answer<(AdminClaims, HashMap<String, String>)> {
    let params = params(path)?;
    let claims = authorize(state, headers, param(&params, "tenant"))?;
    Ok((claims, params))
}

/// Runs an operation within the request timeout.
async fn run<T>(
    state: &AppState,
    operation: impl Future<Output = Result<T, AdminError>>,
) -> Answer<T> {
    match tokio::time::timeout(state.request_timeout, operation).await {
        Ok(result) => result.map_err(|e| ApiError::from_admin(e, state.retry_after_secs)),
        Err(_) => Err(ApiError::unavailable(
            format!(
                "not done within {} s; Postgres or Kafka is slow or down: retry later (a \
                 correction may have been appended: check the day before resubmitting)",
                state.request_timeout.as_secs()
            ),
            state.retry_after_secs,
        )),
    }
}

/// The body, or 413/422.
fn body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Answer<Bytes> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(state.max_body_bytes)
        } else {
            ApiError::invalid("body", format!("unreadable body: {rejection}"))
        }
    })
}

/// The anomaly queue answer.
#[derive(Debug, Serialize)]
pub struct AnomalyQueue {
    tenant_id: String,
    month: String,
    days: Vec<AnomalyDay>,
}

/// `GET /v1/tenants/{tenant}/anomalies?month=YYYY-MM`
pub async fn anomalies(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Params,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Answer<Json<AnomalyQueue>> {
    let (claims, _) = admit(&state, &headers, path)?;
    let query = query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::invalid("month", format!("unreadable query: {e}")))?;
    let month = query
        .get("month")
        .ok_or_else(|| ApiError::invalid("month", "required: ?month=YYYY-MM, e.g. 2026-11"))?;
    let month = input::month(month)?;
    let admin = state.admin()?;
    let days = run(&state, admin.anomalies(&claims.tenant, &month)).await?;
    Ok(Json(AnomalyQueue {
        tenant_id: claims.tenant.to_string(),
        month,
        days,
    }))
}

/// `GET /v1/tenants/{tenant}/employees/{employee}/days/{date}`
pub async fn day(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Params,
) -> Answer<Json<DayView>> {
    let (claims, params) = admit(&state, &headers, path)?;
    let employee = input::employee(param(&params, "employee"))?;
    let date = input::date(param(&params, "date"))?;
    let admin = state.admin()?;
    let view = run(&state, admin.day(&claims.tenant, &employee, date)).await?;
    Ok(Json(view))
}

/// A correction as appended (instants RFC 3339 UTC).
#[derive(Debug, Serialize)]
pub struct CorrectionOut {
    correction_id: String,
    tenant_id: String,
    employee_id: String,
    action: String,
    kind: Option<String>,
    at: Option<DateTime<Utc>>,
    target_id: Option<String>,
    actor: String,
    reason: String,
    created_at: Option<DateTime<Utc>>,
}

impl From<Correction> for CorrectionOut {
    fn from(c: Correction) -> Self {
        Self {
            correction_id: c.correction_id.to_string(),
            tenant_id: c.tenant_id.to_string(),
            employee_id: c.employee_id.to_string(),
            action: match c.action {
                dakoku_admin::CorrectionAction::Add => "add",
                dakoku_admin::CorrectionAction::Void => "void",
            }
            .to_owned(),
            kind: c.kind.map(|k| k.as_str().to_owned()),
            at: c.at.and_then(DateTime::from_timestamp_millis),
            target_id: c.target_id.map(|t| t.to_string()),
            actor: c.actor,
            reason: c.reason,
            created_at: DateTime::from_timestamp_millis(c.created_at),
        }
    }
}

/// `POST /v1/tenants/{tenant}/corrections` → 201 with the correction, once Kafka has it.
pub async fn correct(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Params,
    raw: Result<Bytes, BytesRejection>,
) -> Answer<Response> {
    let (claims, _) = admit(&state, &headers, path)?;
    let request = input::correction(&body(&state, raw)?, &claims.actor)?;
    let admin = state.admin()?;
    let correction = run(&state, admin.submit_correction(&claims.tenant, request)).await?;
    tracing::info!(
        tenant = %claims.tenant,
        actor = correction.actor,
        correction_id = %correction.correction_id,
        employee = %correction.employee_id,
        action = ?correction.action,
        "correction submitted"
    );
    Ok((StatusCode::CREATED, Json(CorrectionOut::from(correction))).into_response())
}

/// `POST /v1/tenants/{tenant}/months/{month}/close`
pub async fn close(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Params,
) -> Answer<Json<dakoku_admin::Closed>> {
    let (claims, params) = admit(&state, &headers, path)?;
    let month = input::month(param(&params, "month"))?;
    let actor = input::api_actor(&claims.actor);
    let admin = state.admin()?;
    let closed = run(&state, admin.close_month(&claims.tenant, &month, &actor)).await?;
    tracing::info!(tenant = %claims.tenant, actor, month, frozen = closed.employees_frozen,
        "month closed through the API");
    Ok(Json(closed))
}

/// `POST /v1/tenants/{tenant}/months/{month}/reopen` with `{"reason": "..."}`
pub async fn reopen(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Params,
    raw: Result<Bytes, BytesRejection>,
) -> Answer<Json<dakoku_admin::Reopened>> {
    let (claims, params) = admit(&state, &headers, path)?;
    let month = input::month(param(&params, "month"))?;
    let reason = input::reopen_reason(&body(&state, raw)?)?;
    let actor = input::api_actor(&claims.actor);
    let admin = state.admin()?;
    let reopened = run(
        &state,
        admin.reopen_month(&claims.tenant, &month, &actor, &reason),
    )
    .await?;
    tracing::info!(tenant = %claims.tenant, actor, month, reason,
        superseded = reopened.adjustments_superseded, "month reopened through the API");
    Ok(Json(reopened))
}

/// A month's closing history.
#[derive(Debug, Serialize)]
pub struct Closings {
    tenant_id: String,
    month: String,
    /// Whether the month is closed now (its latest event is a close).
    closed: bool,
    events: Vec<ClosingEvent>,
}

/// `GET /v1/tenants/{tenant}/months/{month}/closings`
pub async fn closings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Params,
) -> Answer<Json<Closings>> {
    let (claims, params) = admit(&state, &headers, path)?;
    let month = input::month(param(&params, "month"))?;
    let admin = state.admin()?;
    let events: Vec<ClosingEvent> = run(&state, admin.closings(&claims.tenant))
        .await?
        .into_iter()
        .filter(|e| e.month == month)
        .collect();
    Ok(Json(Closings {
        tenant_id: claims.tenant.to_string(),
        closed: events.last().is_some_and(|e| e.action == "close"),
        month,
        events,
    }))
}

/// `GET /healthz`: the process serves; `connected` says whether Postgres answered yet.
pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    Json(serde_json::json!({"status": "ok", "connected": state.connected()})).into_response()
}

/// `GET /metrics`
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /openapi.yaml`
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI).into_response()
}
