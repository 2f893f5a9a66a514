//! The embedded migrations and their runner.
//!
//! Migrations are plain versioned SQL files in `store/migrations/`, compiled into every binary
//! that depends on this crate, so a service and its schema cannot drift apart.

use tokio_postgres::Client;

use crate::StoreError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Advisory-lock key that serialises migration runs: several processes (services starting
/// together, parallel tests on one database) may try at once, and refinery does not lock.
const MIGRATION_LOCK_KEY: i64 = 0x6461_6b6f_6b75; // "dakoku"

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Names of the migrations applied by this run, in order (`V1__master_data`, ...).
    pub applied: Vec<String>,
    /// The schema version after the run.
    pub current_version: Option<i32>,
}

/// Brings the database to the latest schema; a no-op when it is already there.
pub async fn migrate(client: &mut Client) -> Result<Migrated, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let result = embedded::migrations::runner()
        .set_abort_divergent(true)
        .run_async(client)
        .await;
    // Unlock even when the run failed; the session ending would also release it.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    let report = result?;
    unlocked?;
    let applied: Vec<String> = report
        .applied_migrations()
        .iter()
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect();
    for name in &applied {
        tracing::info!(migration = %name, "applied migration");
    }
    let current_version = embedded::migrations::runner()
        .get_last_applied_migration_async(client)
        .await?
        .map(|m| m.version());
    Ok(Migrated {
        applied,
        current_version,
    })
}
