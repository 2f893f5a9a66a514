//! Recomputing the touched days: each from all its counting punches by the rules, compared
//! with its stored row; only a changed day is written, with `revision + 1`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use dakoku_rules::{self as rules, Calendar, DayFigures};
use dakoku_schemas::{AttendanceDay, EmployeeId, TenantId, to_epoch_days};
use tokio_postgres::Row;

use super::columns::DayColumns;
use super::keys::DayKey;
use super::rows::{self, unreachable_id};
use crate::counts::Counts;

/// Recomputes the touched days from their counting punches; returns the days that changed
/// (to publish) and their columns (to upsert).
pub(super) fn recompute_days(
    touched: &BTreeSet<DayKey>,
    punch_rows: &[Row],
    day_rows: &[Row],
    calendars: &HashMap<String, Calendar>,
    now: DateTime<Utc>,
    counts: &mut Counts,
) -> (Vec<AttendanceDay>, DayColumns) {
    let punches = rows::day_punches(punch_rows, touched.len());
    let existing = rows::existing_days(day_rows);

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
        worked_seconds: None,
        break_seconds: None,
        night_seconds: None,
        holiday_seconds: None,
        overtime_daily_seconds: None,
        overtime_weekly_seconds: None,
        within_statutory_seconds: None,
        corrected: false,
        rules_version: None,
    }
}
