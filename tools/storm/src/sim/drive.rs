//! Driving a storm: the recorders spawned, spread over the start span, and the coordinator
//! that stops them on shutdown, the duration cap or every pool drained.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;

use super::config::{SimError, StormConfig};
use super::live::{Live, Tally};
use super::outcome::{Outcome, StopReason};
use super::recorder::RecorderTask;

/// Runs the storm described by `config` until it ends by itself or `shutdown` resolves.
pub async fn run(
    config: StormConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Outcome, SimError> {
    run_with(config, Arc::new(Live::default()), shutdown).await
}

/// [`run`] with live counters the caller can sample while it runs.
pub async fn run_with(
    config: StormConfig,
    live: Arc<Live>,
    shutdown: impl Future<Output = ()>,
) -> Result<Outcome, SimError> {
    config.validate()?;
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let started_at = Utc::now();
    let n = config.recorders.len();
    let mut tasks = Vec::with_capacity(n);
    for index in 0..n {
        let task = RecorderTask::new(&config, &live, index, stop_rx.clone(), started)?;
        tasks.push(tokio::spawn(task.run()));
    }

    // The coordinator: the first of shutdown, the cap, or every pool drained.
    let stopped_because = {
        let cap = async {
            match config.max_duration {
                Some(cap) => tokio::time::sleep(cap).await,
                None => std::future::pending().await,
            }
        };
        let drained = async {
            if !config.stop_when_drained {
                return std::future::pending().await;
            }
            while live.drained.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            _ = shutdown => StopReason::Shutdown,
            _ = cap => StopReason::DurationCap,
            _ = drained => StopReason::Drained,
        }
    };
    tracing::info!(reason = ?stopped_because, elapsed_s = started.elapsed().as_secs_f64(), "storm stopping; waiting for requests in flight");
    let _ = stop_tx.send(true);
    let mut recorders = Vec::with_capacity(n);
    for task in tasks {
        recorders.push(task.await?);
    }
    let elapsed = started.elapsed();
    let shared = live.take_shared();
    let mut totals = Tally::default();
    for bucket in &shared.timeline {
        totals.add(bucket);
    }
    Ok(Outcome {
        started_at,
        elapsed,
        behaviour: config.behaviour,
        recorders,
        timeline: shared.timeline,
        totals,
        latency: shared.latency,
        missing_retry_after: shared.missing_retry_after,
        stopped_because,
    })
}
