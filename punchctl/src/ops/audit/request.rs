//! What an audit is asked ([`AuditRequest`]), why it may fail to run ([`AuditError`]) and how it
//! reports progress ([`AuditProgress`]).

use std::time::Duration;

use chrono::NaiveDate;
use dakoku_kafka::ClientFactory;
use dakoku_schemas::{GroupId, TenantId};

use crate::ops::lag::LagError;

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditRequest {
    /// Kafka's clients (the operator's brokers and properties).
    pub kafka: ClientFactory,
    /// Postgres URL.
    pub database_url: String,
    /// The tenant group.
    pub group: GroupId,
    /// Only this tenant's punches and days.
    pub tenant: Option<TenantId>,
    /// First work date in scope (inclusive); `None`: from the beginning.
    pub from: Option<NaiveDate>,
    /// Last work date in scope (inclusive); `None`: to the end.
    pub to: Option<NaiveDate>,
    /// Examples kept per kind of finding (all are counted).
    pub limit: usize,
    /// Longest wait for one Kafka operation, and longest stall of a topic scan (an open
    /// transaction holds a `read_committed` reader until it ends).
    pub timeout: Duration,
}

impl AuditRequest {
    /// A request for the whole of `group`, with 10 examples and a 120 s timeout; Kafka
    /// clients have nothing but `brokers` (set [`AuditRequest::kafka`] for more).
    pub fn new(brokers: &str, database_url: &str, group: GroupId) -> Self {
        Self {
            kafka: ClientFactory::new(brokers),
            database_url: database_url.to_owned(),
            group,
            tenant: None,
            from: None,
            to: None,
            limit: 10,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Why an audit could not be completed (nothing about the data: that is the report).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The work-date range is empty.
    #[error("--from {from} is after --to {to}; give a range of work dates in order")]
    BadRange {
        /// First date given.
        from: NaiveDate,
        /// Last date given.
        to: NaiveDate,
    },
    /// Kafka, or Postgres while reading positions, failed (see [`LagError`]).
    #[error(transparent)]
    Positions(#[from] LagError),
    /// A topic scan made no progress for the timeout (a transaction open for that long, or a
    /// broker problem). Run again, or raise `--timeout-secs`.
    #[error(
        "the scan of {topic} made no progress for {timeout:?}; is a transaction stuck open? run again or raise --timeout-secs"
    )]
    ScanStalled {
        /// The topic.
        topic: String,
        /// The limit.
        timeout: Duration,
    },
    /// A tenant's stored work rules could not be read.
    #[error(transparent)]
    Rules(#[from] dakoku_store::master::rules::RulesError),
    /// Connecting to Postgres failed.
    #[error(transparent)]
    Connect(#[from] dakoku_store::StoreError),
    /// A Postgres query failed. Check that the server is up and the schema migrated
    /// (`punchctl db migrate`).
    #[error(
        "Postgres query failed: {0}; is the server up (`scripts/stack status`) and the schema migrated (`punchctl db migrate`)?"
    )]
    Db(#[from] tokio_postgres::Error),
    /// The blocking Kafka task panicked or was cancelled (a bug).
    #[error("the Kafka scan task failed: {0}")]
    Task(String),
}

/// Progress callbacks (a progress bar, or nothing).
pub trait AuditProgress: Send + Sync {
    /// A phase begins; `total` units are expected (0: unknown).
    fn phase(&self, what: &str, total: u64);
    /// `n` more units are done.
    fn advance(&self, n: u64);
}

/// An [`AuditProgress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl AuditProgress for NoProgress {
    fn phase(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}

impl From<dakoku_kafka::Error> for AuditError {
    fn from(error: dakoku_kafka::Error) -> Self {
        match error {
            dakoku_kafka::Error::Stalled { topic, waited } => AuditError::ScanStalled {
                topic,
                timeout: waited,
            },
            error => AuditError::Positions(LagError::Kafka(error)),
        }
    }
}
