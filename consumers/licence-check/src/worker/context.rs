//! The consumer's callbacks: abort the open transaction when partitions are revoked, turn
//! librdkafka statistics into lag gauges, and log librdkafka's events at their true level.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dakoku_schemas::GroupId;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::producer::Producer;
use rdkafka::statistics::Statistics;

use super::produce::TxProducer;
use crate::metrics;

/// The consumer's context, shared by the callbacks and the loop.
pub(super) struct GroupContext {
    pub(super) group: GroupId,
    pub(super) raw_topic: String,
    pub(super) producer: Arc<TxProducer>,
    pub(super) op_timeout: Duration,
    /// A transaction is open (set by the loop, cleared by whoever ends it).
    pub(super) in_txn: AtomicBool,
    /// The rebalance callback aborted the open transaction; the loop must drop its batch.
    pub(super) aborted_on_revoke: AtomicBool,
    /// The abort in the callback failed: the session must be rebuilt.
    pub(super) broken: AtomicBool,
    /// Next offset committed per partition, for lag.
    pub(super) committed: Mutex<HashMap<i32, i64>>,
}

impl ClientContext for GroupContext {
    dakoku_kafka::log_to_tracing!();

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.raw_topic) else {
            return;
        };
        let committed = self.committed.lock().unwrap_or_else(|e| e.into_inner());
        for (partition, stats) in &topic.partitions {
            if *partition < 0 || stats.ls_offset < 0 || !stats.desired {
                continue;
            }
            // Our committed position; before our first commit (offsets are committed through
            // the producer, so librdkafka's committed_offset stays unknown), the position the
            // fetcher started from.
            let position = committed.get(partition).copied().or_else(|| {
                [stats.app_offset, stats.next_offset, stats.committed_offset]
                    .into_iter()
                    .find(|offset| *offset >= 0)
            });
            if let Some(position) = position {
                metrics::lag(&self.group, *partition, (stats.ls_offset - position).max(0));
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                tracing::info!(group = %self.group, partitions = partitions.count(), "partitions revoked");
                if self.in_txn.swap(false, Ordering::SeqCst) {
                    // The new owner starts from the committed offsets; our uncommitted verdicts
                    // for these partitions must never commit.
                    match self.producer.abort_transaction(self.op_timeout) {
                        Ok(()) => {
                            tracing::info!(group = %self.group, "aborted the open transaction on revoke")
                        }
                        Err(error) => {
                            tracing::warn!(group = %self.group, %error, "abort on revoke failed");
                            self.broken.store(true, Ordering::SeqCst);
                        }
                    }
                    self.aborted_on_revoke.store(true, Ordering::SeqCst);
                }
            }
            Rebalance::Assign(partitions) => {
                tracing::info!(group = %self.group, partitions = partitions.count(), "partitions assigned");
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance error");
            }
        }
    }
}
