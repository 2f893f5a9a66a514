//! Plumbing every Dakoku service shares, so it is written (and fixed) once.
//!
//! # Layout
//! - [`install_prometheus`]: the process-wide Prometheus recorder, with its upkeep.
//! - [`init_tracing`]: structured logs, `RUST_LOG` filter, text or JSON lines.
//! - [`shutdown_signal`]: resolves on SIGTERM or Ctrl-C, where every service starts its drain.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// How often histogram samples are folded into buckets, bounding the recorder's memory.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Buckets of every histogram named `*_seconds` (request and batch latencies).
const SECONDS_BUCKETS: &[f64] = &[
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets of every histogram named `*_records` (batch sizes).
const RECORDS_BUCKETS: &[f64] = &[1.0, 10.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns the handle that renders it.
///
/// One recorder serves every service in the process (tests run several in one), so buckets
/// are chosen by name suffix rather than by whichever service happened to install first.
pub fn install_prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_records".into()), RECORDS_BUCKETS)
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding program); ours
            // still renders what it records, so this is not fatal.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            // Histogram samples are folded into buckets only by upkeep; without it they pile up
            // in memory until the next scrape, or forever if nobody scrapes.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start metrics upkeep; memory grows until /metrics is scraped");
            }
            handle
        })
        .clone()
}

/// Installs the global `tracing` subscriber: `RUST_LOG` filter (default `info`), JSON lines
/// for log shippers when `json`, human-readable text otherwise.
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
}

/// Resolves on SIGTERM (how orchestrators stop a service) or Ctrl-C.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; only Ctrl-C will stop");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_get_buckets_by_suffix_and_one_recorder_serves_all() {
        let handle = install_prometheus();
        metrics::histogram!("test_latency_seconds").record(0.003);
        metrics::histogram!("test_batch_records").record(42.0);
        handle.run_upkeep();
        let text = install_prometheus().render();
        assert!(
            text.contains("test_latency_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("test_batch_records_bucket{le=\"100\"} 1"),
            "{text}"
        );
    }
}
