//! What the attendance consumer wrote, read back: `attendance_days` rows, the punch tables'
//! counts, its stored offsets, and the compacted `attendance.daily` topic.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use dakoku_rules::v2::{Anomaly, DayFigures};
use dakoku_schemas::{AttendanceDay, ConsumerGroup, GroupId, Topic};

use crate::database::TestDatabase;
use crate::read::read_topic;
use crate::scenario::DayKey;
use crate::stack::Stack;
use crate::wait::eventually;

/// One `attendance_days` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    /// The figures (exact seconds, first in / last out, punch count, anomalies, corrected).
    pub figures: DayFigures,
    /// The row's revision.
    pub revision: i64,
    /// The row's group.
    pub group: String,
}

/// Every `attendance_days` row.
pub async fn read_days(
    client: &tokio_postgres::Client,
) -> anyhow::Result<BTreeMap<DayKey, DayRow>> {
    let rows = client
        .query(
            "SELECT tenant_id, employee_id, work_date, first_in, last_out, worked_seconds, \
             break_seconds, night_seconds, holiday_seconds, overtime_daily_seconds, \
             overtime_weekly_seconds, within_statutory_seconds, punch_count, anomalies, \
             corrected, revision, group_id, correction_ids FROM attendance_days",
            &[],
        )
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let codes: Vec<String> = row.get(13);
        let anomalies = codes
            .iter()
            .map(|c| Anomaly::parse(c).with_context(|| format!("unknown anomaly {c}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let seconds = |i: usize| {
            row.get::<_, Option<DateTime<Utc>>>(i)
                .map(|t| t.timestamp())
        };
        out.insert(
            (row.get(0), row.get(1), row.get(2)),
            DayRow {
                figures: DayFigures {
                    first_in: seconds(3),
                    last_out: seconds(4),
                    worked_seconds: row.get(5),
                    break_seconds: row.get(6),
                    night_seconds: row.get(7),
                    holiday_seconds: row.get(8),
                    overtime_daily_seconds: row.get(9),
                    overtime_weekly_seconds: row.get(10),
                    within_statutory_seconds: row.get(11),
                    punch_count: i64::from(row.get::<_, i32>(12)),
                    anomalies,
                    corrected: row.get(14),
                    correction_ids: row.get(17),
                },
                revision: row.get(15),
                group: row.get(16),
            },
        );
    }
    Ok(out)
}

/// The figures of every row where something counts (an emptied day keeps a zero row so its
/// revision keeps rising; to payroll it is the same as no row).
pub fn figures_of(rows: &BTreeMap<DayKey, DayRow>) -> BTreeMap<DayKey, DayFigures> {
    rows.iter()
        .filter(|(_, r)| r.figures != DayFigures::default())
        .map(|(k, r)| (k.clone(), r.figures.clone()))
        .collect()
}

/// Waits until the table's figures equal `expected`; on timeout, fails naming the first
/// differences.
pub async fn wait_for_days(
    db: &TestDatabase,
    expected: &BTreeMap<DayKey, DayFigures>,
    deadline: Duration,
) -> anyhow::Result<BTreeMap<DayKey, DayRow>> {
    let client = db.client().await?;
    let found = eventually(
        "attendance_days to match the expected days",
        deadline,
        || {
            let client = &client;
            async move {
                let rows = read_days(client).await?;
                Ok((figures_of(&rows) == *expected).then_some(rows))
            }
        },
    )
    .await;
    match found {
        Ok(rows) => Ok(rows),
        Err(error) => {
            let rows = figures_of(&read_days(&client).await?);
            let mut diffs = Vec::new();
            for (key, want) in expected {
                match rows.get(key) {
                    Some(got) if got == want => {}
                    got => diffs.push(format!("{key:?}: expected {want:?}, got {got:?}")),
                }
            }
            for key in rows.keys().filter(|k| !expected.contains_key(*k)) {
                diffs.push(format!("{key:?}: unexpected row {:?}", rows[key]));
            }
            diffs.truncate(5);
            Err(error.context(format!(
                "{} expected days, {} rows; first differences:\n{}",
                expected.len(),
                rows.len(),
                diffs.join("\n")
            )))
        }
    }
}

/// Counts of the punch tables: `(punches, withdrawn punches, conflicts, rejections)`.
pub async fn punch_counts(db: &TestDatabase) -> anyhow::Result<(i64, i64, i64, i64)> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM punches), \
                    (SELECT count(*) FROM punches WHERE withdrawn), \
                    (SELECT count(*) FROM punch_conflicts), \
                    (SELECT count(*) FROM punch_rejections)",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2), row.get(3)))
}

/// The latest value per key of the group's compacted `attendance.daily` topic (the record with
/// the highest revision, as payroll consumers keep it), read until `until` holds for the map.
pub async fn latest_daily(
    stack: &Stack,
    group: &GroupId,
    deadline: Duration,
    mut until: impl FnMut(&BTreeMap<String, AttendanceDay>) -> bool,
) -> anyhow::Result<BTreeMap<String, AttendanceDay>> {
    let mut latest: BTreeMap<String, AttendanceDay> = BTreeMap::new();
    let topic = Topic::AttendanceDaily(group.clone()).name();
    let mut failed = None;
    let result = read_topic(stack, &topic, deadline, |record| {
        match dakoku_schemas::decode::<AttendanceDay>(&record.payload) {
            Ok(day) => {
                let keep = latest
                    .get(&record.key)
                    .is_none_or(|old| day.revision >= old.revision);
                if keep {
                    latest.insert(record.key.clone(), day);
                }
            }
            Err(error) => failed = Some(error),
        }
        failed.is_some() || until(&latest)
    })
    .await;
    if let Some(error) = failed {
        anyhow::bail!("attendance.daily holds an undecodable record: {error}");
    }
    result?;
    Ok(latest)
}

/// The rows as the compacted topic should carry them: key -> (figures, revision).
pub fn rows_as_topic(rows: &BTreeMap<DayKey, DayRow>) -> BTreeMap<String, (DayFigures, i64)> {
    rows.iter()
        .map(|((tenant, employee, date), row)| {
            let key = format!("{tenant}/{employee}/{}", date.format("%Y-%m-%d"));
            (key, (row.figures.clone(), row.revision))
        })
        .collect()
}

/// The figures a published day carries.
pub fn topic_figures(day: &AttendanceDay) -> DayFigures {
    let seconds = |s: Option<i64>| s.unwrap_or_default();
    DayFigures {
        first_in: day.first_in.map(|t| t.div_euclid(1000)),
        last_out: day.last_out.map(|t| t.div_euclid(1000)),
        worked_seconds: seconds(day.worked_seconds),
        break_seconds: seconds(day.break_seconds),
        night_seconds: seconds(day.night_seconds),
        holiday_seconds: seconds(day.holiday_seconds),
        overtime_daily_seconds: seconds(day.overtime_daily_seconds),
        overtime_weekly_seconds: seconds(day.overtime_weekly_seconds),
        within_statutory_seconds: seconds(day.within_statutory_seconds),
        punch_count: i64::from(day.punch_count),
        anomalies: day
            .anomalies
            .iter()
            .filter_map(|c| Anomaly::parse(c))
            .collect(),
        corrected: day.corrected,
        correction_ids: day.correction_ids.clone(),
    }
}

/// Next offsets stored by the attendance consumer of `group`, summed over partitions.
pub async fn stored_offsets_total(db: &TestDatabase, group: &GroupId) -> anyhow::Result<i64> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT COALESCE(sum(next_offset), 0)::bigint FROM consumer_offsets \
             WHERE consumer_group = $1",
            &[&ConsumerGroup::Attendance(group.clone()).name()],
        )
        .await?;
    Ok(row.get(0))
}
