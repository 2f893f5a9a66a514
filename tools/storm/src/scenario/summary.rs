//! The human summary: reports side by side as a text table.

use std::fmt::Write as _;

use super::report::Report;

/// The human summary of one report.
pub fn summary(report: &Report) -> String {
    summary_table(&[report])
}

/// A row of the summary: its name and how to tell a report's value.
type SummaryRow = (&'static str, Box<dyn Fn(&Report) -> String>);

/// Reports side by side, one column each.
pub fn summary_table(reports: &[&Report]) -> String {
    let rows: Vec<SummaryRow> = load_rows().into_iter().chain(result_rows()).collect();
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, cell) in &rows {
        let _ = write!(out, "{name:<width$}");
        for report in reports {
            let _ = write!(out, " | {:<40}", cell(report));
        }
        out.push('\n');
    }
    out
}

/// The rows of what was stormed and how the storm went.
fn load_rows() -> Vec<SummaryRow> {
    vec![
        ("target", Box::new(|r| r.target.as_str().to_owned())),
        (
            "recorders x pool",
            Box::new(|r| {
                format!(
                    "{} x {} ({})",
                    r.config.devices,
                    r.config.pool,
                    r.config.behaviour.as_str()
                )
            }),
        ),
        (
            "licence-check delay",
            Box::new(|r| format!("{} µs/punch", r.config.check_delay_us)),
        ),
        (
            "consumers' niceness",
            Box::new(|r| r.config.consumers_nice.to_string()),
        ),
        (
            "storm ran",
            Box::new(|r| format!("{:.0} s ({:?})", r.storm.elapsed_s, r.storm.stopped_because)),
        ),
        (
            "requests",
            Box::new(|r| r.storm.totals.requests.to_string()),
        ),
        (
            "status mix",
            Box::new(|r| {
                r.storm
                    .totals
                    .statuses
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
        ),
        (
            "429/503 without Retry-After",
            Box::new(|r| r.storm.missing_retry_after.to_string()),
        ),
        (
            "punches acked (distinct)",
            Box::new(|r| r.storm.acked_distinct.to_string()),
        ),
        (
            "acked/s (mean)",
            Box::new(|r| {
                format!(
                    "{:.0}",
                    r.storm.acked_distinct as f64 / r.storm.elapsed_s.max(0.001)
                )
            }),
        ),
        (
            "pools drained",
            Box::new(move |r| match r.storm.all_pools_drained_after_s {
                Some(s) => format!("all after {s:.0} s"),
                None => format!(
                    "{} of {} pools remaining; {} punches pending",
                    r.storm.pools_remaining, r.config.devices, r.storm.pending_at_end
                ),
            }),
        ),
    ]
}

/// The rows of what the target did under it: latency, resources, lag, audits.
fn result_rows() -> Vec<SummaryRow> {
    let opt = |v: Option<f64>| v.map_or_else(|| "not reached".to_owned(), |v| format!("{v:.0} s"));
    vec![
        (
            "request latency p50/p99/max",
            Box::new(|r| {
                let l = &r.storm.request_latency;
                format!("{:.1} / {:.1} / {:.0} ms", l.p50_ms, l.p99_ms, l.max_ms)
            }),
        ),
        (
            "/healthz p50/p99/max",
            Box::new(|r| {
                format!(
                    "{:.1} / {:.1} / {:.0} ms ({} probes, {} failed)",
                    r.health.p50_ms,
                    r.health.p99_ms,
                    r.health.max_ms,
                    r.health.count,
                    r.health_failures
                )
            }),
        ),
        (
            "peak RSS",
            Box::new(|r| format!("{:.0} MiB", r.resources.peak_rss_mib)),
        ),
        (
            "CPU avg / peak",
            Box::new(|r| {
                format!(
                    "{:.2} / {:.2} cores",
                    r.resources.avg_cores, r.resources.peak_cores
                )
            }),
        ),
        (
            "lag peak",
            Box::new(|r| {
                r.lag.as_ref().map_or("none (synchronous)".into(), |l| {
                    format!("{} records at {:.0} s", l.peak, l.peak_at_s)
                })
            }),
        ),
        (
            "caught up after the storm",
            Box::new(move |r| {
                r.lag
                    .as_ref()
                    .map_or("n/a".into(), |l| opt(l.caught_up_after_storm_s))
            }),
        ),
        (
            "audit",
            Box::new(|r| {
                format!(
                    "{} acked, {} stored, {} lost, {} doubled, {} stored unacked",
                    r.audit.acked,
                    r.audit.stored_rows,
                    r.audit.lost,
                    r.audit.doubled,
                    r.audit.unacked_stored
                )
            }),
        ),
        (
            "punchctl audit",
            Box::new(|r| {
                r.punchctl_audit.as_ref().map_or("n/a".into(), |a| {
                    format!("{} problems ({:.0} s)", a.problems, a.duration_s)
                })
            }),
        ),
        (
            "wall clock",
            Box::new(|r| format!("{:.0} s", r.wall_clock_s)),
        ),
    ]
}
