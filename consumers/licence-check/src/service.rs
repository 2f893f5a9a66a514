//! The service: the master-data refresher, one thread per tenant group, and the HTTP endpoint
//! (`/metrics`, `/healthz`, `/readyz`), started together and stopped in order.
//!
//! Shutdown order: the stop flag is raised; each group commits its open transaction within
//! `shutdown_timeout_ms` (below the session timeout) and closes its clients; then the refresher
//! and the HTTP endpoint stop.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dakoku_schemas::GroupId;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::config::{Config, ConfigError};
use crate::metrics;
use crate::snapshot::{self, SnapshotCell};
use crate::worker::{GroupError, GroupShared, GroupState, WorkerEnv, run_group};

/// Why the service did not start or did not end cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is inconsistent; nothing was started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The metrics address could not be bound.
    #[error("cannot listen on {addr} for /metrics: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A group thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    /// Some groups stopped with an error (the others ran until shutdown).
    #[error("{}", failed.iter().map(|(g, e)| format!("group {g}: {e}")).collect::<Vec<_>>().join("; "))]
    GroupsFailed {
        /// Each failed group and why.
        failed: Vec<(GroupId, GroupError)>,
    },
}

struct GroupHandle {
    shared: Arc<GroupShared>,
    done: oneshot::Receiver<Result<(), GroupError>>,
}

struct AppState {
    metrics: PrometheusHandle,
    snapshot: Arc<SnapshotCell>,
    needs_snapshot: bool,
    groups: Vec<Arc<GroupShared>>,
    /// Raised when shutdown begins: readiness turns 503 at once.
    stopping: Arc<AtomicBool>,
}

/// A running service.
pub struct Service {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stopped_tx: watch::Sender<bool>,
    snapshot: Arc<SnapshotCell>,
    groups: Vec<GroupHandle>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("local_addr", &self.local_addr)
            .field(
                "groups",
                &self
                    .groups
                    .iter()
                    .map(|g| g.shared.group.to_string())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Runs the service on `config.metrics_listen` until `shutdown` resolves (or every group has
/// stopped), then shuts down in order.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let listener = TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: config.metrics_listen,
            source,
        })?;
    serve(config, listener, shutdown).await
}

/// [`run`] with the HTTP listener given (tests bind `127.0.0.1:0`).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    Service::start(config, listener)?.wait(shutdown).await
}

impl Service {
    /// Starts everything and returns at once; see [`Service::wait`].
    pub fn start(config: Config, listener: TcpListener) -> Result<Self, RunError> {
        config.validate()?;
        let kafka = config.kafka_factory()?;
        let config = Arc::new(config);
        let local_addr = listener.local_addr().map_err(|source| RunError::Bind {
            addr: config.metrics_listen,
            source,
        })?;
        let handle = metrics::install();
        let stop = Arc::new(AtomicBool::new(false));
        let (stopped_tx, stopped_rx) = watch::channel(false);
        let stopped = move || {
            let mut rx = stopped_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let cell = Arc::new(SnapshotCell::default());
        let mut background = Vec::new();
        if config.mode == crate::Mode::Check {
            background.push(tokio::spawn(snapshot::refresh(
                config.database_url.clone(),
                Arc::clone(&cell),
                Duration::from_millis(config.snapshot_poll_ms),
                stopped(),
            )));
        }
        let mut groups = Vec::new();
        for group in &config.groups {
            let shared = Arc::new(GroupShared::new(group.clone()));
            let env = WorkerEnv {
                config: Arc::clone(&config),
                kafka: kafka.clone(),
                shared: Arc::clone(&shared),
                snapshot: Arc::clone(&cell),
                stop: Arc::clone(&stop),
            };
            let (tx, rx) = oneshot::channel();
            std::thread::Builder::new()
                .name(format!("lc-{group}"))
                .spawn(move || {
                    let _ = tx.send(run_group(&env));
                })
                .map_err(RunError::Thread)?;
            groups.push(GroupHandle { shared, done: rx });
        }
        let state = Arc::new(AppState {
            metrics: handle,
            snapshot: Arc::clone(&cell),
            needs_snapshot: config.mode == crate::Mode::Check,
            stopping: Arc::clone(&stop),
            groups: groups.iter().map(|g| Arc::clone(&g.shared)).collect(),
        });
        let router = Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(ready_handler))
            .with_state(state);
        let http_stopped = stopped();
        background.push(tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router)
                .with_graceful_shutdown(http_stopped)
                .await
            {
                tracing::error!(%error, "metrics endpoint failed");
            }
        }));
        tracing::info!(addr = %local_addr, groups = ?config.groups.iter().map(ToString::to_string).collect::<Vec<_>>(),
            instance = config.instance_id(), mode = ?config.mode, "licence-check started");
        Ok(Self {
            local_addr,
            stop,
            stopped_tx,
            snapshot: cell,
            groups,
            background,
        })
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The state of `group`'s loop.
    pub fn group_state(&self, group: &GroupId) -> Option<GroupState> {
        self.group(group).map(GroupShared::state)
    }

    /// The shared state and counters of `group`'s loop.
    pub fn group(&self, group: &GroupId) -> Option<&GroupShared> {
        self.groups
            .iter()
            .map(|g| g.shared.as_ref())
            .find(|g| &g.group == group)
    }

    /// The master-data version in use, `None` before the first load.
    pub fn snapshot_version(&self) -> Option<i64> {
        self.snapshot.get().map(|s| s.version)
    }

    /// Runs until `shutdown` resolves or every group has stopped, then shuts down in order.
    pub async fn wait(mut self, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
        let all_done = {
            let shared: Vec<Arc<GroupShared>> =
                self.groups.iter().map(|g| Arc::clone(&g.shared)).collect();
            async move {
                loop {
                    if shared
                        .iter()
                        .all(|g| matches!(g.state(), GroupState::Stopped | GroupState::Failed(_)))
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        tokio::select! {
            () = shutdown => tracing::info!("shutting down: committing open transactions"),
            () = all_done => tracing::error!("every group has stopped; exiting"),
        }
        self.stop.store(true, Ordering::Relaxed);
        let mut failed = Vec::new();
        for handle in self.groups.drain(..) {
            match handle.done.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => failed.push((handle.shared.group.clone(), error)),
                Err(_) => tracing::error!(group = %handle.shared.group, "group thread panicked"),
            }
        }
        let _ = self.stopped_tx.send(true);
        for task in self.background.drain(..) {
            let _ = task.await;
        }
        tracing::info!("licence-check stopped");
        if failed.is_empty() {
            Ok(())
        } else {
            Err(RunError::GroupsFailed { failed })
        }
    }

    /// Shuts down now; see [`Service::wait`].
    pub async fn stop(self) -> Result<(), RunError> {
        self.wait(std::future::ready(())).await
    }
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> Response {
    if let Some(age) = state.snapshot.age() {
        metrics::snapshot_age(age);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// 200 when the snapshot is loaded and every group runs; 503 otherwise. The body says which.
async fn ready_handler(State(state): State<Arc<AppState>>) -> Response {
    let groups: BTreeMap<String, String> = state
        .groups
        .iter()
        .map(|g| {
            let state = match g.state() {
                GroupState::Starting => "starting".to_owned(),
                GroupState::Running => "running".to_owned(),
                GroupState::Stopped => "stopped".to_owned(),
                GroupState::Failed(error) => format!("failed: {error}"),
            };
            (g.group.to_string(), state)
        })
        .collect();
    let snapshot = state.snapshot.get().map(|s| s.version);
    let stopping = state.stopping.load(Ordering::Relaxed);
    let ready = !stopping
        && groups.values().all(|s| s == "running")
        && (snapshot.is_some() || !state.needs_snapshot);
    let body = serde_json::json!({
        "ready": ready,
        "shutting_down": stopping,
        "snapshot_version": snapshot,
        "snapshot_age_seconds": state.snapshot.age().map(|a| a.as_secs_f64()),
        "database_ok": state.snapshot.database_ok(),
        "groups": groups,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
