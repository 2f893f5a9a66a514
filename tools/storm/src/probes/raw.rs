//! The raw topic read to its end: the probe tenants' records, leaks and missing controls.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::bail;

use dakoku_schemas::{RawPunch, Topic, decode};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use super::fixture::{ProbeEnv, ProbeFixture};

/// Reads the group's raw topic to its end: how many records the probe tenants have, those
/// that are not controls, and the controls not found.
pub(super) async fn raw_records(
    env: &ProbeEnv,
    fixture: &ProbeFixture,
    controls: &BTreeSet<(String, String, u64)>,
) -> anyhow::Result<(usize, Vec<String>, Vec<String>)> {
    let brokers = env.brokers.clone();
    let topic = Topic::Raw(env.group.clone()).name();
    let tenants = [fixture.tenant_a.to_string(), fixture.tenant_b.to_string()];
    let controls = controls.clone();
    tokio::task::spawn_blocking(
        move || -> anyhow::Result<(usize, Vec<String>, Vec<String>)> {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", "storm-probes-reader")
                .set("enable.auto.commit", "false")
                .create()?;
            let timeout = Duration::from_secs(10);
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            let mut assignment = TopicPartitionList::new();
            let mut ends = std::collections::HashMap::new();
            for &p in &partitions {
                let (low, high) = consumer.fetch_watermarks(&topic, p, timeout)?;
                if high > low {
                    ends.insert(p, high);
                    assignment.add_partition_offset(&topic, p, Offset::Beginning)?;
                }
            }
            consumer.assign(&assignment)?;
            let (mut found, mut leaked) = (0usize, Vec::new());
            let mut unseen = controls.clone();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !ends.is_empty() {
                if Instant::now() > deadline {
                    bail!("reading {topic} to its end took over 60 s");
                }
                let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let message = message?;
                if ends
                    .get(&message.partition())
                    .is_some_and(|end| message.offset() + 1 >= *end)
                {
                    ends.remove(&message.partition());
                }
                let Some(punch) = message.payload().and_then(|p| decode::<RawPunch>(p).ok()) else {
                    continue;
                };
                if !tenants.contains(&punch.tenant_id.to_string()) {
                    continue;
                }
                found += 1;
                let id = (
                    punch.tenant_id.to_string(),
                    punch.device_id.to_string(),
                    punch.seq,
                );
                if !controls.contains(&id) {
                    leaked.push(format!("{}/{}/{}", id.0, id.1, id.2));
                }
                unseen.remove(&id);
            }
            let missing = unseen
                .into_iter()
                .map(|(t, d, s)| format!("{t}/{d}/{s}"))
                .collect();
            Ok((found, leaked, missing))
        },
    )
    .await?
}
