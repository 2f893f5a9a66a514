//! Rebuild of the attendance projection of a tenant group, or of one tenant in it: its punch
//! rows are cleared, `punches.checked.<group>` is replayed from the beginning up to its end at
//! the start, and every day of the scope is recomputed, so that Postgres says exactly what the
//! log says (DESIGN "Recovery"). `punchctl rebuild` drives it in-process; the group's
//! attendance service must be stopped (punchctl checks the consumer group is empty).
//!
//! How, and why so:
//! - **One connection holds the group's lock throughout.** [`Rebuild::prepare`] takes a
//!   session advisory lock on the key every batch of the group takes for its transaction, on
//!   the connection that then clears, replays and recomputes. An attendance service started
//!   by mistake mid-rebuild waits (its batch retries) instead of interleaving, and a second
//!   rebuild of the group is refused ([`RebuildError::Locked`]).
//! - **Clear in one transaction** ([`Rebuild::clear`]): the scope's `punch_conflicts`,
//!   `punches` and `punch_rejections`, and the group's `consumer_offsets` set to the log's
//!   first offsets. `attendance_days` is deliberately *not* cleared (see the recompute).
//! - **Replay through [`Store::apply`]** ([`Rebuild::replay`]), the service's own batch
//!   transaction (which verdict counts, conflicts, withdrawals, offsets), with
//!   [`Store::defer_days`]: batches store punches and offsets and leave the scope's days alone.
//!   Partitions are assigned by hand (no group membership, no rebalances) and read
//!   `read_committed` up to the end offsets taken at the start; later records are left to the
//!   service. A reader task decodes while the previous batch is written.
//! - **Recompute each day of the scope once, at the end** ([`Rebuild::recompute`], with
//!   [`Store::recompute`]), against the row it replaces: an unchanged day keeps its row exactly
//!   as it was (revision, `computed_at`, batch); a changed day gets `revision + 1`; a day left
//!   with nothing counting keeps a zero row with `revision + 1`. So revisions never go back
//!   (consumers of the compacted `attendance.daily` keep the highest), only real changes enter
//!   the outbox (the service publishes them when it starts), and payroll reading
//!   `attendance_days` during a rebuild sees the previous figures, never half-replayed days.
//!   Clearing the table and replaying it batch by batch as the service does would restart
//!   revisions at 1 and put every day through partial states.
//! - **One tenant**: only its rows are cleared and recomputed, but it shares partitions with
//!   the group's other tenants, so the whole topic is replayed: their verdicts are found
//!   stored already (idempotent: nothing written), and any they had not had yet (a lagging
//!   service) are applied as the service would, days included.
//! - **Interrupted** (Ctrl-C, a crash, Postgres gone): the days are still the previous ones and
//!   the punches partly replayed; run the rebuild again. That is enforced, not just advised:
//!   the clear writes the group's row in `attendance_rebuilds` in its transaction and the
//!   recompute deletes it once every day has committed ([`UnfinishedRebuild`]). While the row
//!   exists the attendance service refuses the group (started later, at its start; started
//!   mid-rebuild, at its next batch), because its replay would store the punches again while
//!   the days the rebuild deferred keep their stale figures, silently. A later rebuild must
//!   cover the unfinished scope (the same tenant, or the whole group), else it is refused
//!   ([`RebuildError::Unfinished`]).
//! - **Invalid records** are skipped as the service skips them (their offsets advance). Those at
//!   or past the offsets the projection had reached were never seen by the service, so they are
//!   quarantined now, as the service would have; the others were quarantined back then.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use dakoku_schemas::{ConsumerGroup, GroupId, Topic};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::counts::Counts;
use crate::decode::{Incoming, Poison, decode_record};
use crate::store::marker::{SQL_MARK_FINISHED, SQL_MARK_UNFINISHED};
pub use crate::store::marker::{Scope, UnfinishedRebuild, unfinished};
use crate::store::{Store, StoreError};

/// What to rebuild, and where.
#[derive(Debug, Clone)]
pub struct RebuildRequest {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Postgres URL of the projection.
    pub database_url: String,
    /// The tenant group (its `punches.checked.<group>` is replayed).
    pub group: GroupId,
    /// The whole group or one tenant.
    pub scope: Scope,
    /// Longest wait for one Kafka or Postgres operation; also how long the replay may see no
    /// record at all before it gives up.
    pub timeout: Duration,
}

/// Progress callbacks, e.g. for a progress bar.
pub trait Progress: Sync {
    /// A stage starts, with `total` units of work (records, days).
    fn stage(&self, name: &str, total: u64);
    /// `n` more units are done.
    fn advance(&self, n: u64);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// One partition of the checked topic, at the start of the rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionPlan {
    /// The partition.
    pub partition: i32,
    /// Its first offset: the replay starts here. Above 0, records before it were deleted.
    pub low: i64,
    /// Its end at the start: the replay reads up to here.
    pub end: i64,
    /// The projection's next offset before the rebuild (`None`: never stored).
    pub stored: Option<i64>,
}

impl PartitionPlan {
    /// Records the replay reads from this partition.
    pub fn records(&self) -> u64 {
        u64::try_from(self.end - self.low).unwrap_or(0)
    }
}

/// Rows of the scope in the projection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeRows {
    /// Rows of `punches` (withdrawn ones included).
    pub punches: u64,
    /// Of which withdrawn.
    pub withdrawn: u64,
    /// Rows of `punch_rejections`.
    pub rejections: u64,
    /// Rows of `punch_conflicts`.
    pub conflicts: u64,
    /// Rows of `attendance_days`.
    pub days: u64,
}

/// What a rebuild will do: read before anything is changed (the dry run shows it).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The tenant group.
    pub group: GroupId,
    /// The scope.
    pub scope: Scope,
    /// `punches.checked.<group>`.
    pub topic: String,
    /// `attendance.<group>`.
    pub consumer_group: String,
    /// Every partition of the topic.
    pub partitions: Vec<PartitionPlan>,
    /// The scope's rows before.
    pub rows: ScopeRows,
    /// An earlier rebuild of the group that did not finish: this one finishes it if its scope
    /// covers it ([`Plan::blocked_by`]), else it is refused.
    pub unfinished: Option<UnfinishedRebuild>,
}

impl Plan {
    /// Records the replay reads.
    pub fn records(&self) -> u64 {
        self.partitions.iter().map(PartitionPlan::records).sum()
    }

    /// The unfinished rebuild this one's scope does not cover: this rebuild is refused until
    /// that one is finished (or a whole-group rebuild covers it).
    pub fn blocked_by(&self) -> Option<&UnfinishedRebuild> {
        self.unfinished
            .as_ref()
            .filter(|u| !self.scope.covers_scope(&u.scope))
    }

    /// Partitions whose first records were deleted (retention): a rebuild cannot bring back
    /// the punches they held.
    pub fn truncated(&self) -> Vec<PartitionPlan> {
        self.partitions
            .iter()
            .filter(|p| p.low > 0)
            .copied()
            .collect()
    }
}

/// What the replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Records read and applied.
    pub records: u64,
    /// The batches' counts, summed.
    pub counts: Counts,
    /// Invalid records quarantined now (never seen by the service).
    pub quarantined: u64,
    /// Batches (transactions).
    pub batches: u64,
}

/// What the recompute did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recomputed {
    /// Days recomputed (every day of the scope with a punch or a row).
    pub days: u64,
    /// Days whose figures changed, new and emptied ones included: written with a new revision;
    /// the attendance service publishes them when it starts (its outbox).
    pub changed: u64,
    /// Days whose rows were already right: left exactly as they were.
    pub unchanged: u64,
    /// Rows of the scope in `attendance_days` afterwards.
    pub rows_after: u64,
}

/// How a rebuild ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// The stored next offsets, partition -> offset.
    pub offsets: BTreeMap<i32, i64>,
    /// Why the advisory Kafka commit of those offsets failed, if it did (lag monitoring shows
    /// the old offsets until the service commits).
    pub kafka_commit_failed: Option<String>,
}

/// Why a rebuild failed. Whatever the step, the previous days are still in place; run the
/// rebuild again.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Postgres failed.
    #[error("Postgres: {0}")]
    Store(#[from] StoreError),
    /// Kafka failed; `doing` says at which step.
    #[error("{doing}: {source}")]
    Kafka {
        /// The step.
        doing: String,
        /// What Kafka said.
        #[source]
        source: KafkaError,
    },
    /// The checked topic does not exist.
    #[error("topic {0} does not exist; create it with `punchctl topics create --group <group>`")]
    NoTopic(String),
    /// Something else holds the group's lock: a batch of a running attendance service, or
    /// another rebuild or replay.
    #[error(
        "the lock of {consumer_group} is held: an attendance service or another rebuild of the group is running; stop it, then run again"
    )]
    Locked {
        /// `attendance.<group>`.
        consumer_group: String,
    },
    /// No record arrived for too long before the end was reached.
    #[error(
        "the replay of {topic} stalled: nothing read for {waited:?} before its end; is Kafka up? run the rebuild again"
    )]
    Stalled {
        /// The topic.
        topic: String,
        /// How long nothing came.
        waited: Duration,
    },
    /// An invalid record could not be quarantined.
    #[error("quarantining an invalid record of {topic}: {error}")]
    Quarantine {
        /// The topic.
        topic: String,
        /// What failed.
        error: String,
    },
    /// The reader task panicked (a bug).
    #[error("the replay's reader failed: {0}")]
    Reader(String),
    /// An earlier rebuild of the group, of a scope this one does not cover, did not finish:
    /// its deferred days are stale until it is run again.
    #[error("{}", refusal(.unfinished))]
    Unfinished {
        /// The unfinished rebuild.
        unfinished: UnfinishedRebuild,
    },
}

impl From<tokio_postgres::Error> for RebuildError {
    fn from(error: tokio_postgres::Error) -> Self {
        RebuildError::Store(StoreError::Query(error))
    }
}

/// The message of [`RebuildError::Unfinished`]: what to run instead.
fn refusal(unfinished: &UnfinishedRebuild) -> String {
    let or_group = match unfinished.scope {
        Scope::Tenant(_) => format!(
            " (or rebuild the whole group, which covers it: punchctl rebuild --group {})",
            unfinished.group
        ),
        Scope::Group => String::new(),
    };
    format!(
        "{} did not finish and this rebuild does not cover it (its days are stale until it runs again): finish it first: {}{or_group}",
        unfinished.describe(),
        unfinished.command()
    )
}

fn kafka(doing: impl Into<String>) -> impl FnOnce(KafkaError) -> RebuildError {
    let doing = doing.into();
    move |source| RebuildError::Kafka { doing, source }
}

const SQL_TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))";
const SQL_UNLOCK: &str = "SELECT pg_advisory_unlock(hashtextextended($1, 0))";
const SQL_SCOPE_ROWS: &str = "SELECT \
     (SELECT count(*) FROM punches WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2)), \
     (SELECT count(*) FROM punches WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
      AND withdrawn), \
     (SELECT count(*) FROM punch_rejections WHERE source_topic = $3 \
      AND ($2::text IS NULL OR tenant_id = $2)), \
     (SELECT count(*) FROM punch_conflicts c JOIN punches p USING (punch_id) \
      WHERE p.group_id = $1 AND ($2::text IS NULL OR p.tenant_id = $2)), \
     (SELECT count(*) FROM attendance_days WHERE group_id = $1 \
      AND ($2::text IS NULL OR tenant_id = $2))";
const SQL_CLEAR_CONFLICTS: &str = "DELETE FROM punch_conflicts WHERE punch_id IN \
     (SELECT punch_id FROM punches WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2))";
const SQL_CLEAR_PUNCHES: &str =
    "DELETE FROM punches WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2)";
const SQL_CLEAR_REJECTIONS: &str = "DELETE FROM punch_rejections WHERE source_topic = $1 \
     AND ($2::text IS NULL OR tenant_id = $2)";
const SQL_SCOPE_DAYS: &str = "SELECT tenant_id, employee_id, work_date FROM punches \
     WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
     UNION SELECT tenant_id, employee_id, work_date FROM attendance_days \
     WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
     ORDER BY 1, 2, 3";
const SQL_SCOPE_DAY_ROWS: &str = "SELECT count(*) FROM attendance_days \
     WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2)";

/// A rebuild in progress: the group's lock is held until [`Rebuild::finish`] (or drop).
#[derive(Debug)]
pub struct Rebuild {
    request: RebuildRequest,
    store: Store,
    plan: Plan,
}

impl Rebuild {
    /// Connects, takes the group's lock and reads the plan. Changes nothing.
    pub async fn prepare(request: RebuildRequest) -> Result<Self, RebuildError> {
        let consumer_group = ConsumerGroup::Attendance(request.group.clone()).name();
        let topic = Topic::Checked(request.group.clone()).name();
        let mut store =
            Store::connect(&request.database_url, &request.group, request.timeout).await?;
        lock(&mut store, &consumer_group).await?;
        let watermarks = watermarks(&request, &topic).await?;
        let stored = store.stored_offsets().await?;
        let partitions = watermarks
            .into_iter()
            .map(|(partition, (low, end))| PartitionPlan {
                partition,
                low,
                end,
                stored: stored.get(&partition).copied(),
            })
            .collect();
        let tenant = request.scope.tenant();
        let row = store
            .client_mut()
            .query_one(SQL_SCOPE_ROWS, &[&request.group.as_str(), &tenant, &topic])
            .await?;
        let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        let rows = ScopeRows {
            punches: count(0),
            withdrawn: count(1),
            rejections: count(2),
            conflicts: count(3),
            days: count(4),
        };
        // Read under the lock, which every rebuild of the group holds from before its clear
        // until after its recompute: it cannot change until this rebuild's own clear.
        let unfinished = unfinished(&*store.client_mut(), &request.group).await?;
        let plan = Plan {
            group: request.group.clone(),
            scope: request.scope.clone(),
            topic,
            consumer_group,
            partitions,
            rows,
            unfinished,
        };
        Ok(Self {
            request,
            store,
            plan,
        })
    }

    /// What the rebuild will do.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Deletes the scope's punches, rejections and conflicts, sets the group's offsets to the
    /// log's first offsets and marks the rebuild unfinished (`attendance_rebuilds`, until
    /// [`Rebuild::recompute`] ends), in one transaction. Returns the rows deleted. Refused,
    /// changing nothing, while an unfinished rebuild this one does not cover exists.
    pub async fn clear(&mut self) -> Result<ScopeRows, RebuildError> {
        if let Some(unfinished) = self.plan.blocked_by() {
            return Err(RebuildError::Unfinished {
                unfinished: unfinished.clone(),
            });
        }
        let group = self.plan.group.as_str();
        let tenant = self.plan.scope.tenant();
        let (parts, lows): (Vec<i32>, Vec<i64>) = self
            .plan
            .partitions
            .iter()
            .map(|p| (p.partition, p.low))
            .unzip();
        let (consumer_group, topic) = (&self.plan.consumer_group, &self.plan.topic);
        let tx = self.store.client_mut().transaction().await?;
        let conflicts = tx.execute(SQL_CLEAR_CONFLICTS, &[&group, &tenant]).await?;
        let punches = tx.execute(SQL_CLEAR_PUNCHES, &[&group, &tenant]).await?;
        let rejections = tx.execute(SQL_CLEAR_REJECTIONS, &[topic, &tenant]).await?;
        dakoku_store::offsets::store(&tx, consumer_group, topic, &parts, &lows).await?;
        tx.execute(SQL_MARK_UNFINISHED, &[consumer_group, &tenant])
            .await?;
        tx.commit().await?;
        tracing::info!(
            group,
            tenant,
            punches,
            rejections,
            conflicts,
            "rebuild: punch rows cleared, offsets at the start of the log"
        );
        Ok(ScopeRows {
            punches,
            rejections,
            conflicts,
            ..ScopeRows::default()
        })
    }

    /// Replays the topic from the offsets [`Rebuild::clear`] set to the end offsets of the
    /// plan, in batches of at most `batch_records` records.
    pub async fn replay(
        &mut self,
        batch_records: usize,
        progress: &dyn Progress,
    ) -> Result<Replayed, RebuildError> {
        progress.stage("replaying the log", self.plan.records());
        let consumer = self.assigned_consumer()?;
        let batch_records = batch_records.max(1);
        let (feed, mut incoming) = mpsc::channel::<Read>(batch_records * 2);
        let ends: HashMap<i32, (i64, i64)> = self
            .plan
            .partitions
            .iter()
            .map(|p| (p.partition, (p.low, p.end)))
            .collect();
        let stall = self.request.timeout.max(Duration::from_secs(90));
        let reader = tokio::spawn(read(
            consumer,
            self.plan.group.clone(),
            self.plan.topic.clone(),
            ends,
            feed,
            stall,
        ));

        self.store.defer_days(Some(self.plan.scope.clone()));
        let written = self.write(&mut incoming, batch_records, progress).await;
        self.store.defer_days(None);
        drop(incoming);
        if written.is_err() {
            // The reader may be waiting on Kafka rather than on the channel: stop it now.
            reader.abort();
        }
        let read = reader.await;
        match (written, read) {
            (Err(error), _) => Err(error),
            (Ok(replayed), Ok(Ok(()))) => Ok(replayed),
            (Ok(_), Ok(Err(error))) => Err(error),
            (Ok(_), Err(join)) => Err(RebuildError::Reader(join.to_string())),
        }
    }

    async fn write(
        &mut self,
        incoming: &mut mpsc::Receiver<Read>,
        batch_records: usize,
        progress: &dyn Progress,
    ) -> Result<Replayed, RebuildError> {
        let mut replayed = Replayed::default();
        let mut reads = Vec::with_capacity(batch_records);
        let mut producer: Option<FutureProducer> = None;
        loop {
            reads.clear();
            if incoming.recv_many(&mut reads, batch_records).await == 0 {
                break;
            }
            let mut batch = Vec::with_capacity(reads.len());
            let mut poison = Vec::new();
            for read in reads.drain(..) {
                if let Some(p) = read.poison
                    && self.never_seen(&read.record)
                {
                    poison.push(p);
                }
                batch.push(read.record);
            }
            // Quarantine first, as the service does: after the commit the record is only there.
            if !poison.is_empty() {
                let quarantiner = match &producer {
                    Some(existing) => FutureProducer::clone(existing),
                    None => {
                        let created = self.producer()?;
                        producer = Some(created.clone());
                        created
                    }
                };
                quarantine(&quarantiner, &self.plan.topic, &poison).await?;
                replayed.quarantined += poison.len() as u64;
            }
            let applied = self.store.apply(&batch, None, Utc::now()).await?;
            replayed.counts.add(&applied.counts);
            replayed.records += batch.len() as u64;
            replayed.batches += 1;
            progress.advance(batch.len() as u64);
        }
        Ok(replayed)
    }

    /// Whether `record` is at or past the offset the projection had reached before.
    fn never_seen(&self, record: &Incoming) -> bool {
        self.plan
            .partitions
            .iter()
            .find(|p| p.partition == record.partition)
            .and_then(|p| p.stored)
            .is_none_or(|stored| record.offset >= stored)
    }

    fn producer(&self) -> Result<FutureProducer, RebuildError> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.request.brokers)
            .set("client.id", "punchctl-rebuild")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .create()
            .map_err(kafka("creating the quarantine producer"))
    }

    fn assigned_consumer(&self) -> Result<StreamConsumer, RebuildError> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.request.brokers)
            .set("client.id", "punchctl-rebuild")
            // Never joins or commits: partitions are assigned by hand. The id is required.
            .set(
                "group.id",
                format!(
                    "punchctl-rebuild.{}.{}",
                    self.plan.group,
                    std::process::id()
                ),
            )
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(kafka("creating the replay consumer"))?;
        let mut assignment = TopicPartitionList::new();
        for p in &self.plan.partitions {
            assignment
                .add_partition_offset(&self.plan.topic, p.partition, Offset::Offset(p.low))
                .map_err(kafka("building the assignment"))?;
        }
        consumer
            .assign(&assignment)
            .map_err(kafka(format!("assigning {}", self.plan.topic)))?;
        Ok(consumer)
    }

    /// Recomputes every day of the scope (every day with a punch or a row), `chunk_days` per
    /// transaction; once all of them have committed, the rebuild is no longer unfinished (its
    /// row of `attendance_rebuilds` is deleted: the attendance service may consume the group
    /// again). Interrupted before, the row stays and the rebuild must run again.
    pub async fn recompute(
        &mut self,
        chunk_days: usize,
        progress: &dyn Progress,
    ) -> Result<Recomputed, RebuildError> {
        let group = self.plan.group.as_str();
        let tenant = self.plan.scope.tenant();
        let days: Vec<(String, String, NaiveDate)> = self
            .store
            .client_mut()
            .query(SQL_SCOPE_DAYS, &[&group, &tenant])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        progress.stage("recomputing days", days.len() as u64);
        let mut done = Recomputed {
            days: days.len() as u64,
            ..Recomputed::default()
        };
        for chunk in days.chunks(chunk_days.max(1)) {
            let recomputed = self.store.recompute(chunk, Utc::now()).await?;
            done.changed += recomputed.changed;
            done.unchanged += recomputed.unchanged;
            progress.advance(chunk.len() as u64);
        }
        // Only now: a crash between the last chunk and this delete leaves the row, and the
        // rebuild run again finds every day already right.
        self.store
            .client_mut()
            .execute(SQL_MARK_FINISHED, &[&self.plan.consumer_group])
            .await?;
        tracing::info!(
            group,
            tenant,
            days = done.days,
            changed = done.changed,
            "rebuild: every day recomputed; the group may be consumed again"
        );
        let rows = self
            .store
            .client_mut()
            .query_one(SQL_SCOPE_DAY_ROWS, &[&group, &tenant])
            .await?;
        done.rows_after = u64::try_from(rows.get::<_, i64>(0)).unwrap_or(0);
        Ok(done)
    }

    /// Releases the group's lock and commits the stored offsets to the Kafka consumer group
    /// too (advisory, for lag monitoring, as the service does after each batch).
    pub async fn finish(mut self) -> Result<Finished, RebuildError> {
        let offsets: BTreeMap<i32, i64> = self.store.stored_offsets().await?.into_iter().collect();
        self.store
            .client_mut()
            .query_one(SQL_UNLOCK, &[&self.plan.consumer_group])
            .await?;
        let brokers = self.request.brokers.clone();
        let (consumer_group, topic) = (self.plan.consumer_group.clone(), self.plan.topic.clone());
        let to_commit = offsets.clone();
        let committed = tokio::task::spawn_blocking(move || {
            commit_group_offsets(&brokers, &consumer_group, &topic, &to_commit)
        })
        .await
        .map_err(|e| RebuildError::Reader(e.to_string()))?;
        let kafka_commit_failed = committed.err().map(|error| {
            tracing::warn!(%error, "rebuild: the advisory Kafka commit failed");
            error.to_string()
        });
        Ok(Finished {
            offsets,
            kafka_commit_failed,
        })
    }
}

/// Takes the group's lock on the store's connection, waiting up to 5 s for a batch in flight.
async fn lock(store: &mut Store, consumer_group: &str) -> Result<(), RebuildError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let row = store
            .client_mut()
            .query_one(SQL_TRY_LOCK, &[&consumer_group])
            .await?;
        if row.get::<_, bool>(0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(RebuildError::Locked {
                consumer_group: consumer_group.to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Each partition's (first offset, end offset) now.
async fn watermarks(
    request: &RebuildRequest,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, RebuildError> {
    let brokers = request.brokers.clone();
    let topic = topic.to_owned();
    let timeout = request.timeout;
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("client.id", "punchctl-rebuild")
            .create()
            .map_err(kafka("creating a metadata client"))?;
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .map_err(kafka(format!("reading the metadata of {topic}")))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(RebuildError::NoTopic(topic));
        }
        partitions
            .into_iter()
            .map(|partition| {
                consumer
                    .fetch_watermarks(&topic, partition, timeout)
                    .map(|marks| (partition, marks))
                    .map_err(kafka(format!("reading the offsets of {topic}")))
            })
            .collect()
    })
    .await
    .map_err(|e| RebuildError::Reader(e.to_string()))?
}

/// Commits `offsets` for `consumer_group` without joining it (accepted while it is empty).
fn commit_group_offsets(
    brokers: &str,
    consumer_group: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> Result<(), KafkaError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "punchctl-rebuild")
        .set("group.id", consumer_group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for (partition, next) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
    }
    consumer.commit(&tpl, CommitMode::Sync)
}

/// A record as the reader hands it over.
struct Read {
    record: Incoming,
    poison: Option<Poison>,
}

/// Reads every partition from its first offset up to its end offset and feeds the writer.
/// A partition is done once a record at or past its end arrives or its position reaches the
/// end (a `read_committed` position moves past transaction markers, which are never handed
/// over).
async fn read(
    consumer: StreamConsumer,
    group: GroupId,
    topic: String,
    ends: HashMap<i32, (i64, i64)>,
    feed: mpsc::Sender<Read>,
    stall: Duration,
) -> Result<(), RebuildError> {
    let mut open: HashMap<i32, i64> = ends
        .into_iter()
        .filter(|(_, (low, end))| low < end)
        .map(|(partition, (_, end))| (partition, end))
        .collect();
    let mut last_record = Instant::now();
    let mut last_position_check = Instant::now();
    while !open.is_empty() {
        if last_position_check.elapsed() >= Duration::from_millis(200) {
            last_position_check = Instant::now();
            let positions = consumer
                .position()
                .map_err(kafka(format!("reading the position in {topic}")))?;
            for element in positions.elements() {
                if let (Offset::Offset(position), Some(end)) =
                    (element.offset(), open.get(&element.partition()))
                    && position >= *end
                {
                    open.remove(&element.partition());
                }
            }
            if open.is_empty() {
                break;
            }
        }
        let message = match tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
        {
            Err(_) => {
                // An open transaction holds a read_committed reader back until it ends.
                if last_record.elapsed() > stall {
                    return Err(RebuildError::Stalled {
                        topic,
                        waited: stall,
                    });
                }
                continue;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, topic, "rebuild: Kafka consumer error; retrying");
                continue;
            }
            Ok(Ok(message)) => message,
        };
        last_record = Instant::now();
        let (partition, offset) = (message.partition(), message.offset());
        let Some(&end) = open.get(&partition) else {
            continue;
        };
        if offset >= end {
            open.remove(&partition);
            continue;
        }
        if offset + 1 >= end {
            open.remove(&partition);
        }
        let (record, poison) = decode_record(&group, &message);
        if feed.send(Read { record, poison }).await.is_err() {
            // The writer stopped; it reports why.
            return Ok(());
        }
    }
    Ok(())
}

/// Sends `poison` to `punches.quarantine` with its origin, as the service does.
async fn quarantine(
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

#[cfg(test)]
mod tests {
    use super::*;
    use dakoku_schemas::TenantId;

    #[test]
    fn a_tenant_scope_covers_only_that_tenant() {
        let acme: TenantId = "acme".parse().expect("tenant");
        assert!(Scope::Group.covers("anyone"));
        assert!(Scope::Tenant(acme.clone()).covers("acme"));
        assert!(!Scope::Tenant(acme).covers("other"));
    }

    #[test]
    fn the_plan_counts_records_and_names_truncated_partitions() {
        let plan = Plan {
            group: "g".parse().expect("group"),
            scope: Scope::Group,
            topic: "punches.checked.g".into(),
            consumer_group: "attendance.g".into(),
            partitions: vec![
                PartitionPlan {
                    partition: 0,
                    low: 0,
                    end: 10,
                    stored: Some(10),
                },
                PartitionPlan {
                    partition: 1,
                    low: 4,
                    end: 6,
                    stored: None,
                },
            ],
            rows: ScopeRows::default(),
            unfinished: None,
        };
        assert_eq!(plan.records(), 12);
        assert_eq!(
            plan.truncated()
                .iter()
                .map(|p| p.partition)
                .collect::<Vec<_>>(),
            vec![1]
        );
    }
}
