//! One batch's transaction, in pipelined round trips: read under the group's lock; write the
//! punches; load the touched employees' windows and stored records (more rounds only when a
//! window must widen); write the days, months, offsets and publish mark. The caller commits.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use dakoku_schemas::GroupId;
use dakoku_store::offsets;
use tokio_postgres::{Row, Transaction};
use uuid::Uuid;

use super::StoreError;
use super::closing::{self, Causes, ClosedLookup};
use super::columns::{OffsetColumns, PunchWrites, RecordWrites};
use super::figures::Changes;
use super::keys::{EmployeeKey, Touch};
use super::marker::{self, Scope};
use super::outcome::Applied;
use super::pipeline::{Pending, pipelined};
use super::recompute;
use super::resolve::{PunchState, resolve};
use super::rows;
use super::rulebooks::{self, TenantRules};
use super::sql::Statements;
use crate::counts::Counts;
use crate::decode::{Incoming, Position};

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
        let stored = self.read_stored(tx, &ids).await?;
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
        let started = std::time::Instant::now();
        let rules = rulebooks::load(tx, &tenant_ids).await?;
        let mut states = rows::load_states(&stored.punches, &stored.rejections);
        let (mut touched, conflicts) = resolve_all(&fresh, &mut states, &rules, counts);
        // A rebuild recomputes the employees it rebuilds once, at its end (crate::rebuild).
        if let Some(scope) = self.deferred {
            touched.retain(|touch| !scope.covers(&touch.employee.tenant));
        }
        let resolved = started.elapsed();
        self.write_punches(tx, &states, &conflicts).await?;
        let punches_written = started.elapsed();
        let changes = recompute::incremental(tx, self.st, &rules, &touched).await?;
        let recomputed = started.elapsed();
        counts.days_changed += changes.days.len() as u64;
        counts.months_changed += changes.months.len() as u64;
        counts.days_unchanged += changes.unchanged;
        counts.double_taps += changes.double_taps;
        let lookup = ClosedLookup::of(&changes.months);
        let closed = self
            .write_records(
                tx,
                &changes,
                &lookup,
                &next,
                published_through,
                now,
                applied.batch_seq,
            )
            .await?;
        applied.settled = closing::settle_rows(
            tx,
            self.group.as_str(),
            &changes.months,
            &closed,
            || batch_causes(&fresh),
            now,
            applied.batch_seq,
        )
        .await?;
        tracing::debug!(
            records = fresh.len(),
            touched = touched.len(),
            resolve_ms = resolved.as_millis() as u64,
            punches_ms = (punches_written - resolved).as_millis() as u64,
            recompute_ms = (recomputed - punches_written).as_millis() as u64,
            records_ms = (started.elapsed() - recomputed).as_millis() as u64,
            days = changes.days.len(),
            months = changes.months.len(),
            "batch phases"
        );
        applied.changes = changes;
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
        ids: &[Uuid],
    ) -> Result<StoredRows, StoreError> {
        let st = self.st;
        let cg = self.consumer_group;
        let topic = self.topic;
        let round: Vec<Pending<'_>> = vec![
            Box::pin(async move { tx.query(&st.lock, &[&cg]).await }),
            Box::pin(async move { tx.query(&st.unfinished, &[&cg]).await }),
            Box::pin(async move { tx.query(&st.offsets, &[&cg, &topic]).await }),
            Box::pin(async move { tx.query(&st.punches, &[&ids]).await }),
            Box::pin(async move { tx.query(&st.rejections, &[&ids]).await }),
        ];
        let mut rows = pipelined(round).await?.into_iter();
        let mut next_rows = || rows.next().unwrap_or_default();
        Ok(StoredRows {
            lock: next_rows(),
            unfinished: next_rows(),
            offsets: next_rows(),
            punches: next_rows(),
            rejections: next_rows(),
        })
    }

    /// Round trip 2: the punch writes.
    async fn write_punches<'a>(
        &self,
        tx: &Transaction<'_>,
        states: &HashMap<Uuid, PunchState<'a>>,
        conflicts: &[&'a Incoming],
    ) -> Result<(), StoreError> {
        let writes = PunchWrites::of(states, conflicts);
        let statements = writes.statements(self.st, self.group.as_str(), self.topic, tx);
        pipelined(statements).await?;
        Ok(())
    }

    /// The last round trip: the days, the months, the offsets and the publish mark, with the
    /// lookup of closed months among the changed ones (whose rows it returns).
    #[allow(clippy::too_many_arguments)]
    async fn write_records(
        &self,
        tx: &Transaction<'_>,
        changes: &Changes,
        closed: &ClosedLookup,
        next: &BTreeMap<i32, i64>,
        published_through: Option<i64>,
        now: DateTime<Utc>,
        batch_seq: i64,
    ) -> Result<Vec<Row>, StoreError> {
        let st = self.st;
        let records = RecordWrites::of(changes);
        let offsets = OffsetColumns::of(next);
        let (now, batch_seq) = (&now, &batch_seq);
        let mut statements: Vec<Pending<'_>> = Vec::with_capacity(5);
        let lookup = !changes.months.is_empty();
        if lookup {
            statements.push(closed.pending(tx));
        }
        statements.extend(records.upserts(tx, st, self.group.as_str(), now, batch_seq));
        statements.extend(offsets.writes(
            tx,
            st,
            self.consumer_group,
            self.topic,
            published_through,
        ));
        let results = pipelined(statements).await?;
        Ok(if lookup {
            results.into_iter().next().unwrap_or_default()
        } else {
            Vec::new()
        })
    }
}

/// Each employee's punches in the batch, as the causes of the adjustments it makes.
fn batch_causes(fresh: &[&Incoming]) -> Causes {
    let mut causes = Causes::default();
    for verdict in fresh.iter().filter_map(|r| r.verdict.as_ref()) {
        if let Some(employee) = &verdict.employee_id {
            let key = EmployeeKey {
                tenant: verdict.tenant_id.to_string(),
                employee: employee.to_string(),
            };
            causes.add(&key, format!("punch:{}", verdict.punch_id));
        }
    }
    causes
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
pub(super) fn skip_applied<'a, R: Position>(
    batch: &'a [R],
    stored: &HashMap<i32, i64>,
    counts: &mut Counts,
) -> (Vec<&'a R>, BTreeMap<i32, i64>) {
    let mut next = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut fresh: Vec<&R> = Vec::with_capacity(batch.len());
    for record in batch {
        let (partition, offset) = record.position();
        let from = stored.get(&partition).copied().unwrap_or(0);
        if offset < from || !seen.insert((partition, offset)) {
            counts.already_applied += 1;
            continue;
        }
        let entry = next.entry(partition).or_insert(from);
        *entry = (*entry).max(offset + 1);
        fresh.push(record);
    }
    (fresh, next)
}

/// Resolves every verdict in log order (per partition); returns the touched punches and the
/// conflicting records.
fn resolve_all<'a>(
    fresh: &[&'a Incoming],
    states: &mut HashMap<Uuid, PunchState<'a>>,
    rules: &HashMap<String, TenantRules>,
    counts: &mut Counts,
) -> (BTreeSet<Touch>, Vec<&'a Incoming>) {
    let default = TenantRules::defaults();
    let mut touched: BTreeSet<Touch> = BTreeSet::new();
    let mut conflicts: Vec<&Incoming> = Vec::new();
    for &record in fresh {
        let Some(verdict) = &record.verdict else {
            counts.invalid += 1;
            continue;
        };
        let tenant_rules = rules.get(verdict.tenant_id.as_str()).unwrap_or(&default);
        resolve(
            states,
            record,
            verdict,
            tenant_rules,
            counts,
            &mut touched,
            &mut conflicts,
        );
    }
    (touched, conflicts)
}
