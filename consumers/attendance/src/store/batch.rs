//! One batch's transaction: four pipelined round trips (read under the group's lock; write
//! the punches and read the touched days; write the days, the offsets and the publish mark).
//! The caller commits.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use dakoku_rules::Calendar;
use dakoku_schemas::GroupId;
use dakoku_store::offsets;
use tokio_postgres::{Row, Transaction};
use uuid::Uuid;

use super::StoreError;
use super::columns::{DayColumns, PunchWrites};
use super::days::recompute_days;
use super::keys::{DayKey, DayKeys};
use super::marker::{self, Scope};
use super::outcome::Applied;
use super::pipeline::{Pending, pipelined};
use super::resolve::{PunchState, resolve};
use super::rows;
use super::sql::Statements;
use crate::counts::Counts;
use crate::decode::Incoming;

/// One batch's transaction.
pub(super) struct BatchContext<'a> {
    pub(super) st: &'a Statements,
    pub(super) group: &'a GroupId,
    pub(super) consumer_group: &'a str,
    pub(super) topic: &'a str,
    pub(super) deferred: Option<&'a Scope>,
}

/// What round trip 1 read, in the order it was sent.
struct StoredRows {
    lock: Vec<Row>,
    unfinished: Vec<Row>,
    offsets: Vec<Row>,
    tenants: Vec<Row>,
    punches: Vec<Row>,
    rejections: Vec<Row>,
}

impl BatchContext<'_> {
    /// The batch's statements (see the module docs); the caller commits.
    pub(super) async fn run(
        &self,
        tx: &Transaction<'_>,
        batch: &[Incoming],
        published_through: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let (tenant_ids, ids) = batch_ids(batch);
        let stored = self.read_stored(tx, &tenant_ids, &ids).await?;
        // The rebuild's own replay (days deferred) runs while its row exists; nobody else may.
        if self.deferred.is_none()
            && let Some(row) = stored.unfinished.first()
        {
            return Err(StoreError::RebuildUnfinished(marker::unfinished_of(
                self.group, row,
            )));
        }
        let mut applied = Applied {
            batch_seq: stored.lock.first().map(|r| r.get(1)).unwrap_or_default(),
            ..Applied::default()
        };
        let counts = &mut applied.counts;
        let (fresh, next) = skip_applied(batch, &offsets::from_rows(&stored.offsets), counts);
        if fresh.is_empty() {
            if let Some(seq) = published_through {
                tx.execute(&self.st.mark, &[&self.consumer_group, &seq])
                    .await?;
            }
            return Ok(applied);
        }
        let calendars = rows::calendars(&stored.tenants, &tenant_ids);
        let mut states = rows::load_states(&stored.punches, &stored.rejections);
        let (mut touched, conflicts) = resolve_all(&fresh, &mut states, &calendars, counts);
        // A rebuild recomputes the days it rebuilds once, at its end (crate::rebuild).
        if let Some(scope) = self.deferred {
            touched.retain(|day| !scope.covers(&day.tenant));
        }

        let (punch_rows, day_rows) = self
            .write_punches(tx, &states, &conflicts, &touched)
            .await?;
        let (days, columns) =
            recompute_days(&touched, &punch_rows, &day_rows, &calendars, now, counts);
        applied.changed_days = days;
        self.write_days(
            tx,
            &columns,
            &next,
            published_through,
            now,
            applied.batch_seq,
        )
        .await?;
        applied.offsets = next;
        Ok(applied)
    }

    /// Round trip 1: the group lock first (everything after it waits for it), then what is
    /// stored. Reads cover the whole batch; records already applied are dropped afterwards.
    /// Each later statement reads after the lock is granted (read committed: a snapshot per
    /// statement), so it sees a rebuild's clear that committed while this batch waited.
    async fn read_stored(
        &self,
        tx: &Transaction<'_>,
        tenant_ids: &[&str],
        ids: &[Uuid],
    ) -> Result<StoredRows, StoreError> {
        let st = self.st;
        let cg = self.consumer_group;
        let topic = self.topic;
        let round: Vec<Pending<'_>> = vec![
            Box::pin(async move { tx.query(&st.lock, &[&cg]).await }),
            Box::pin(async move { tx.query(&st.unfinished, &[&cg]).await }),
            Box::pin(async move { tx.query(&st.offsets, &[&cg, &topic]).await }),
            Box::pin(async move { tx.query(&st.tenants, &[&tenant_ids]).await }),
            Box::pin(async move { tx.query(&st.punches, &[&ids]).await }),
            Box::pin(async move { tx.query(&st.rejections, &[&ids]).await }),
        ];
        let mut rows = pipelined(round).await?.into_iter();
        let mut next_rows = || rows.next().unwrap_or_default();
        Ok(StoredRows {
            lock: next_rows(),
            unfinished: next_rows(),
            offsets: next_rows(),
            tenants: next_rows(),
            punches: next_rows(),
            rejections: next_rows(),
        })
    }

    /// Round trip 2: the punch writes, then (seeing them) the touched days' punches and rows.
    async fn write_punches<'a>(
        &self,
        tx: &Transaction<'_>,
        states: &HashMap<Uuid, PunchState<'a>>,
        conflicts: &[&'a Incoming],
        touched: &BTreeSet<DayKey>,
    ) -> Result<(Vec<Row>, Vec<Row>), StoreError> {
        let st = self.st;
        let writes = PunchWrites::of(states, conflicts);
        let keys = &DayKeys::of(touched);
        let mut statements = writes.statements(st, self.group.as_str(), self.topic, tx);
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
        Ok((punch_rows, day_rows))
    }

    /// Round trip 3: the days, the offsets and the publish mark.
    async fn write_days(
        &self,
        tx: &Transaction<'_>,
        columns: &DayColumns,
        next: &BTreeMap<i32, i64>,
        published_through: Option<i64>,
        now: DateTime<Utc>,
        batch_seq: i64,
    ) -> Result<(), StoreError> {
        let st = self.st;
        let (cg, topic) = (self.consumer_group, self.topic);
        let (parts, offs): (Vec<i32>, Vec<i64>) = next.iter().map(|(p, o)| (*p, *o)).unzip();
        let mut statements: Vec<Pending<'_>> = Vec::with_capacity(3);
        if !columns.tenant.is_empty() {
            statements.push(columns.upsert(tx, st, self.group.as_str(), now, batch_seq));
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
        Ok(())
    }
}

/// The batch's tenants and punch ids, sorted and distinct.
fn batch_ids(batch: &[Incoming]) -> (Vec<&str>, Vec<Uuid>) {
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
    (tenant_ids, ids)
}

/// Offsets: skips what an earlier batch applied; the batch may hold a record twice if a
/// partition was re-read, so each (partition, offset) is kept once. Returns the records to
/// apply and each partition's next offset.
fn skip_applied<'a>(
    batch: &'a [Incoming],
    stored: &HashMap<i32, i64>,
    counts: &mut Counts,
) -> (Vec<&'a Incoming>, BTreeMap<i32, i64>) {
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
    (fresh, next)
}

/// Resolves every verdict in log order (per partition); returns the touched days and the
/// conflicting records.
fn resolve_all<'a>(
    fresh: &[&'a Incoming],
    states: &mut HashMap<Uuid, PunchState<'a>>,
    calendars: &HashMap<String, Calendar>,
    counts: &mut Counts,
) -> (BTreeSet<DayKey>, Vec<&'a Incoming>) {
    let mut touched: BTreeSet<DayKey> = BTreeSet::new();
    let mut conflicts: Vec<&Incoming> = Vec::new();
    for &record in fresh {
        let Some(verdict) = &record.verdict else {
            counts.invalid += 1;
            continue;
        };
        let calendar = calendars
            .get(verdict.tenant_id.as_str())
            .copied()
            .unwrap_or_default();
        resolve(
            states,
            record,
            verdict,
            calendar,
            counts,
            &mut touched,
            &mut conflicts,
        );
    }
    (touched, conflicts)
}
