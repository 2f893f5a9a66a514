//! Corrections (§4.6) into Postgres, exactly once like the punches: in one transaction under
//! the group's lock, the records past the stored offsets of `punches.corrections.<group>` are
//! stored once per correction id (the first stands), the employees they touch are recomputed
//! incrementally (an add counts at its instant, a void stops its target counting), and the
//! offsets are stored.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use dakoku_schemas::{CorrectionAction, GroupId};
use dakoku_store::offsets;
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::StoreError;
use super::batch::skip_applied;
use super::closing::{self, Causes};
use super::columns::{OffsetColumns, RecordWrites};
use super::keys::{EmployeeKey, Touch};
use super::marker;
use super::outcome::Applied;
use super::pipeline::pipelined;
use super::recompute;
use super::rulebooks;
use super::sql::Statements;
use crate::decode::IncomingCorrection;

/// Stores the corrections, returning per stored one its tenant, id, employee, action, instant
/// and target.
const SQL_INSERT: &str = "INSERT INTO corrections (tenant_id, correction_id, employee_id, \
     group_id, action, kind, at, target_id, actor, reason, created_at, source_partition, \
     source_offset) \
     SELECT u.t, u.id, u.e, $1, u.a, u.k, u.at, u.tg, u.ac, u.r, u.c, u.p, u.o \
     FROM UNNEST($2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], \
     $7::timestamptz[], $8::uuid[], $9::text[], $10::text[], $11::timestamptz[], $12::int[], \
     $13::bigint[]) AS u(t, id, e, a, k, at, tg, ac, r, c, p, o) \
     ON CONFLICT (tenant_id, correction_id) DO NOTHING \
     RETURNING tenant_id, correction_id, employee_id, action, at, target_id";

/// The employee and instant of each void's target: a stored punch or an add.
const SQL_TARGETS: &str = "SELECT k.t, k.target, x.employee_id, x.at \
     FROM UNNEST($1::text[], $2::uuid[]) AS k(t, target) \
     CROSS JOIN LATERAL (SELECT p.employee_id, p.at FROM punches p \
     WHERE p.punch_id = k.target AND p.tenant_id = k.t \
     UNION ALL SELECT c.employee_id, c.at FROM corrections c WHERE c.tenant_id = k.t \
     AND c.correction_id = k.target AND c.action = 'add') x";

/// Column arrays of the corrections to store.
#[derive(Default)]
struct Rows {
    tenant: Vec<String>,
    id: Vec<Uuid>,
    employee: Vec<String>,
    action: Vec<&'static str>,
    kind: Vec<Option<&'static str>>,
    at: Vec<Option<DateTime<Utc>>>,
    target: Vec<Option<Uuid>>,
    actor: Vec<String>,
    reason: Vec<String>,
    created: Vec<DateTime<Utc>>,
    partition: Vec<i32>,
    offset: Vec<i64>,
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Rows {
    fn of(records: &[&IncomingCorrection]) -> Self {
        let mut rows = Rows::default();
        let mut seen = HashSet::new();
        for record in records {
            let Some(c) = &record.correction else {
                continue;
            };
            // The first of an id stands, within a transaction as across them.
            if !seen.insert((c.tenant_id.to_string(), *c.correction_id.as_uuid())) {
                continue;
            }
            rows.tenant.push(c.tenant_id.to_string());
            rows.id.push(*c.correction_id.as_uuid());
            rows.employee.push(c.employee_id.to_string());
            rows.action.push(match c.action {
                CorrectionAction::Add => "add",
                CorrectionAction::Void => "void",
            });
            rows.kind.push(c.kind.map(|k| k.as_str()));
            rows.at.push(c.at.map(millis_to_time));
            rows.target.push(c.target_id.as_ref().map(|t| *t.as_uuid()));
            rows.actor.push(c.actor.clone());
            rows.reason.push(c.reason.clone());
            rows.created.push(millis_to_time(c.created_at));
            rows.partition.push(record.partition);
            rows.offset.push(record.offset);
        }
        rows
    }
}

/// The corrections' transaction; the caller commits.
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply(
    tx: &Transaction<'_>,
    st: &Statements,
    group: &GroupId,
    consumer_group: &str,
    topic: &str,
    records: &[IncomingCorrection],
    published_through: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    let lock = tx.query(&st.lock, &[&consumer_group]).await?;
    if let Some(row) = tx.query(&st.unfinished, &[&consumer_group]).await?.first() {
        return Err(StoreError::RebuildUnfinished(marker::unfinished_of(
            group, row,
        )));
    }
    let mut applied = Applied {
        batch_seq: lock.first().map(|r| r.get(1)).unwrap_or_default(),
        ..Applied::default()
    };
    let stored = offsets::from_rows(&tx.query(&st.offsets, &[&consumer_group, &topic]).await?);
    let (fresh, next) = skip_applied(records, &stored, &mut applied.counts);
    if fresh.is_empty() {
        return Ok(applied);
    }
    applied.counts.invalid += fresh.iter().filter(|r| r.correction.is_none()).count() as u64;
    let rows = Rows::of(&fresh);
    let inserted = tx
        .query(
            SQL_INSERT,
            &[
                &group.as_str(),
                &rows.tenant,
                &rows.id,
                &rows.employee,
                &rows.action,
                &rows.kind,
                &rows.at,
                &rows.target,
                &rows.actor,
                &rows.reason,
                &rows.created,
                &rows.partition,
                &rows.offset,
            ],
        )
        .await?;
    applied.counts.stored += inserted.len() as u64;
    let (touched, causes) = touches(tx, &inserted).await?;
    let mut tenants: Vec<&str> = touched.iter().map(|t| t.employee.tenant.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let rules = rulebooks::load(tx, &tenants).await?;
    let changes = recompute::incremental(tx, st, &rules, &touched).await?;
    applied.settled = closing::settle(
        tx,
        group.as_str(),
        &changes.months,
        || causes,
        now,
        applied.batch_seq,
    )
    .await?;
    let records = RecordWrites::of(&changes);
    let offsets = OffsetColumns::of(&next);
    let seq = applied.batch_seq;
    let mut writes = records.upserts(tx, st, group.as_str(), &now, &seq);
    writes.extend(offsets.writes(tx, st, consumer_group, topic, published_through));
    pipelined(writes).await?;
    applied.counts.days_changed = changes.days.len() as u64;
    applied.counts.months_changed = changes.months.len() as u64;
    applied.counts.days_unchanged = changes.unchanged;
    applied.changes = changes;
    applied.offsets = next;
    Ok(applied)
}

/// What the stored corrections touch: an add at its instant; a void at its target's instant,
/// for the target's employee (a target not stored yet is left out: when it arrives, the void
/// already keeps it from counting). Each touched employee's causes name the corrections.
async fn touches(
    tx: &Transaction<'_>,
    inserted: &[tokio_postgres::Row],
) -> Result<(BTreeSet<Touch>, Causes), StoreError> {
    let mut touched = BTreeSet::new();
    let mut causes = Causes::default();
    let mut voids: Vec<(String, Uuid, Uuid)> = Vec::new();
    for row in inserted {
        let tenant: String = row.get(0);
        let id: Uuid = row.get(1);
        let action: &str = row.get(3);
        if action == "add" {
            let employee = EmployeeKey {
                tenant,
                employee: row.get(2),
            };
            let at: DateTime<Utc> = row.get(4);
            causes.add(&employee, format!("correction:{id}"));
            touched.insert(Touch {
                employee,
                at: at.timestamp_millis(),
                removed: false,
            });
        } else if let Some(target) = row.get::<_, Option<Uuid>>(5) {
            voids.push((tenant, target, id));
        }
    }
    if voids.is_empty() {
        return Ok((touched, causes));
    }
    let tenants: Vec<&str> = voids.iter().map(|(t, _, _)| t.as_str()).collect();
    let targets: Vec<Uuid> = voids.iter().map(|(_, target, _)| *target).collect();
    let by_target: HashMap<(String, Uuid), Uuid> = voids
        .iter()
        .map(|(t, target, id)| ((t.clone(), *target), *id))
        .collect();
    for row in tx.query(SQL_TARGETS, &[&tenants, &targets]).await? {
        let tenant: String = row.get(0);
        let target: Uuid = row.get(1);
        let employee = EmployeeKey {
            tenant: tenant.clone(),
            employee: row.get(2),
        };
        let at: DateTime<Utc> = row.get(3);
        if let Some(id) = by_target.get(&(tenant, target)) {
            causes.add(&employee, format!("correction:{id}"));
        }
        touched.insert(Touch {
            employee,
            at: at.timestamp_millis(),
            removed: true,
        });
    }
    Ok((touched, causes))
}
