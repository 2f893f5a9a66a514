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
    dakoku_service::init_tracing(cli.log_json);
    let listen = cli.config.listen;
    let state = Arc::new(AppState::new(cli.config).context("starting ingest-api")?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    serve(state, listener, dakoku_service::shutdown_signal()).await?;
    Ok(())
}
