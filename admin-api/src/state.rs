//! [`AppState`]: what every request reads: the admin-token keys, the operations once
//! connected, the limits and the metrics handle.

use std::time::Duration;

use dakoku_admin::Admin;
use dakoku_token::TokenKeys;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::OnceCell;

use crate::error::ApiError;

/// Shared by all requests.
#[derive(Debug)]
pub struct AppState {
    /// Verifies admin tokens.
    pub keys: TokenKeys,
    /// Set once Postgres answered; until then operations answer 503.
    admin: OnceCell<Admin>,
    /// `Retry-After` seconds of a 503.
    pub retry_after_secs: u32,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// An operation not done by then answers 503.
    pub request_timeout: Duration,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}

impl AppState {
    /// State with no operations yet ([`AppState::set_admin`] once connected).
    pub fn new(keys: TokenKeys, retry_after_secs: u32, max_body_bytes: usize) -> Self {
        Self {
            keys,
            admin: OnceCell::new(),
            retry_after_secs,
            max_body_bytes,
            request_timeout: Duration::from_secs(45),
            metrics: dakoku_service::install_prometheus(),
        }
    }

    /// Makes the operations available; a second call is ignored.
    pub fn set_admin(&self, admin: Admin) {
        if self.admin.set(admin).is_err() {
            tracing::warn!("operations were already connected; keeping the first connection");
        }
    }

    /// Whether the operations are connected.
    pub fn connected(&self) -> bool {
        self.admin.initialized()
    }

    /// The operations, or 503 while Postgres has not answered yet.
    pub fn admin(&self) -> Result<&Admin, ApiError> {
        self.admin.get().ok_or_else(|| {
            ApiError::unavailable(
                "admin-api has not reached Postgres yet; retry shortly (is DATABASE_URL right?)",
                self.retry_after_secs,
            )
        })
    }
}
