//! Reading rows: the stored state of punches, an employee's punches as the engine reads them,
//! stored day and month records, and committed records to publish.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use dakoku_rules::v2::{Anomaly, DayFigures, Month, MonthFigures, Punch};
use dakoku_schemas::{AttendanceDay, MonthlyAttendance, PunchKind, VerdictKey};
use tokio_postgres::Row;
use uuid::Uuid;

use super::figures::{DayWrite, Loaded, MonthWrite, StoredDay, StoredMonth};
use super::keys::{EmployeeKey, Touch};
use super::outcome::{day_record, month_record};
use super::resolve::{Content, PunchState};

fn parse_kind(kind: &str) -> Option<PunchKind> {
    PunchKind::ALL.iter().copied().find(|k| k.as_str() == kind)
}

fn millis(row: &Row, i: usize) -> Option<i64> {
    row.get::<_, Option<DateTime<Utc>>>(i)
        .map(|t| t.timestamp_millis())
}

/// The stored state of the batch's punches: rows of `punches`, else of `punch_rejections`.
pub(super) fn load_states<'a>(
    punch_rows: &[Row],
    rejection_rows: &[Row],
) -> HashMap<Uuid, PunchState<'a>> {
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
        let at = row.get::<_, DateTime<Utc>>(6).timestamp_millis();
        // A punch in both tables (never written so) counts as stored.
        let drop_rejection = states.contains_key(&row.get::<_, Uuid>(0));
        states.insert(
            row.get(0),
            PunchState::Stored {
                content: Content {
                    card_id: row.get(4),
                    kind,
                    at,
                    at_offset_minutes: row.get(7),
                    employee_id: Some(row.get(2)),
                },
                touch: Touch {
                    employee: EmployeeKey {
                        tenant: row.get(1),
                        employee: row.get(2),
                    },
                    at,
                    removed: false,
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

/// Rows of `index, id, seq, kind, at, added, void ids` as each index's punches (the engine
/// takes whole seconds).
pub(super) fn punches_by_index(rows: &[Row]) -> HashMap<i64, Loaded> {
    let mut out: HashMap<i64, Loaded> = HashMap::new();
    for row in rows {
        let Some(kind) = parse_kind(row.get(3)) else {
            continue;
        };
        let id: Uuid = row.get(1);
        let seq: i64 = row.get(2);
        let punch = Punch {
            id: id.to_string(),
            seq: u64::try_from(seq).unwrap_or(0),
            kind,
            at: row.get::<_, DateTime<Utc>>(4).timestamp(),
            added: row.get(5),
        };
        let voids: Vec<String> = row.get(6);
        let loaded = out.entry(row.get(0)).or_default();
        if voids.is_empty() {
            loaded.kept.push(punch);
        } else {
            loaded.voided.push((punch, voids));
        }
    }
    for loaded in out.values_mut() {
        loaded
            .kept
            .sort_by(|a, b| (a.at, a.seq, &a.id).cmp(&(b.at, b.seq, &b.id)));
    }
    out
}

/// The figures of a day row whose columns, from index `first` on, are
/// [`figure_columns`](super::sql::figure_columns). An anomaly code this build does not know
/// is left out, so the stored day then differs from any recomputation.
pub fn figures_of(row: &Row, first: usize) -> DayFigures {
    let codes: Vec<String> = row.get(first + 2);
    DayFigures {
        first_in: millis(row, first).map(|t| t.div_euclid(1000)),
        last_out: millis(row, first + 1).map(|t| t.div_euclid(1000)),
        anomalies: codes.iter().filter_map(|c| Anomaly::parse(c)).collect(),
        worked_seconds: row.get(first + 3),
        break_seconds: row.get(first + 4),
        night_seconds: row.get(first + 5),
        holiday_seconds: row.get(first + 6),
        overtime_daily_seconds: row.get(first + 7),
        overtime_weekly_seconds: row.get(first + 8),
        within_statutory_seconds: row.get(first + 9),
        punch_count: i64::from(row.get::<_, i32>(first + 10)),
        corrected: row.get(first + 11),
        correction_ids: row.get(first + 12),
    }
}

/// Rows of `sql::stored_days` (`index, work_date, revision, rules_version`, then the
/// figures) by index and date.
pub(super) fn stored_days(rows: &[Row]) -> HashMap<i64, Vec<(NaiveDate, StoredDay)>> {
    let mut out: HashMap<i64, Vec<(NaiveDate, StoredDay)>> = HashMap::new();
    for row in rows {
        out.entry(row.get(0)).or_default().push((
            row.get(1),
            StoredDay {
                revision: row.get(2),
                rules_version: row.get(3),
                figures: figures_of(row, 4),
            },
        ));
    }
    out
}

/// The month figures of a row whose columns, from `first` on, are
/// [`month_columns`](super::sql::month_columns).
pub fn month_figures_of(row: &Row, first: usize) -> MonthFigures {
    let int = |i: usize| i64::from(row.get::<_, i32>(first + i));
    let big = |i: usize| row.get::<_, i64>(first + i);
    MonthFigures {
        days_worked: int(0),
        anomaly_days: int(1),
        worked_seconds: big(2),
        break_seconds: big(3),
        night_seconds: big(4),
        holiday_seconds: big(5),
        within_statutory_seconds: big(6),
        overtime_seconds: big(7),
        overtime_over60_seconds: big(8),
        worked_minutes: big(9),
        overtime_minutes: big(10),
        overtime_over60_minutes: big(11),
        night_minutes: big(12),
        holiday_minutes: big(13),
    }
}

/// Rows of `sql::stored_months` (`index, month, revision, rules_version`, then the figures)
/// by index.
pub(super) fn stored_months(rows: &[Row]) -> HashMap<i64, Vec<(Month, StoredMonth)>> {
    let mut out: HashMap<i64, Vec<(Month, StoredMonth)>> = HashMap::new();
    for row in rows {
        let Some(month) = Month::parse(row.get(1)) else {
            continue;
        };
        out.entry(row.get(0)).or_default().push((
            month,
            StoredMonth {
                revision: row.get(2),
                rules_version: row.get(3),
                figures: month_figures_of(row, 4),
            },
        ));
    }
    out
}

/// A row of `SQL_UNPUBLISHED_DAYS` (`tenant, employee, work_date, revision, computed_at,
/// rules_version, batch_seq`, then the figures) as the day to publish and its batch sequence.
pub(super) fn unpublished_day(row: &Row) -> (AttendanceDay, i64) {
    let write = DayWrite {
        key: EmployeeKey {
            tenant: row.get(0),
            employee: row.get(1),
        },
        date: row.get(2),
        figures: figures_of(row, 7),
        revision: row.get(3),
        rules_version: row.get(5),
    };
    (day_record(&write, row.get(4)), row.get(6))
}

/// A row of `SQL_UNPUBLISHED_MONTHS` (`tenant, employee, month, first_day, last_day,
/// revision, computed_at, rules_version, batch_seq`, then the figures) as the month to
/// publish and its batch sequence; `None` for a month text this build cannot read.
pub(super) fn unpublished_month(row: &Row) -> Option<(MonthlyAttendance, i64)> {
    let write = MonthWrite {
        key: EmployeeKey {
            tenant: row.get(0),
            employee: row.get(1),
        },
        month: Month::parse(row.get(2))?,
        first_day: row.get(3),
        last_day: row.get(4),
        figures: month_figures_of(row, 9),
        revision: row.get(5),
        rules_version: row.get(7),
    };
    Some((month_record(&write, row.get(6)), row.get(8)))
}
