//! Why a rebuild failed.

use std::time::Duration;

use crate::store::StoreError;
use crate::store::marker::{Scope, UnfinishedRebuild};

/// Why a rebuild failed. Whatever the step, the previous days are still in place; run the
/// rebuild again.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Postgres failed.
    #[error("Postgres: {0}")]
    Store(#[from] StoreError),
    /// Kafka failed; the error says at which step.
    #[error(transparent)]
    Kafka(#[from] dakoku_kafka::Error),
    /// The checked topic does not exist.
    #[error("topic {0} does not exist; create it with `punchctl topics create --group <group>`")]
    NoTopic(String),
    /// Something else holds the group's lock: a batch of a running attendance service, or
    /// another rebuild or replay.
    #[error(
        "the lock of {consumer_group} is held: an attendance service or another rebuild of the group is running; stop it, then run again"
    )]
    Locked {
        /// `attendance.<group>`.
        consumer_group: String,
    },
    /// No record arrived for too long before the end was reached.
    #[error(
        "the replay of {topic} stalled: nothing read for {waited:?} before its end; is Kafka up? run the rebuild again"
    )]
    Stalled {
        /// The topic.
        topic: String,
        /// How long nothing came.
        waited: Duration,
    },
    /// An invalid record could not be quarantined.
    #[error("quarantining an invalid record of {topic}: {error}")]
    Quarantine {
        /// The topic.
        topic: String,
        /// What failed.
        error: String,
    },
    /// The reader task panicked (a bug).
    #[error("the replay's reader failed: {0}")]
    Reader(String),
    /// An earlier rebuild of the group, of a scope this one does not cover, did not finish:
    /// its deferred days are stale until it is run again.
    #[error("{}", refusal(.unfinished))]
    Unfinished {
        /// The unfinished rebuild.
        unfinished: UnfinishedRebuild,
    },
}

impl From<tokio_postgres::Error> for RebuildError {
    fn from(error: tokio_postgres::Error) -> Self {
        RebuildError::Store(StoreError::Query(error))
    }
}

/// The message of [`RebuildError::Unfinished`]: what to run instead.
fn refusal(unfinished: &UnfinishedRebuild) -> String {
    let or_group = match unfinished.scope {
        Scope::Tenant(_) => format!(
            " (or rebuild the whole group, which covers it: punchctl rebuild --group {})",
            unfinished.group
        ),
        Scope::Group => String::new(),
    };
    format!(
        "{} did not finish and this rebuild does not cover it (its days are stale until it runs again): finish it first: {}{or_group}",
        unfinished.describe(),
        unfinished.command()
    )
}
