//! Serving: connecting the operations (retried until Postgres answers, while the API already
//! answers 503), and the graceful shutdown that drains in-flight requests.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dakoku_admin::{Admin, AdminError};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::routes::app;
use crate::state::AppState;

/// Pause between connection attempts while Postgres is down.
const CONNECT_RETRY: Duration = Duration::from_secs(2);

/// Connects the operations: at once if Postgres answers, else in the background until it
/// does. A configuration error (bad URL, bad Kafka properties) fails at once.
pub async fn connect(state: &Arc<AppState>, config: &Config) -> Result<(), AdminError> {
    match Admin::connect(&config.database_url, &config.kafka).await {
        Ok(admin) => {
            state.set_admin(admin);
            Ok(())
        }
        Err(AdminError::Unavailable(reason)) => {
            tracing::warn!(%reason, "Postgres not reachable yet; answering 503 and retrying");
            let state = Arc::clone(state);
            let config = config.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(CONNECT_RETRY).await;
                    match Admin::connect(&config.database_url, &config.kafka).await {
                        Ok(admin) => {
                            tracing::info!("connected to Postgres");
                            state.set_admin(admin);
                            return;
                        }
                        Err(error) => tracing::debug!(%error, "still not connected"),
                    }
                }
            });
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish within `drain`.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "admin-api listening");
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight requests");
        let _ = stopping_tx.send(());
    });
    let mut server = std::pin::pin!(server.into_future());
    let budget = async {
        // Only once shutdown began does the drain budget run.
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(drain).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = &mut server => result?,
        () = budget => tracing::warn!(budget_ms = drain.as_millis() as u64,
            "drain budget exhausted; closing remaining connections"),
    }
    tracing::info!("admin-api stopped");
    Ok(())
}
