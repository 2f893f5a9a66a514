//! The batch's writes as column arrays, one multi-row statement per table
//! (`INSERT .. SELECT FROM UNNEST`); the days' columns follow [`dakoku_rules::fields`].

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use dakoku_rules::v2::figures::{DAY_FIELDS, MONTH_FIELDS};
use dakoku_schemas::{CheckedPunch, VerdictKey};
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::figures::{Changes, DayWrite, MonthWrite};
use super::keys::seconds_to_time;
use super::pipeline::Pending;
use super::resolve::{NewPunch, PunchState};
use super::sql::Statements;
use crate::decode::Incoming;

/// The punch-side writes of a batch, as column arrays.
#[derive(Default)]
pub(super) struct PunchWrites<'a> {
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
    pub(super) fn of(states: &HashMap<Uuid, PunchState<'a>>, conflicts: &[&'a Incoming]) -> Self {
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
    pub(super) fn statements<'t>(
        &'t self,
        st: &'t Statements,
        group: &'t str,
        topic: &'t str,
        tx: &'t Transaction<'_>,
    ) -> Vec<Pending<'t>> {
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

pub(super) fn millis_to_time(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or(DateTime::<Utc>::MIN_UTC)
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

/// The record writes that end a transaction: its changed days and months as column arrays.
pub(super) struct RecordWrites {
    days: DayColumns,
    months: MonthColumns,
}

impl RecordWrites {
    pub(super) fn of(changes: &Changes) -> Self {
        Self {
            days: DayColumns::of(&changes.days),
            months: MonthColumns::of(&changes.months),
        }
    }

    /// Their upserts (none for an empty side), stamped with `now` and `batch_seq` (the outbox
    /// position), to pipeline.
    pub(super) fn upserts<'t>(
        &'t self,
        tx: &'t Transaction<'_>,
        st: &'t Statements,
        group: &'t str,
        now: &'t DateTime<Utc>,
        batch_seq: &'t i64,
    ) -> Vec<Pending<'t>> {
        let mut out = Vec::with_capacity(2);
        if !self.days.is_empty() {
            out.push(self.days.upsert(tx, st, group, now, batch_seq));
        }
        if !self.months.is_empty() {
            out.push(self.months.upsert(tx, st, group, now, batch_seq));
        }
        out
    }
}

/// Next offsets of a topic's partitions, as the statement takes them.
pub(super) struct OffsetColumns {
    partitions: Vec<i32>,
    offsets: Vec<i64>,
}

impl OffsetColumns {
    pub(super) fn of(next: &BTreeMap<i32, i64>) -> Self {
        let (partitions, offsets) = next.iter().map(|(p, o)| (*p, *o)).unzip();
        Self {
            partitions,
            offsets,
        }
    }

    /// Stores them for `consumer_group` on `topic`, and the publish mark when given, to
    /// pipeline.
    pub(super) fn writes<'t>(
        &'t self,
        tx: &'t Transaction<'_>,
        st: &'t Statements,
        consumer_group: &'t str,
        topic: &'t str,
        published_through: Option<i64>,
    ) -> Vec<Pending<'t>> {
        let (parts, offs) = (&self.partitions, &self.offsets);
        let mut out: Vec<Pending<'t>> = vec![Box::pin(async move {
            tx.query(&st.store_offsets, &[&consumer_group, &topic, parts, offs])
                .await
        })];
        if let Some(seq) = published_through {
            out.push(Box::pin(async move {
                tx.query(&st.mark, &[&consumer_group, &seq]).await
            }));
        }
        out
    }
}

/// Column arrays of the days to write, for one multi-row upsert.
#[derive(Debug)]
pub(super) struct DayColumns {
    tenant: Vec<String>,
    employee: Vec<String>,
    date: Vec<NaiveDate>,
    first_in: Vec<Option<DateTime<Utc>>>,
    last_out: Vec<Option<DateTime<Utc>>>,
    anomalies: Vec<String>,
    revision: Vec<i64>,
    rules_version: Vec<i64>,
    corrected: Vec<bool>,
    /// Correction ids, comma-joined (uuids hold no commas).
    correction_ids: Vec<String>,
    /// worked, break, night, overtime (daily + weekly) minutes, for display.
    minutes: [Vec<i32>; 4],
    /// One array per figure, in [`DAY_FIELDS`] order.
    figures: Vec<Vec<i64>>,
}

impl DayColumns {
    pub(super) fn of(days: &[DayWrite]) -> Self {
        let mut c = DayColumns {
            tenant: Vec::with_capacity(days.len()),
            employee: Vec::with_capacity(days.len()),
            date: Vec::with_capacity(days.len()),
            first_in: Vec::with_capacity(days.len()),
            last_out: Vec::with_capacity(days.len()),
            anomalies: Vec::with_capacity(days.len()),
            revision: Vec::with_capacity(days.len()),
            rules_version: Vec::with_capacity(days.len()),
            corrected: Vec::with_capacity(days.len()),
            correction_ids: Vec::with_capacity(days.len()),
            minutes: Default::default(),
            figures: vec![Vec::with_capacity(days.len()); DAY_FIELDS.len()],
        };
        let minutes = |seconds: i64| i32::try_from(seconds / 60).unwrap_or(i32::MAX);
        for day in days {
            let f = &day.figures;
            c.tenant.push(day.key.tenant.clone());
            c.employee.push(day.key.employee.clone());
            c.date.push(day.date);
            c.first_in.push(f.first_in.map(seconds_to_time));
            c.last_out.push(f.last_out.map(seconds_to_time));
            // Codes contain no commas; string_to_array('', ',') is the empty array.
            let codes: Vec<&str> = f.anomalies.iter().map(|a| a.as_str()).collect();
            c.anomalies.push(codes.join(","));
            c.revision.push(day.revision);
            c.rules_version.push(day.rules_version);
            c.corrected.push(f.corrected);
            c.correction_ids.push(f.correction_ids.join(","));
            c.minutes[0].push(minutes(f.worked_seconds));
            c.minutes[1].push(minutes(f.break_seconds));
            c.minutes[2].push(minutes(f.night_seconds));
            c.minutes[3].push(minutes(
                f.overtime_daily_seconds + f.overtime_weekly_seconds,
            ));
            for (column, field) in c.figures.iter_mut().zip(DAY_FIELDS) {
                column.push((field.get)(f));
            }
        }
        c
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tenant.is_empty()
    }

    /// The upsert of these days, stamped with `now` and `batch_seq` (the outbox position).
    pub(super) fn upsert<'t>(
        &'t self,
        tx: &'t Transaction<'_>,
        st: &'t Statements,
        group: &'t str,
        now: &'t DateTime<Utc>,
        batch_seq: &'t i64,
    ) -> Pending<'t> {
        Box::pin(async move {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &group,
                now,
                batch_seq,
                &self.tenant,
                &self.employee,
                &self.date,
                &self.first_in,
                &self.last_out,
                &self.anomalies,
                &self.revision,
                &self.rules_version,
                &self.corrected,
            ];
            params.extend(self.minutes.iter().map(|c| c as &(dyn ToSql + Sync)));
            params.extend(self.figures.iter().map(|c| c as &(dyn ToSql + Sync)));
            params.push(&self.correction_ids);
            tx.query(&st.upsert_days, &params).await
        })
    }
}

/// Column arrays of the months to write, for one multi-row upsert.
#[derive(Debug)]
pub(super) struct MonthColumns {
    tenant: Vec<String>,
    employee: Vec<String>,
    month: Vec<String>,
    first_day: Vec<NaiveDate>,
    last_day: Vec<NaiveDate>,
    revision: Vec<i64>,
    rules_version: Vec<i64>,
    /// One array per figure, in [`MONTH_FIELDS`] order.
    figures: Vec<Vec<i64>>,
}

impl MonthColumns {
    pub(super) fn of(months: &[MonthWrite]) -> Self {
        let mut c = MonthColumns {
            tenant: Vec::new(),
            employee: Vec::new(),
            month: Vec::new(),
            first_day: Vec::new(),
            last_day: Vec::new(),
            revision: Vec::new(),
            rules_version: Vec::new(),
            figures: vec![Vec::with_capacity(months.len()); MONTH_FIELDS.len()],
        };
        for m in months {
            c.tenant.push(m.key.tenant.clone());
            c.employee.push(m.key.employee.clone());
            c.month.push(m.month.to_string());
            c.first_day.push(m.first_day);
            c.last_day.push(m.last_day);
            c.revision.push(m.revision);
            c.rules_version.push(m.rules_version);
            for (column, field) in c.figures.iter_mut().zip(MONTH_FIELDS) {
                column.push((field.get)(&m.figures));
            }
        }
        c
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tenant.is_empty()
    }

    /// The upsert of these months, stamped like the days.
    pub(super) fn upsert<'t>(
        &'t self,
        tx: &'t Transaction<'_>,
        st: &'t Statements,
        group: &'t str,
        now: &'t DateTime<Utc>,
        batch_seq: &'t i64,
    ) -> Pending<'t> {
        Box::pin(async move {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &group,
                now,
                batch_seq,
                &self.tenant,
                &self.employee,
                &self.month,
                &self.first_day,
                &self.last_day,
                &self.revision,
                &self.rules_version,
            ];
            params.extend(self.figures.iter().map(|c| c as &(dyn ToSql + Sync)));
            tx.query(&st.upsert_months, &params).await
        })
    }
}
