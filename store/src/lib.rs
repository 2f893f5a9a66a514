//! Dakoku's Postgres side: the versioned schema and the connections to it.
//!
//! Postgres holds master data (tenants, employees, devices, intake pauses) and the projections
//! of the log (punches, attendance days, consumer offsets). Kafka stays the source of truth;
//! everything in the projection tables can be rebuilt from it.
//!
//! # Layout
//! - [`migrate`]: the embedded SQL migrations (`store/migrations/V*__*.sql`) and the runner,
//!   serialised across processes by an advisory lock.
//! - [`connect`]: single connections and pools built from a `DATABASE_URL`.
//! - [`snapshot`]: an in-memory master-data snapshot kept current by LISTEN/NOTIFY.

mod connect;
mod migrate;
pub mod snapshot;

pub use connect::{DEFAULT_DATABASE_URL, connect, pool, redact};
pub use migrate::{Migrated, migrate};

/// Errors talking to Postgres, each saying what to check.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `DATABASE_URL` could not be parsed as a Postgres connection string.
    #[error("DATABASE_URL is not a valid Postgres URL ({0}); expected e.g. {DEFAULT_DATABASE_URL}")]
    BadUrl(#[source] tokio_postgres::Error),
    /// The server did not accept a connection.
    #[error(
        "cannot connect to Postgres at {url}: {source}; is it running? (`scripts/stack status`)"
    )]
    Connect {
        /// The URL without its password.
        url: String,
        /// What the driver said.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A pool could not be built or could not hand out a connection.
    #[error("Postgres pool: {0}")]
    Pool(String),
    /// Applying a migration failed; the failing migration was rolled back.
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
    /// Any other query failed.
    #[error("Postgres query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
}
