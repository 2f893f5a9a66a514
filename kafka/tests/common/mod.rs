//! Set-up shared by the integration tests: the running broker, unique names, topics.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dakoku_kafka::{Admin, ClientFactory, KafkaArgs, TopicSpec};
use rdkafka::producer::{BaseRecord, Producer};

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The broker of `scripts/stack env` (`KAFKA_BROKERS`), the local stack's by default.
pub fn factory() -> ClientFactory {
    let brokers =
        std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| dakoku_kafka::DEFAULT_BROKERS.into());
    KafkaArgs::new(brokers)
        .factory()
        .expect("no properties file")
}

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .subsec_nanos();
    format!("test.kafka.{prefix}.{}.{nanos:08x}", std::process::id())
}

pub fn admin(factory: &ClientFactory) -> Admin {
    Admin::new(factory, "dakoku-kafka-test", TIMEOUT).expect("admin client")
}

pub fn spec(name: &str, partitions: i32) -> TopicSpec {
    TopicSpec {
        name: name.to_owned(),
        partitions,
        replication_factor: 1,
        configs: vec![("retention.ms".into(), "-1".into())],
    }
}

/// Creates `name` with `partitions` partitions.
pub async fn topic(admin: &Admin, name: &str, partitions: i32) {
    admin
        .create_topics(&[spec(name, partitions)])
        .await
        .expect("topic created");
}

/// Writes `values` to `partition` of `topic` in one transaction, committed or aborted.
pub fn write_txn(
    factory: &ClientFactory,
    topic: &str,
    partition: i32,
    values: &[&str],
    commit: bool,
) {
    let producer: dakoku_kafka::ThreadedProducer = factory
        .transactional_producer("dakoku-kafka-test", unique("txn"))
        .create()
        .expect("producer");
    producer.init_transactions(TIMEOUT).expect("init");
    producer.begin_transaction().expect("begin");
    for value in values {
        producer
            .send(
                BaseRecord::<(), str>::to(topic)
                    .partition(partition)
                    .payload(*value),
            )
            .map_err(|(e, _)| e)
            .expect("enqueued");
    }
    if commit {
        producer.commit_transaction(TIMEOUT).expect("commit");
    } else {
        producer.flush(TIMEOUT).expect("flush");
        producer.abort_transaction(TIMEOUT).expect("abort");
    }
}

/// Deletes test topics, ignoring failures (the names are unique anyway).
pub async fn cleanup(admin: &Admin, topics: &[&str]) {
    let _ = admin.delete_topics(topics).await;
}
