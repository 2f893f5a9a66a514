//! The HTTP surface: `POST /v1/punches`, health, readiness, metrics and the OpenAPI document.
//!
//! The punches handler decides every cheap refusal (content type, token, revocation, pause,
//! Kafka known down, rate limit, declared size, memory budget) from headers and in-memory state
//! before it reads a byte of the body, so a retry storm costs little more than its TCP traffic.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dakoku_schemas::{DeviceId, PunchId, QuarantinedInput, RawPunch, TenantId, Topic, encode_into};
use dakoku_token::{KeyError, TokenKeys};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use crate::limits::{self, Budget, DeviceLimiter, Held};
use crate::metrics;
use crate::publisher::{PublishError, Publisher};
use crate::request::{self, Invalid};
use crate::snapshot::{Admission, SnapshotCell};

/// The component name written into quarantine records.
const SOURCE: &str = "ingest-api";

/// The OpenAPI document of the recorder API, kept in the repository.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Errors building the acceptor.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration is inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The token keys are unusable.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The Kafka producer could not be created.
    #[error("cannot create the Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Everything a request needs, shared by all of them.
#[derive(Debug)]
pub struct AppState {
    pub(crate) config: Config,
    keys: TokenKeys,
    pub(crate) snapshot: Arc<SnapshotCell>,
    pub(crate) publisher: Publisher,
    pub(crate) limiter: DeviceLimiter,
    punches: Budget,
    body_bytes: Budget,
    shutting_down: AtomicBool,
    acceptor_id: String,
    metrics: PrometheusHandle,
}

impl AppState {
    /// Builds the state from a validated configuration. Connects to nothing yet.
    pub fn new(config: Config) -> Result<Self, BuildError> {
        config.validate()?;
        let keys = TokenKeys::parse(&config.token_keys)?;
        let publisher = Publisher::new(&config)?;
        let nz = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Ok(Self {
            limiter: DeviceLimiter::new(nz(config.device_rate_per_sec), nz(config.device_burst)),
            punches: Budget::new(config.max_inflight_punches),
            body_bytes: Budget::new(config.max_inflight_body_bytes),
            acceptor_id: config.acceptor_id(),
            snapshot: Arc::new(SnapshotCell::default()),
            shutting_down: AtomicBool::new(false),
            metrics: metrics::install(),
            keys,
            publisher,
            config,
        })
    }

    /// The master-data snapshot cell (tests install snapshots directly).
    pub fn snapshot(&self) -> &Arc<SnapshotCell> {
        &self.snapshot
    }

    /// The most punches ever in flight at once.
    pub fn inflight_punches_high_water(&self) -> usize {
        self.punches.high_water()
    }

    /// The most body bytes ever held at once.
    pub fn inflight_body_bytes_high_water(&self) -> usize {
        self.body_bytes.high_water()
    }

    /// Checks Kafka's reachability now (normally done in the background) and returns it.
    pub async fn check_kafka(&self) -> bool {
        self.publisher.check(Duration::from_secs(1)).await
    }

    /// Starts refusing new work and reporting not-ready.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    fn retry_after(&self) -> u32 {
        limits::jittered(self.config.retry_after_secs)
    }
}

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

/// The answer to a batch: what is durably in Kafka and what can never succeed.
#[derive(Debug, Serialize)]
pub struct Receipt {
    /// `seq`s durably appended; the recorder may delete them.
    pub acked: Vec<u64>,
    /// Items that can never succeed, preserved in quarantine; the recorder may delete them.
    pub rejected: Vec<Rejected>,
}

/// One rejected item.
#[derive(Debug, Serialize)]
pub struct Rejected {
    /// Its `seq`, or null when it had no usable one.
    pub seq: Option<u64>,
    /// Its position in the batch (0-based), to identify items without a usable `seq`.
    pub index: usize,
    /// What is wrong with it.
    pub error: String,
}

async fn post_punches(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    // Taking the request apart (rather than a `HeaderMap` extractor) avoids copying the headers.
    let (parts, body) = request.into_parts();
    let outcome = tokio::time::timeout(
        state.config.request_deadline(),
        accept(&state, &parts.headers, body, started),
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

/// Claims of the token, checked against the snapshot, with the request's routing.
struct Admitted {
    group: dakoku_schemas::GroupId,
    tenant: TenantId,
    device: DeviceId,
    device_key: String,
    topic: String,
}

fn admit(state: &AppState, headers: &HeaderMap) -> Result<Admitted, ApiError> {
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
async fn read_body(
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

/// Punches validated, encoded and enqueued between yields to the scheduler (about 150 µs of
/// CPU): under a burst of 500-punch batches on two cores, `/healthz` waited behind whole
/// batches (p99 0.34 s in `storm run --scenario contract`).
const YIELD_EVERY_PUNCHES: usize = 64;

async fn accept(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<(Receipt, bool), ApiError> {
    let admitted = admit(state, headers)?;
    let (body, _body_held) = read_body(state, headers, body).await?;
    let received_at = chrono::Utc::now().timestamp_millis();

    let envelope = match request::parse_envelope(&body) {
        Ok(envelope) => envelope,
        Err(error) => {
            let mut record = QuarantinedInput::new(
                received_at,
                SOURCE,
                "invalid_body",
                error.to_string(),
                &body,
                state.config.max_body_bytes,
            );
            record.tenant_id = Some(admitted.tenant.to_string());
            record.device_id = Some(admitted.device.to_string());
            record.content_type = content_type(headers);
            quarantine_one(state, admitted.tenant.as_str(), &record).await?;
            return Err(ApiError::BadRequest(error.0));
        }
    };
    if envelope.device_id != admitted.device.as_str() {
        return Err(ApiError::DeviceMismatch {
            token: admitted.device.to_string(),
            body: envelope.device_id.chars().take(64).collect(),
        });
    }
    let count = envelope.punches.len();
    if count > state.config.max_punches {
        return Err(ApiError::TooManyPunches {
            count,
            limit: state.config.max_punches,
        });
    }
    let _punches_held = state
        .punches
        .try_take(count)
        .ok_or_else(|| ApiError::Overloaded {
            retry_after: state.retry_after(),
        })?;

    let quarantine_topic = Topic::Quarantine.name();
    let mut buf = Vec::with_capacity(256);
    let mut acked_pending = Vec::with_capacity(count);
    let mut rejected_pending = Vec::new();
    let mut enqueue_error = None;
    for (index, raw) in envelope.punches.iter().enumerate() {
        // A big batch is a millisecond of CPU: let other tasks (health checks, cheap refusals,
        // small requests) run between chunks instead of queueing behind whole batches.
        if index % YIELD_EVERY_PUNCHES == YIELD_EVERY_PUNCHES - 1 {
            tokio::task::yield_now().await;
        }
        buf.clear();
        match request::validate_punch(index, raw) {
            Ok(punch) => {
                let (at, at_offset_minutes) = RawPunch::at_fields(punch.at);
                let record = RawPunch {
                    punch_id: PunchId::derive(&admitted.tenant, &admitted.device, punch.seq),
                    tenant_id: admitted.tenant.clone(),
                    group: admitted.group.clone(),
                    device_id: admitted.device.clone(),
                    seq: punch.seq,
                    card_id: punch.card_id,
                    kind: punch.kind,
                    at,
                    at_offset_minutes,
                    received_at,
                    acceptor_id: state.acceptor_id.clone(),
                };
                if let Err(error) = encode_into(&record, &mut buf) {
                    // Validation guarantees encodability; if not, the item is rejected rather
                    // than acked into nowhere.
                    let invalid = Invalid {
                        index,
                        seq: Some(punch.seq),
                        error: error.to_string(),
                        raw: raw.get(),
                    };
                    match enqueue_rejection(
                        state,
                        &admitted,
                        &quarantine_topic,
                        &invalid,
                        received_at,
                        &mut buf,
                    ) {
                        Ok(delivery) => rejected_pending.push((invalid, delivery)),
                        Err(error) => {
                            enqueue_error = Some(error);
                            break;
                        }
                    }
                    continue;
                }
                match state
                    .publisher
                    .enqueue(&admitted.topic, &admitted.device_key, &buf)
                {
                    Ok(delivery) => acked_pending.push((punch.seq, delivery)),
                    Err(error) => {
                        enqueue_error = Some(error);
                        break;
                    }
                }
            }
            Err(invalid) => {
                match enqueue_rejection(
                    state,
                    &admitted,
                    &quarantine_topic,
                    &invalid,
                    received_at,
                    &mut buf,
                ) {
                    Ok(delivery) => rejected_pending.push((invalid, delivery)),
                    Err(error) => {
                        enqueue_error = Some(error);
                        break;
                    }
                }
            }
        }
    }

    // Every enqueued record's fate is awaited, so nothing is acked on hope.
    let (acked_results, rejected_results) = futures::future::join(
        futures::future::join_all(
            acked_pending
                .into_iter()
                .map(|(seq, d)| async move { (seq, Publisher::confirmed(d).await) }),
        ),
        futures::future::join_all(
            rejected_pending
                .into_iter()
                .map(|(invalid, d)| async move { (invalid, Publisher::confirmed(d).await) }),
        ),
    )
    .await;
    let mut failure = enqueue_error;
    let mut acked = Vec::with_capacity(acked_results.len());
    for (seq, result) in acked_results {
        match result {
            Ok(()) => acked.push(seq),
            Err(error) => failure = Some(error),
        }
    }
    let mut rejected = Vec::with_capacity(rejected_results.len());
    for (invalid, result) in rejected_results {
        match result {
            Ok(()) => rejected.push(Rejected {
                seq: invalid.seq,
                index: invalid.index,
                error: invalid.error,
            }),
            Err(error) => failure = Some(error),
        }
    }
    metrics::batch(acked.len(), rejected.len(), started.elapsed());

    match failure {
        None => Ok((Receipt { acked, rejected }, true)),
        Some(error) if acked.is_empty() && rejected.is_empty() && count > 0 => {
            Err(log_unavailable(state, &error))
        }
        Some(error) => {
            tracing::warn!(%error, acked = acked.len(), rejected = rejected.len(), total = count,
                "part of a batch was not confirmed by Kafka");
            Ok((Receipt { acked, rejected }, false))
        }
    }
}

fn log_unavailable(state: &AppState, error: &PublishError) -> ApiError {
    ApiError::LogUnavailable {
        detail: error.to_string(),
        retry_after: state.retry_after(),
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn enqueue_rejection(
    state: &AppState,
    admitted: &Admitted,
    topic: &str,
    invalid: &Invalid<'_>,
    received_at: i64,
    buf: &mut Vec<u8>,
) -> Result<rdkafka::producer::DeliveryFuture, PublishError> {
    let mut record = QuarantinedInput::new(
        received_at,
        SOURCE,
        "invalid_punch",
        invalid.error.clone(),
        invalid.raw.as_bytes(),
        state.config.max_body_bytes,
    );
    record.tenant_id = Some(admitted.tenant.to_string());
    record.device_id = Some(admitted.device.to_string());
    record.content_type = Some("application/json".into());
    buf.clear();
    encode_into(&record, buf).map_err(|e| PublishError::Kafka(e.to_string()))?;
    state
        .publisher
        .enqueue(topic, admitted.tenant.as_str(), buf)
}

async fn quarantine_one(
    state: &AppState,
    key: &str,
    record: &QuarantinedInput,
) -> Result<(), ApiError> {
    let mut buf = Vec::new();
    encode_into(record, &mut buf).map_err(|e| ApiError::LogUnavailable {
        detail: format!("cannot encode quarantine record: {e}"),
        retry_after: state.retry_after(),
    })?;
    let delivery = state
        .publisher
        .enqueue(&Topic::Quarantine.name(), key, &buf)
        .map_err(|e| log_unavailable(state, &e))?;
    Publisher::confirmed(delivery)
        .await
        .map_err(|e| log_unavailable(state, &e))
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
