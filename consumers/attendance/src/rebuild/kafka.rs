//! The rebuild's Kafka side, through the `dakoku-kafka` factory: the topic's watermarks, the
//! quarantine producer, and the advisory commit of the group's offsets at the end. The replay
//! itself is the bounded scan (`read`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use dakoku_kafka::{Admin, ClientFactory, FutureProducer};
use dakoku_schemas::Topic;
use rdkafka::producer::FutureRecord;

use super::error::RebuildError;
use crate::decode::Poison;

/// The `client.id` of every client of the rebuild.
pub(super) const CLIENT_ID: &str = "punchctl-rebuild";

/// Each partition's (first offset, end offset) now.
pub(super) async fn watermarks(
    kafka: &ClientFactory,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<i32, (i64, i64)>, RebuildError> {
    let kafka = kafka.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let admin = Admin::new(&kafka, CLIENT_ID, timeout)?;
        admin.watermarks(&topic).map_err(|error| {
            if error.is_unknown_topic() {
                RebuildError::NoTopic(topic.clone())
            } else {
                RebuildError::Kafka(error)
            }
        })
    })
    .await
    .map_err(|e| RebuildError::Reader(e.to_string()))?
}

/// Commits `offsets` for `consumer_group` without joining it (accepted while it is empty).
pub(super) fn commit_group_offsets(
    kafka: &ClientFactory,
    consumer_group: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> dakoku_kafka::Result<()> {
    Admin::new(kafka, CLIENT_ID, timeout)?.commit_offsets(consumer_group, topic, offsets)
}

/// The producer of the replay's quarantine records.
pub(super) fn quarantine_producer(kafka: &ClientFactory) -> Result<FutureProducer, RebuildError> {
    Ok(kafka.idempotent_producer(CLIENT_ID).create()?)
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
