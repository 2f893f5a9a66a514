//! Assignment at the offsets stored in Postgres: the rebalance callback reads the group's
//! stored offsets (on a thread of its own, retrying until Postgres answers) and assigns the
//! partitions at them, whatever Kafka's committed offsets say.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dakoku_schemas::GroupId;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::metrics;

/// Rebalance handling: assigns partitions at the offsets stored in Postgres.
pub(super) struct AssignContext {
    pub(super) group: GroupId,
    pub(super) database_url: String,
    pub(super) consumer_group: String,
    pub(super) topic: String,
    pub(super) stopping: Arc<AtomicBool>,
    /// Bumped on every rebalance: the reader announces a new assignment to the writer.
    pub(super) generation: AtomicU64,
    pub(super) lookup_timeout: Duration,
    pub(super) retry_initial: Duration,
    pub(super) retry_max: Duration,
}

impl ClientContext for AssignContext {
    dakoku_kafka::log_to_tracing!();
}

impl ConsumerContext for AssignContext {
    fn rebalance(
        &self,
        base_consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                match self.stored_offsets_blocking() {
                    Some(stored) => {
                        let partitions: Vec<(String, i32)> = tpl
                            .elements()
                            .iter()
                            .map(|e| (e.topic().to_owned(), e.partition()))
                            .collect();
                        let mut at = BTreeMap::new();
                        for (topic, partition) in partitions {
                            let offset = match stored.get(&partition) {
                                Some(&next) if topic == self.topic => Offset::Offset(next),
                                _ => Offset::Beginning,
                            };
                            at.insert(partition, format!("{offset:?}"));
                            if let Err(error) = tpl.set_partition_offset(&topic, partition, offset)
                            {
                                tracing::error!(%error, partition, "cannot set the start offset");
                            }
                        }
                        tracing::info!(group = %self.group, partitions = ?at,
                            "partitions assigned at the offsets stored in Postgres");
                        base_consumer.assign(tpl)
                    }
                    None => base_consumer.unassign(),
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(group = %self.group, partitions = tpl.count(), "partitions revoked");
                base_consumer.unassign()
            }
            other => {
                tracing::warn!(group = %self.group, error = ?other, "rebalance error");
                base_consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::error!(group = %self.group, %error, "applying the assignment failed");
        }
    }
}

impl AssignContext {
    /// The stored offsets, read on a thread of its own (the callback is synchronous); retried
    /// until Postgres answers. `None` once shutdown has begun.
    fn stored_offsets_blocking(&self) -> Option<HashMap<i32, i64>> {
        let mut delay = self.retry_initial;
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return None;
            }
            let url = self.database_url.clone();
            let consumer_group = self.consumer_group.clone();
            let topic = self.topic.clone();
            let timeout = self.lookup_timeout;
            let lookup = move || {
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime
                        .block_on(crate::store::load_offsets(
                            &url,
                            &consumer_group,
                            &topic,
                            timeout,
                        ))
                        .map_err(|e| e.to_string())
                })
                .join()
                .unwrap_or_else(|_| Err("offset lookup thread panicked".into()))
            };
            let on_multi_thread = tokio::runtime::Handle::try_current()
                .map(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
                .unwrap_or(false);
            let result = if on_multi_thread {
                tokio::task::block_in_place(lookup)
            } else {
                lookup()
            };
            match result {
                Ok(stored) => return Some(stored),
                Err(error) => {
                    metrics::retry(&self.group, "postgres");
                    tracing::warn!(group = %self.group, %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "cannot read stored offsets for the assignment; retrying");
                    let until = Instant::now() + delay;
                    while Instant::now() < until && !self.stopping.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    delay = (delay * 2).min(self.retry_max);
                }
            }
        }
    }
}
