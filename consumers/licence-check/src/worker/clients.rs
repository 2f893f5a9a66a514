//! The group's two Kafka clients, from the service's client factory: the transactional
//! producer and the consumer group member, with the settings exactly-once relies on.

use dakoku_kafka::{ClientBuilder, ClientFactory};
use dakoku_schemas::ConsumerGroup;
use rdkafka::consumer::BaseConsumer;

use super::context::GroupContext;
use super::produce::TxProducer;
use crate::config::Config;

/// The group's transactional producer.
pub(super) fn producer(
    kafka: &ClientFactory,
    config: &Config,
    group: &ConsumerGroup,
    transactional_id: &str,
) -> dakoku_kafka::Result<TxProducer> {
    producer_settings(kafka, config, group, transactional_id).create()
}

/// The group's consumer, in the group `licence-check.<group>`.
pub(super) fn consumer(
    kafka: &ClientFactory,
    config: &Config,
    group: &ConsumerGroup,
    context: GroupContext,
) -> dakoku_kafka::Result<BaseConsumer<GroupContext>> {
    consumer_settings(kafka, config, group).create_with_context(context)
}

/// Acks from every in-sync replica, idempotent, `transactional.id` of this instance (so a
/// restart fences its zombie), and the broker's abort timeout from the configuration.
fn producer_settings(
    kafka: &ClientFactory,
    config: &Config,
    group: &ConsumerGroup,
    transactional_id: &str,
) -> ClientBuilder {
    kafka
        .transactional_producer(group.name(), transactional_id)
        .set(
            "transaction.timeout.ms",
            config.transaction_timeout_ms.to_string(),
        )
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
}

/// A group member: `read_committed`, offsets committed only through the producer's
/// transactions, eager round-robin rebalancing (a revoke takes every partition, so aborting
/// the whole open transaction is exactly right), a new group starting at the beginning of the
/// backlog, and statistics for the lag gauges.
fn consumer_settings(
    kafka: &ClientFactory,
    config: &Config,
    group: &ConsumerGroup,
) -> ClientBuilder {
    kafka
        .group_member(group.name(), group.name())
        // Static membership: a restarted instance takes its partitions back at once instead
        // of waiting for the session timeout of its dead predecessor.
        .set("group.instance.id", config.instance_id())
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set("statistics.interval.ms", "5000")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut config = Config::new(
            "k1:9092",
            "postgres://x@127.0.0.1/x",
            &["g1".parse().expect("group")],
        );
        config.instance_id = Some("pod-0".into());
        config
    }

    fn check(settings: &ClientBuilder, expected: &[(&str, &str)]) {
        for (key, value) in expected {
            assert_eq!(settings.get(key), Some(*value), "{key}");
        }
    }

    #[test]
    fn the_producer_is_transactional_with_this_instances_id() {
        let config = config();
        let group = ConsumerGroup::LicenceCheck("g1".parse().expect("group"));
        let id = config.transactional_id(&"g1".parse().expect("group"));
        let settings = producer_settings(&ClientFactory::new("k1:9092"), &config, &group, &id);
        check(
            &settings,
            &[
                ("bootstrap.servers", "k1:9092"),
                ("client.id", "licence-check.g1"),
                ("transactional.id", "licence-check.g1.pod-0"),
                ("transaction.timeout.ms", "60000"),
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", "5"),
                ("compression.type", "lz4"),
            ],
        );
    }

    #[test]
    fn the_consumer_is_a_static_read_committed_member_that_never_autocommits() {
        let config = config();
        let group = ConsumerGroup::LicenceCheck("g1".parse().expect("group"));
        let settings = consumer_settings(&ClientFactory::new("k1:9092"), &config, &group);
        check(
            &settings,
            &[
                ("bootstrap.servers", "k1:9092"),
                ("client.id", "licence-check.g1"),
                ("group.id", "licence-check.g1"),
                ("group.instance.id", "pod-0"),
                ("session.timeout.ms", "45000"),
                ("partition.assignment.strategy", "roundrobin"),
                ("isolation.level", "read_committed"),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                ("statistics.interval.ms", "5000"),
            ],
        );
    }
}
