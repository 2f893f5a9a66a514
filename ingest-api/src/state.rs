//! The acceptor's shared state: configuration, keys, snapshot, producer, limits and budgets.
//!
//! Built once at start-up and shared by every request; it connects to nothing by itself.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dakoku_token::TokenKeys;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::error::BuildError;
use crate::limits::{self, Budget, DeviceLimiter};
use crate::metrics;
use crate::publisher::Publisher;
use crate::snapshot::SnapshotCell;

/// Everything a request needs, shared by all of them.
#[derive(Debug)]
pub struct AppState {
    pub(crate) config: Config,
    pub(crate) keys: TokenKeys,
    pub(crate) snapshot: Arc<SnapshotCell>,
    pub(crate) publisher: Publisher,
    pub(crate) limiter: DeviceLimiter,
    pub(crate) punches: Budget,
    pub(crate) body_bytes: Budget,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) acceptor_id: String,
    pub(crate) metrics: PrometheusHandle,
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

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) fn retry_after(&self) -> u32 {
        limits::jittered(self.config.retry_after_secs)
    }
}
