//! Fixtures for Dakoku's end-to-end tests on the real local stack (`scripts/stack up`).
//!
//! Each test gets its own tenant group (so its own topics) and its own database, so tests run
//! in parallel and leave each other alone. Waiting is always on a condition with a deadline.
//!
//! # Layout
//! - [`Stack`]: where the broker and Postgres are (env or the local stack's defaults).
//! - [`TestDatabase`]: a fresh, migrated database per test, dropped by [`TestDatabase::drop_db`].
//! - [`TestGroup`]: a unique tenant group with its topics created through `punchctl`'s code.
//! - [`eventually`]: poll a condition until it holds or a deadline passes.
//! - [`acceptor`]: an in-process `ingest-api` with seeded master data, and topic readers.
//! - [`licence`]: licence-check fixtures: master data, raw punches and poison, an in-process
//!   service, readers of the transactional output.
//! - [`attendance`]: checked-punch scenarios (a realistic week, resends), the attendance
//!   consumer in-process, an oracle from the pure rules, and a severable Postgres proxy.
//! - [`recovery`]: punchctl verbs through the dispatcher, consumer-group membership, raw
//!   punches with chosen timestamps, exact `attendance_days` rows (replay, rebuild, recheck).
//! - [`audit`]: a settled pipeline of one group for `punchctl audit` and `lag`, to tamper with.

pub mod acceptor;
pub mod attendance;
pub mod audit;
pub mod licence;
pub mod recovery;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use dakoku_schemas::{GroupId, Topic};
use dakoku_store::ScratchDatabase;
use punchctl::topics::{TopicSettings, Topics};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;

/// Where the stack under test listens.
#[derive(Debug, Clone)]
pub struct Stack {
    /// Kafka bootstrap servers (`KAFKA_BROKERS`).
    pub brokers: String,
    /// A database URL whose role may create databases (`DATABASE_URL`).
    pub database_url: String,
}

impl Stack {
    /// Reads `KAFKA_BROKERS` and `DATABASE_URL`, defaulting to the local stack's.
    pub fn from_env() -> Self {
        Self {
            brokers: std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
            database_url: std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| dakoku_store::DEFAULT_DATABASE_URL.into()),
        }
    }

    /// A client config pointing at the broker, for producers and consumers in tests.
    pub fn kafka_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config
    }
}

/// A short random suffix for names that must not collide between tests and runs.
pub fn unique_suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

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

/// A tenant group of its own for one test, with its topics created by `punchctl`'s code.
#[derive(Debug)]
pub struct TestGroup {
    /// The group (`t-<suffix>`).
    pub group: GroupId,
    stack: Stack,
}

impl TestGroup {
    /// Creates the group's topics with `partitions` partitions each.
    pub async fn create(stack: &Stack, partitions: i32) -> anyhow::Result<Self> {
        let group: GroupId = format!("t-{}", unique_suffix()).parse()?;
        let topics = Topics::connect(&stack.brokers)?;
        let settings = TopicSettings {
            partitions,
            ..TopicSettings::default()
        };
        topics.create_for_group(&group, &settings).await?;
        Ok(Self {
            group,
            stack: stack.clone(),
        })
    }

    /// Deletes the group's own topics (not the shared quarantine). Call at the end of a test.
    pub async fn delete_topics(self) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.stack.kafka_config().create()?;
        let names: Vec<String> = Topic::for_group(&self.group)
            .iter()
            .map(Topic::name)
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        admin.delete_topics(&names, &AdminOptions::new()).await?;
        Ok(())
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `deadline`.
pub async fn eventually<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
