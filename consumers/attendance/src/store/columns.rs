//! The batch's writes as column arrays, one multi-row statement per table
//! (`INSERT .. SELECT FROM UNNEST`); the days' columns follow [`dakoku_rules::fields`].

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use dakoku_rules::{DayFigures, FIELDS, fields};
use dakoku_schemas::{CheckedPunch, VerdictKey};
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::keys::DayKey;
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

/// Column arrays of the changed days, for one multi-row upsert (`sql::upsert_days`).
#[derive(Debug)]
pub(super) struct DayColumns {
    pub(super) tenant: Vec<String>,
    employee: Vec<String>,
    date: Vec<NaiveDate>,
    first_in: Vec<Option<DateTime<Utc>>>,
    last_out: Vec<Option<DateTime<Utc>>>,
    anomalies: Vec<String>,
    revision: Vec<i64>,
    /// One array per counted figure, in [`fields`] order.
    figures: Vec<Vec<i32>>,
}

impl Default for DayColumns {
    fn default() -> Self {
        Self {
            tenant: Vec::new(),
            employee: Vec::new(),
            date: Vec::new(),
            first_in: Vec::new(),
            last_out: Vec::new(),
            anomalies: Vec::new(),
            revision: Vec::new(),
            figures: vec![Vec::new(); FIELDS.len()],
        }
    }
}

impl DayColumns {
    /// The upsert of these days, stamped with `now` and `batch_seq` (the outbox position).
    pub(super) fn upsert<'t>(
        &'t self,
        tx: &'t Transaction<'_>,
        st: &'t Statements,
        group: &'t str,
        now: DateTime<Utc>,
        batch_seq: i64,
    ) -> Pending<'t> {
        Box::pin(async move {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &group,
                &now,
                &batch_seq,
                &self.tenant,
                &self.employee,
                &self.date,
                &self.first_in,
                &self.last_out,
                &self.anomalies,
                &self.revision,
            ];
            params.extend(self.figures.iter().map(|c| c as &(dyn ToSql + Sync)));
            tx.query(&st.upsert_days, &params).await
        })
    }

    pub(super) fn push(&mut self, key: &DayKey, f: &DayFigures, revision: i64) {
        self.tenant.push(key.tenant.clone());
        self.employee.push(key.employee.clone());
        self.date.push(key.date);
        self.first_in.push(f.first_in.map(millis_to_time));
        self.last_out.push(f.last_out.map(millis_to_time));
        // Codes contain no commas; string_to_array('', ',') is the empty array.
        self.anomalies.push(f.anomaly_codes().join(","));
        self.revision.push(revision);
        for (column, field) in self.figures.iter_mut().zip(fields()) {
            column.push((field.get)(f));
        }
    }
}
