//! Why a group's consumer stops (everything else is retried).

use dakoku_schemas::GroupId;

use crate::store::marker::UnfinishedRebuild;

/// Errors that stop a group's consumer (everything else is retried).
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The Kafka client could not be created or subscribed (bad configuration).
    #[error("group {group}: {source}")]
    Kafka {
        /// The tenant group.
        group: GroupId,
        /// What Kafka said, and at which step (boxed: the error path is cold and every
        /// `Result` of the consumer would carry its size).
        #[source]
        source: Box<dakoku_kafka::Error>,
    },
    /// Too many records of one batch could not be decoded: a bad deploy upstream. Fix the
    /// producer (or quarantine by hand), then restart; nothing of the batch was written.
    #[error(
        "group {group}: {invalid} of {records} records in one batch are invalid (limit {ratio}); stopping instead of quarantining everything"
    )]
    TooManyInvalid {
        /// The tenant group.
        group: GroupId,
        /// Invalid records.
        invalid: usize,
        /// Records in the batch.
        records: usize,
        /// The configured limit.
        ratio: f64,
    },
    /// A `punchctl rebuild` of the group cleared its punches and was interrupted before it
    /// recomputed the days: consuming now would leave those days stale for good. Run the
    /// rebuild again (the message says which, with this service stopped), then restart.
    #[error(
        "group {}: {} did not finish; consuming now would leave its days with stale figures. Stop this service, run `{}`, then start the service again",
        .0.group, .0.describe(), .0.command()
    )]
    UnfinishedRebuild(UnfinishedRebuild),
}
