//! The rebuild's Kafka side: the topic's partitions and watermarks, the replay consumer
//! (assigned by hand, never joining the group), the quarantine producer, and the advisory
//! commit of the group's offsets at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use dakoku_schemas::Topic;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::error::{RebuildError, kafka};
use super::plan::{Plan, RebuildRequest};
use crate::decode::Poison;

/// Each partition's (first offset, end offset) now.
pub(super) async fn watermarks(
    request: &RebuildRequest,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, RebuildError> {
    let brokers = request.brokers.clone();
    let topic = topic.to_owned();
    let timeout = request.timeout;
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("client.id", "punchctl-rebuild")
            .create()
            .map_err(kafka("creating a metadata client"))?;
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .map_err(kafka(format!("reading the metadata of {topic}")))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(RebuildError::NoTopic(topic));
        }
        partitions
            .into_iter()
            .map(|partition| {
                consumer
                    .fetch_watermarks(&topic, partition, timeout)
                    .map(|marks| (partition, marks))
                    .map_err(kafka(format!("reading the offsets of {topic}")))
            })
            .collect()
    })
    .await
    .map_err(|e| RebuildError::Reader(e.to_string()))?
}

/// Commits `offsets` for `consumer_group` without joining it (accepted while it is empty).
pub(super) fn commit_group_offsets(
    brokers: &str,
    consumer_group: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> Result<(), KafkaError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "punchctl-rebuild")
        .set("group.id", consumer_group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for (partition, next) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
    }
    consumer.commit(&tpl, CommitMode::Sync)
}

/// The producer of the replay's quarantine records.
pub(super) fn quarantine_producer(brokers: &str) -> Result<FutureProducer, RebuildError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "punchctl-rebuild")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .map_err(kafka("creating the quarantine producer"))
}

/// The replay's consumer: every partition of the plan assigned by hand at its first offset.
pub(super) fn replay_consumer(brokers: &str, plan: &Plan) -> Result<StreamConsumer, RebuildError> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "punchctl-rebuild")
        // Never joins or commits: partitions are assigned by hand. The id is required.
        .set(
            "group.id",
            format!("punchctl-rebuild.{}.{}", plan.group, std::process::id()),
        )
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(kafka("creating the replay consumer"))?;
    let mut assignment = TopicPartitionList::new();
    for p in &plan.partitions {
        assignment
            .add_partition_offset(&plan.topic, p.partition, Offset::Offset(p.low))
            .map_err(kafka("building the assignment"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(kafka(format!("assigning {}", plan.topic)))?;
    Ok(consumer)
}

/// Sends `poison` to `punches.quarantine` with its origin, as the service does.
pub(super) async fn quarantine(
    producer: &FutureProducer,
    topic: &str,
    poison: &[Poison],
) -> Result<(), RebuildError> {
    let fail = |error: String| RebuildError::Quarantine {
        topic: topic.to_owned(),
        error,
    };
    let now = Utc::now().timestamp_millis();
    let quarantine_topic = Topic::Quarantine.name();
    let records = poison
        .iter()
        .map(|p| p.quarantine_record(topic, now))
        .collect::<Result<Vec<(String, Vec<u8>)>, String>>()
        .map_err(fail)?;
    let deliveries = records.iter().map(|(key, payload)| {
        let record = FutureRecord::to(&quarantine_topic)
            .key(key)
            .payload(payload);
        producer.send(record, Duration::from_secs(30))
    });
    for delivery in futures::future::join_all(deliveries).await {
        delivery.map_err(|(error, _)| fail(error.to_string()))?;
    }
    Ok(())
}
