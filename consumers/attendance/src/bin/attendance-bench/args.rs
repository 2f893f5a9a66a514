//! The bench's flags and one round's timings.

use std::time::Duration;

use clap::Parser;

/// Measure the attendance consumer against a bare batched insert.
#[derive(Debug, Parser)]
#[command(name = "attendance-bench", version, about)]
pub(crate) struct Args {
    /// Where Kafka is (`--brokers`/`KAFKA_BROKERS`) and its client properties.
    #[command(flatten)]
    pub(crate) kafka: dakoku_kafka::KafkaArgs,
    /// A Postgres URL whose role may create databases.
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL)]
    pub(crate) database_url: String,
    /// Employees (spread over 10 tenants).
    #[arg(long, default_value_t = 1_000)]
    pub(crate) employees: usize,
    /// Days of the month generated.
    #[arg(long, default_value_t = 30)]
    pub(crate) days: u32,
    /// Extra records that are resends of earlier punches, as a share of the punches.
    #[arg(long, default_value_t = 0.28)]
    pub(crate) resend_ratio: f64,
    /// Partitions of the checked topic.
    #[arg(long, default_value_t = 3)]
    pub(crate) partitions: i32,
    /// Records per batch (consumer) and rows per insert (bare).
    #[arg(long, default_value_t = 5_000)]
    pub(crate) batch_max_records: usize,
    /// Rounds; each round measures both, on a fresh database, so the comparison is paired.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Keep the last round's database and the topics afterwards.
    #[arg(long)]
    pub(crate) keep: bool,
}

/// One round's timings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Round {
    /// Bare UNNEST insert of every record (ON CONFLICT DO NOTHING for resends), batched.
    pub(crate) bare: Duration,
    /// Bare UNNEST insert of the distinct rows only, batched.
    pub(crate) bare_distinct: Duration,
    /// One COPY of the distinct rows.
    pub(crate) copy: Duration,
    /// Consumer: first commit to last commit.
    pub(crate) steady: Duration,
    /// Records committed by the first batch (not in `steady`).
    pub(crate) first_records: i64,
    /// Consumer: start (including the group join) to last commit.
    pub(crate) wall: Duration,
    /// Attendance days written.
    pub(crate) days: i64,
}
