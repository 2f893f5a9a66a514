//! Reading rows: tenants' calendars, the stored state of punches, the punches and stored
//! figures of days, and committed days to publish.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use dakoku_rules::{self as rules, Calendar, DayFigures, Punch, fields};
use dakoku_schemas::{AttendanceDay, EmployeeId, PunchKind, TenantId, VerdictKey, to_epoch_days};
use tokio_postgres::Row;
use uuid::Uuid;

use super::keys::DayKey;
use super::resolve::{Content, PunchState};

/// Tenants' calendars from their rows; missing tenants get the contract's defaults.
pub(super) fn calendars(rows: &[Row], tenant_ids: &[&str]) -> HashMap<String, Calendar> {
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

/// The figures of a row whose columns, from index `first` on, are
/// [`figure_columns`](super::sql::figure_columns): `first_in, last_out, anomalies`, then the
/// counted figures in [`fields`] order. An anomaly code this build does not know is left out,
/// so the stored day then differs from any recomputation.
pub fn figures_of(row: &Row, first: usize) -> DayFigures {
    let millis = |i: usize| {
        row.get::<_, Option<DateTime<Utc>>>(first + i)
            .map(|t| t.timestamp_millis())
    };
    let codes: Vec<String> = row.get(first + 2);
    let mut figures = DayFigures {
        first_in: millis(0),
        last_out: millis(1),
        anomalies: codes
            .iter()
            .filter_map(|c| rules::Anomaly::parse(c))
            .collect(),
        ..DayFigures::default()
    };
    for (i, field) in fields().iter().enumerate() {
        (field.set)(&mut figures, row.get(first + 3 + i));
    }
    figures
}

/// Rows of `SQL_DAY_PUNCHES` as the counting punches of each day.
pub(super) fn day_punches(rows: &[Row], days: usize) -> HashMap<DayKey, Vec<Punch>> {
    let mut punches: HashMap<DayKey, Vec<Punch>> = HashMap::with_capacity(days);
    for row in rows {
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
    punches
}

/// Rows of `sql::days` as each stored day's figures and revision.
pub(super) fn existing_days(rows: &[Row]) -> HashMap<DayKey, (DayFigures, i64)> {
    let mut existing = HashMap::with_capacity(rows.len());
    for row in rows {
        existing.insert(
            DayKey {
                tenant: row.get(0),
                employee: row.get(1),
                date: row.get(2),
            },
            (figures_of(row, 4), row.get(3)),
        );
    }
    existing
}

/// A row of `SQL_UNPUBLISHED` as the day to publish and its batch sequence.
pub(super) fn unpublished_day(row: &Row) -> (AttendanceDay, i64) {
    let anomalies: Vec<String> = row.get(10);
    let day = AttendanceDay {
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
        worked_seconds: None,
        break_seconds: None,
        night_seconds: None,
        holiday_seconds: None,
        overtime_daily_seconds: None,
        overtime_weekly_seconds: None,
        within_statutory_seconds: None,
        corrected: false,
        rules_version: None,
    };
    (day, row.get(13))
}

pub(super) fn unreachable_id(kind: &str) -> ! {
    // The consumer only writes ids it parsed; a row that fails is a schema bug.
    panic!("attendance_days holds an invalid {kind} id")
}
