//! The consumer's metrics, named in one place, and the `/metrics`, `/healthz`, `/readyz`
//! endpoints.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use dakoku_schemas::GroupId;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::counts::Counts;

/// Metric names: the only place they are spelled. Every metric carries a `group` label.
pub mod name {
    /// Records read from the checked topic, by outcome.
    pub const RECORDS: &str = "attendance_records_total";
    /// Batches committed.
    pub const BATCHES: &str = "attendance_batches_total";
    /// Time to write and commit one batch, seconds.
    pub const BATCH_SECONDS: &str = "attendance_batch_seconds";
    /// Records in a committed batch.
    pub const BATCH_RECORDS: &str = "attendance_batch_records";
    /// Attendance days whose figures changed (new revision).
    pub const DAYS_CHANGED: &str = "attendance_days_changed_total";
    /// Payroll months whose figures changed (new revision).
    pub const MONTHS_CHANGED: &str = "attendance_months_changed_total";
    /// Double taps ignored (CONTRACT §4: counted in metrics, not in punch_count).
    pub const DOUBLE_TAPS: &str = "attendance_double_taps_ignored_total";
    /// Days published to attendance.daily.
    pub const DAYS_PUBLISHED: &str = "attendance_days_published_total";
    /// Failed attempts, by what failed (postgres, publish, quarantine), each retried.
    pub const RETRIES: &str = "attendance_retries_total";
    /// Records quarantined as undecodable or invalid.
    pub const QUARANTINED: &str = "attendance_quarantined_total";
    /// 1 while the group's consumer is connected and consuming, else 0.
    pub const UP: &str = "attendance_up";
    /// Next offset stored in Postgres, by partition.
    pub const STORED_OFFSET: &str = "attendance_stored_offset";
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = dakoku_service::install_prometheus();
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        name::RECORDS,
        "Records read from punches.checked, by outcome."
    );
    describe_counter!(name::BATCHES, "Batches committed to Postgres.");
    describe_histogram!(
        name::BATCH_SECONDS,
        metrics::Unit::Seconds,
        "Write and commit time of one batch."
    );
    describe_histogram!(name::BATCH_RECORDS, "Records per committed batch.");
    describe_counter!(name::DAYS_CHANGED, "Attendance days given a new revision.");
    describe_counter!(name::MONTHS_CHANGED, "Payroll months given a new revision.");
    describe_counter!(name::DOUBLE_TAPS, "Double taps ignored.");
    describe_counter!(name::DAYS_PUBLISHED, "Days published to attendance.daily.");
    describe_counter!(
        name::RETRIES,
        "Failed attempts (each retried), by what failed."
    );
    describe_counter!(name::QUARANTINED, "Records quarantined.");
    describe_gauge!(name::UP, "1 while the group's consumer is consuming.");
    describe_gauge!(name::STORED_OFFSET, "Next offset stored in Postgres.");
}

/// Records a committed batch.
pub fn batch(group: &GroupId, records: usize, counts: &Counts, elapsed: Duration) {
    let g = group.to_string();
    counter!(name::BATCHES, "group" => g.clone()).increment(1);
    histogram!(name::BATCH_SECONDS, "group" => g.clone()).record(elapsed.as_secs_f64());
    histogram!(name::BATCH_RECORDS, "group" => g.clone()).record(records as f64);
    for (outcome, n) in [
        ("stored", counts.stored),
        ("duplicate", counts.duplicates),
        ("conflict", counts.conflicts),
        ("withdrawn", counts.withdrawn),
        ("reinstated", counts.reinstated),
        ("rejected", counts.rejected),
        ("superseded", counts.superseded),
        ("already_applied", counts.already_applied),
        ("invalid", counts.invalid),
    ] {
        if n > 0 {
            counter!(name::RECORDS, "group" => g.clone(), "outcome" => outcome).increment(n);
        }
    }
    counter!(name::DAYS_CHANGED, "group" => g.clone()).increment(counts.days_changed);
    counter!(name::MONTHS_CHANGED, "group" => g.clone()).increment(counts.months_changed);
    counter!(name::DOUBLE_TAPS, "group" => g).increment(counts.double_taps);
}

/// Records stored offsets.
pub fn offsets(group: &GroupId, offsets: &BTreeMap<i32, i64>) {
    for (partition, offset) in offsets {
        gauge!(name::STORED_OFFSET, "group" => group.to_string(),
            "partition" => partition.to_string())
        .set(*offset as f64);
    }
}

/// Records published days.
pub fn published(group: &GroupId, days: usize) {
    counter!(name::DAYS_PUBLISHED, "group" => group.to_string()).increment(days as u64);
}

/// Records a failed attempt that will be retried.
pub fn retry(group: &GroupId, what: &'static str) {
    counter!(name::RETRIES, "group" => group.to_string(), "what" => what).increment(1);
}

/// Records quarantined records.
pub fn quarantined(group: &GroupId, n: usize) {
    counter!(name::QUARANTINED, "group" => group.to_string()).increment(n as u64);
}

/// Liveness and readiness of the process's group consumers.
#[derive(Debug, Default)]
pub struct Health {
    stopping: AtomicBool,
    groups: Mutex<BTreeMap<String, bool>>,
}

impl Health {
    /// Health for `groups`, none of them up yet.
    pub fn new(groups: &[GroupId]) -> Arc<Self> {
        let health = Self::default();
        if let Ok(mut map) = health.groups.lock() {
            for group in groups {
                map.insert(group.to_string(), false);
            }
        }
        Arc::new(health)
    }

    /// Marks a group's consumer up (consuming) or down (retrying Postgres or Kafka).
    pub fn set_up(&self, group: &GroupId, up: bool) {
        gauge!(name::UP, "group" => group.to_string()).set(if up { 1.0 } else { 0.0 });
        if let Ok(mut map) = self.groups.lock() {
            map.insert(group.to_string(), up);
        }
    }

    /// Readiness turns false the moment shutdown begins.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Ready: not stopping and every group consuming.
    pub fn ready(&self) -> bool {
        !self.stopping.load(Ordering::Relaxed)
            && self
                .groups
                .lock()
                .map(|map| map.values().all(|up| *up))
                .unwrap_or(false)
    }
}

#[derive(Debug, Clone)]
struct RouterState {
    health: Arc<Health>,
    handle: PrometheusHandle,
}

/// `/metrics` (Prometheus text), `/healthz` (process alive), `/readyz` (consuming).
pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(RouterState {
            health,
            handle: install(),
        })
}

async fn render(State(state): State<RouterState>) -> String {
    state.handle.render()
}

async fn ready(State(state): State<RouterState>) -> (StatusCode, &'static str) {
    if state.health.ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
