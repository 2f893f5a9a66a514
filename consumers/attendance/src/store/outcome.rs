//! What a batch or a recompute did, as the store reports it, and the records it publishes.

use std::collections::{BTreeMap, HashSet};

use dakoku_rules::v2::Month;

use chrono::{DateTime, Utc};
use dakoku_schemas::{
    AttendanceDay, EmployeeId, MonthlyAttendance, MonthlyRecordKind, TenantId, to_epoch_days,
};

use super::figures::{Changes, DayWrite, MonthWrite};
use super::keys::EmployeeKey;
use crate::counts::Counts;

/// What closed months made of a write's months.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    /// Months of the write that are closed: their records are not published.
    pub(crate) closed: HashSet<(EmployeeKey, Month)>,
    /// The adjustments stored, as published.
    pub(crate) adjustments: Vec<MonthlyAttendance>,
}

/// What a batch did, for the publisher, metrics and logs.
#[derive(Debug, Default)]
pub struct Applied {
    /// The batch's sequence number (`attendance_batch_seq`).
    pub batch_seq: i64,
    /// Days and months whose figures changed, as committed.
    pub(crate) changes: Changes,
    /// Offsets stored: partition -> next offset to read.
    pub offsets: BTreeMap<i32, i64>,
    /// Counts of what happened to the records.
    pub counts: Counts,
    /// Closed months among the changed ones, and the adjustments they made.
    pub(crate) settled: Settled,
}

impl Applied {
    /// The changed days as published on `attendance.daily.<group>`, computed at `now`.
    pub fn changed_days(&self, now: DateTime<Utc>) -> Vec<AttendanceDay> {
        self.changes
            .days
            .iter()
            .map(|d| day_record(d, now))
            .collect()
    }

    /// The records published on `payroll.monthly.<group>`, computed at `now`: the changed
    /// months that are open, and the adjustments of the closed ones (whose records stay as
    /// paid).
    pub fn changed_months(&self, now: DateTime<Utc>) -> Vec<MonthlyAttendance> {
        self.changes
            .months
            .iter()
            .filter(|m| !self.settled.closed.contains(&(m.key.clone(), m.month)))
            .map(|m| month_record(m, now))
            .chain(self.settled.adjustments.iter().cloned())
            .collect()
    }
}

/// What [`Store::recompute`](crate::store::Store::recompute) did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recomputed {
    /// The transaction's batch sequence: changed records carry it (the outbox position).
    pub batch_seq: i64,
    /// Days and months whose figures changed (written with a new revision).
    pub changed: u64,
    /// Days and months whose figures were already right (not written).
    pub unchanged: u64,
}

fn unreachable_id(kind: &str) -> ! {
    // The consumer only writes ids it parsed; a row that fails is a schema bug.
    panic!("attendance holds an invalid {kind} id")
}

fn minutes(seconds: i64) -> i32 {
    i32::try_from(seconds.div_euclid(60)).unwrap_or(i32::MAX)
}

fn ids(tenant: &str, employee: &str) -> (TenantId, EmployeeId) {
    (
        TenantId::try_from(tenant).unwrap_or_else(|_| unreachable_id("tenant")),
        EmployeeId::try_from(employee).unwrap_or_else(|_| unreachable_id("employee")),
    )
}

/// A written day as its `AttendanceDay` record, computed at `now`.
pub(super) fn day_record(d: &DayWrite, now: DateTime<Utc>) -> AttendanceDay {
    let f = &d.figures;
    let (tenant_id, employee_id) = ids(&d.key.tenant, &d.key.employee);
    AttendanceDay {
        tenant_id,
        employee_id,
        work_date: to_epoch_days(d.date),
        first_in: f.first_in.map(|s| s * 1000),
        last_out: f.last_out.map(|s| s * 1000),
        worked_minutes: minutes(f.worked_seconds),
        break_minutes: minutes(f.break_seconds),
        night_minutes: minutes(f.night_seconds),
        overtime_minutes: minutes(f.overtime_daily_seconds + f.overtime_weekly_seconds),
        punch_count: i32::try_from(f.punch_count).unwrap_or(i32::MAX),
        anomalies: f.anomalies.iter().map(|a| a.as_str().to_owned()).collect(),
        revision: d.revision,
        computed_at: now.timestamp_millis(),
        worked_seconds: Some(f.worked_seconds),
        break_seconds: Some(f.break_seconds),
        night_seconds: Some(f.night_seconds),
        holiday_seconds: Some(f.holiday_seconds),
        overtime_daily_seconds: Some(f.overtime_daily_seconds),
        overtime_weekly_seconds: Some(f.overtime_weekly_seconds),
        within_statutory_seconds: Some(f.within_statutory_seconds),
        corrected: f.corrected,
        rules_version: Some(d.rules_version),
        correction_ids: f.correction_ids.clone(),
    }
}

/// A written month as its `MonthlyAttendance` record, computed at `now`.
pub(super) fn month_record(m: &MonthWrite, now: DateTime<Utc>) -> MonthlyAttendance {
    let f = &m.figures;
    let (tenant_id, employee_id) = ids(&m.key.tenant, &m.key.employee);
    MonthlyAttendance {
        tenant_id,
        employee_id,
        month: m.month.to_string(),
        first_day: to_epoch_days(m.first_day),
        last_day: to_epoch_days(m.last_day),
        days_worked: i32::try_from(f.days_worked).unwrap_or(i32::MAX),
        anomaly_days: i32::try_from(f.anomaly_days).unwrap_or(i32::MAX),
        worked_seconds: f.worked_seconds,
        break_seconds: f.break_seconds,
        night_seconds: f.night_seconds,
        holiday_seconds: f.holiday_seconds,
        within_statutory_seconds: f.within_statutory_seconds,
        overtime_seconds: f.overtime_seconds,
        overtime_over60_seconds: f.overtime_over60_seconds,
        worked_minutes: f.worked_minutes,
        overtime_minutes: f.overtime_minutes,
        overtime_over60_minutes: f.overtime_over60_minutes,
        night_minutes: f.night_minutes,
        holiday_minutes: f.holiday_minutes,
        rules_version: m.rules_version,
        revision: m.revision,
        computed_at: now.timestamp_millis(),
        record: MonthlyRecordKind::Month,
        adjustment_seq: None,
        export_month: None,
        causes: Vec::new(),
    }
}
