//! `punchctl db migrate`: bring the Postgres schema up to date.

use std::io::Write;

use anyhow::Context as _;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations (safe to run concurrently and repeatedly).
    Migrate,
}

/// Runs `punchctl db ...`.
pub async fn run(
    command: DbCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match command {
        DbCommand::Migrate => {
            let migrated = crate::ops::db::migrate(database_url)
                .await
                .with_context(|| format!("migrating {}", dakoku_store::redact(database_url)))?;
            for name in &migrated.applied {
                writeln!(out, "applied {name}")?;
            }
            let version = migrated
                .current_version
                .map_or_else(|| "none".to_owned(), |v| v.to_string());
            if migrated.applied.is_empty() {
                writeln!(out, "schema up to date (version {version})")?;
            } else {
                writeln!(out, "schema at version {version}")?;
            }
        }
    }
    Ok(())
}
