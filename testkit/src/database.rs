//! A database of its own for each test, migrated to the current schema.

use std::time::Duration;

use anyhow::Context as _;
use dakoku_store::ScratchDatabase;

use crate::stack::Stack;
use crate::wait::unique_suffix;

/// A database of its own for one test, migrated to the current schema.
#[derive(Debug)]
pub struct TestDatabase {
    /// The database's name (`dakoku_test_<suffix>`).
    pub name: String,
    /// A URL to it, for the code under test.
    pub url: String,
    scratch: ScratchDatabase,
}

impl TestDatabase {
    /// How long [`TestDatabase::drop_db`] waits for autovacuum to leave a test's database:
    /// moments on a test's few rows, but a CI run once failed without any wait.
    const DROP_WAIT: Duration = Duration::from_secs(30);

    /// Creates and migrates a fresh database next to the stack's.
    pub async fn create(stack: &Stack) -> anyhow::Result<Self> {
        let name = format!("dakoku_test_{}", unique_suffix());
        let scratch = ScratchDatabase::create(&stack.database_url, &name)
            .await
            .context("a test database on the stack's Postgres; is it up? (`scripts/stack up`)")?;
        Ok(Self {
            name,
            url: scratch.url().to_owned(),
            scratch,
        })
    }

    /// A new connection to this database.
    pub async fn client(&self) -> anyhow::Result<tokio_postgres::Client> {
        Ok(dakoku_store::connect(&self.url).await?)
    }

    /// Drops the database (terminating leftover connections). Call at the end of a test.
    ///
    /// Waits up to 30 s for autovacuum to let go of it ([`dakoku_store::drop_database`]).
    pub async fn drop_db(self) -> anyhow::Result<()> {
        self.drop_within(Self::DROP_WAIT).await
    }

    /// [`TestDatabase::drop_db`] with a wait of the caller's choosing, for callers that wrote
    /// enough rows to keep autovacuum busy for longer (benchmarks).
    pub async fn drop_within(self, wait: Duration) -> anyhow::Result<()> {
        Ok(self.scratch.drop(wait).await?)
    }
}
