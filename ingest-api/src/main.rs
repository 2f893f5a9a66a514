//! The `ingest-api` binary: read the configuration, serve until SIGTERM or Ctrl-C.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use dakoku_ingest_api::{AppState, Config, serve};

/// Dakoku's HTTP acceptor for time-recorder punches.
#[derive(Debug, Parser)]
#[command(name = "ingest-api", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    /// Log as JSON lines (for log shippers) instead of human-readable text.
    #[arg(long, env = "LOG_JSON")]
    log_json: bool,
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if cli.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let listen = cli.config.listen;
    let state = Arc::new(AppState::new(cli.config).context("starting ingest-api")?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    serve(state, listener, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
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
