//! The storm itself: the fleet let loose with the probe and the sampler running, the wait for
//! the consumers to catch up, the audits, and the figures gathered into the report.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dakoku_bench::process;
use dakoku_schemas::GroupId;
use dakoku_store::ScratchDatabase;
use punchctl::ops::audit::{self as operator_audit, AuditRequest, NoProgress};
use tokio::sync::watch;

use super::config::{ScenarioConfig, Target};
use super::probe::{Probe, ProbeThread};
use super::report::{LagFigures, Latency, PunchctlAudit, Report, Resources, StormFigures};
use super::sampler::Sampler;
use super::services::Services;
use crate::audit::{self, StoredIn};
use crate::lag::LagReader;
use crate::provision::Fleet;
use crate::sample::Sample;
use crate::sim::{self, Live, Outcome, StormConfig};

/// Timeout of the lag reader's Kafka calls.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// Storms, samples, waits for the catch-up, stops the processes, audits.
pub(super) async fn storm(
    config: &ScenarioConfig,
    target: Target,
    group: &GroupId,
    db: &ScratchDatabase,
    fleet: &Fleet,
    services: Services,
    wall: Instant,
) -> anyhow::Result<Report> {
    let storm_config = storm_config(config, fleet, services.target_addr);
    let live = Arc::new(Live::default());
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let probe_thread = ProbeThread::start(services.target_addr, started)?;
    let lag_reader = match target {
        Target::Pipeline => Some(Arc::new(LagReader::new(
            &config.brokers,
            group,
            KAFKA_TIMEOUT,
        )?)),
        Target::Control => None,
    };
    let lag_db = dakoku_store::connect(db.url()).await?;
    let (latest_tx, latest_rx) = watch::channel(None);
    let sampler = Sampler::new(
        Arc::clone(&live),
        services.target_pid,
        started,
        lag_reader,
        latest_tx,
    );
    let (sampler_tx, sampler_rx) = watch::channel(false);
    let sampler_task = tokio::spawn(sampler.run(lag_db, sampler_rx));

    tracing::info!(
        target = target.as_str(),
        devices = config.devices,
        pool = config.pool,
        "storm starting"
    );
    let outcome = sim::run_with(storm_config, Arc::clone(&live), std::future::pending()).await?;
    let storm_end = started.elapsed();
    let probe_results = probe_thread.stop().await;
    let acceptor_cpu_storm = process::usage(services.target_pid).map(|u| u.cpu_secs);
    tracing::info!(
        acked = outcome.acked_distinct(),
        elapsed_s = storm_end.as_secs_f64(),
        "storm over; waiting for the consumers to catch up"
    );

    let caught_up_at = catch_up(config, target, storm_end, &latest_rx).await;
    let _ = sampler_tx.send(true);
    let mut sampler = sampler_task.await??;
    let peak_rss_mib =
        process::usage(services.target_pid).map_or(0.0, |u| u.peak_rss_kib as f64 / 1024.0);
    services.stop().await;

    let client = dakoku_store::connect(db.url()).await?;
    let stored_in = match target {
        Target::Pipeline => StoredIn::Punches,
        Target::Control => StoredIn::Control,
    };
    let audit = audit::audit(&client, stored_in, &outcome).await?;
    let punchctl_audit = match target {
        Target::Pipeline => punchctl_audit(config, group, db).await?,
        Target::Control => None,
    };

    let probe = probe_results.take()?;
    let samples = with_health(std::mem::take(&mut sampler.samples), &probe);
    let cpu_s = acceptor_cpu_storm.unwrap_or(sampler.last_cpu) - sampler.cpu_at_start;
    let lag = (target == Target::Pipeline).then(|| lag_figures(&samples, caught_up_at, storm_end));
    Ok(Report {
        config: config.clone(),
        target,
        started_at: started_at.to_rfc3339(),
        storm: storm_figures(&outcome),
        health: Latency::of(&probe.histogram),
        health_failures: probe.failures,
        resources: Resources {
            peak_rss_mib,
            cpu_s,
            avg_cores: cpu_s / storm_end.as_secs_f64().max(0.001),
            peak_cores: sampler.peak_cores,
        },
        lag,
        audit,
        punchctl_audit,
        wall_clock_s: wall.elapsed().as_secs_f64(),
        samples,
        status_timeline: outcome.timeline,
    })
}

/// The simulator's configuration for the scenario's fleet aimed at `target`.
fn storm_config(config: &ScenarioConfig, fleet: &Fleet, target: SocketAddr) -> StormConfig {
    let mut storm_config = StormConfig::new(target, fleet.recorders.clone(), config.behaviour);
    storm_config.pool = config.pool;
    storm_config.batch = config.batch;
    storm_config.trickle_every =
        (config.trickle_every_s > 0.0).then(|| Duration::from_secs_f64(config.trickle_every_s));
    storm_config.max_duration = Some(Duration::from_secs(config.max_duration_s));
    storm_config.stop_when_drained = config.stop_when_drained;
    storm_config
}

/// Waits until the consumers have caught up (pipeline: the sampler goes on until the lag is
/// gone) or at once (control); seconds since the storm's start, `None` if not in time.
async fn catch_up(
    config: &ScenarioConfig,
    target: Target,
    storm_end: Duration,
    latest_rx: &watch::Receiver<Option<Sample>>,
) -> Option<f64> {
    match target {
        Target::Pipeline => {
            let deadline = Instant::now() + Duration::from_secs(config.catch_up_timeout_s);
            let partitions = i64::from(config.partitions);
            let mut seen = None;
            // Sampling goes on in the sampler; read its latest sample.
            while Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let latest = latest_rx.borrow().clone();
                if let Some(sample) = latest
                    && sample.t_s >= storm_end.as_secs_f64()
                    && sample.lag_raw == 0
                    && sample.lag_checked <= partitions
                {
                    seen = Some(sample.t_s);
                    break;
                }
            }
            seen
        }
        Target::Control => Some(storm_end.as_secs_f64()),
    }
}

/// `punchctl audit` of the storm's group; `None` (and a warning) if it could not run.
async fn punchctl_audit(
    config: &ScenarioConfig,
    group: &GroupId,
    db: &ScratchDatabase,
) -> anyhow::Result<Option<PunchctlAudit>> {
    let request = AuditRequest::new(&config.brokers, db.url(), group.clone());
    match operator_audit::run(&request, Arc::new(NoProgress)).await {
        Ok(report) => Ok(Some(PunchctlAudit {
            problems: report.problems(),
            duration_s: report.duration_seconds,
            report: serde_json::to_value(&report)?,
        })),
        Err(error) => {
            tracing::warn!(%error, "punchctl audit could not run");
            Ok(None)
        }
    }
}

/// `samples` with the slowest `/healthz` answer of each second filled in.
fn with_health(mut samples: Vec<Sample>, probe: &Probe) -> Vec<Sample> {
    for sample in &mut samples {
        let second = sample.t_s.floor() as usize;
        sample.health_max_ms = probe
            .per_second_max
            .get(second.saturating_sub(1))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0;
    }
    samples
}

/// The lag's peak and the catch-up times.
fn lag_figures(samples: &[Sample], caught_up_at: Option<f64>, storm_end: Duration) -> LagFigures {
    let (peak, peak_at_s) = samples
        .iter()
        .map(|s| (s.lag_raw + s.lag_checked, s.t_s))
        .fold((0, 0.0), |best, x| if x.0 > best.0 { x } else { best });
    LagFigures {
        peak,
        peak_at_s,
        caught_up_after_storm_s: caught_up_at.map(|t| (t - storm_end.as_secs_f64()).max(0.0)),
        caught_up_at_s: caught_up_at,
    }
}

/// The storm's own figures from the simulator's outcome.
fn storm_figures(outcome: &Outcome) -> StormFigures {
    StormFigures {
        elapsed_s: outcome.elapsed.as_secs_f64(),
        stopped_because: outcome.stopped_because,
        acked_distinct: outcome.acked_distinct(),
        created: outcome.recorders.iter().map(|r| r.created).sum(),
        pending_at_end: outcome.pending(),
        pools_remaining: outcome.pools_remaining(),
        all_pools_drained_after_s: outcome.all_drained_after_secs(),
        missing_retry_after: outcome.missing_retry_after,
        request_latency: Latency::of(&outcome.latency),
        undocumented_answers: outcome.totals.undocumented(),
        totals: outcome.totals.clone(),
    }
}
