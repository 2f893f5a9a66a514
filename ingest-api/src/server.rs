//! Serving: the accept loop with its connection bound and slow-client timeouts, the
//! background tasks, and the graceful shutdown sequence.
//!
//! Shutdown order: readiness turns 503 and new requests are refused; the listener closes;
//! in-flight requests finish (within the drain budget); the producer flushes; background tasks
//! stop. Nothing acked is lost because acks follow delivery reports.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::app::{AppState, app};
use crate::linger::{Linger, LingeringStream};
use crate::snapshot;

/// How long to wait after a failed `accept` (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `state` on `listener` until `shutdown` resolves, then drains and returns.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let config = state.config.clone();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let background = [
        tokio::spawn(snapshot::refresh(
            config.database_url.clone(),
            Arc::clone(state.snapshot()),
            Duration::from_millis(config.snapshot_poll_ms),
            stopped(),
        )),
        tokio::spawn(check_kafka(Arc::clone(&state), stopped())),
        tokio::spawn(forget_idle_devices(Arc::clone(&state), stopped())),
    ];
    tracing::info!(addr = %listener.local_addr()?, "ingest-api listening");

    let router = app(Arc::clone(&state));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.header_read_timeout_ms))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let linger = (config.lingering_close_ms > 0).then(|| {
        Linger::new(
            Duration::from_millis(config.lingering_close_ms),
            config.max_body_bytes,
            config.max_connections,
        )
    });
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(LingeringStream::new(stream, linger.clone())),
                service,
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }

    shut_down(&state, listener, graceful, stop_tx, background).await;
    Ok(())
}

/// The shutdown sequence: not ready, listener closed, in-flight requests drained within the
/// budget, producer flushed, background tasks stopped.
async fn shut_down(
    state: &AppState,
    listener: TcpListener,
    graceful: GracefulShutdown,
    stop_tx: watch::Sender<bool>,
    background: [tokio::task::JoinHandle<()>; 3],
) {
    let config = &state.config;
    let began = Instant::now();
    state.begin_shutdown();
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    let drain = Duration::from_millis(config.drain_timeout_ms);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            budget_ms = config.drain_timeout_ms,
            "drain budget exhausted; closing remaining connections"
        );
    }
    let left = drain
        .saturating_sub(began.elapsed())
        .max(Duration::from_secs(1));
    match state.publisher.flush(left).await {
        Ok(()) => tracing::info!("producer flushed"),
        Err(error) => tracing::error!(%error, in_flight = state.publisher.in_flight(),
            "producer flush incomplete at shutdown; unacked records may still be delivered or lost, none was acked"),
    }
    let _ = stop_tx.send(true);
    for task in background {
        let _ = task.await;
    }
    tracing::info!(
        elapsed_ms = began.elapsed().as_millis() as u64,
        "ingest-api stopped"
    );
}

async fn check_kafka(state: Arc<AppState>, stopped: impl Future<Output = ()>) {
    let every = Duration::from_millis(state.config.kafka_check_ms);
    // A check never outlives its period, and shutdown never waits for a check.
    let timeout = every.clamp(Duration::from_millis(500), Duration::from_secs(2));
    let mut stopped = std::pin::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            () = &mut stopped => return,
            _ = state.publisher.check(timeout) => {}
        }
        tokio::select! {
            biased;
            () = &mut stopped => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

async fn forget_idle_devices(state: Arc<AppState>, stopped: impl Future<Output = ()>) {
    let mut stopped = std::pin::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            () = &mut stopped => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => state.limiter.forget_idle(),
        }
    }
}
