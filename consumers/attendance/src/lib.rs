//! Dakoku's attendance consumer: accepted licence verdicts from `punches.checked.<group>` become
//! punches and attendance days in Postgres, exactly once, and whole-day state on the compacted
//! `attendance.daily.<group>` topic for payroll consumers (CONTRACT §4).
//!
//! Each batch of verdicts is one Postgres transaction that stores the punches once per
//! `punch_id`, recomputes every touched employee-day from all its stored punches, upserts the
//! changed days with a new revision and stores the consumer offsets; partitions are assigned at
//! those stored offsets. After the commit the changed days are published.
//!
//! # Layout
//! - `decode`: records of the checked topic decoded, or poisoned for quarantine (shared by
//!   the consumer and the rebuild).
//! - [`store`]: the batch transaction ([`store::Store::apply`]): `sql`, `resolve` (which
//!   verdict counts), `days` (recomputation, revisions), `rows`, `columns`, `batch`,
//!   `connection`, [`store::marker`] (the rebuild marker); offsets via `dakoku_store::offsets`.
//! - `consumer`: the consume loop of one tenant group (`run`: batching, retries, shutdown),
//!   `assign` (rebalance at stored offsets), `publish` (producer and outbox), `backoff`.
//! - [`rebuild`]: the projection of a group or tenant rebuilt from the log (`punchctl rebuild`):
//!   clear, replay through [`store::Store::apply`], recompute each day once; an interrupted
//!   one ([`rebuild::UnfinishedRebuild`]) stops the group until it is run again.
//! - `counts`: what a batch did ([`store::Counts`]), for metrics and the rebuild's report.
//! - [`config`]: the typed [`Config`] (flags and environment).
//! - [`metrics`]: metric names, `/metrics`, `/healthz`, `/readyz`.

pub mod config;
mod consumer;
mod counts;
mod decode;
pub mod metrics;
pub mod rebuild;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{Config, ConfigError, MetricsListen};
pub use consumer::ConsumerError;

/// Why the consumer stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AttendanceError {
    /// The configuration cannot work; nothing was started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The metrics listener could not be bound or served.
    #[error("metrics listener: {0}")]
    Listen(#[from] std::io::Error),
    /// The Kafka producer could not be created.
    #[error(transparent)]
    Kafka(#[from] dakoku_kafka::Error),
    /// A group's consumer stopped (see [`ConsumerError`]).
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
    /// A group's consumer task panicked.
    #[error("a group consumer panicked: {0}")]
    Panicked(String),
}

/// Runs the consumers of every configured group until `shutdown` resolves, then drains:
/// each group commits its open batch within the drain budget (or rolls it back) and leaves its
/// consumer group. Binds `config.metrics_listen` for `/metrics`, `/healthz` and `/readyz`.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AttendanceError> {
    let listener = match config.metrics_listen.0 {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    run_with_listener(config, listener, shutdown).await
}

/// [`run`] with the metrics listener given (tests pass one bound to `127.0.0.1:0`, or none).
pub async fn run_with_listener(
    config: Config,
    listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AttendanceError> {
    config.validate()?;
    metrics::install();
    let health = metrics::Health::new(&config.groups);
    let (stop_tx, stop_rx) = watch::channel(false);

    let server = match listener {
        Some(listener) => {
            tracing::info!(addr = %listener.local_addr()?, "metrics listening");
            let router = metrics::router(Arc::clone(&health));
            let mut stopped = stop_rx.clone();
            Some(tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await
            }))
        }
        None => None,
    };

    let kafka = config.kafka_factory()?;
    let shared = Arc::new(consumer::Shared {
        producer: consumer::Producer::new(&kafka, &config)?,
        kafka,
        health: Arc::clone(&health),
        config,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for group in &shared.config.groups {
        tasks.spawn(consumer::run_group(
            Arc::clone(&shared),
            group.clone(),
            stop_rx.clone(),
        ));
    }

    let mut result = Ok(());
    let mut shutdown = std::pin::pin!(shutdown);
    // Until shutdown, or until a group stops with an error (then stop the others too).
    tokio::select! {
        () = &mut shutdown => tracing::info!("shutdown requested"),
        Some(joined) = tasks.join_next() => {
            result = flatten(joined);
            tracing::error!(error = ?result.as_ref().err(), "a group consumer stopped; stopping");
        }
    }
    health.begin_shutdown();
    let _ = stop_tx.send(true);
    while let Some(joined) = tasks.join_next().await {
        let joined = flatten(joined);
        if result.is_ok() {
            result = joined;
        }
    }
    shared.producer.flush(
        shared
            .config
            .drain_timeout()
            .min(std::time::Duration::from_secs(5)),
    );
    if let Some(server) = server {
        let _ = server.await;
    }
    tracing::info!("attendance stopped");
    result
}

fn flatten(
    joined: Result<Result<(), ConsumerError>, tokio::task::JoinError>,
) -> Result<(), AttendanceError> {
    match joined {
        Ok(result) => Ok(result?),
        Err(error) => Err(AttendanceError::Panicked(error.to_string())),
    }
}
