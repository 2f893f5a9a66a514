//! `punchctl`, Dakoku's operator CLI, as a library so end-to-end tests drive the same code.
//!
//! Every verb is a subcommand with its own `--help`; connection settings come from flags or
//! the environment (`KAFKA_BROKERS`, `DATABASE_URL`), with the local stack's as defaults.
//!
//! # Layout
//! - [`cli`]: the command line (clap) and the dispatcher [`run`].
//! - [`topics`]: creation and description of the per-group Kafka topics (CONTRACT §2).
//! - [`db`]: schema migrations.
//! - [`master`]: tenants and devices (master data in Postgres) and device tokens.
//! - [`intake`]: operator pauses of punch intake for a group, tenant or device.
//! - [`licence`]: employees and tenant licences (the licence check's master data);
//!   [`licence_cli`]: the `employee`, `licence` and `recheck` verbs.
//! - [`payroll`]: `payroll export`, a tenant's month of attendance as CSV.
//! - [`audit`]: `audit`, raw log vs verdicts vs stored punches vs attendance days
//!   ([`audit::run`] for other tools).
//! - [`lag`]: `lag`, consumer positions, lag and the oldest waiting record per group.
//! - [`replay`]: `replay`, a consumer group moved back to the start of its log or a moment;
//!   [`rebuild`]: `rebuild`, the attendance projection recomputed from the log;
//!   [`progress`]: the progress bar and end-of-work summary they and `recheck` share.

pub mod audit;
pub mod cli;
pub mod db;
pub mod intake;
pub mod lag;
pub mod licence;
pub mod licence_cli;
pub mod master;
pub mod payroll;
pub mod progress;
pub mod rebuild;
pub mod replay;
pub mod topics;

pub use cli::{Cli, run, run_with_output};

/// Logs go to stderr (stdout is the command's output), filtered by `RUST_LOG`, default `warn`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
