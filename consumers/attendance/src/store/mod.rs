//! Postgres side of the attendance consumer: one transaction per batch of verdicts.
//!
//! [`Store::apply`] is the whole exactly-once story. In one transaction it
//! 1. takes the consumer group's advisory lock (batches of one group never interleave, even
//!    when two instances briefly both think they own a partition) and a batch sequence number;
//! 2. reads the group's stored offsets and drops every record below them (already applied);
//! 3. resolves each verdict against the stored state of its punch (see "Which verdict counts");
//! 4. writes punches once per `punch_id` (multi-row `INSERT .. SELECT FROM UNNEST`), conflicts,
//!    withdrawals and rejections;
//! 5. recomputes every touched employee-day from all its stored, counting punches with
//!    [`rules::compute_day`] and upserts the days whose figures changed, with `revision + 1`;
//! 6. stores the next offsets (and the publish mark of the previous batch) and commits.
//!
//! Nothing is written outside that transaction, so a crash or a lost connection at any point
//! leaves Postgres as it was before the batch, and the batch is read again from the stored
//! offsets.
//!
//! # Which verdict counts
//! The latest verdict of a `punch_id` wins, ordered by [`VerdictKey`]: master-data version,
//! then `checked_at`, then a rejection after an acceptance. An accepted verdict stores the punch
//! once; a later rejection *withdraws* it (the row stays with `withdrawn = true`, its day is
//! recomputed without it); a later acceptance counts it again. A rejection of a punch never
//! stored is remembered in `punch_rejections` (so an older acceptance read afterwards from
//! another partition does not bring it in) and adds nothing. Offsets advance for all of them.
//!
//! A verdict whose punch content (card, kind, time, offset; and employee for an acceptance)
//! differs from the stored punch of the same `punch_id` is a conflict: kept in
//! `punch_conflicts`, never allowed to change the stored punch or its standing.
//!
//! # Revisions
//! A day's revision is bumped only when its figures change (any of the contract's columns or
//! `double_taps`); a replay of the same log writes nothing and publishes nothing. `computed_at`
//! is the time of the batch that produced the current figures. A day whose punches are all
//! withdrawn keeps its row with zero figures (and a bumped revision), so that consumers of the
//! compacted topic, which keep the highest revision, see the change.
//!
//! # Rebuild
//! A rebuild ([`crate::rebuild`]) replays the log through [`Store::apply`] with
//! [`Store::defer_days`] set, then computes each rebuilt day once with [`Store::recompute`],
//! by the same rules and revision policy as a batch. While a rebuild of the group is
//! unfinished (its row in `attendance_rebuilds`), a batch of the service refuses to write
//! ([`StoreError::RebuildUnfinished`]), checked right after the group's lock: a service started
//! by mistake during a rebuild that is then interrupted must not store the cleared punches
//! again while the deferred days keep stale figures.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use dakoku_schemas::{
    AttendanceDay, CheckedPunch, ConsumerGroup, EmployeeId, GroupId, PunchKind, TenantId, Topic,
    Verdict, to_epoch_days,
};
use std::task::Poll;

use tokio_postgres::{Client, Row, Statement, Transaction};
use uuid::Uuid;

pub mod marker;

use self::marker::{Scope, UnfinishedRebuild};
use dakoku_rules::{self as rules, Calendar, DayFigures, Punch};

/// Errors of the Postgres side. All of them but [`StoreError::RebuildUnfinished`] are retried
/// by the consumer (with backoff, on a new connection); none of them ever advances an offset.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting failed (server down, wrong URL, authentication).
    #[error(transparent)]
    Connect(#[from] dakoku_store::StoreError),
    /// A statement failed; the transaction was rolled back.
    #[error("Postgres: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// The batch did not finish within the statement budget; it was rolled back.
    #[error("Postgres did not answer within {0:?}; batch rolled back")]
    Timeout(Duration),
    /// A rebuild of the group cleared its scope and did not finish: nothing is written until
    /// it is run again (the consumer stops the group; see [`crate::rebuild`]).
    #[error("{}; batch rolled back. Run `{}`", .0.describe(), .0.command())]
    RebuildUnfinished(UnfinishedRebuild),
}

impl StoreError {
    /// Whether the connection is unusable afterwards (reconnect before retrying).
    pub fn connection_lost(&self) -> bool {
        match self {
            StoreError::Connect(_) | StoreError::Timeout(_) => true,
            StoreError::Query(error) => error.is_closed() || error.as_db_error().is_none(),
            StoreError::RebuildUnfinished(_) => false,
        }
    }
}

pub use crate::decode::Incoming;

/// The order of verdicts of one punch (shared with recheck and audit).
pub use dakoku_schemas::VerdictKey;

/// What a batch did, for the publisher, metrics and logs.
#[derive(Debug, Default)]
pub struct Applied {
    /// The batch's sequence number (`attendance_batch_seq`).
    pub batch_seq: i64,
    /// Days whose figures changed, as committed: publish these.
    pub changed_days: Vec<AttendanceDay>,
    /// Offsets stored: partition -> next offset to read.
    pub offsets: BTreeMap<i32, i64>,
    /// Counts of what happened to the records.
    pub counts: Counts,
}

/// What [`Store::recompute`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recomputed {
    /// The transaction's batch sequence: changed days carry it (the outbox position).
    pub batch_seq: i64,
    /// Days whose figures changed (written with a new revision).
    pub changed: u64,
    /// Days whose figures were already right (not written).
    pub unchanged: u64,
}

pub use crate::counts::Counts;

/// An employee's work date: the key of `attendance_days`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct DayKey {
    tenant: String,
    employee: String,
    date: NaiveDate,
}

/// The content of a punch that must agree between verdicts of one `punch_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Content {
    card_id: String,
    kind: PunchKind,
    at: i64,
    at_offset_minutes: i32,
    employee_id: Option<String>,
}

impl Content {
    fn of(verdict: &CheckedPunch) -> Self {
        Self {
            card_id: verdict.card_id.to_string(),
            kind: verdict.kind,
            at: verdict.at,
            at_offset_minutes: verdict.at_offset_minutes,
            employee_id: verdict.employee_id.as_ref().map(ToString::to_string),
        }
    }

    /// Whether `verdict` is about this punch: the raw content matches, and for an acceptance
    /// the employee too (a rejection may not know the employee any more).
    fn agrees_with(&self, verdict: &CheckedPunch) -> bool {
        let other = Content::of(verdict);
        self.card_id == other.card_id
            && self.kind == other.kind
            && self.at == other.at
            && self.at_offset_minutes == other.at_offset_minutes
            && (verdict.verdict == Verdict::Rejected || self.employee_id == other.employee_id)
    }
}

/// What is known about a punch during a batch; `'a` borrows the batch's verdicts.
#[derive(Debug)]
enum PunchState<'a> {
    /// In `punch_rejections` (or about to be): rejected, never accepted.
    Rejected {
        key: VerdictKey,
        /// The latest rejection, to upsert (None: the stored row is current).
        upsert: Option<&'a Incoming>,
    },
    /// In `punches` (or about to be).
    Stored {
        content: Content,
        day: DayKey,
        key: VerdictKey,
        withdrawn: bool,
        /// The row to insert, if it is new in this batch.
        insert: Option<NewPunch<'a>>,
        /// Where the verdict that set `key` came from, when it changed in this batch.
        verdict_source: Option<(i32, i64)>,
        /// Whether the row had a `punch_rejections` entry to delete.
        drop_rejection: bool,
    },
}

/// A punch row to insert.
#[derive(Debug, Clone, Copy)]
struct NewPunch<'a> {
    record: &'a Incoming,
    verdict: &'a CheckedPunch,
    work_date: NaiveDate,
}

/// The prepared statements of one connection.
#[derive(Debug)]
struct Statements {
    lock: Statement,
    offsets: Statement,
    tenants: Statement,
    punches: Statement,
    rejections: Statement,
    insert_punches: Statement,
    update_punches: Statement,
    insert_conflicts: Statement,
    upsert_rejections: Statement,
    delete_rejections: Statement,
    day_punches: Statement,
    days: Statement,
    upsert_days: Statement,
    store_offsets: Statement,
    mark: Statement,
    unfinished: Statement,
}

const SQL_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), \
     nextval('attendance_batch_seq')";
const SQL_OFFSETS: &str = "SELECT partition, next_offset FROM consumer_offsets \
     WHERE consumer_group = $1 AND topic = $2";
const SQL_TENANTS: &str = "SELECT tenant_id, time_zone, day_change_time FROM tenants \
     WHERE tenant_id = ANY($1)";
const SQL_PUNCHES: &str = "SELECT punch_id, tenant_id, employee_id, work_date, card_id, kind, \
     at, at_offset_minutes, withdrawn, verdict_master_data_version, verdict_checked_at, \
     (verdict_source_offset IS NULL AND master_data_version = verdict_master_data_version) \
     FROM punches WHERE punch_id = ANY($1)";
const SQL_REJECTIONS: &str = "SELECT punch_id, master_data_version, checked_at \
     FROM punch_rejections WHERE punch_id = ANY($1)";
const SQL_INSERT_PUNCHES: &str = "INSERT INTO punches (punch_id, tenant_id, group_id, device_id, \
     seq, card_id, employee_id, kind, at, at_offset_minutes, work_date, received_at, \
     master_data_version, source_topic, source_partition, source_offset, withdrawn, \
     verdict_master_data_version, verdict_checked_at, verdict_source_partition, \
     verdict_source_offset) \
     SELECT u.punch_id, u.tenant_id, $1, u.device_id, u.seq, u.card_id, u.employee_id, u.kind, \
     u.at, u.at_offset_minutes, u.work_date, u.received_at, u.mdv, $2, u.part, u.off, \
     u.withdrawn, u.vmdv, u.vchecked, u.vpart, u.voff \
     FROM UNNEST($3::uuid[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], \
     $9::text[], $10::timestamptz[], $11::int[], $12::date[], $13::timestamptz[], $14::bigint[], \
     $15::int[], $16::bigint[], $17::bool[], $18::bigint[], $19::timestamptz[], $20::int[], \
     $21::bigint[]) \
     AS u(punch_id, tenant_id, device_id, seq, card_id, employee_id, kind, at, \
     at_offset_minutes, work_date, received_at, mdv, part, off, withdrawn, vmdv, vchecked, \
     vpart, voff)";
const SQL_UPDATE_PUNCHES: &str = "UPDATE punches p SET withdrawn = u.withdrawn, \
     verdict_master_data_version = u.vmdv, verdict_checked_at = u.vchecked, \
     verdict_source_partition = u.part, verdict_source_offset = u.off \
     FROM UNNEST($1::uuid[], $2::bool[], $3::bigint[], $4::timestamptz[], $5::int[], \
     $6::bigint[]) AS u(punch_id, withdrawn, vmdv, vchecked, part, off) \
     WHERE p.punch_id = u.punch_id";
const SQL_INSERT_CONFLICTS: &str = "INSERT INTO punch_conflicts (punch_id, tenant_id, received, \
     source_topic, source_partition, source_offset) \
     SELECT u.punch_id, u.tenant_id, u.received, $1, u.part, u.off \
     FROM UNNEST($2::uuid[], $3::text[], $4::jsonb[], $5::int[], $6::bigint[]) \
     AS u(punch_id, tenant_id, received, part, off) \
     ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING";
const SQL_UPSERT_REJECTIONS: &str = "INSERT INTO punch_rejections (punch_id, tenant_id, reason, \
     master_data_version, checked_at, source_topic, source_partition, source_offset) \
     SELECT u.punch_id, u.tenant_id, u.reason, u.mdv, u.checked, $1, u.part, u.off \
     FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[], \
     $7::int[], $8::bigint[]) AS u(punch_id, tenant_id, reason, mdv, checked, part, off) \
     ON CONFLICT (punch_id) DO UPDATE SET reason = EXCLUDED.reason, \
     master_data_version = EXCLUDED.master_data_version, checked_at = EXCLUDED.checked_at, \
     source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset";
const SQL_DELETE_REJECTIONS: &str = "DELETE FROM punch_rejections WHERE punch_id = ANY($1)";
const SQL_DAY_PUNCHES: &str = "SELECT p.tenant_id, p.employee_id, p.work_date, p.punch_id, \
     p.seq, p.kind, p.at \
     FROM UNNEST($1::text[], $2::text[], $3::date[]) AS k(tenant_id, employee_id, work_date) \
     JOIN punches p ON p.tenant_id = k.tenant_id AND p.employee_id = k.employee_id \
     AND p.work_date = k.work_date \
     WHERE NOT p.withdrawn";
const SQL_DAYS: &str = "SELECT d.tenant_id, d.employee_id, d.work_date, d.first_in, d.last_out, \
     d.worked_minutes, d.break_minutes, d.night_minutes, d.overtime_minutes, d.punch_count, \
     d.anomalies, d.double_taps, d.revision \
     FROM UNNEST($1::text[], $2::text[], $3::date[]) AS k(tenant_id, employee_id, work_date) \
     JOIN attendance_days d ON d.tenant_id = k.tenant_id AND d.employee_id = k.employee_id \
     AND d.work_date = k.work_date";
const SQL_UPSERT_DAYS: &str = "INSERT INTO attendance_days (tenant_id, employee_id, work_date, \
     group_id, first_in, last_out, worked_minutes, break_minutes, night_minutes, \
     overtime_minutes, punch_count, anomalies, double_taps, revision, computed_at, batch_seq) \
     SELECT u.t, u.e, u.d, $1, u.fi, u.lo, u.w, u.b, u.n, u.o, u.pc, \
     string_to_array(u.a, ','), u.dt, u.r, $2, $3 \
     FROM UNNEST($4::text[], $5::text[], $6::date[], $7::timestamptz[], $8::timestamptz[], \
     $9::int[], $10::int[], $11::int[], $12::int[], $13::int[], $14::text[], $15::int[], \
     $16::bigint[]) AS u(t, e, d, fi, lo, w, b, n, o, pc, a, dt, r) \
     ON CONFLICT (tenant_id, employee_id, work_date) DO UPDATE SET \
     group_id = EXCLUDED.group_id, first_in = EXCLUDED.first_in, last_out = EXCLUDED.last_out, \
     worked_minutes = EXCLUDED.worked_minutes, break_minutes = EXCLUDED.break_minutes, \
     night_minutes = EXCLUDED.night_minutes, overtime_minutes = EXCLUDED.overtime_minutes, \
     punch_count = EXCLUDED.punch_count, anomalies = EXCLUDED.anomalies, \
     double_taps = EXCLUDED.double_taps, revision = EXCLUDED.revision, \
     computed_at = EXCLUDED.computed_at, batch_seq = EXCLUDED.batch_seq";
pub(crate) const SQL_STORE_OFFSETS: &str = "INSERT INTO consumer_offsets (consumer_group, \
     topic, partition, next_offset, updated_at) \
     SELECT $1, $2, u.p, u.o, now() FROM UNNEST($3::int[], $4::bigint[]) AS u(p, o) \
     ON CONFLICT (consumer_group, topic, partition) DO UPDATE \
     SET next_offset = EXCLUDED.next_offset, updated_at = now()";
const SQL_MARK: &str = "INSERT INTO attendance_publish_marks (consumer_group, published_batch_seq) \
     VALUES ($1, $2) ON CONFLICT (consumer_group) DO UPDATE SET published_batch_seq = \
     GREATEST(attendance_publish_marks.published_batch_seq, EXCLUDED.published_batch_seq), \
     updated_at = now()";
const SQL_UNPUBLISHED: &str = "SELECT tenant_id, employee_id, work_date, first_in, last_out, \
     worked_minutes, break_minutes, night_minutes, overtime_minutes, punch_count, anomalies, \
     revision, computed_at, batch_seq FROM attendance_days \
     WHERE group_id = $1 AND batch_seq > COALESCE((SELECT published_batch_seq \
     FROM attendance_publish_marks WHERE consumer_group = $2), 0) \
     ORDER BY batch_seq";

/// The consumer group of attendance for a tenant group: `attendance.<group>`.
// Compatibility for punchctl and storm until they name it with `ConsumerGroup` themselves.
pub fn consumer_group(group: &GroupId) -> String {
    ConsumerGroup::Attendance(group.clone()).name()
}

/// The stored next offsets of `consumer_group` on `topic`, on a connection of its own (the
/// rebalance callback's lookup).
pub async fn load_offsets(
    database_url: &str,
    consumer_group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<HashMap<i32, i64>, StoreError> {
    let work = async {
        let client = dakoku_store::connect(database_url).await?;
        let rows = client
            .query(SQL_OFFSETS, &[&consumer_group, &topic])
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| StoreError::Timeout(timeout))?
}

/// One Postgres connection of one tenant group's consumer.
#[derive(Debug)]
pub struct Store {
    client: Client,
    statements: Statements,
    group: GroupId,
    consumer_group: String,
    topic: String,
    statement_timeout: Duration,
    debug_commit_delay: Duration,
    /// Days whose recomputation a rebuild leaves to its end (see [`crate::rebuild`]).
    deferred: Option<Scope>,
}

impl Store {
    /// Connects and prepares the statements. `statement_timeout` bounds every batch: a
    /// Postgres that stops answering (rather than closing the connection) is treated as lost.
    pub async fn connect(
        database_url: &str,
        group: &GroupId,
        statement_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = dakoku_store::connect(database_url).await?;
        let prepare = async {
            Ok::<_, tokio_postgres::Error>(Statements {
                lock: client.prepare(SQL_LOCK).await?,
                offsets: client.prepare(SQL_OFFSETS).await?,
                tenants: client.prepare(SQL_TENANTS).await?,
                punches: client.prepare(SQL_PUNCHES).await?,
                rejections: client.prepare(SQL_REJECTIONS).await?,
                insert_punches: client.prepare(SQL_INSERT_PUNCHES).await?,
                update_punches: client.prepare(SQL_UPDATE_PUNCHES).await?,
                insert_conflicts: client.prepare(SQL_INSERT_CONFLICTS).await?,
                upsert_rejections: client.prepare(SQL_UPSERT_REJECTIONS).await?,
                delete_rejections: client.prepare(SQL_DELETE_REJECTIONS).await?,
                day_punches: client.prepare(SQL_DAY_PUNCHES).await?,
                days: client.prepare(SQL_DAYS).await?,
                upsert_days: client.prepare(SQL_UPSERT_DAYS).await?,
                store_offsets: client.prepare(SQL_STORE_OFFSETS).await?,
                mark: client.prepare(SQL_MARK).await?,
                unfinished: client.prepare(marker::SQL_UNFINISHED).await?,
            })
        };
        let statements = tokio::time::timeout(statement_timeout, prepare)
            .await
            .map_err(|_| StoreError::Timeout(statement_timeout))??;
        Ok(Self {
            client,
            statements,
            group: group.clone(),
            consumer_group: ConsumerGroup::Attendance(group.clone()).name(),
            topic: Topic::Checked(group.clone()).name(),
            statement_timeout,
            debug_commit_delay: Duration::ZERO,
            deferred: None,
        })
    }

    /// Test hook: sleep this long inside every batch transaction, just before `COMMIT`, so a
    /// kill lands mid-batch.
    pub fn set_debug_commit_delay(&mut self, delay: Duration) {
        self.debug_commit_delay = delay;
    }

    /// Rebuild hook: batches stop recomputing the days of `scope` (they store punches and
    /// offsets only); [`Store::recompute`] computes those days once, at the end of the replay.
    /// Days outside the scope are recomputed as usual.
    pub fn defer_days(&mut self, scope: Option<Scope>) {
        self.deferred = scope;
    }

    /// The connection, for the rebuild's own statements (which run under this connection's
    /// lock of the group).
    pub(crate) fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The group's unfinished rebuild, if any: the service must not consume the group until
    /// it has been run again (see [`crate::rebuild`]).
    pub async fn unfinished_rebuild(&self) -> Result<Option<UnfinishedRebuild>, StoreError> {
        let row = self
            .client
            .query_opt(&self.statements.unfinished, &[&self.consumer_group])
            .await?;
        Ok(row.map(|row| marker::unfinished_of(&self.group, &row)))
    }

    /// The stored next offset of each partition of the checked topic.
    pub async fn stored_offsets(&self) -> Result<HashMap<i32, i64>, StoreError> {
        let rows = self
            .client
            .query(
                &self.statements.offsets,
                &[&self.consumer_group, &self.topic],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Days changed by batches that were committed but may not have been published (after the
    /// publish mark), with the highest batch sequence among them.
    pub async fn unpublished(&self) -> Result<(Vec<AttendanceDay>, i64), StoreError> {
        let rows = self
            .client
            .query(
                SQL_UNPUBLISHED,
                &[&self.group.as_str(), &self.consumer_group],
            )
            .await?;
        let mut max_seq = 0;
        let mut days = Vec::with_capacity(rows.len());
        for row in rows {
            max_seq = max_seq.max(row.get::<_, i64>(13));
            let anomalies: Vec<String> = row.get(10);
            days.push(AttendanceDay {
                tenant_id: TenantId::try_from(row.get::<_, String>(0))
                    .unwrap_or_else(|_| unreachable_id("tenant")),
                employee_id: EmployeeId::try_from(row.get::<_, String>(1))
                    .unwrap_or_else(|_| unreachable_id("employee")),
                work_date: to_epoch_days(row.get(2)),
                first_in: row
                    .get::<_, Option<DateTime<Utc>>>(3)
                    .map(|t| t.timestamp_millis()),
                last_out: row
                    .get::<_, Option<DateTime<Utc>>>(4)
                    .map(|t| t.timestamp_millis()),
                worked_minutes: row.get(5),
                break_minutes: row.get(6),
                night_minutes: row.get(7),
                overtime_minutes: row.get(8),
                punch_count: row.get(9),
                anomalies,
                revision: row.get(11),
                computed_at: row.get::<_, DateTime<Utc>>(12).timestamp_millis(),
            });
        }
        Ok((days, max_seq))
    }

    /// Records that every day changed by batches up to `batch_seq` is published.
    pub async fn mark_published(&self, batch_seq: i64) -> Result<(), StoreError> {
        self.client
            .execute(&self.statements.mark, &[&self.consumer_group, &batch_seq])
            .await?;
        Ok(())
    }

    /// Applies one batch in one transaction (see the module docs). `published_through`, when
    /// set, is recorded as the publish mark in the same transaction. On error nothing was
    /// written.
    pub async fn apply(
        &mut self,
        batch: &[Incoming],
        published_through: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let budget = self.statement_timeout + self.debug_commit_delay;
        match tokio::time::timeout(budget, self.apply_inner(batch, published_through, now)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(budget)),
        }
    }

    async fn apply_inner(
        &mut self,
        batch: &[Incoming],
        published_through: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let debug_delay = self.debug_commit_delay;
        let tx = self.client.transaction().await?;
        let st = &self.statements;
        let ctx = BatchContext {
            st,
            group: &self.group,
            consumer_group: &self.consumer_group,
            topic: &self.topic,
            deferred: self.deferred.as_ref(),
        };
        let applied = ctx.run(&tx, batch, published_through, now).await?;
        if !debug_delay.is_zero() {
            tracing::info!(
                delay_ms = debug_delay.as_millis() as u64,
                "debug: holding the batch transaction open before commit"
            );
            tokio::time::sleep(debug_delay).await;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Recomputes `days` (tenant, employee, work date) from their stored, counting punches in
    /// one transaction under the group's lock, exactly as a batch recomputes the days it
    /// touches: a day whose figures changed is upserted with `revision + 1`, `computed_at =
    /// now` and this transaction's batch sequence (so the consumer's outbox publishes it); an
    /// unchanged day is not written; a day with nothing counting and no row gets none. The
    /// rebuild's final pass (see [`Store::defer_days`]).
    pub async fn recompute(
        &mut self,
        days: &[(String, String, NaiveDate)],
        now: DateTime<Utc>,
    ) -> Result<Recomputed, StoreError> {
        let budget = self.statement_timeout;
        match tokio::time::timeout(budget, self.recompute_inner(days, now)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(budget)),
        }
    }

    async fn recompute_inner(
        &mut self,
        days: &[(String, String, NaiveDate)],
        now: DateTime<Utc>,
    ) -> Result<Recomputed, StoreError> {
        let touched: BTreeSet<DayKey> = days
            .iter()
            .map(|(tenant, employee, date)| DayKey {
                tenant: tenant.clone(),
                employee: employee.clone(),
                date: *date,
            })
            .collect();
        let keys = DayKeys::of(&touched);
        let mut tenant_ids = keys.tenants.clone();
        tenant_ids.sort_unstable();
        tenant_ids.dedup();
        let transaction = self.client.transaction().await?;
        let tx = &transaction;
        let st = &self.statements;
        let cg = self.consumer_group.as_str();
        let (keys, tenant_ids) = (&keys, &tenant_ids);
        let round: Vec<Pending<'_>> = vec![
            Box::pin(async move { tx.query(&st.lock, &[&cg]).await }),
            Box::pin(async move { tx.query(&st.tenants, &[tenant_ids]).await }),
            Box::pin(async move {
                tx.query(
                    &st.day_punches,
                    &[&keys.tenants, &keys.employees, &keys.dates],
                )
                .await
            }),
            Box::pin(async move {
                tx.query(&st.days, &[&keys.tenants, &keys.employees, &keys.dates])
                    .await
            }),
        ];
        let mut rows = pipelined(round).await?.into_iter();
        let mut next_rows = || rows.next().unwrap_or_default();
        let (lock, tenant_rows, punch_rows, day_rows) =
            (next_rows(), next_rows(), next_rows(), next_rows());
        let batch_seq: i64 = lock.first().map(|r| r.get(1)).unwrap_or_default();
        let calendars = calendars(&tenant_rows, tenant_ids);
        let mut counts = Counts::default();
        let (_, columns) = recompute_days(
            &touched,
            &punch_rows,
            &day_rows,
            &calendars,
            now,
            &mut counts,
        );
        if !columns.tenant.is_empty() {
            pipelined(vec![columns.upsert(
                tx,
                st,
                self.group.as_str(),
                now,
                batch_seq,
            )])
            .await?;
        }
        transaction.commit().await?;
        Ok(Recomputed {
            batch_seq,
            changed: counts.days_changed,
            unchanged: counts.days_unchanged,
        })
    }
}

fn unreachable_id(kind: &str) -> ! {
    // The consumer only writes ids it parsed; a row that fails is a schema bug.
    panic!("attendance_days holds an invalid {kind} id")
}

/// One batch's transaction.
struct BatchContext<'a> {
    st: &'a Statements,
    group: &'a GroupId,
    consumer_group: &'a str,
    topic: &'a str,
    deferred: Option<&'a Scope>,
}

/// A statement's future, boxed so that a variable set of them can be pipelined.
type Pending<'t> =
    std::pin::Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 't>>;

/// Runs `statements` pipelined on one connection: each is first polled (which sends it) in
/// order, before any answer is awaited, so Postgres executes them in exactly this order and
/// the batch costs one round trip per phase rather than one per statement.
async fn pipelined(mut statements: Vec<Pending<'_>>) -> Result<Vec<Vec<Row>>, StoreError> {
    let mut results: Vec<Option<Vec<Row>>> = statements.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (statement, result) in statements.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match statement.as_mut().poll(cx) {
                    Poll::Ready(Ok(rows)) => *result = Some(rows),
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    })
    .await?;
    Ok(results.into_iter().map(Option::unwrap_or_default).collect())
}

impl BatchContext<'_> {
    /// The batch's statements, in four pipelined round trips: read (lock, offsets, calendars,
    /// stored state), write punches and read the touched days, write days and offsets; the
    /// caller commits.
    async fn run(
        &self,
        tx: &Transaction<'_>,
        batch: &[Incoming],
        published_through: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let st = self.st;
        let mut tenant_ids: Vec<&str> = batch
            .iter()
            .filter_map(|r| r.verdict.as_ref().map(|v| v.tenant_id.as_str()))
            .collect();
        tenant_ids.sort_unstable();
        tenant_ids.dedup();
        let mut ids: Vec<Uuid> = batch
            .iter()
            .filter_map(|r| r.verdict.as_ref().map(|v| *v.punch_id.as_uuid()))
            .collect();
        ids.sort_unstable();
        ids.dedup();

        // Round trip 1: the group lock first (everything after it waits for it), then what is
        // stored. Reads cover the whole batch; records already applied are dropped below.
        // Each later statement reads after the lock is granted (read committed: a snapshot per
        // statement), so it sees a rebuild's clear that committed while this batch waited.
        let cg = self.consumer_group;
        let topic = self.topic;
        let mut round: Vec<Pending<'_>> = vec![
            Box::pin(async move { tx.query(&st.lock, &[&cg]).await }),
            Box::pin(async move { tx.query(&st.unfinished, &[&cg]).await }),
            Box::pin(async move { tx.query(&st.offsets, &[&cg, &topic]).await }),
            Box::pin(async { tx.query(&st.tenants, &[&tenant_ids]).await }),
            Box::pin(async { tx.query(&st.punches, &[&ids]).await }),
            Box::pin(async { tx.query(&st.rejections, &[&ids]).await }),
        ];
        let mut rows = pipelined(std::mem::take(&mut round)).await?.into_iter();
        let mut next_rows = || rows.next().unwrap_or_default();
        let (lock, unfinished, stored, tenant_rows, punch_rows, rejection_rows) = (
            next_rows(),
            next_rows(),
            next_rows(),
            next_rows(),
            next_rows(),
            next_rows(),
        );
        // The rebuild's own replay (days deferred) runs while its row exists; nobody else may.
        if self.deferred.is_none()
            && let Some(row) = unfinished.first()
        {
            return Err(StoreError::RebuildUnfinished(marker::unfinished_of(
                self.group, row,
            )));
        }
        let mut applied = Applied {
            batch_seq: lock.first().map(|r| r.get(1)).unwrap_or_default(),
            ..Applied::default()
        };
        let counts = &mut applied.counts;

        // Offsets: skip what an earlier batch applied; the batch may hold a record twice if a
        // partition was re-read, so keep each (partition, offset) once.
        let stored: HashMap<i32, i64> = stored.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut next = BTreeMap::new();
        let mut seen = HashSet::new();
        let mut fresh: Vec<&Incoming> = Vec::with_capacity(batch.len());
        for record in batch {
            let from = stored.get(&record.partition).copied().unwrap_or(0);
            if record.offset < from || !seen.insert((record.partition, record.offset)) {
                counts.already_applied += 1;
                continue;
            }
            let entry = next.entry(record.partition).or_insert(from);
            *entry = (*entry).max(record.offset + 1);
            fresh.push(record);
        }
        if fresh.is_empty() {
            if let Some(seq) = published_through {
                tx.execute(&st.mark, &[&self.consumer_group, &seq]).await?;
            }
            return Ok(applied);
        }
        let calendars = calendars(&tenant_rows, &tenant_ids);
        let mut states = load_states(&punch_rows, &rejection_rows);

        // Resolve every verdict in log order (per partition).
        let mut touched: BTreeSet<DayKey> = BTreeSet::new();
        let mut conflicts: Vec<&Incoming> = Vec::new();
        for record in &fresh {
            let Some(verdict) = &record.verdict else {
                counts.invalid += 1;
                continue;
            };
            let calendar = calendars
                .get(verdict.tenant_id.as_str())
                .copied()
                .unwrap_or_default();
            resolve(
                &mut states,
                record,
                verdict,
                calendar,
                counts,
                &mut touched,
                &mut conflicts,
            );
        }

        // A rebuild recomputes the days it rebuilds once, at its end (crate::rebuild).
        if let Some(scope) = self.deferred {
            touched.retain(|day| !scope.covers(&day.tenant));
        }

        // Round trip 2: the punch writes, then (seeing them) the touched days' punches and rows.
        let writes = PunchWrites::of(&states, &conflicts);
        let day_keys = DayKeys::of(&touched);
        let mut statements = writes.statements(self, tx);
        let keys = &day_keys;
        statements.push(Box::pin(async move {
            tx.query(
                &st.day_punches,
                &[&keys.tenants, &keys.employees, &keys.dates],
            )
            .await
        }));
        statements.push(Box::pin(async move {
            tx.query(&st.days, &[&keys.tenants, &keys.employees, &keys.dates])
                .await
        }));
        let mut results = pipelined(statements).await?;
        let day_rows = results.pop().unwrap_or_default();
        let punch_rows = results.pop().unwrap_or_default();

        let (days, columns) =
            recompute_days(&touched, &punch_rows, &day_rows, &calendars, now, counts);
        applied.changed_days = days;

        // Round trip 3: the days, the offsets and the publish mark.
        let (parts, offs): (Vec<i32>, Vec<i64>) = next.iter().map(|(p, o)| (*p, *o)).unzip();
        let group = self.group.as_str();
        let batch_seq = applied.batch_seq;
        let c = &columns;
        let mut statements: Vec<Pending<'_>> = Vec::with_capacity(3);
        if !c.tenant.is_empty() {
            statements.push(c.upsert(tx, st, group, now, batch_seq));
        }
        let (parts, offs) = (&parts, &offs);
        statements.push(Box::pin(async move {
            tx.query(&st.store_offsets, &[&cg, &topic, parts, offs])
                .await
        }));
        if let Some(seq) = published_through {
            statements.push(Box::pin(
                async move { tx.query(&st.mark, &[&cg, &seq]).await },
            ));
        }
        pipelined(statements).await?;
        applied.offsets = next;
        Ok(applied)
    }
}

/// Tenants' calendars from their rows; missing tenants get the contract's defaults.
fn calendars(rows: &[Row], tenant_ids: &[&str]) -> HashMap<String, Calendar> {
    let mut calendars = HashMap::new();
    for row in rows {
        let tenant: String = row.get(0);
        let zone: String = row.get(1);
        let tz = zone.parse::<Tz>().unwrap_or_else(|_| {
            tracing::error!(
                tenant,
                zone,
                "tenant has an unknown time zone; using Asia/Tokyo"
            );
            rules::DEFAULT_TIME_ZONE
        });
        calendars.insert(
            tenant,
            Calendar {
                tz,
                day_change: row.get(2),
            },
        );
    }
    for tenant in tenant_ids {
        if !calendars.contains_key(*tenant) {
            tracing::warn!(
                tenant,
                "verdict for a tenant missing from master data; using the default calendar"
            );
        }
    }
    calendars
}

fn parse_kind(kind: &str) -> Option<PunchKind> {
    PunchKind::ALL.iter().copied().find(|k| k.as_str() == kind)
}

/// The stored state of the batch's punches: rows of `punches`, else of `punch_rejections`.
fn load_states<'a>(punch_rows: &[Row], rejection_rows: &[Row]) -> HashMap<Uuid, PunchState<'a>> {
    let mut states = HashMap::with_capacity(punch_rows.len() + rejection_rows.len());
    for row in rejection_rows {
        let checked_at: DateTime<Utc> = row.get(2);
        states.insert(
            row.get(0),
            PunchState::Rejected {
                key: VerdictKey {
                    master_data_version: row.get(1),
                    checked_at: checked_at.timestamp_millis(),
                    rank: 1,
                },
                upsert: None,
            },
        );
    }
    for row in punch_rows {
        let Some(kind) = parse_kind(row.get(5)) else {
            continue;
        };
        let checked_at: DateTime<Utc> = row.get(10);
        let withdrawn: bool = row.get(8);
        // A punch in both tables (never written so) counts as stored.
        let drop_rejection = states.contains_key(&row.get::<_, Uuid>(0));
        states.insert(
            row.get(0),
            PunchState::Stored {
                content: Content {
                    card_id: row.get(4),
                    kind,
                    at: row.get::<_, DateTime<Utc>>(6).timestamp_millis(),
                    at_offset_minutes: row.get(7),
                    employee_id: Some(row.get(2)),
                },
                day: DayKey {
                    tenant: row.get(1),
                    employee: row.get(2),
                    date: row.get(3),
                },
                key: VerdictKey {
                    master_data_version: row.get(9),
                    checked_at: checked_at.timestamp_millis(),
                    rank: u8::from(withdrawn),
                },
                withdrawn,
                insert: None,
                verdict_source: None,
                drop_rejection,
            },
        );
    }
    states
}

/// The column arrays of the touched days, as query parameters.
struct DayKeys<'a> {
    tenants: Vec<&'a str>,
    employees: Vec<&'a str>,
    dates: Vec<NaiveDate>,
}

impl<'a> DayKeys<'a> {
    fn of(touched: &'a BTreeSet<DayKey>) -> Self {
        Self {
            tenants: touched.iter().map(|k| k.tenant.as_str()).collect(),
            employees: touched.iter().map(|k| k.employee.as_str()).collect(),
            dates: touched.iter().map(|k| k.date).collect(),
        }
    }
}

/// The punch-side writes of a batch, as column arrays.
#[derive(Default)]
struct PunchWrites<'a> {
    inserts: PunchColumns,
    updates: UpdateColumns,
    rejections: RejectionColumns,
    drop_rejections: Vec<Uuid>,
    conflicts: Vec<&'a Incoming>,
    conflict_json: Vec<serde_json::Value>,
    conflict_ids: Vec<Uuid>,
    conflict_tenants: Vec<&'a str>,
    conflict_parts: Vec<i32>,
    conflict_offs: Vec<i64>,
}

impl<'a> PunchWrites<'a> {
    fn of(states: &HashMap<Uuid, PunchState<'a>>, conflicts: &[&'a Incoming]) -> Self {
        let mut w = PunchWrites::default();
        // Sorted by punch id: deterministic statements, and a stable lock order.
        let mut sorted: Vec<(&Uuid, &PunchState<'a>)> = states.iter().collect();
        sorted.sort_unstable_by_key(|(id, _)| **id);
        for (id, state) in sorted {
            match state {
                PunchState::Stored {
                    key,
                    withdrawn,
                    insert,
                    verdict_source,
                    drop_rejection,
                    ..
                } => {
                    if *drop_rejection {
                        w.drop_rejections.push(*id);
                    }
                    match insert {
                        Some(new) => w.inserts.push(new, key, *withdrawn, *verdict_source),
                        None => {
                            if let Some((partition, offset)) = verdict_source {
                                w.updates.push(*id, key, *withdrawn, *partition, *offset);
                            }
                        }
                    }
                }
                PunchState::Rejected {
                    upsert: Some(record),
                    ..
                } => {
                    if let Some(verdict) = &record.verdict {
                        w.rejections.push(verdict, record.partition, record.offset);
                    }
                }
                PunchState::Rejected { upsert: None, .. } => {}
            }
        }
        for record in conflicts {
            if let Some(verdict) = &record.verdict {
                w.conflict_ids.push(*verdict.punch_id.as_uuid());
                w.conflict_tenants.push(verdict.tenant_id.as_str());
                w.conflict_json
                    .push(serde_json::to_value(verdict).unwrap_or(serde_json::Value::Null));
                w.conflict_parts.push(record.partition);
                w.conflict_offs.push(record.offset);
            }
        }
        w.conflicts = conflicts.to_vec();
        w
    }

    /// The statements to run, in order: inserts before the conflicts that refer to them.
    fn statements<'t>(
        &'t self,
        ctx: &'t BatchContext<'_>,
        tx: &'t Transaction<'_>,
    ) -> Vec<Pending<'t>> {
        let st = ctx.st;
        let group = ctx.group.as_str();
        let topic = ctx.topic;
        let mut out: Vec<Pending<'t>> = Vec::new();
        if !self.inserts.punch_id.is_empty() {
            let c = &self.inserts;
            out.push(Box::pin(async move {
                tx.query(
                    &st.insert_punches,
                    &[
                        &group,
                        &topic,
                        &c.punch_id,
                        &c.tenant_id,
                        &c.device_id,
                        &c.seq,
                        &c.card_id,
                        &c.employee_id,
                        &c.kind,
                        &c.at,
                        &c.at_offset_minutes,
                        &c.work_date,
                        &c.received_at,
                        &c.master_data_version,
                        &c.partition,
                        &c.offset,
                        &c.withdrawn,
                        &c.verdict_mdv,
                        &c.verdict_checked_at,
                        &c.verdict_partition,
                        &c.verdict_offset,
                    ],
                )
                .await
            }));
        }
        if !self.updates.punch_id.is_empty() {
            let c = &self.updates;
            out.push(Box::pin(async move {
                tx.query(
                    &st.update_punches,
                    &[
                        &c.punch_id,
                        &c.withdrawn,
                        &c.verdict_mdv,
                        &c.verdict_checked_at,
                        &c.partition,
                        &c.offset,
                    ],
                )
                .await
            }));
        }
        if !self.drop_rejections.is_empty() {
            let ids = &self.drop_rejections;
            out.push(Box::pin(async move {
                tx.query(&st.delete_rejections, &[ids]).await
            }));
        }
        if !self.rejections.punch_id.is_empty() {
            let c = &self.rejections;
            out.push(Box::pin(async move {
                tx.query(
                    &st.upsert_rejections,
                    &[
                        &topic,
                        &c.punch_id,
                        &c.tenant_id,
                        &c.reason,
                        &c.master_data_version,
                        &c.checked_at,
                        &c.partition,
                        &c.offset,
                    ],
                )
                .await
            }));
        }
        if !self.conflicts.is_empty() {
            out.push(Box::pin(async move {
                tx.query(
                    &st.insert_conflicts,
                    &[
                        &topic,
                        &self.conflict_ids,
                        &self.conflict_tenants,
                        &self.conflict_json,
                        &self.conflict_parts,
                        &self.conflict_offs,
                    ],
                )
                .await
            }));
        }
        out
    }
}

/// The figures of an `attendance_days` row whose columns, from index `first` on, are
/// `first_in, last_out, worked_minutes, break_minutes, night_minutes, overtime_minutes,
/// punch_count, anomalies, double_taps`. An anomaly code this build does not know is left out,
/// so the stored day then differs from any recomputation (shared with `punchctl audit`).
pub fn day_figures(row: &Row, first: usize) -> DayFigures {
    let millis = |i: usize| {
        row.get::<_, Option<DateTime<Utc>>>(first + i)
            .map(|t| t.timestamp_millis())
    };
    let codes: Vec<String> = row.get(first + 7);
    DayFigures {
        first_in: millis(0),
        last_out: millis(1),
        worked_minutes: row.get(first + 2),
        break_minutes: row.get(first + 3),
        night_minutes: row.get(first + 4),
        overtime_minutes: row.get(first + 5),
        punch_count: row.get(first + 6),
        anomalies: codes
            .iter()
            .filter_map(|c| rules::Anomaly::parse(c))
            .collect(),
        double_taps: row.get(first + 8),
    }
}

/// Recomputes the touched days from their counting punches; returns the days that changed
/// (to publish) and their columns (to upsert).
fn recompute_days(
    touched: &BTreeSet<DayKey>,
    punch_rows: &[Row],
    day_rows: &[Row],
    calendars: &HashMap<String, Calendar>,
    now: DateTime<Utc>,
    counts: &mut Counts,
) -> (Vec<AttendanceDay>, DayColumns) {
    let mut punches: HashMap<DayKey, Vec<Punch>> = HashMap::with_capacity(touched.len());
    for row in punch_rows {
        let Some(kind) = parse_kind(row.get(5)) else {
            continue;
        };
        let seq: i64 = row.get(4);
        punches
            .entry(DayKey {
                tenant: row.get(0),
                employee: row.get(1),
                date: row.get(2),
            })
            .or_default()
            .push(Punch {
                punch_id: row.get(3),
                seq: u64::try_from(seq).unwrap_or(0),
                kind,
                at: row.get::<_, DateTime<Utc>>(6).timestamp_millis(),
            });
    }
    let mut existing: HashMap<DayKey, (DayFigures, i64)> = HashMap::with_capacity(day_rows.len());
    for row in day_rows {
        let figures = day_figures(row, 3);
        existing.insert(
            DayKey {
                tenant: row.get(0),
                employee: row.get(1),
                date: row.get(2),
            },
            (figures, row.get(12)),
        );
    }

    let mut columns = DayColumns::default();
    let mut changed = Vec::new();
    for key in touched {
        let tz = calendars.get(&key.tenant).copied().unwrap_or_default().tz;
        let figures =
            rules::compute_day(punches.get(key).map(Vec::as_slice).unwrap_or_default(), tz);
        let revision = match existing.get(key) {
            Some((old, _)) if *old == figures => {
                counts.days_unchanged += 1;
                continue;
            }
            Some((old, revision)) => {
                counts.double_taps +=
                    u64::try_from(figures.double_taps - old.double_taps).unwrap_or(0);
                revision + 1
            }
            None if figures == DayFigures::default() => {
                // Nothing counts and nothing was ever published: no row.
                counts.days_unchanged += 1;
                continue;
            }
            None => {
                counts.double_taps += u64::try_from(figures.double_taps).unwrap_or(0);
                1
            }
        };
        counts.days_changed += 1;
        columns.push(key, &figures, revision);
        changed.push(attendance_day(key, &figures, revision, now));
    }
    (changed, columns)
}

/// Applies one verdict to the batch's view of its punch.
fn resolve<'a>(
    states: &mut HashMap<Uuid, PunchState<'a>>,
    record: &'a Incoming,
    verdict: &'a CheckedPunch,
    calendar: Calendar,
    counts: &mut Counts,
    touched: &mut BTreeSet<DayKey>,
    conflicts: &mut Vec<&'a Incoming>,
) {
    let id = *verdict.punch_id.as_uuid();
    let key = VerdictKey::of(verdict);
    let accepted = verdict.verdict == Verdict::Accepted;
    let source = (record.partition, record.offset);
    match states.get_mut(&id) {
        Some(PunchState::Stored {
            content,
            day,
            key: stored_key,
            withdrawn,
            verdict_source,
            ..
        }) => {
            if !content.agrees_with(verdict) {
                counts.conflicts += 1;
                conflicts.push(record);
                return;
            }
            if key <= *stored_key {
                if accepted && !*withdrawn {
                    counts.duplicates += 1;
                } else {
                    counts.superseded += 1;
                }
                return;
            }
            if key.master_data_version == stored_key.master_data_version && accepted != *withdrawn {
                // The same verdict from the same master data: a resend judged again. Verdicts
                // of one master-data version cannot disagree (the check is a pure function of
                // punch and snapshot), so its later `checked_at` orders nothing: not written.
                if accepted {
                    counts.duplicates += 1;
                } else {
                    counts.superseded += 1;
                }
                return;
            }
            *stored_key = key;
            *verdict_source = Some(source);
            match (accepted, *withdrawn) {
                (true, true) => {
                    *withdrawn = false;
                    counts.reinstated += 1;
                    touched.insert(day.clone());
                }
                (false, false) => {
                    *withdrawn = true;
                    counts.withdrawn += 1;
                    touched.insert(day.clone());
                }
                (true, false) => counts.duplicates += 1,
                (false, true) => counts.superseded += 1,
            }
        }
        Some(PunchState::Rejected {
            key: rejected_key,
            upsert,
        }) => {
            if accepted {
                let Some(new) = new_punch(record, verdict, calendar) else {
                    counts.invalid += 1;
                    return;
                };
                let withdrawn = *rejected_key > key;
                let day = new.day();
                if withdrawn {
                    counts.superseded += 1;
                } else {
                    counts.stored += 1;
                    touched.insert(day.clone());
                }
                let stored_key = key.max(*rejected_key);
                states.insert(
                    id,
                    PunchState::Stored {
                        content: Content::of(verdict),
                        day,
                        key: stored_key,
                        withdrawn,
                        insert: Some(new),
                        verdict_source: None,
                        drop_rejection: true,
                    },
                );
            } else {
                counts.rejected += 1;
                if key.master_data_version > rejected_key.master_data_version {
                    *rejected_key = key;
                    *upsert = Some(record);
                }
            }
        }
        None => {
            if accepted {
                let Some(new) = new_punch(record, verdict, calendar) else {
                    counts.invalid += 1;
                    return;
                };
                counts.stored += 1;
                let day = new.day();
                touched.insert(day.clone());
                states.insert(
                    id,
                    PunchState::Stored {
                        content: Content::of(verdict),
                        day,
                        key,
                        withdrawn: false,
                        insert: Some(new),
                        verdict_source: None,
                        drop_rejection: false,
                    },
                );
            } else {
                counts.rejected += 1;
                states.insert(
                    id,
                    PunchState::Rejected {
                        key,
                        upsert: Some(record),
                    },
                );
            }
        }
    }
}

fn new_punch<'a>(
    record: &'a Incoming,
    verdict: &'a CheckedPunch,
    calendar: Calendar,
) -> Option<NewPunch<'a>> {
    // The consumer quarantines accepted verdicts without an employee before they get here.
    verdict.employee_id.as_ref()?;
    Some(NewPunch {
        record,
        verdict,
        work_date: rules::work_date(verdict.at, calendar.tz, calendar.day_change),
    })
}

impl NewPunch<'_> {
    fn day(&self) -> DayKey {
        DayKey {
            tenant: self.verdict.tenant_id.to_string(),
            employee: self
                .verdict
                .employee_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            date: self.work_date,
        }
    }
}

fn millis_to_time(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn attendance_day(
    key: &DayKey,
    f: &DayFigures,
    revision: i64,
    now: DateTime<Utc>,
) -> AttendanceDay {
    AttendanceDay {
        tenant_id: TenantId::try_from(key.tenant.as_str())
            .unwrap_or_else(|_| unreachable_id("tenant")),
        employee_id: EmployeeId::try_from(key.employee.as_str())
            .unwrap_or_else(|_| unreachable_id("employee")),
        work_date: to_epoch_days(key.date),
        first_in: f.first_in,
        last_out: f.last_out,
        worked_minutes: f.worked_minutes,
        break_minutes: f.break_minutes,
        night_minutes: f.night_minutes,
        overtime_minutes: f.overtime_minutes,
        punch_count: f.punch_count,
        anomalies: f.anomaly_codes(),
        revision,
        computed_at: now.timestamp_millis(),
    }
}

/// Column arrays of new punch rows, for one multi-row insert.
#[derive(Debug, Default)]
struct PunchColumns {
    punch_id: Vec<Uuid>,
    tenant_id: Vec<String>,
    device_id: Vec<String>,
    seq: Vec<i64>,
    card_id: Vec<String>,
    employee_id: Vec<String>,
    kind: Vec<&'static str>,
    at: Vec<DateTime<Utc>>,
    at_offset_minutes: Vec<i32>,
    work_date: Vec<NaiveDate>,
    received_at: Vec<DateTime<Utc>>,
    master_data_version: Vec<i64>,
    partition: Vec<i32>,
    offset: Vec<i64>,
    withdrawn: Vec<bool>,
    verdict_mdv: Vec<i64>,
    verdict_checked_at: Vec<DateTime<Utc>>,
    verdict_partition: Vec<i32>,
    verdict_offset: Vec<i64>,
}

impl PunchColumns {
    fn push(
        &mut self,
        new: &NewPunch<'_>,
        key: &VerdictKey,
        withdrawn: bool,
        verdict_source: Option<(i32, i64)>,
    ) {
        let (verdict_partition, verdict_offset) =
            verdict_source.unwrap_or((new.record.partition, new.record.offset));
        self.verdict_partition.push(verdict_partition);
        self.verdict_offset.push(verdict_offset);
        let v = new.verdict;
        self.punch_id.push(*v.punch_id.as_uuid());
        self.tenant_id.push(v.tenant_id.to_string());
        self.device_id.push(v.device_id.to_string());
        self.seq.push(i64::try_from(v.seq).unwrap_or(i64::MAX));
        self.card_id.push(v.card_id.to_string());
        self.employee_id.push(
            v.employee_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        );
        self.kind.push(v.kind.as_str());
        self.at.push(millis_to_time(v.at));
        self.at_offset_minutes.push(v.at_offset_minutes);
        self.work_date.push(new.work_date);
        self.received_at.push(millis_to_time(v.received_at));
        self.master_data_version.push(v.master_data_version);
        self.partition.push(new.record.partition);
        self.offset.push(new.record.offset);
        self.withdrawn.push(withdrawn);
        self.verdict_mdv.push(key.master_data_version);
        self.verdict_checked_at.push(millis_to_time(key.checked_at));
    }
}

#[derive(Debug, Default)]
struct UpdateColumns {
    punch_id: Vec<Uuid>,
    withdrawn: Vec<bool>,
    verdict_mdv: Vec<i64>,
    verdict_checked_at: Vec<DateTime<Utc>>,
    partition: Vec<i32>,
    offset: Vec<i64>,
}

impl UpdateColumns {
    fn push(&mut self, id: Uuid, key: &VerdictKey, withdrawn: bool, partition: i32, offset: i64) {
        self.punch_id.push(id);
        self.withdrawn.push(withdrawn);
        self.verdict_mdv.push(key.master_data_version);
        self.verdict_checked_at.push(millis_to_time(key.checked_at));
        self.partition.push(partition);
        self.offset.push(offset);
    }
}

#[derive(Debug, Default)]
struct RejectionColumns {
    punch_id: Vec<Uuid>,
    tenant_id: Vec<String>,
    reason: Vec<Option<&'static str>>,
    master_data_version: Vec<i64>,
    checked_at: Vec<DateTime<Utc>>,
    partition: Vec<i32>,
    offset: Vec<i64>,
}

impl RejectionColumns {
    fn push(&mut self, v: &CheckedPunch, partition: i32, offset: i64) {
        self.punch_id.push(*v.punch_id.as_uuid());
        self.tenant_id.push(v.tenant_id.to_string());
        self.reason.push(v.reason.map(|r| r.as_str()));
        self.master_data_version.push(v.master_data_version);
        self.checked_at.push(millis_to_time(v.checked_at));
        self.partition.push(partition);
        self.offset.push(offset);
    }
}

#[derive(Debug, Default)]
struct DayColumns {
    tenant: Vec<String>,
    employee: Vec<String>,
    date: Vec<NaiveDate>,
    first_in: Vec<Option<DateTime<Utc>>>,
    last_out: Vec<Option<DateTime<Utc>>>,
    worked: Vec<i32>,
    breaks: Vec<i32>,
    night: Vec<i32>,
    overtime: Vec<i32>,
    punch_count: Vec<i32>,
    anomalies: Vec<String>,
    double_taps: Vec<i32>,
    revision: Vec<i64>,
}

impl DayColumns {
    /// The upsert of these days, stamped with `now` and `batch_seq` (the outbox position).
    fn upsert<'t>(
        &'t self,
        tx: &'t Transaction<'_>,
        st: &'t Statements,
        group: &'t str,
        now: DateTime<Utc>,
        batch_seq: i64,
    ) -> Pending<'t> {
        Box::pin(async move {
            tx.query(
                &st.upsert_days,
                &[
                    &group,
                    &now,
                    &batch_seq,
                    &self.tenant,
                    &self.employee,
                    &self.date,
                    &self.first_in,
                    &self.last_out,
                    &self.worked,
                    &self.breaks,
                    &self.night,
                    &self.overtime,
                    &self.punch_count,
                    &self.anomalies,
                    &self.double_taps,
                    &self.revision,
                ],
            )
            .await
        })
    }

    fn push(&mut self, key: &DayKey, f: &DayFigures, revision: i64) {
        self.tenant.push(key.tenant.clone());
        self.employee.push(key.employee.clone());
        self.date.push(key.date);
        self.first_in.push(f.first_in.map(millis_to_time));
        self.last_out.push(f.last_out.map(millis_to_time));
        self.worked.push(f.worked_minutes);
        self.breaks.push(f.break_minutes);
        self.night.push(f.night_minutes);
        self.overtime.push(f.overtime_minutes);
        self.punch_count.push(f.punch_count);
        // Codes contain no commas; string_to_array('', ',') is the empty array.
        self.anomalies.push(f.anomaly_codes().join(","));
        self.double_taps.push(f.double_taps);
        self.revision.push(revision);
    }
}
