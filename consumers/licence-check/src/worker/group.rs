//! What the service and a group's thread share: the group's state and counters, its
//! environment, and why it stopped.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use dakoku_kafka::ClientFactory;
use dakoku_schemas::GroupId;

use crate::config::Config;
use crate::snapshot::SnapshotCell;

/// Why a group's loop stopped for good. Other groups of the process are not affected.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    /// Too many undecodable records: likely a bad deploy upstream. The transaction holding the
    /// record that crossed the limit was aborted, so its records stay unprocessed (not
    /// quarantined) after the last committed offset. Find the cause, then restart the service;
    /// raise `--breaker-max-invalid-ratio` only if the records really are garbage.
    #[error(
        "circuit breaker tripped for consumer group {consumer_group}: {invalid} of the last {seen} records of {topic} were undecodable, above the limit of {limit_percent}%; stopped without committing them. Check what writes to {topic} (a bad deploy?), then restart; records already quarantined are in punches.quarantine with their origin offsets",
        limit_percent = max_invalid_ratio * 100.0
    )]
    BreakerTripped {
        /// The consumer group that stopped.
        consumer_group: String,
        /// The input topic.
        topic: String,
        /// Invalid records in the window.
        invalid: usize,
        /// Records in the window.
        seen: usize,
        /// The configured limit.
        max_invalid_ratio: f64,
    },
    /// Another live instance uses this instance's transactional id or group instance id: it
    /// took over and this one stopped so as not to write as a zombie. Give every running
    /// instance its own `--instance-id`.
    #[error(
        "fenced: another instance took over {what} ({detail}); this one stops. Give each running instance its own --instance-id"
    )]
    Fenced {
        /// Which id was taken over.
        what: String,
        /// What Kafka said.
        detail: String,
    },
    /// A bug: a quarantine record could not be encoded.
    #[error("cannot encode a quarantine record: {0}")]
    Encode(String),
}

/// Where a group's loop is.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupState {
    /// Waiting for the first master-data snapshot or for Kafka.
    Starting,
    /// Consuming.
    Running,
    /// Stopped by shutdown.
    Stopped,
    /// Stopped by an error (see [`GroupError`]).
    Failed(String),
}

/// Counters of one group's loop, for status and benchmarks.
#[derive(Debug, Default)]
pub struct GroupStats {
    /// Records in committed transactions.
    pub records_committed: AtomicU64,
    /// Committed transactions.
    pub transactions_committed: AtomicU64,
    /// Aborted transactions.
    pub transactions_aborted: AtomicU64,
    /// When the first record was read.
    pub first_record_at: OnceLock<Instant>,
    /// When the last transaction committed.
    pub last_commit_at: Mutex<Option<Instant>>,
}

/// What the service and a group's thread share.
#[derive(Debug)]
pub struct GroupShared {
    /// The group.
    pub group: GroupId,
    /// Its state.
    pub state: Mutex<GroupState>,
    /// Its counters.
    pub stats: GroupStats,
}

impl GroupShared {
    /// A group that has not started.
    pub fn new(group: GroupId) -> Self {
        Self {
            group,
            state: Mutex::new(GroupState::Starting),
            stats: GroupStats::default(),
        }
    }

    pub(super) fn set_state(&self, state: GroupState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// The current state.
    pub fn state(&self) -> GroupState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Everything a group's thread needs.
#[derive(Debug, Clone)]
pub struct WorkerEnv {
    /// The service configuration.
    pub config: Arc<Config>,
    /// Builds the group's Kafka clients (from `config.kafka`).
    pub kafka: ClientFactory,
    /// Shared with the service.
    pub shared: Arc<GroupShared>,
    /// The master data.
    pub snapshot: Arc<SnapshotCell>,
    /// Set when the service shuts down.
    pub stop: Arc<AtomicBool>,
}
