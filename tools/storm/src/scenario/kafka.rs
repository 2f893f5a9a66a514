//! The Kafka side of a run: the consumers' lag and the removal of the group's topics.

use std::sync::Arc;
use std::time::Duration;

use dakoku_schemas::{ConsumerGroup, GroupId, Topic};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

/// Timeout of Kafka metadata, offset and admin calls.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the consumers' lag: the raw topic's end offsets against licence-check's committed
/// offsets, and the checked topic's against attendance's offsets in Postgres.
pub(super) struct LagReader {
    consumer: BaseConsumer,
    raw_topic: String,
    checked_topic: String,
    partitions: i32,
    attendance_group: String,
}

impl LagReader {
    pub(super) fn new(brokers: &str, group: &GroupId, partitions: i32) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            // Only to read that group's committed offsets; this client never joins it.
            .set(
                "group.id",
                ConsumerGroup::LicenceCheck(group.clone()).name(),
            )
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Self {
            consumer,
            raw_topic: Topic::Raw(group.clone()).name(),
            checked_topic: Topic::Checked(group.clone()).name(),
            partitions,
            attendance_group: ConsumerGroup::Attendance(group.clone()).name(),
        })
    }

    fn ends(&self, topic: &str) -> anyhow::Result<Vec<i64>> {
        (0..self.partitions)
            .map(|p| Ok(self.consumer.fetch_watermarks(topic, p, KAFKA_TIMEOUT)?.1))
            .collect()
    }

    /// `(licence-check lag, attendance lag)`.
    pub(super) async fn read(
        self: &Arc<Self>,
        db: &tokio_postgres::Client,
    ) -> anyhow::Result<(i64, i64)> {
        let this = Arc::clone(self);
        let (raw_ends, checked_ends, committed) = tokio::task::spawn_blocking(move || {
            let raw_ends = this.ends(&this.raw_topic)?;
            let checked_ends = this.ends(&this.checked_topic)?;
            let mut tpl = TopicPartitionList::new();
            for p in 0..this.partitions {
                tpl.add_partition(&this.raw_topic, p);
            }
            let committed = this.consumer.committed_offsets(tpl, KAFKA_TIMEOUT)?;
            let committed: Vec<i64> = (0..this.partitions)
                .map(|p| {
                    committed
                        .find_partition(&this.raw_topic, p)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        })
                        .unwrap_or(0)
                })
                .collect();
            anyhow::Ok((raw_ends, checked_ends, committed))
        })
        .await??;
        let stored = db
            .query(
                "SELECT partition, next_offset FROM consumer_offsets \
                 WHERE consumer_group = $1 AND topic = $2",
                &[&self.attendance_group, &self.checked_topic],
            )
            .await?;
        let mut stored_by_partition = vec![0i64; checked_ends.len()];
        for row in stored {
            let p: i32 = row.get(0);
            if let Some(slot) = usize::try_from(p)
                .ok()
                .and_then(|p| stored_by_partition.get_mut(p))
            {
                *slot = row.get(1);
            }
        }
        let raw_lag = raw_ends
            .iter()
            .zip(&committed)
            .map(|(end, c)| (end - c).max(0))
            .sum();
        let checked_lag = checked_ends
            .iter()
            .zip(&stored_by_partition)
            .map(|(end, s)| (end - s).max(0))
            .sum();
        Ok((raw_lag, checked_lag))
    }
}

pub(super) async fn delete_topics(brokers: &str, group: &GroupId) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let names: Vec<String> = Topic::for_group(group).iter().map(Topic::name).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    admin
        .delete_topics(
            &names,
            &AdminOptions::new().operation_timeout(Some(KAFKA_TIMEOUT)),
        )
        .await?;
    Ok(())
}
