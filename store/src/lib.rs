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
//! - [`master`]: master data (tenants, devices, employees, licences, intake pauses) read and
//!   written through typed functions; `master/{tenants, devices, employees, licences, grants,
//!   history (pure), recorded (reads the history tables), pauses,
//!   outcome}`.
//! - [`snapshot`]: an in-memory master-data snapshot kept current by LISTEN/NOTIFY.
//! - [`offsets`]: the `consumer_offsets` table (load, store), in the caller's transaction.
//! - [`scratch`](ScratchDatabase): throw-away databases for tests, benchmarks and storm runs
//!   ([`with_database`] for their URL, [`drop_database`] waiting out autovacuum).

mod connect;
pub mod master;
mod migrate;
pub mod offsets;
mod scratch;
pub mod snapshot;

pub use connect::{DEFAULT_DATABASE_URL, Notified, connect, connect_notified, pool, redact};
pub use migrate::{Migrated, migrate};
pub use scratch::{ScratchDatabase, drop_database, with_database};

use std::time::Duration;

use scratch::describe;

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
    /// A URL has no database part to replace ([`with_database`]).
    #[error(
        "DATABASE_URL {url} names no database; expected postgres://user:pass@host:port/db, e.g. {DEFAULT_DATABASE_URL}"
    )]
    UrlWithoutDatabase {
        /// The URL without its password.
        url: String,
    },
    /// A scratch database name is not a plain identifier; it would be spliced into SQL.
    #[error(
        "{0:?} is not a usable database name: use lower-case ASCII letters, digits and `_`, not starting with a digit, at most 63 bytes"
    )]
    BadDatabaseName(String),
    /// `CREATE DATABASE` was refused.
    #[error(
        "cannot create database {name}: {}; the DATABASE_URL's role needs CREATEDB and the name must be free",
        describe(source)
    )]
    CreateDatabase {
        /// The database's name.
        name: String,
        /// What Postgres said.
        #[source]
        source: tokio_postgres::Error,
    },
    /// `DROP DATABASE` failed for good, or was still refused when the wait ran out.
    #[error(
        "cannot drop database {name} (tried for {waited:.1?}): {}; drop it later by hand: `DROP DATABASE IF EXISTS {name} WITH (FORCE)`",
        describe(source)
    )]
    DropDatabase {
        /// The database's name.
        name: String,
        /// How long refusals were retried.
        waited: Duration,
        /// What Postgres said last.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Any other query failed.
    #[error("Postgres query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
}
