//! The transaction cycle: begin, commit the verdicts together with the input offsets, abort.
//!
//! A commit sends the offsets of the records read into the same transaction
//! (`send_offsets_to_transaction`), so verdicts and offsets commit together or not at all.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use dakoku_schemas::{GroupId, RawPunch};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::context::GroupContext;
use super::group::{GroupError, WorkerEnv};
use super::produce::{SessionEnd, TxProducer, fenced_or_retry, is_fenced};
use crate::breaker::Breaker;
use crate::metrics::{self, Tally};
use crate::snapshot::Snapshot;

/// The open transaction's bookkeeping.
pub(super) struct OpenTxn {
    pub(super) started: Instant,
    pub(super) records: usize,
    /// Next offset to commit per partition.
    pub(super) next_offsets: HashMap<i32, i64>,
    pub(super) tally: Tally,
    pub(super) snapshot: Option<Arc<Snapshot>>,
    /// Decoded punches waiting for their verdicts (judged at commit).
    pub(super) pending: Vec<RawPunch>,
}

/// Begins, commits and aborts the transactions of one session.
pub(super) struct Txns<'a> {
    env: &'a WorkerEnv,
    producer: &'a TxProducer,
    consumer: &'a BaseConsumer<GroupContext>,
    raw_topic: &'a str,
    /// Counts invalid records per transaction: what a commit keeps, an abort forgets.
    pub(super) breaker: &'a mut Breaker,
}

impl<'a> Txns<'a> {
    pub(super) fn new(
        env: &'a WorkerEnv,
        producer: &'a TxProducer,
        consumer: &'a BaseConsumer<GroupContext>,
        raw_topic: &'a str,
        breaker: &'a mut Breaker,
    ) -> Self {
        Self {
            env,
            producer,
            consumer,
            raw_topic,
            breaker,
        }
    }

    fn group(&self) -> &GroupId {
        &self.env.shared.group
    }

    fn context(&self) -> &GroupContext {
        self.consumer.context()
    }

    /// Begins a transaction for the records about to be read.
    pub(super) fn begin(&mut self) -> Result<OpenTxn, SessionEnd> {
        if let Err(error) = self.producer.begin_transaction() {
            return Err(fenced_or_retry(
                error,
                &self.env.config.transactional_id(self.group()),
                "beginning a transaction",
            ));
        }
        self.context().in_txn.store(true, Ordering::SeqCst);
        tracing::debug!(group = %self.group(), "transaction begun");
        let _ = self.env.shared.stats.first_record_at.set(Instant::now());
        Ok(OpenTxn {
            started: Instant::now(),
            records: 0,
            next_offsets: HashMap::new(),
            tally: Tally::default(),
            snapshot: self.env.snapshot.get(),
            pending: Vec::new(),
        })
    }

    /// Commits the open transaction with its input offsets.
    pub(super) fn commit(&mut self, open: OpenTxn, timeout: Duration) -> Result<(), SessionEnd> {
        let debug_delay = self.env.config.debug_batch_delay_ms;
        if debug_delay > 0 {
            thread::sleep(Duration::from_millis(debug_delay));
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in &open.next_offsets {
            offsets
                .add_partition_offset(self.raw_topic, *partition, Offset::Offset(*next))
                .map_err(|e| SessionEnd::Retry(format!("offset list: {e}")))?;
        }
        let Some(metadata) = self.consumer.group_metadata() else {
            self.abort();
            return Err(SessionEnd::Retry("no consumer group metadata".into()));
        };
        let result = self.send_offsets_and_commit(&offsets, &metadata, timeout);
        // A revoke served meanwhile cannot have happened (callbacks run only in poll), so the
        // transaction is ours to end.
        self.context().in_txn.store(false, Ordering::SeqCst);
        match result {
            Ok(()) => {
                self.committed(open);
                Ok(())
            }
            Err(error) => {
                if is_fenced(&error) {
                    self.aborted();
                    return Err(SessionEnd::Fatal(GroupError::Fenced {
                        what: format!(
                            "transactional id {}",
                            self.env.config.transactional_id(self.group())
                        ),
                        detail: error.to_string(),
                    }));
                }
                tracing::warn!(group = %self.group(), %error, records = open.records,
                    "transaction failed; aborting it");
                self.abort();
                Err(SessionEnd::Retry(format!(
                    "committing a transaction: {error}"
                )))
            }
        }
    }

    /// The two broker calls of a commit, within `timeout` together.
    fn send_offsets_and_commit(
        &self,
        offsets: &TopicPartitionList,
        metadata: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> KafkaResult<()> {
        let deadline = Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        self.producer
            .send_offsets_to_transaction(offsets, metadata, left())?;
        let mut result = self.producer.commit_transaction(left());
        // A retriable commit error may be retried as is (librdkafka's contract).
        while let Err(KafkaError::Transaction(error)) = &result {
            if !error.is_retriable() || left().is_zero() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
            result = self.producer.commit_transaction(left());
        }
        result
    }

    /// Bookkeeping of a committed transaction: breaker, metrics, counters, lag positions.
    fn committed(&mut self, open: OpenTxn) {
        self.breaker.commit();
        metrics::breaker_ratio(self.group(), self.breaker.ratio());
        let latency = open.started.elapsed();
        open.tally.publish(self.group(), latency);
        let stats = &self.env.shared.stats;
        stats
            .records_committed
            .fetch_add(open.records as u64, Ordering::Relaxed);
        stats.transactions_committed.fetch_add(1, Ordering::Relaxed);
        *stats
            .last_commit_at
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.context()
            .committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(open.next_offsets);
        tracing::debug!(group = %self.group(), records = open.records,
            latency_ms = latency.as_millis() as u64, "transaction committed");
    }

    /// Aborts the open transaction (best effort: a failed abort is settled by the next
    /// session's `init_transactions`).
    pub(super) fn abort(&mut self) {
        self.context().in_txn.store(false, Ordering::SeqCst);
        if let Err(error) = self
            .producer
            .abort_transaction(self.env.config.kafka_op_timeout())
        {
            tracing::warn!(group = %self.group(), %error, "abort failed; the next session's init fences it");
        }
        self.aborted();
    }

    /// Bookkeeping of an aborted transaction (by us or by the rebalance callback).
    pub(super) fn aborted(&mut self) {
        self.breaker.abort();
        metrics::transaction_aborted(self.group());
        self.env
            .shared
            .stats
            .transactions_aborted
            .fetch_add(1, Ordering::Relaxed);
    }
}
