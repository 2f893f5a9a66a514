//! Everything a run measured: the report written as JSON and drawn as SVG.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::config::{ScenarioConfig, Target};
use crate::audit::Audit;
use crate::sample::Sample;
use crate::sim::{self, Tally};

/// Latency figures, milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    pub(super) fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// The storm's own figures.
#[derive(Debug, Clone, Serialize)]
pub struct StormFigures {
    /// How long the storm ran, seconds.
    pub elapsed_s: f64,
    /// Why it stopped.
    pub stopped_because: sim::StopReason,
    /// Requests, acks, statuses over the whole storm.
    pub totals: Tally,
    /// Distinct punches acked.
    pub acked_distinct: u64,
    /// Punches created (pools plus trickle).
    pub created: u64,
    /// Punches still pending in the recorders at the end.
    pub pending_at_end: u64,
    /// Recorders whose initial pool was not empty at the end.
    pub pools_remaining: usize,
    /// Seconds until every initial pool was empty (`None` if some was not).
    pub all_pools_drained_after_s: Option<f64>,
    /// `429`/`503` answers without `Retry-After`.
    pub missing_retry_after: u64,
    /// Latency of the storm's requests as the recorders saw it.
    pub request_latency: Latency,
    /// Answers that were neither `200` nor `429`/`503`: timeouts, connection failures, 5xx.
    pub undocumented_answers: u64,
}

/// The target process's resources.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resources {
    /// Peak resident set (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
    /// CPU time used during the storm, seconds.
    pub cpu_s: f64,
    /// Average CPU use during the storm, cores.
    pub avg_cores: f64,
    /// Highest one-second CPU use, cores.
    pub peak_cores: f64,
}

/// Lag figures (pipeline only).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LagFigures {
    /// Highest total lag (licence-check + attendance), records.
    pub peak: i64,
    /// When, seconds since the storm started.
    pub peak_at_s: f64,
    /// Seconds from the storm's end until both consumers had caught up (`None`: not within
    /// the catch-up timeout).
    pub caught_up_after_storm_s: Option<f64>,
    /// Seconds from the storm's start until then.
    pub caught_up_at_s: Option<f64>,
}

/// The summary of `punchctl audit` on the storm's group.
#[derive(Debug, Clone, Serialize)]
pub struct PunchctlAudit {
    /// Findings of every kind, summed: 0 is clean.
    pub problems: u64,
    /// Seconds it took.
    pub duration_s: f64,
    /// The whole report.
    pub report: serde_json::Value,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario's configuration.
    pub config: ScenarioConfig,
    /// What was stormed.
    pub target: Target,
    /// When the storm started.
    pub started_at: String,
    /// The storm.
    pub storm: StormFigures,
    /// `/healthz` latency measured by the separate probe during the storm.
    pub health: Latency,
    /// Probes that failed (timeout, refused, non-200).
    pub health_failures: u64,
    /// The target process.
    pub resources: Resources,
    /// The consumers' lag (pipeline).
    pub lag: Option<LagFigures>,
    /// Acked against stored.
    pub audit: Audit,
    /// `punchctl audit` of the storm's group (pipeline): raw log vs verdicts vs stored punches
    /// vs attendance days. `None` for the control, or if it could not run (see the log).
    pub punchctl_audit: Option<PunchctlAudit>,
    /// Wall-clock time of the whole run, set-up and clean-up included, seconds.
    pub wall_clock_s: f64,
    /// One sample per second.
    pub samples: Vec<Sample>,
    /// Status mix per second, from the recorders' side.
    pub status_timeline: Vec<Tally>,
}
