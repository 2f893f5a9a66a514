//! The `attendance` binary: read the configuration, consume until SIGTERM or Ctrl-C.

use clap::Parser;
use dakoku_attendance::Config;

/// Dakoku's attendance consumer: accepted punches -> attendance days in Postgres, exactly once.
#[derive(Debug, Parser)]
#[command(name = "attendance", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    /// Log as JSON lines (for log shippers) instead of human-readable text.
    #[arg(long, env = "LOG_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    dakoku_service::init_tracing(cli.log_json);
    dakoku_attendance::run(cli.config, dakoku_service::shutdown_signal()).await?;
    Ok(())
}
