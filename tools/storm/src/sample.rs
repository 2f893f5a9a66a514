//! One second of a storm run: the sample the scenario's sampler takes and the plot draws.

use serde::Serialize;

/// One second of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Seconds since the storm started.
    pub t_s: f64,
    /// Punches acked in this second.
    pub acked_per_s: f64,
    /// `429` and `503` answers in this second.
    pub refused_per_s: f64,
    /// Other non-`200` outcomes (other statuses, timeouts, connection failures).
    pub failed_per_s: f64,
    /// licence-check's lag: raw records not yet committed by `licence-check.<group>`.
    pub lag_raw: i64,
    /// attendance's lag: checked-topic offsets not yet stored in `consumer_offsets` (includes
    /// up to one transaction marker per partition when idle).
    pub lag_checked: i64,
    /// The target process's resident memory, MiB.
    pub rss_mib: f64,
    /// Its CPU use over the last second, in cores.
    pub cpu_cores: f64,
    /// The slowest `/healthz` answer that completed in this second, ms.
    pub health_max_ms: f64,
    /// Punches pending in the recorders.
    pub pending: u64,
}
