//! The HTTP surface: the router, `POST /v1/punches` wrapped in its deadline, health,
//! readiness, metrics and the OpenAPI document.
//!
//! Admission (the cheap refusals) is in [`crate::admission`], the batch itself in
//! [`crate::accept`]; this module turns their outcome into a response.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

pub use crate::accept::{Receipt, Rejected};
use crate::error::ApiError;
pub use crate::error::BuildError;
use crate::metrics;
pub use crate::state::AppState;

/// The OpenAPI document of the recorder API, kept in the repository.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The router, separate from serving so handler tests can drive it with `oneshot`.
pub fn app(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route("/v1/punches", post(post_punches))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn post_punches(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    // Taking the request apart (rather than a `HeaderMap` extractor) avoids copying the headers.
    let (parts, body) = request.into_parts();
    let outcome = tokio::time::timeout(
        state.config.request_deadline(),
        crate::accept::accept(&state, &parts.headers, body, started),
    )
    .await
    .unwrap_or_else(|_| {
        Err(ApiError::LogUnavailable {
            detail: "not confirmed within the request deadline".into(),
            retry_after: state.retry_after(),
        })
    });
    let mut response = match outcome {
        Ok((receipt, complete)) => {
            let mut response = Json(receipt).into_response();
            if !complete {
                // Some punches were neither acked nor rejected: the recorder keeps them and
                // should come back later, like after a 503.
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(state.retry_after()));
            }
            response
        }
        Err(error) => {
            metrics::refusal(error.code());
            tracing::debug!(code = error.code(), %error, "request refused");
            error.into_response()
        }
    };
    if response.headers().contains_key(header::RETRY_AFTER) {
        // "Come back in N seconds" also ends the connection: the server closes idle
        // connections after the header timeout (5 s), the lowest Retry-After is about as long,
        // and a recorder reusing its connection just as the server closes it sees "connection
        // closed" instead of an answer (13 to 21 per reduced contract storm run). A refused
        // recorder reconnects when it comes back, and holds no connection meanwhile.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    metrics::request("punches", response.status().as_u16());
    response
}

async fn healthz() -> Response {
    metrics::request("healthz", 200);
    Json(serde_json::json!({"status": "ok"})).into_response()
}

/// Readiness with its reasons, so an operator sees why at a glance.
#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    shutting_down: bool,
    kafka_reachable: bool,
    snapshot_loaded: bool,
    snapshot_version: Option<i64>,
    snapshot_age_seconds: Option<f64>,
    database_ok: bool,
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let snapshot = state.snapshot.get();
    let kafka_reachable = state.publisher.is_reachable();
    let shutting_down = state.is_shutting_down();
    let readiness = Readiness {
        // A stale snapshot still serves (that is the point of holding it); no snapshot cannot.
        ready: !shutting_down && kafka_reachable && snapshot.is_some(),
        shutting_down,
        kafka_reachable,
        snapshot_loaded: snapshot.is_some(),
        snapshot_version: snapshot.as_ref().map(|s| s.version),
        snapshot_age_seconds: state.snapshot.age().map(|a| a.as_secs_f64()),
        database_ok: state.snapshot.database_ok(),
    };
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    metrics::request("readyz", status.as_u16());
    (status, Json(readiness)).into_response()
}

async fn render_metrics(State(state): State<Arc<AppState>>) -> Response {
    metrics::snapshot_health(state.snapshot.age(), state.snapshot.database_ok());
    metrics::inflight(state.punches.in_use(), state.body_bytes.in_use());
    metrics::request("metrics", 200);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    let body = serde_json::json!({"error": "not_found", "message": "no such path; punches go to POST /v1/punches"});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn method_not_allowed() -> Response {
    let body = serde_json::json!({"error": "method_not_allowed", "message": "method not allowed on this path"});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
