//! Reading the stack's topics as tests check them: from the beginning until a condition holds,
//! everything up to the current end (with either isolation level), and a group's committed
//! offsets.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use dakoku_kafka::rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use dakoku_kafka::rdkafka::error::KafkaError;
use dakoku_kafka::rdkafka::message::Message as _;
use dakoku_kafka::rdkafka::{Offset, TopicPartitionList};
use dakoku_kafka::{Admin, LogContext};

use crate::stack::Stack;
use crate::wait::unique_suffix;

/// A record read back from Kafka.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its key as text.
    pub key: String,
    /// Its value.
    pub payload: Vec<u8>,
}

/// Reads `topic` from the beginning (read_committed), handing each record to `done` (which
/// keeps its own tally, so reading stays linear) until it returns true, or fails after
/// `deadline`. Returns every record read.
pub async fn read_topic(
    stack: &Stack,
    topic: &str,
    deadline: Duration,
    mut done: impl FnMut(&Record) -> bool,
) -> anyhow::Result<Vec<Record>> {
    let consumer: StreamConsumer<LogContext> = stack
        .kafka()
        .client("e2e-reader")
        .set("group.id", format!("e2e-reader-{}", unique_suffix()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut records = Vec::new();
    let until = tokio::time::Instant::now() + deadline;
    loop {
        match tokio::time::timeout_at(until, consumer.recv()).await {
            Ok(message) => {
                let message = message?;
                let record = Record {
                    key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                    payload: message.payload().unwrap_or_default().to_vec(),
                };
                let finished = done(&record);
                records.push(record);
                if finished {
                    break;
                }
            }
            Err(_) => bail!(
                "timed out after {deadline:?} reading {topic}: {} records so far",
                records.len()
            ),
        }
    }
    Ok(records)
}

/// Reads everything currently in `topic` (up to the high watermarks at call time).
pub async fn read_all(stack: &Stack, topic: &str) -> anyhow::Result<Vec<Record>> {
    let admin = Admin::new(&stack.kafka(), "e2e-reader", Duration::from_secs(10))?;
    let total: usize = admin
        .watermarks(topic)?
        .values()
        .map(|&(low, high)| usize::try_from(high - low).unwrap_or(0))
        .sum();
    if total == 0 {
        return Ok(Vec::new());
    }
    let mut seen = 0;
    read_topic(stack, topic, Duration::from_secs(30), |_| {
        seen += 1;
        seen >= total
    })
    .await
}

/// A record as [`read_to_end`] returns it: (partition, key, value).
pub type Keyed = (i32, String, Option<Vec<u8>>);

/// Records of `topic` read from the beginning to the current end, as a consumer with
/// `isolation` (`read_committed` or `read_uncommitted`) sees them: (partition, key, value).
pub async fn read_to_end(
    stack: &Stack,
    topic: &str,
    isolation: &str,
) -> anyhow::Result<Vec<Keyed>> {
    let stack = stack.clone();
    let topic = topic.to_owned();
    let isolation = isolation.to_owned();
    tokio::task::spawn_blocking(move || read_to_end_blocking(&stack, &topic, &isolation)).await?
}

fn read_to_end_blocking(stack: &Stack, topic: &str, isolation: &str) -> anyhow::Result<Vec<Keyed>> {
    let consumer: BaseConsumer<LogContext> = stack
        .kafka()
        .client("e2e-end")
        .set("group.id", format!("e2e-end-{}", unique_suffix()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut open: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if open.is_empty() {
        bail!("topic {topic} has no partitions");
    }
    // The end at call time; the position of a read_committed reader moves past transaction
    // markers, so it reaches the end even while transactions keep coming (partition EOF may
    // not).
    let mut ends = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in &open {
        let (_, high) = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10))?;
        ends.insert(*partition, high);
        assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut records = Vec::new();
    while !open.is_empty() {
        if std::time::Instant::now() > deadline {
            bail!("reading {topic} to its end took over 60 s");
        }
        for element in consumer.position()?.elements() {
            if let (Offset::Offset(position), Some(end)) =
                (element.offset(), ends.get(&element.partition()))
                && position >= *end
            {
                open.retain(|p| *p != element.partition());
            }
        }
        if open.is_empty() {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => open.retain(|x| *x != p),
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(message)) => records.push((
                message.partition(),
                String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                message.payload().map(<[u8]>::to_vec),
            )),
        }
    }
    Ok(records)
}

/// The next offset committed by `consumer_group` on each partition of `topic` (absent when
/// nothing is committed).
pub async fn committed_offsets(
    stack: &Stack,
    consumer_group: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<HashMap<i32, i64>> {
    let stack = stack.clone();
    let consumer_group = consumer_group.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let admin = Admin::new(&stack.kafka(), "e2e-offsets", Duration::from_secs(10))?;
        let partitions: Vec<i32> = (0..partitions).collect();
        let committed = admin
            .committed_offsets(&consumer_group, &topic, &partitions)
            .context("committed offsets")?;
        Ok(committed.into_iter().collect())
    })
    .await?
}
