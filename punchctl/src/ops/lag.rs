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
use dakoku_kafka::scan::{Next, scan};
use dakoku_kafka::{Admin, ClientFactory, Reader};
use dakoku_schemas::{ConsumerGroup, GroupId, Topic};
use rdkafka::consumer::Consumer as _;
use rdkafka::message::Message;
use serde::Serialize;

/// Errors of `lag` (and of the Kafka and Postgres reads the audit shares with it).
#[derive(Debug, thiserror::Error)]
pub enum LagError {
    /// Kafka failed; the error says at which step. Check that the broker is up
    /// (`scripts/stack status`) and `--brokers` / `KAFKA_BROKERS`.
    #[error("{0}; is Kafka up (`scripts/stack status`) at --brokers?")]
    Kafka(#[from] dakoku_kafka::Error),
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

/// The partition ids of `topic`, sorted; [`LagError::NoTopic`] when it does not exist.
pub(crate) fn partitions(admin: &Admin, topic: &str) -> Result<Vec<i32>, LagError> {
    admin.partitions(topic).map_err(|error| {
        if error.is_unknown_topic() {
            LagError::NoTopic(topic.to_owned())
        } else {
            LagError::Kafka(error)
        }
    })
}

/// The next offsets the attendance consumer of `group` stored in Postgres (its real
/// positions), per partition of `punches.checked.<group>`.
pub(crate) async fn attendance_positions(
    client: &impl tokio_postgres::GenericClient,
    group: &GroupId,
) -> Result<BTreeMap<i32, i64>, LagError> {
    let stored = dakoku_store::offsets::load(
        client,
        &ConsumerGroup::Attendance(group.clone()).name(),
        &Topic::Checked(group.clone()).name(),
    )
    .await?;
    Ok(stored.into_iter().collect())
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

/// Measures the lag of every consumer of the requested groups, with Kafka clients that have
/// nothing but `request.brokers` (see [`measure_with`]).
pub async fn measure(request: &LagRequest) -> Result<LagReport, LagError> {
    measure_with(&ClientFactory::new(request.brokers.as_str()), request).await
}

/// Measures the lag of every consumer of the requested groups, with clients from `kafka`.
///
/// A group whose topics are missing is reported with its `error` set; Kafka or Postgres being
/// unreachable is an error.
pub async fn measure_with(
    kafka: &ClientFactory,
    request: &LagRequest,
) -> Result<LagReport, LagError> {
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
    let (kafka, timeout) = (kafka.clone(), request.timeout);
    tokio::task::spawn_blocking(move || {
        measure_kafka(&kafka, timeout, groups, attendance, taken_at)
    })
    .await
    .map_err(|e| LagError::Task(e.to_string()))?
}

fn measure_kafka(
    kafka: &ClientFactory,
    timeout: Duration,
    groups: Vec<GroupId>,
    attendance: BTreeMap<GroupId, BTreeMap<i32, i64>>,
    taken_at: DateTime<Utc>,
) -> Result<LagReport, LagError> {
    let admin = Admin::new(kafka, "punchctl-lag", timeout)?;
    let reader: Reader = kafka.reader("punchctl-lag").create()?;
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
            let ids = match partitions(&admin, &topic) {
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
            let marks = dakoku_kafka::admin::watermarks(reader.client(), &topic, &ids, timeout)?;
            let (positions, positions_from) = match stage {
                Stage::LicenceCheck => (
                    admin.committed_offsets(&consumer_group, &topic, &ids)?,
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
            probe_oldest(&reader, &topic, &mut rows, timeout)?;
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
/// not resolved within `timeout` overall (a transaction still open) keeps its offset lag, age
/// unknown. One bounded scan per partition, so each is resolved on its own.
fn probe_oldest(
    reader: &Reader,
    topic: &str,
    rows: &mut [PartitionLag],
    timeout: Duration,
) -> Result<(), LagError> {
    let now = Utc::now();
    let deadline = Instant::now() + timeout;
    for row in rows.iter_mut().filter(|r| r.lag > 0) {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        let from = row.position.unwrap_or(row.low).max(row.low);
        let bounds = BTreeMap::from([(row.partition, (from, row.high))]);
        let mut first: Option<Option<DateTime<Utc>>> = None;
        let mut on = |message: &rdkafka::message::BorrowedMessage<'_>| {
            first = Some(
                message
                    .timestamp()
                    .to_millis()
                    .and_then(DateTime::from_timestamp_millis),
            );
            Next::Stop
        };
        match scan(reader, topic, &bounds, left, &mut on, &mut |_| {}) {
            Ok(_) => match first {
                Some(at) => {
                    row.oldest_at = at;
                    row.oldest_age_seconds =
                        at.map(|at| (now - at).num_milliseconds().max(0) as f64 / 1_000.0);
                }
                // The read_committed position reached the end with no record: only markers.
                None => row.lag = 0,
            },
            Err(dakoku_kafka::Error::Stalled { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
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
