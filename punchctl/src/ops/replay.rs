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

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, SecondsFormat};
use clap::ValueEnum;
use dakoku_kafka::{Admin, ClientFactory};
use dakoku_schemas::{ConsumerGroup, GroupId, Topic};

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
    /// Kafka failed; the error says at which step. Nothing was changed unless it says so.
    #[error(transparent)]
    Kafka(#[from] dakoku_kafka::Error),
    /// The commit was refused, e.g. because a consumer of the group started meanwhile.
    #[error(
        "committing the new offsets of {consumer_group} failed, nothing was changed: {source}. If a consumer of the group started meanwhile, stop it and run again"
    )]
    Commit {
        /// The consumer group.
        consumer_group: String,
        /// What Kafka said (boxed: a cold path that would size every `Result`).
        #[source]
        source: Box<dakoku_kafka::Error>,
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

/// Runs blocking Kafka work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ReplayError> + Send + 'static,
) -> Result<T, ReplayError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ReplayError::Task(e.to_string()))?
}

/// The `client.id` of the replay's Kafka clients.
const CLIENT_ID: &str = "punchctl-replay";

impl From<dakoku_kafka::Member> for Member {
    fn from(member: dakoku_kafka::Member) -> Self {
        Self {
            id: member.id,
            client_id: member.client_id,
            host: member.host,
        }
    }
}

/// The live members of `consumer_group` (none when it is empty or unknown), asked of
/// `brokers` with no other client property (see [`live_members_with`]).
pub async fn live_members(
    brokers: &str,
    consumer_group: &str,
    timeout: Duration,
) -> Result<Vec<Member>, ReplayError> {
    live_members_with(&ClientFactory::new(brokers), consumer_group, timeout).await
}

/// The live members of `consumer_group` (none when it is empty or unknown).
pub async fn live_members_with(
    kafka: &ClientFactory,
    consumer_group: &str,
    timeout: Duration,
) -> Result<Vec<Member>, ReplayError> {
    let (kafka, consumer_group) = (kafka.clone(), consumer_group.to_owned());
    blocking(move || {
        let members = Admin::new(&kafka, CLIENT_ID, timeout)?.members(&consumer_group)?;
        Ok(members.into_iter().map(Member::from).collect())
    })
    .await
}

/// Fails with [`ReplayError::LiveMembers`] while `consumer`'s group of `group` has members.
pub async fn ensure_idle(
    kafka: &ClientFactory,
    consumer: ConsumerKind,
    group: &GroupId,
    timeout: Duration,
) -> Result<(), ReplayError> {
    let consumer_group = consumer.consumer_group(group);
    let members = live_members_with(kafka, &consumer_group, timeout).await?;
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
    kafka: &ClientFactory,
    database_url: &str,
) -> Result<ReplayPlan, ReplayError> {
    let timeout = request.timeout;
    let consumer_group = request.consumer.consumer_group(&request.group);
    let topic = request.consumer.topic(&request.group).name();
    let (kafka, kafka_topic, kafka_group) = (kafka.clone(), topic.clone(), consumer_group.clone());
    let (from, kind) = (request.from, request.consumer);
    let (marks, targets, committed) = blocking(move || {
        let admin = Admin::new(&kafka, CLIENT_ID, timeout)?;
        let marks = admin.watermarks(&kafka_topic).map_err(|error| {
            if error.is_unknown_topic() {
                ReplayError::NoTopic(kafka_topic.clone())
            } else {
                ReplayError::Kafka(error)
            }
        })?;
        let targets: BTreeMap<i32, i64> = match from {
            ReplayFrom::Earliest => marks.iter().map(|(p, (low, _))| (*p, *low)).collect(),
            // A partition with no record at or after the moment goes to its end: nothing to
            // process again.
            ReplayFrom::At(at) => {
                admin.offsets_for_time(&kafka_topic, &marks, at.timestamp_millis())?
            }
        };
        let committed = match kind {
            ConsumerKind::LicenceCheck => {
                let partitions: Vec<i32> = marks.keys().copied().collect();
                admin.committed_offsets(&kafka_group, &kafka_topic, &partitions)?
            }
            // attendance's positions are in Postgres (below).
            ConsumerKind::Attendance => BTreeMap::new(),
        };
        Ok((marks, targets, committed))
    })
    .await?;
    let current = match request.consumer {
        ConsumerKind::LicenceCheck => committed,
        ConsumerKind::Attendance => {
            let client = dakoku_store::connect(database_url).await?;
            dakoku_store::offsets::load(&client, &consumer_group, &topic)
                .await?
                .into_iter()
                .collect()
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

/// Commits `moves` for `consumer_group` without joining it; the broker refuses it unless the
/// group is empty.
fn commit(
    kafka: &ClientFactory,
    consumer_group: &str,
    topic: &str,
    moves: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> Result<(), ReplayError> {
    Admin::new(kafka, CLIENT_ID, timeout)?
        .commit_offsets(consumer_group, topic, moves)
        .map_err(|source| ReplayError::Commit {
            consumer_group: consumer_group.to_owned(),
            source: Box::new(source),
        })
}

/// Applies `plan`: for licence-check the Kafka commit; for attendance the Postgres offsets
/// (compare-and-set under the group's lock) and the advisory Kafka commit. Either way, in one
/// Postgres transaction that rolls back if the commit is refused, the replayed ranges are
/// recorded in `consumer_replays` (what `punchctl audit` allows as extra verdicts, and the
/// operator's record of what was replayed).
pub async fn apply(
    plan: &ReplayPlan,
    kafka: &ClientFactory,
    database_url: &str,
    timeout: Duration,
) -> Result<(), ReplayError> {
    let moves = plan.moves();
    if moves.is_empty() {
        return Ok(());
    }
    let (kafka, consumer_group, topic) = (
        kafka.clone(),
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
            let moved = dakoku_store::offsets::rewrite(
                &tx,
                &consumer_group,
                &topic,
                reset.partition,
                current,
                new,
            )
            .await?;
            if !moved {
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
    blocking(move || commit(&kafka, &consumer_group, &topic, &moves, timeout)).await?;
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
