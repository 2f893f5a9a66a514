//! The operation behind `punchctl replay`: move a consumer group of one tenant group back to the start of its log,
//! or to a moment, so that the consumer processes those records again when it next starts
//! (DESIGN "Recovery": replay = reset a consumer group and let idempotent consumers run).
//!
//! - **licence-check** keeps its position in its Kafka consumer group `licence-check.<group>`
//!   (committed inside its transactions): the new offsets are committed there. Re-checking
//!   gives one more verdict per raw record read again, with the same `punch_id`, judged on the
//!   current master data; attendance counts each punch once, by its latest verdict.
//! - **attendance** keeps its position in Postgres `consumer_offsets`, which it seeks to on
//!   every assignment (its Kafka commits are advisory): those rows are rewritten, under the
//!   lock every batch of the group takes, and the same offsets are committed to Kafka for lag
//!   monitoring. Re-applying finds every punch stored: nothing changes, nothing is published.
//!
//! Safety:
//! - Refused while the consumer group has live members, naming them ([`ensure_idle`]). The
//!   broker enforces the same for the commit (a commit from outside a non-empty group fails),
//!   so a consumer starting between the check and the commit fails the replay, not the data.
//! - A partition never moves forward: a target past the consumer's position would skip
//!   records never processed, so such a partition stays where it is. A partition with nothing
//!   committed stays too: its consumer starts at the beginning anyway.
//! - `--from earliest` is the first offset still in the log; a moment is the first record
//!   whose timestamp (the producer's create time) is at or after it; a partition with no such
//!   record goes to its end (nothing to process again).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, SecondsFormat};
use clap::ValueEnum;
use dakoku_schemas::{ConsumerGroup, GroupId, Topic};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// What to replay: the consumer, its group and where from.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// licence-check or attendance.
    pub consumer: ConsumerKind,
    /// The tenant group.
    pub group: GroupId,
    /// Where to replay from.
    pub from: ReplayFrom,
    /// Longest wait for any one Kafka or Postgres operation.
    pub timeout: Duration,
}

/// The consumers whose group can be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsumerKind {
    /// Raw punches to licence verdicts (`punches.raw.<group>` -> `punches.checked.<group>`).
    LicenceCheck,
    /// Licence verdicts to attendance in Postgres (`punches.checked.<group>`).
    Attendance,
}

impl ConsumerKind {
    /// The consumer's name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ConsumerKind::LicenceCheck => "licence-check",
            ConsumerKind::Attendance => "attendance",
        }
    }

    /// Its consumer group for `group`.
    pub fn consumer_group(self, group: &GroupId) -> String {
        match self {
            ConsumerKind::LicenceCheck => ConsumerGroup::LicenceCheck(group.clone()),
            ConsumerKind::Attendance => ConsumerGroup::Attendance(group.clone()),
        }
        .name()
    }

    /// The topic it reads for `group`.
    pub fn topic(self, group: &GroupId) -> Topic {
        match self {
            ConsumerKind::LicenceCheck => Topic::Raw(group.clone()),
            ConsumerKind::Attendance => Topic::Checked(group.clone()),
        }
    }
}

impl std::fmt::Display for ConsumerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// The first offset still in the log.
    Earliest,
    /// The first record produced at or after this moment.
    At(DateTime<FixedOffset>),
}

impl FromStr for ReplayFrom {
    type Err = String;

    /// `earliest` or an RFC 3339 moment.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("earliest") {
            return Ok(ReplayFrom::Earliest);
        }
        DateTime::parse_from_rfc3339(s)
            .map(ReplayFrom::At)
            .map_err(|_| {
                format!("{s:?} is neither `earliest` nor an RFC 3339 moment like 2020-12-04T08:45:00+09:00")
            })
    }
}

impl std::fmt::Display for ReplayFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayFrom::Earliest => f.write_str("the start of the log"),
            ReplayFrom::At(at) => f.write_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

/// A live member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member id the coordinator gave it.
    pub id: String,
    /// Its Kafka `client.id`.
    pub client_id: String,
    /// The host it connects from.
    pub host: String,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (client {} on {})",
            self.id,
            self.client_id,
            self.host.trim_start_matches('/')
        )
    }
}

fn members_text(members: &[Member]) -> String {
    members
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a replay (or the group check of a rebuild) did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The consumer group has live members: its consumer is running. Stop it first.
    #[error(
        "consumer group {consumer_group} has {} live member(s): {}. Stop the {consumer} consumer of group {group} first (every process running it), then run this again; a stopped licence-check instance stays a member until its session timeout (45 s by default) because it uses static membership",
        .members.len(), members_text(.members)
    )]
    LiveMembers {
        /// The consumer group.
        consumer_group: String,
        /// Whose group it is.
        consumer: ConsumerKind,
        /// The tenant group.
        group: GroupId,
        /// Its members.
        members: Vec<Member>,
    },
    /// The topic does not exist.
    #[error("topic {0} does not exist; create it with `punchctl topics create --group <group>`")]
    NoTopic(String),
    /// Kafka failed; `doing` says at which step. Nothing was changed unless it says so.
    #[error("{doing}: {source}")]
    Kafka {
        /// The step.
        doing: String,
        /// What Kafka said.
        #[source]
        source: KafkaError,
    },
    /// The commit was refused, e.g. because a consumer of the group started meanwhile.
    #[error(
        "committing the new offsets of {consumer_group} failed, nothing was changed: {source}. If a consumer of the group started meanwhile, stop it and run again"
    )]
    Commit {
        /// The consumer group.
        consumer_group: String,
        /// What Kafka said.
        #[source]
        source: KafkaError,
    },
    /// attendance's stored offsets moved between the plan and the change: a consumer wrote a
    /// batch. Nothing was changed.
    #[error(
        "the offsets of {0} in Postgres moved while the replay was prepared (is an attendance consumer running?); nothing was changed, run again"
    )]
    OffsetsMoved(String),
    /// Postgres failed.
    #[error("Postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// Connecting to Postgres failed.
    #[error(transparent)]
    Connect(#[from] dakoku_store::StoreError),
    /// A blocking Kafka task panicked (a bug).
    #[error("a Kafka task failed: {0}")]
    Task(String),
}

fn kafka(doing: impl Into<String>) -> impl FnOnce(KafkaError) -> ReplayError {
    let doing = doing.into();
    move |source| ReplayError::Kafka { doing, source }
}

/// Runs blocking Kafka work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ReplayError> + Send + 'static,
) -> Result<T, ReplayError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ReplayError::Task(e.to_string()))?
}

fn client(brokers: &str, group_id: Option<&str>) -> Result<BaseConsumer, ReplayError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "punchctl-replay")
        .set("enable.auto.commit", "false");
    if let Some(group_id) = group_id {
        config.set("group.id", group_id);
    }
    config.create().map_err(kafka("creating a Kafka client"))
}

/// The live members of `consumer_group` (none when it is empty or unknown).
pub async fn live_members(
    brokers: &str,
    consumer_group: &str,
    timeout: Duration,
) -> Result<Vec<Member>, ReplayError> {
    let (brokers, consumer_group) = (brokers.to_owned(), consumer_group.to_owned());
    blocking(move || {
        let consumer = client(&brokers, None)?;
        let list = consumer
            .fetch_group_list(Some(&consumer_group), timeout)
            .map_err(kafka(format!("describing consumer group {consumer_group}")))?;
        Ok(list
            .groups()
            .iter()
            .filter(|g| g.name() == consumer_group)
            .flat_map(|g| g.members())
            .map(|m| Member {
                id: m.id().to_owned(),
                client_id: m.client_id().to_owned(),
                host: m.client_host().to_owned(),
            })
            .collect())
    })
    .await
}

/// Fails with [`ReplayError::LiveMembers`] while `consumer`'s group of `group` has members.
pub async fn ensure_idle(
    brokers: &str,
    consumer: ConsumerKind,
    group: &GroupId,
    timeout: Duration,
) -> Result<(), ReplayError> {
    let consumer_group = consumer.consumer_group(group);
    let members = live_members(brokers, &consumer_group, timeout).await?;
    if members.is_empty() {
        return Ok(());
    }
    Err(ReplayError::LiveMembers {
        consumer_group,
        consumer,
        group: group.clone(),
        members,
    })
}

/// One partition's reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionReset {
    /// The partition.
    pub partition: i32,
    /// Its first offset in the log.
    pub low: i64,
    /// Its end now.
    pub end: i64,
    /// The consumer's next offset now (`None`: nothing committed; it starts at the beginning).
    pub current: Option<i64>,
    /// The offset `--from` names.
    pub target: i64,
}

impl PartitionReset {
    /// The offset to set, or `None` to leave the partition where it is (nothing committed, or
    /// the target is not before the current position: never skip forward).
    pub fn new_offset(&self) -> Option<i64> {
        match self.current {
            Some(current) if self.target < current => Some(self.target),
            _ => None,
        }
    }

    /// Records that will be processed again.
    pub fn records(&self) -> u64 {
        match (self.current, self.new_offset()) {
            (Some(current), Some(new)) => u64::try_from(current - new).unwrap_or(0),
            _ => 0,
        }
    }
}

/// What a replay does (or did).
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    /// The consumer.
    pub consumer: ConsumerKind,
    /// The tenant group.
    pub group: GroupId,
    /// Its consumer group.
    pub consumer_group: String,
    /// The topic it reads.
    pub topic: String,
    /// Where from.
    pub from: ReplayFrom,
    /// Every partition.
    pub partitions: Vec<PartitionReset>,
}

impl ReplayPlan {
    /// Records that will be processed again.
    pub fn records(&self) -> u64 {
        self.partitions.iter().map(PartitionReset::records).sum()
    }

    /// The partitions that move.
    pub fn moves(&self) -> BTreeMap<i32, i64> {
        self.partitions
            .iter()
            .filter_map(|p| p.new_offset().map(|new| (p.partition, new)))
            .collect()
    }
}

/// Reads the plan: partitions, watermarks, targets and current positions. Changes nothing.
pub async fn plan(
    request: &ReplayRequest,
    brokers: &str,
    database_url: &str,
) -> Result<ReplayPlan, ReplayError> {
    let timeout = request.timeout;
    let consumer_group = request.consumer.consumer_group(&request.group);
    let topic = request.consumer.topic(&request.group).name();
    let (kafka_brokers, kafka_topic, kafka_group) =
        (brokers.to_owned(), topic.clone(), consumer_group.clone());
    let (from, kind) = (request.from, request.consumer);
    let (marks, targets, committed) = blocking(move || {
        let consumer = client(&kafka_brokers, Some(&kafka_group))?;
        let metadata = consumer
            .fetch_metadata(Some(&kafka_topic), timeout)
            .map_err(kafka(format!("reading the metadata of {kafka_topic}")))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == kafka_topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(ReplayError::NoTopic(kafka_topic));
        }
        let mut marks = BTreeMap::new();
        for &partition in &partitions {
            let watermarks = consumer
                .fetch_watermarks(&kafka_topic, partition, timeout)
                .map_err(kafka(format!("reading the offsets of {kafka_topic}")))?;
            marks.insert(partition, watermarks);
        }
        let targets = match from {
            ReplayFrom::Earliest => marks.iter().map(|(p, (low, _))| (*p, *low)).collect(),
            ReplayFrom::At(at) => offsets_at(
                &consumer,
                &kafka_topic,
                &marks,
                at.timestamp_millis(),
                timeout,
            )?,
        };
        let committed = match kind {
            ConsumerKind::LicenceCheck => {
                committed_offsets(&consumer, &kafka_topic, &partitions, timeout)?
            }
            // attendance's positions are in Postgres (below).
            ConsumerKind::Attendance => HashMap::new(),
        };
        Ok((marks, targets, committed))
    })
    .await?;
    let current = match request.consumer {
        ConsumerKind::LicenceCheck => committed,
        ConsumerKind::Attendance => {
            let client = dakoku_store::connect(database_url).await?;
            stored_offsets(&client, &consumer_group, &topic).await?
        }
    };
    let partitions = marks
        .iter()
        .map(|(&partition, &(low, end))| PartitionReset {
            partition,
            low,
            end,
            current: current.get(&partition).copied(),
            target: targets.get(&partition).copied().unwrap_or(end),
        })
        .collect();
    Ok(ReplayPlan {
        consumer: request.consumer,
        group: request.group.clone(),
        consumer_group,
        topic,
        from: request.from,
        partitions,
    })
}

/// Each partition's first offset whose timestamp is at or after `millis`; its end when none.
fn offsets_at(
    consumer: &BaseConsumer,
    topic: &str,
    marks: &BTreeMap<i32, (i64, i64)>,
    millis: i64,
    timeout: Duration,
) -> Result<HashMap<i32, i64>, ReplayError> {
    let mut query = TopicPartitionList::new();
    for &partition in marks.keys() {
        query
            .add_partition_offset(topic, partition, Offset::Offset(millis))
            .map_err(kafka("building the timestamp query"))?;
    }
    let found = consumer
        .offsets_for_times(query, timeout)
        .map_err(kafka(format!("looking up offsets by time in {topic}")))?;
    Ok(found
        .elements()
        .iter()
        .map(|e| {
            let end = marks.get(&e.partition()).map_or(0, |(_, end)| *end);
            let offset = match e.offset() {
                Offset::Offset(offset) => offset,
                // No record at or after the moment: nothing to process again.
                _ => end,
            };
            (e.partition(), offset)
        })
        .collect())
}

/// The Kafka group's committed next offsets (absent: nothing committed).
fn committed_offsets(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
) -> Result<HashMap<i32, i64>, ReplayError> {
    let mut tpl = TopicPartitionList::new();
    for &partition in partitions {
        tpl.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(tpl, timeout)
        .map_err(kafka(format!("reading the committed offsets on {topic}")))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some((e.partition(), offset)),
            _ => None,
        })
        .collect())
}

async fn stored_offsets(
    client: &tokio_postgres::Client,
    consumer_group: &str,
    topic: &str,
) -> Result<HashMap<i32, i64>, ReplayError> {
    Ok(client
        .query(
            "SELECT partition, next_offset FROM consumer_offsets \
             WHERE consumer_group = $1 AND topic = $2",
            &[&consumer_group, &topic],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Commits `moves` for `consumer_group` without joining it; the broker refuses it unless the
/// group is empty.
fn commit(
    brokers: &str,
    consumer_group: &str,
    topic: &str,
    moves: &BTreeMap<i32, i64>,
) -> Result<(), ReplayError> {
    let consumer = client(brokers, Some(consumer_group))?;
    let mut tpl = TopicPartitionList::new();
    for (&partition, &offset) in moves {
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(kafka("building the commit"))?;
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|source| ReplayError::Commit {
            consumer_group: consumer_group.to_owned(),
            source,
        })
}

/// Applies `plan`: for licence-check the Kafka commit; for attendance the Postgres offsets
/// (compare-and-set under the group's lock) and the advisory Kafka commit. Either way, in one
/// Postgres transaction that rolls back if the commit is refused, the replayed ranges are
/// recorded in `consumer_replays` (what `punchctl audit` allows as extra verdicts, and the
/// operator's record of what was replayed).
pub async fn apply(
    plan: &ReplayPlan,
    brokers: &str,
    database_url: &str,
) -> Result<(), ReplayError> {
    let moves = plan.moves();
    if moves.is_empty() {
        return Ok(());
    }
    let (brokers, consumer_group, topic) = (
        brokers.to_owned(),
        plan.consumer_group.clone(),
        plan.topic.clone(),
    );
    let mut client = dakoku_store::connect(database_url).await?;
    let tx = client.transaction().await?;
    if plan.consumer == ConsumerKind::Attendance {
        // The lock every batch of the group takes: no batch interleaves with the change.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&consumer_group],
        )
        .await?;
    }
    for reset in &plan.partitions {
        let (Some(current), Some(new)) = (reset.current, reset.new_offset()) else {
            continue;
        };
        if plan.consumer == ConsumerKind::Attendance {
            let changed = tx
                .execute(
                    "UPDATE consumer_offsets SET next_offset = $4, updated_at = now() \
                     WHERE consumer_group = $1 AND topic = $2 AND partition = $3 \
                     AND next_offset = $5",
                    &[&consumer_group, &topic, &reset.partition, &new, &current],
                )
                .await?;
            if changed != 1 {
                return Err(ReplayError::OffsetsMoved(consumer_group));
            }
        }
        tx.execute(
            "INSERT INTO consumer_replays (consumer_group, topic, partition, from_offset, \
             to_offset) VALUES ($1, $2, $3, $4, $5)",
            &[&consumer_group, &topic, &reset.partition, &new, &current],
        )
        .await?;
    }
    blocking(move || commit(&brokers, &consumer_group, &topic, &moves)).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reset(current: Option<i64>, target: i64) -> PartitionReset {
        PartitionReset {
            partition: 0,
            low: 0,
            end: 100,
            current,
            target,
        }
    }

    #[test]
    fn a_partition_moves_back_never_forward() {
        assert_eq!(reset(Some(80), 30).new_offset(), Some(30));
        assert_eq!(reset(Some(80), 30).records(), 50);
        assert_eq!(reset(Some(20), 30).new_offset(), None, "would skip 20..30");
        assert_eq!(reset(Some(30), 30).new_offset(), None);
        assert_eq!(
            reset(None, 0).new_offset(),
            None,
            "starts at the beginning anyway"
        );
        assert_eq!(reset(Some(20), 30).records(), 0);
    }

    #[test]
    fn from_is_earliest_or_a_moment() {
        assert_eq!("earliest".parse::<ReplayFrom>(), Ok(ReplayFrom::Earliest));
        let at = "2020-12-04T08:45:00+09:00"
            .parse::<ReplayFrom>()
            .expect("moment");
        assert_eq!(at.to_string(), "2020-12-04T08:45:00+09:00");
        assert!("yesterday".parse::<ReplayFrom>().is_err());
    }
}
