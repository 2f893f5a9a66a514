//! The `licence-check` binary: read the configuration, run until SIGTERM or Ctrl-C.

use clap::Parser;
use dakoku_licence_check::{Config, run};

/// Dakoku's licence check: one verdict per raw punch, exactly once, behind the log.
#[derive(Debug, Parser)]
#[command(name = "licence-check", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    /// Log as JSON lines (for log shippers) instead of human-readable text.
    #[arg(long, env = "LOG_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    dakoku_service::init_tracing(cli.log_json);
    match run(cli.config, dakoku_service::shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "licence-check failed");
            std::process::ExitCode::FAILURE
        }
    }
}
