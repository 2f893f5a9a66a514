//! Throw-away databases for tests, benchmarks and storm runs: created next to the one a
//! `DATABASE_URL` names, migrated, used through their own URL and dropped at the end.
//!
//! One implementation for every such caller, because dropping is subtler than it looks:
//! `DROP DATABASE .. WITH (FORCE)` cannot end an autovacuum worker, so a database that has just
//! received many rows is refused for a while ([`drop_database`] waits that out). Names are
//! spliced into SQL, so only plain identifiers are accepted.

use std::fmt;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use crate::{StoreError, connect, migrate, redact};

/// Postgres truncates longer identifiers (`NAMEDATALEN - 1`), which would make the name used
/// in SQL and the one in the URL differ.
const MAX_NAME_LEN: usize = 63;

/// How often a refused `DROP DATABASE` is tried again.
const DROP_RETRY_EVERY: Duration = Duration::from_millis(200);

/// How long a half-created database (its migration failed) is given to be dropped again.
const CLEANUP_WAIT: Duration = Duration::from_secs(30);

/// A database of its own, created and migrated by [`ScratchDatabase::create`], removed by
/// [`ScratchDatabase::drop`]. Nothing happens when the value is merely dropped, so a caller
/// can keep the database (`--keep`) by not calling [`ScratchDatabase::drop`].
pub struct ScratchDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl ScratchDatabase {
    /// Creates database `name` on the server `admin_url` points at (its role needs
    /// `CREATEDB`) and brings it to the current schema. When the migration fails the new
    /// database is dropped again, so a failed create leaves nothing behind.
    pub async fn create(admin_url: &str, name: &str) -> Result<Self, StoreError> {
        // Both checks before anything is created.
        let url = with_database(admin_url, name)?;
        let admin = connect(admin_url).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|source| StoreError::CreateDatabase {
                name: name.to_owned(),
                source,
            })?;
        let migrated = async {
            let mut client = connect(&url).await?;
            migrate(&mut client).await
        }
        .await;
        if let Err(error) = migrated {
            if let Err(cleanup) = drop_database(admin_url, name, CLEANUP_WAIT).await {
                tracing::warn!(database = name, error = %cleanup, "could not drop the half-created database");
            }
            return Err(error);
        }
        tracing::debug!(database = name, "created and migrated a scratch database");
        Ok(Self {
            name: name.to_owned(),
            url,
            admin_url: admin_url.to_owned(),
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL to the database: the admin URL with its database name replaced.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database, terminating leftover connections and waiting up to `wait` for
    /// autovacuum to let go of it (see [`drop_database`]).
    pub async fn drop(self, wait: Duration) -> Result<(), StoreError> {
        drop_database(&self.admin_url, &self.name, wait).await
    }
}

/// By hand, so the admin URL's password never reaches a log.
impl fmt::Debug for ScratchDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScratchDatabase")
            .field("name", &self.name)
            .field("url", &redact(&self.url))
            .field("admin_url", &redact(&self.admin_url))
            .finish()
    }
}

/// `url` with its database name replaced by `name`; the query string (`?sslmode=..`) is kept.
///
/// `url` must be a URL with a database part (`postgres://user:pass@host:port/db`); key-value
/// connection strings (`host=.. dbname=..`) are refused rather than guessed at.
pub fn with_database(url: &str, name: &str) -> Result<String, StoreError> {
    check_name(name)?;
    let without_database = || StoreError::UrlWithoutDatabase { url: redact(url) };
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").ok_or_else(without_database)? + "://".len();
    // The path starts at the first `/` after the authority (which may be empty, as in
    // `postgres:///db?host=/run/postgresql`).
    let path = authority + base[authority..].find('/').ok_or_else(without_database)?;
    let mut out = format!("{}/{name}", &base[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// Drops database `name` on the server `admin_url` points at, terminating the connections
/// still open to it (`DROP DATABASE IF EXISTS .. WITH (FORCE)`); a database that is already
/// gone is fine.
///
/// `WITH (FORCE)` cannot terminate an autovacuum worker (a superuser's backend) busy in the
/// database, and Postgres then refuses with `insufficient_privilege`. Autovacuum starts on any
/// database that has just received many rows and may stay for minutes after a million, so that
/// refusal is retried every 200 ms until `wait` has passed: pick `wait` by how much the caller
/// wrote. A role that really lacks the privilege is therefore only reported after `wait`.
/// `object_in_use` (a client reconnecting while the others were being terminated) is retried
/// the same way.
pub async fn drop_database(admin_url: &str, name: &str, wait: Duration) -> Result<(), StoreError> {
    check_name(name)?;
    let admin = connect(admin_url).await?;
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let started = Instant::now();
    let mut refusals = 0u32;
    loop {
        let source = match admin.batch_execute(&sql).await {
            Ok(()) => {
                if refusals > 0 {
                    tracing::info!(
                        database = name,
                        refusals,
                        waited_ms = started.elapsed().as_millis(),
                        "dropped the database once autovacuum let go of it"
                    );
                }
                return Ok(());
            }
            Err(source) => source,
        };
        let transient = matches!(
            source.code(),
            Some(code) if *code == SqlState::INSUFFICIENT_PRIVILEGE || *code == SqlState::OBJECT_IN_USE
        );
        if !transient || started.elapsed() >= wait {
            return Err(StoreError::DropDatabase {
                name: name.to_owned(),
                waited: started.elapsed(),
                source,
            });
        }
        refusals += 1;
        if refusals == 1 {
            tracing::debug!(
                database = name,
                reason = %describe(&source),
                "DROP DATABASE refused, probably autovacuum at work; retrying"
            );
        }
        tokio::time::sleep(DROP_RETRY_EVERY).await;
    }
}

/// Refuses anything but a plain lower-case identifier of at most 63 bytes: names are spliced
/// into SQL (quoted, but never escaped), and lower case keeps the quoted name equal to the one
/// an unquoted `psql` command would mean.
fn check_name(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_NAME_LEN;
    if plain {
        Ok(())
    } else {
        Err(StoreError::BadDatabaseName(name.to_owned()))
    }
}

/// What Postgres said, on one line: the driver's own `Display` of a server error is only
/// "db error", which tells an operator nothing.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_and_query_kept() {
        assert_eq!(
            with_database("postgres://u:p@h:1/dakoku", "x").expect("valid"),
            "postgres://u:p@h:1/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/dakoku?sslmode=disable", "x").expect("valid"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://h/", "dakoku_test_1").expect("valid"),
            "postgresql://h/dakoku_test_1"
        );
        assert_eq!(
            with_database("postgres:///dakoku?host=/run/postgresql", "x").expect("valid"),
            "postgres:///x?host=/run/postgresql"
        );
    }

    #[test]
    fn a_url_without_a_database_part_is_refused_with_the_expected_shape() {
        for url in [
            "postgres://h",
            "postgres://u:secret@h:1",
            "postgres://u:secret@h:1?sslmode=disable",
            "host=/tmp dbname=dakoku",
        ] {
            let error = with_database(url, "x").expect_err(url);
            assert!(
                matches!(error, StoreError::UrlWithoutDatabase { .. }),
                "{url}: {error}"
            );
            let message = error.to_string();
            assert!(
                message.contains("postgres://user:pass@host:port/db"),
                "{message}"
            );
            assert!(!message.contains("secret"), "password leaked: {message}");
        }
    }

    #[test]
    fn only_plain_lower_case_identifiers_are_accepted_as_names() {
        for name in [
            "x",
            "_x",
            "dakoku_test_0a1b2c3d",
            "dakoku_bench_0a1b2c3d_2",
            &"a".repeat(63),
        ] {
            assert!(check_name(name).is_ok(), "{name}");
        }
        for name in [
            "",
            "1abc",
            "Dakoku",
            "dakoku-test",
            "dakoku test",
            "x\"; DROP DATABASE dakoku; --",
            "x;",
            "dåkoku",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(check_name(name), Err(StoreError::BadDatabaseName(_))),
                "{name:?} was accepted"
            );
        }
    }

    #[test]
    fn bad_names_are_refused_before_any_url_or_sql_is_built() {
        assert!(matches!(
            with_database("postgres://u:p@h:1/dakoku", "x; --"),
            Err(StoreError::BadDatabaseName(_))
        ));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let db = ScratchDatabase {
            name: "x".into(),
            url: "postgres://u:secret@h:1/x".into(),
            admin_url: "postgres://u:secret@h:1/dakoku".into(),
        };
        let debug = format!("{db:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("postgres://u:***@h:1/dakoku"), "{debug}");
    }
}
