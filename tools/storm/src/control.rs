//! The synchronous control: a deliberately classic recorder endpoint, built the way the
//! incident's system was (`INCIDENT.md`), so the storm can be replayed against both
//! architectures on the same machine and compared.
//!
//! Per request, inside the request: verify the token, open a Postgres transaction from a
//! bounded pool, look up the card's employee and the tenant's licence, spend the same per-punch
//! delay as the slowed licence check, insert the punch, commit, answer. Like a thread-per-request
//! application server, every request (`/healthz` included) first needs one of `workers`
//! workers; a request that waits longer than `queue_timeout_ms` for one is answered `503`
//! without `Retry-After`, as an overloaded load balancer would. There is no per-device rate
//! limit: the incident's system had none.
//!
//! It speaks the recorder API's request and receipt format, so the same simulator drives it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use dakoku_token::TokenKeys;
use deadpool_postgres::Pool;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The control's table: one row per `(tenant, device, seq)`, as the audit reads it.
pub const CONTROL_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS control_punches (
    tenant_id   text NOT NULL,
    device_id   text NOT NULL,
    seq         bigint NOT NULL,
    card_id     text NOT NULL,
    employee_id text NOT NULL,
    kind        text NOT NULL,
    at          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, device_id, seq)
)";

/// The control's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ControlConfig {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: std::net::SocketAddr,
    /// The storm's database (master data and `control_punches`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Device-token keys (the storm's).
    #[arg(long, env = "DAKOKU_TOKEN_KEYS", hide_env_values = true)]
    pub token_keys: String,
    /// The slow licence check: microseconds spent per punch inside the request.
    #[arg(long, env = "DAKOKU_CHECK_DELAY_US", default_value_t = 0)]
    pub check_delay_us: u64,
    /// Request workers (a classic server's thread pool); `/healthz` needs one too.
    #[arg(long, default_value_t = 200)]
    pub workers: usize,
    /// Postgres connections (the application's connection pool).
    #[arg(long, default_value_t = 20)]
    pub pool_size: usize,
    /// Longest a request waits for a worker before it is answered `503`.
    #[arg(long, default_value_t = 10_000)]
    pub queue_timeout_ms: u64,
}

/// Why the control could not start or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The token keys do not parse; pass the storm's `DAKOKU_TOKEN_KEYS`.
    #[error("token keys: {0}")]
    Keys(String),
    /// The pool could not be built from the database URL.
    #[error("connection pool: {0}")]
    Pool(String),
    /// Postgres failed.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared state of the control.
#[derive(Debug)]
pub struct ControlState {
    keys: TokenKeys,
    pool: Pool,
    workers: Semaphore,
    queue_timeout: Duration,
    check_delay: Duration,
}

impl ControlState {
    /// Builds the pool and the worker budget.
    pub fn new(config: &ControlConfig) -> Result<Self, ControlError> {
        let keys =
            TokenKeys::parse(&config.token_keys).map_err(|e| ControlError::Keys(e.to_string()))?;
        // The same pool as the services': one door to Postgres (`dakoku_store`).
        let pool = dakoku_store::pool(&config.database_url, config.pool_size)
            .map_err(|e| ControlError::Pool(e.to_string()))?;
        Ok(Self {
            keys,
            pool,
            workers: Semaphore::new(config.workers),
            queue_timeout: Duration::from_millis(config.queue_timeout_ms),
            check_delay: Duration::from_micros(config.check_delay_us),
        })
    }
}

/// The routes: `POST /v1/punches`, `GET /healthz`.
pub fn app(state: Arc<ControlState>) -> Router {
    Router::new()
        .route("/v1/punches", post(punches))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Creates `control_punches` and serves until `shutdown`.
pub async fn serve(
    config: ControlConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ControlError> {
    let state = Arc::new(ControlState::new(&config)?);
    let client = state
        .pool
        .get()
        .await
        .map_err(|e| ControlError::Pool(e.to_string()))?;
    client.batch_execute(CONTROL_SCHEMA).await?;
    drop(client);
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

/// Waits for a worker like a request waits for a thread; `None` after the queue timeout.
async fn worker(state: &ControlState) -> Option<tokio::sync::SemaphorePermit<'_>> {
    tokio::time::timeout(state.queue_timeout, state.workers.acquire())
        .await
        .ok()?
        .ok()
}

async fn healthz(State(state): State<Arc<ControlState>>) -> Response {
    match worker(&state).await {
        Some(_worker) => (StatusCode::OK, "ok").into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "no worker free",
        ),
    }
}

#[derive(Debug, Deserialize)]
struct Batch {
    device_id: String,
    punches: Vec<Item>,
}

#[derive(Debug, Deserialize)]
struct Item {
    seq: u64,
    card_id: String,
    kind: String,
    at: String,
}

async fn punches(
    State(state): State<Arc<ControlState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(_worker) = worker(&state).await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "no worker free",
        );
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let claims = match state.keys.verify(token, chrono::Utc::now().timestamp()) {
        Ok(claims) => claims,
        Err(e) => return error(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
    };
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    };
    if batch.device_id != claims.device.as_str() {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "token of another device",
        );
    }
    match store(&state, claims.tenant.as_str(), &batch).await {
        Ok((acked, rejected)) => (
            StatusCode::OK,
            axum::Json(json!({"acked": acked, "rejected": rejected})),
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    }
}

/// The classic request: one transaction with the licence check and the write inside.
async fn store(
    state: &ControlState,
    tenant: &str,
    batch: &Batch,
) -> Result<(Vec<u64>, Vec<serde_json::Value>), String> {
    let mut client = state.pool.get().await.map_err(|e| e.to_string())?;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    let mut acked = Vec::with_capacity(batch.punches.len());
    let mut rejected = Vec::new();
    for item in &batch.punches {
        let at = match chrono::DateTime::parse_from_rfc3339(&item.at) {
            Ok(at) => at,
            Err(e) => {
                rejected.push(json!({"seq": item.seq, "error": format!("at: {e}")}));
                continue;
            }
        };
        let row = tx
            .query_opt(
                "SELECT e.employee_id FROM employees e JOIN tenants t USING (tenant_id) \
                 WHERE e.tenant_id = $1 AND e.card_id = $2 AND e.licensed \
                 AND t.licence_seats > 0",
                &[&tenant, &item.card_id],
            )
            .await
            .map_err(|e| e.to_string())?;
        // The slow licence check, spent while the request holds its worker and connection.
        if !state.check_delay.is_zero() {
            tokio::time::sleep(state.check_delay).await;
        }
        let Some(row) = row else {
            rejected.push(json!({"seq": item.seq, "error": "not_licensed"}));
            continue;
        };
        let employee: String = row.get(0);
        let seq = i64::try_from(item.seq).map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO control_punches (tenant_id, device_id, seq, card_id, employee_id, kind, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &tenant,
                &batch.device_id,
                &seq,
                &item.card_id,
                &employee,
                &item.kind,
                &at.with_timezone(&chrono::Utc),
            ],
        )
        .await
        .map_err(|e| e.to_string())?;
        acked.push(item.seq);
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok((acked, rejected))
}
