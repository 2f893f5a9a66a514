//! `storm serve <service>`: runs one Dakoku service in this process, configured exactly as its
//! own binary is (same flags and environment), so the fault harness can start each service as
//! a child process of the one `storm` executable and kill it with SIGKILL. Tests get that
//! executable from Cargo (`CARGO_BIN_EXE_storm`), with no dependency on other packages' bins.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;

/// The service to run.
#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// The HTTP acceptor (flags as `ingest-api --help`).
    IngestApi {
        #[command(flatten)]
        config: dakoku_ingest_api::Config,
    },
    /// The licence check (flags as `licence-check --help`).
    LicenceCheck {
        #[command(flatten)]
        config: dakoku_licence_check::Config,
    },
    /// The attendance projection (flags as `attendance --help`).
    Attendance {
        #[command(flatten)]
        config: dakoku_attendance::Config,
    },
}

impl ServeCommand {
    /// Runs the service until SIGTERM or Ctrl-C, as its own binary would.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            ServeCommand::IngestApi { config } => {
                let listen = config.listen;
                let state = Arc::new(
                    dakoku_ingest_api::AppState::new(config).context("starting ingest-api")?,
                );
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                dakoku_ingest_api::serve(state, listener, dakoku_service::shutdown_signal())
                    .await?;
            }
            ServeCommand::LicenceCheck { config } => {
                dakoku_licence_check::run(config, dakoku_service::shutdown_signal()).await?;
            }
            ServeCommand::Attendance { config } => {
                dakoku_attendance::run(config, dakoku_service::shutdown_signal()).await?;
            }
        }
        Ok(())
    }
}
