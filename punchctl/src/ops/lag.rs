//! The measurement behind `punchctl lag`: how far each Dakoku consumer is behind its input, per tenant group and
//! partition, and how long the oldest unprocessed record has been waiting.
//!
//! Two consumers per tenant group (DESIGN "Isolation and scale"):
//! - **licence-check** reads `punches.raw.<group>` in the Kafka consumer group
//!   `licence-check.<group>`; its position is the offset committed *in its transactions*
//!   (`send_offsets_to_transaction`), so Kafka's committed offset is the truth.
//! - **attendance** reads `punches.checked.<group>`; its position is the `consumer_offsets` row
//!   it writes in the same Postgres transaction as the punches (the consumer seeks there on
//!   assignment). Its Kafka group `attendance.<group>` is only committed afterwards, for
//!   monitoring, and may trail: the Postgres row is reported.
//!
//! Lag is `end - position` in offsets, where the end is the partition's high watermark and a
//! partition with nothing committed starts at its low watermark (`auto.offset.reset=earliest`).
//! `punches.checked` is written in transactions, whose commit markers take offsets too: a
//! partition whose only records after the position are markers is caught up and reported with
//! lag 0 (found by reading from the position, `read_committed`); otherwise the lag may count a
//! few markers (one per licence-check transaction).
//!
//! The **oldest unprocessed record** of a partition is the first committed record at its
//! position; its age is now minus its Kafka timestamp (when it entered the topic, i.e. how long
//! this stage has kept it waiting).
//!
//! The Kafka helpers here (topic partitions, watermarks, committed offsets) are shared with
//! the audit (`ops::audit`), which needs the same positions to bound what it may call missing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dakoku_schemas::{ConsumerGroup, GroupId, Topic};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

/// Errors of `lag` (and of the Kafka and Postgres reads the audit shares with it).
#[derive(Debug, thiserror::Error)]
pub enum LagError {
    /// Kafka failed; `doing` says at which step. Check that the broker is up
    /// (`scripts/stack status`) and `--brokers` / `KAFKA_BROKERS`.
    #[error("{doing}: {source}; is Kafka up (`scripts/stack status`) at --brokers?")]
    Kafka {
        /// The step.
        doing: String,
        /// What Kafka said.
        #[source]
        source: KafkaError,
    },
    /// A topic of the group does not exist. Create it: `punchctl topics create --group <group>`.
    #[error("topic {0} does not exist; create it with `punchctl topics create --group <group>`")]
    NoTopic(String),
    /// Connecting to Postgres failed.
    #[error(transparent)]
    Connect(#[from] dakoku_store::StoreError),
    /// A Postgres query failed. Check that the server is up and the schema migrated
    /// (`punchctl db migrate`).
    #[error(
        "Postgres query failed: {0}; is the server up (`scripts/stack status`) and the schema migrated (`punchctl db migrate`)?"
    )]
    Db(#[from] tokio_postgres::Error),
    /// No tenant group is registered (and none was given).
    #[error(
        "no tenant groups in master data; give --group or add a tenant (`punchctl tenant add`)"
    )]
    NoGroups,
    /// A blocking Kafka task panicked or was cancelled (a bug).
    #[error("the Kafka task failed: {0}")]
    Task(String),
}

pub(crate) fn kafka(doing: impl Into<String>) -> impl FnOnce(KafkaError) -> LagError {
    let doing = doing.into();
    move |source| LagError::Kafka { doing, source }
}

/// A consumer that reads by hand-assigned partitions: it never joins a group or commits
/// (the id is required anyway), and reads only committed transactions.
pub(crate) fn reader(brokers: &str, purpose: &str) -> Result<BaseConsumer, LagError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", format!("punchctl-{purpose}"))
        .set(
            "group.id",
            format!("punchctl-{purpose}.{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(kafka("creating a Kafka consumer"))
}

/// The partition ids of `topic`, sorted; [`LagError::NoTopic`] when it does not exist.
pub(crate) fn partitions(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, LagError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(kafka(format!("reading the metadata of {topic}")))?;
    let mut ids: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if ids.is_empty() {
        return Err(LagError::NoTopic(topic.to_owned()));
    }
    ids.sort_unstable();
    Ok(ids)
}

/// `(low, high)` watermarks of each partition.
pub(crate) fn watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
) -> Result<BTreeMap<i32, (i64, i64)>, LagError> {
    partitions
        .iter()
        .map(|&p| {
            consumer
                .fetch_watermarks(topic, p, timeout)
                .map(|w| (p, w))
                .map_err(kafka(format!("reading the offsets of {topic}")))
        })
        .collect()
}

/// The offsets `consumer_group` has committed on `topic` (absent: nothing committed). Only an
/// OffsetFetch: the consumer created here never joins the group, so running members are not
/// disturbed.
pub(crate) fn kafka_committed(
    brokers: &str,
    consumer_group: &str,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, LagError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "punchctl-positions")
        .set("group.id", consumer_group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(kafka("creating a Kafka consumer"))?;
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, timeout)
        .map_err(kafka(format!(
            "reading the committed offsets of {consumer_group} on {topic}"
        )))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

/// The next offsets the attendance consumer of `group` stored in Postgres (its real
/// positions), per partition of `punches.checked.<group>`.
pub(crate) async fn attendance_positions(
    client: &impl tokio_postgres::GenericClient,
    group: &GroupId,
) -> Result<BTreeMap<i32, i64>, LagError> {
    let rows = client
        .query(
            "SELECT partition, next_offset FROM consumer_offsets \
             WHERE consumer_group = $1 AND topic = $2",
            &[
                &ConsumerGroup::Attendance(group.clone()).name(),
                &Topic::Checked(group.clone()).name(),
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Which consumer a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// licence-check: `punches.raw.<group>` -> `punches.checked.<group>`.
    LicenceCheck,
    /// attendance: `punches.checked.<group>` -> Postgres.
    Attendance,
}

impl Stage {
    /// The stage's name as the services call themselves.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LicenceCheck => "licence-check",
            Self::Attendance => "attendance",
        }
    }
}

/// Where a consumer's positions were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionSource {
    /// Kafka's committed offsets of the consumer group.
    Kafka,
    /// The Postgres table `consumer_offsets`.
    Postgres,
}

/// One partition of a consumer's input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionLag {
    /// The partition.
    pub partition: i32,
    /// The next offset the consumer will read; `None` when it has committed nothing there
    /// (it starts at `low`).
    pub position: Option<i64>,
    /// The low watermark (first retained offset).
    pub low: i64,
    /// The high watermark (the offset the next record will get).
    pub high: i64,
    /// Records (offsets) not yet processed; 0 when only transaction markers remain.
    pub lag: i64,
    /// Kafka timestamp of the oldest unprocessed record, when there is one and it was read.
    pub oldest_at: Option<DateTime<Utc>>,
    /// Seconds the oldest unprocessed record has waited (now minus `oldest_at`).
    pub oldest_age_seconds: Option<f64>,
}

/// One consumer of one tenant group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerLag {
    /// Which stage.
    pub stage: Stage,
    /// Its consumer group (`licence-check.<group>`, `attendance.<group>`).
    pub consumer_group: String,
    /// The topic it reads.
    pub topic: String,
    /// Where its positions come from.
    pub positions_from: PositionSource,
    /// Per partition, sorted.
    pub partitions: Vec<PartitionLag>,
    /// Sum of the partitions' lag.
    pub total_lag: i64,
    /// The largest `oldest_age_seconds` of its partitions.
    pub oldest_age_seconds: Option<f64>,
}

/// The consumers of one tenant group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupLag {
    /// The tenant group.
    pub group: GroupId,
    /// licence-check then attendance; empty when `error` is set.
    pub consumers: Vec<ConsumerLag>,
    /// Why the group could not be measured (e.g. its topics are missing).
    pub error: Option<String>,
}

/// What `lag` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LagReport {
    /// When the measurement started.
    pub taken_at: DateTime<Utc>,
    /// One entry per tenant group, sorted.
    pub groups: Vec<GroupLag>,
}

impl LagReport {
    /// Every consumer of every group.
    pub fn consumers(&self) -> impl Iterator<Item = (&GroupId, &ConsumerLag)> {
        self.groups
            .iter()
            .flat_map(|g| g.consumers.iter().map(move |c| (&g.group, c)))
    }

    /// The consumer of `stage` in `group`.
    pub fn consumer(&self, group: &GroupId, stage: Stage) -> Option<&ConsumerLag> {
        self.consumers()
            .find(|(g, c)| *g == group && c.stage == stage)
            .map(|(_, c)| c)
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct LagRequest {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Postgres URL (attendance positions, the list of groups).
    pub database_url: String,
    /// These groups; every group of `tenant_groups` when empty.
    pub groups: Vec<GroupId>,
    /// Longest wait for one Kafka operation, and for reading the oldest records.
    pub timeout: Duration,
}

/// Measures the lag of every consumer of the requested groups.
///
/// A group whose topics are missing is reported with its `error` set; Kafka or Postgres being
/// unreachable is an error.
pub async fn measure(request: &LagRequest) -> Result<LagReport, LagError> {
    let taken_at = Utc::now();
    let client = dakoku_store::connect(&request.database_url).await?;
    let groups = if request.groups.is_empty() {
        let rows = client
            .query("SELECT group_id FROM tenant_groups ORDER BY group_id", &[])
            .await?;
        let groups: Vec<GroupId> = rows
            .iter()
            .filter_map(|r| r.get::<_, String>(0).parse().ok())
            .collect();
        if groups.is_empty() {
            return Err(LagError::NoGroups);
        }
        groups
    } else {
        let mut groups = request.groups.clone();
        groups.sort();
        groups.dedup();
        groups
    };
    let mut attendance = BTreeMap::new();
    for group in &groups {
        attendance.insert(group.clone(), attendance_positions(&client, group).await?);
    }
    let request = request.clone();
    tokio::task::spawn_blocking(move || measure_kafka(&request, groups, attendance, taken_at))
        .await
        .map_err(|e| LagError::Task(e.to_string()))?
}

fn measure_kafka(
    request: &LagRequest,
    groups: Vec<GroupId>,
    attendance: BTreeMap<GroupId, BTreeMap<i32, i64>>,
    taken_at: DateTime<Utc>,
) -> Result<LagReport, LagError> {
    let timeout = request.timeout;
    let metadata = reader(&request.brokers, "lag")?;
    let mut out = Vec::with_capacity(groups.len());
    for group in groups {
        let mut consumers = Vec::new();
        let mut error = None;
        for stage in [Stage::LicenceCheck, Stage::Attendance] {
            let (topic, consumer_group) = match stage {
                Stage::LicenceCheck => (
                    Topic::Raw(group.clone()).name(),
                    ConsumerGroup::LicenceCheck(group.clone()).name(),
                ),
                Stage::Attendance => (
                    Topic::Checked(group.clone()).name(),
                    ConsumerGroup::Attendance(group.clone()).name(),
                ),
            };
            let ids = match partitions(&metadata, &topic, timeout) {
                Ok(ids) => ids,
                Err(LagError::NoTopic(topic)) => {
                    error = Some(format!(
                        "topic {topic} does not exist; create it with `punchctl topics create --group {group}`"
                    ));
                    consumers.clear();
                    break;
                }
                Err(other) => return Err(other),
            };
            let marks = watermarks(&metadata, &topic, &ids, timeout)?;
            let (positions, positions_from) = match stage {
                Stage::LicenceCheck => (
                    kafka_committed(&request.brokers, &consumer_group, &topic, &ids, timeout)?,
                    PositionSource::Kafka,
                ),
                Stage::Attendance => (
                    attendance.get(&group).cloned().unwrap_or_default(),
                    PositionSource::Postgres,
                ),
            };
            let mut rows: Vec<PartitionLag> = marks
                .iter()
                .map(|(&partition, &(low, high))| {
                    let position = positions.get(&partition).copied();
                    let from = position.unwrap_or(low).max(low);
                    PartitionLag {
                        partition,
                        position,
                        low,
                        high,
                        lag: (high - from).max(0),
                        oldest_at: None,
                        oldest_age_seconds: None,
                    }
                })
                .collect();
            probe_oldest(&request.brokers, &topic, &mut rows, timeout)?;
            let total_lag = rows.iter().map(|r| r.lag).sum();
            let oldest_age_seconds = rows
                .iter()
                .filter_map(|r| r.oldest_age_seconds)
                .reduce(f64::max);
            consumers.push(ConsumerLag {
                stage,
                consumer_group,
                topic,
                positions_from,
                partitions: rows,
                total_lag,
                oldest_age_seconds,
            });
        }
        out.push(GroupLag {
            group,
            consumers,
            error,
        });
    }
    Ok(LagReport {
        taken_at,
        groups: out,
    })
}

/// Reads the first committed record at the position of every lagging partition: its timestamp
/// is the oldest unprocessed record's. A partition where the read reaches the end without a
/// record holds only transaction markers after the position: its lag becomes 0. A partition
/// not resolved within `timeout` (a transaction still open) keeps its offset lag, age unknown.
fn probe_oldest(
    brokers: &str,
    topic: &str,
    rows: &mut [PartitionLag],
    timeout: Duration,
) -> Result<(), LagError> {
    let mut open: BTreeMap<i32, i64> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for row in rows.iter().filter(|r| r.lag > 0) {
        let from = row.position.unwrap_or(row.low).max(row.low);
        tpl.add_partition_offset(topic, row.partition, Offset::Offset(from))
            .map_err(kafka("building the assignment"))?;
        open.insert(row.partition, row.high);
    }
    if open.is_empty() {
        return Ok(());
    }
    let consumer = reader(brokers, "lag")?;
    consumer
        .assign(&tpl)
        .map_err(kafka(format!("assigning {topic}")))?;
    let now = Utc::now();
    let deadline = Instant::now() + timeout;
    let mut last_position_check = Instant::now();
    while !open.is_empty() && Instant::now() < deadline {
        if last_position_check.elapsed() >= Duration::from_millis(100) {
            last_position_check = Instant::now();
            // A read_committed reader's position moves past markers: at the end with no
            // record seen, nothing but markers was left.
            let positions = consumer
                .position()
                .map_err(kafka(format!("reading the position in {topic}")))?;
            for element in positions.elements() {
                if let (Offset::Offset(position), Some(&end)) =
                    (element.offset(), open.get(&element.partition()))
                    && position >= end
                {
                    caught_up(rows, element.partition());
                    open.remove(&element.partition());
                }
            }
        }
        match consumer.poll(Duration::from_millis(50)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) if open.remove(&partition).is_some() => {
                caught_up(rows, partition);
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(error)) => return Err(kafka(format!("reading {topic}"))(error)),
            Some(Ok(message)) => {
                let partition = message.partition();
                if open.remove(&partition).is_none() {
                    continue;
                }
                let at = message
                    .timestamp()
                    .to_millis()
                    .and_then(DateTime::from_timestamp_millis);
                if let Some(row) = rows.iter_mut().find(|r| r.partition == partition) {
                    row.oldest_at = at;
                    row.oldest_age_seconds =
                        at.map(|at| (now - at).num_milliseconds().max(0) as f64 / 1_000.0);
                }
                // Stop fetching this partition.
                let mut one = TopicPartitionList::new();
                one.add_partition(topic, partition);
                let _ = consumer.pause(&one);
            }
        }
    }
    Ok(())
}

fn caught_up(rows: &mut [PartitionLag], partition: i32) {
    if let Some(row) = rows.iter_mut().find(|r| r.partition == partition) {
        row.lag = 0;
    }
}

/// The thresholds exceeded, as sentences.
pub fn breaches(report: &LagReport, max_lag: Option<i64>, max_age: Option<f64>) -> Vec<String> {
    let mut out = Vec::new();
    for (group, consumer) in report.consumers() {
        if let Some(max) = max_lag
            && consumer.total_lag > max
        {
            out.push(format!(
                "group {group}: {} is {} records behind on {} (limit {max})",
                consumer.consumer_group, consumer.total_lag, consumer.topic
            ));
        }
        if let (Some(max), Some(age)) = (max_age, consumer.oldest_age_seconds)
            && age > max
        {
            out.push(format!(
                "group {group}: the oldest record not yet processed by {} has waited {} (limit {max}s)",
                consumer.consumer_group,
                crate::output::human_duration(Duration::from_secs_f64(age))
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(stage: Stage, lag: i64, age: Option<f64>) -> ConsumerLag {
        ConsumerLag {
            stage,
            consumer_group: format!("{}.g1", stage.as_str()),
            topic: "t".into(),
            positions_from: PositionSource::Kafka,
            partitions: Vec::new(),
            total_lag: lag,
            oldest_age_seconds: age,
        }
    }

    #[test]
    fn thresholds_name_the_consumer_that_exceeds_them() {
        let report = LagReport {
            taken_at: Utc::now(),
            groups: vec![GroupLag {
                group: "g1".parse().expect("group"),
                consumers: vec![
                    consumer(Stage::LicenceCheck, 0, None),
                    consumer(Stage::Attendance, 120, Some(90.0)),
                ],
                error: None,
            }],
        };
        assert!(breaches(&report, None, None).is_empty());
        assert!(breaches(&report, Some(120), Some(90.0)).is_empty());
        let over = breaches(&report, Some(100), Some(60.0));
        assert_eq!(over.len(), 2, "{over:?}");
        assert!(
            over[0].contains("attendance.g1 is 120 records behind"),
            "{over:?}"
        );
        assert!(over[1].contains("1m 30s"), "{over:?}");
    }
}
