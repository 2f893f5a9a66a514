//! Closed months (§4.7) inside a write: a recompute that changes a closed month still writes
//! the month's live figures, but the month's published record stays as paid; the difference
//! between the month now and the month as paid plus its earlier adjustments becomes an
//! `adjustment`, stored and published with its causes and the month whose export carries it.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use dakoku_rules::v2::figures::MONTH_FIELDS;
use dakoku_rules::v2::{Month, MonthFigures};
use dakoku_schemas::{EmployeeId, MonthlyAttendance, MonthlyRecordKind, TenantId, to_epoch_days};
use tokio_postgres::{Row, Transaction};

use super::StoreError;
use super::figures::MonthWrite;
use super::keys::EmployeeKey;
use super::outcome::Settled;
use super::pipeline::Pending;
use super::rows::month_figures_of;

/// Why a write changed an employee's figures, as adjustment causes: `punch:<id>`,
/// `correction:<id>`, `rules:<version>`, `rebuild`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Causes {
    /// Per employee.
    of: HashMap<EmployeeKey, BTreeSet<String>>,
    /// For every employee of the write (a rules change, a rebuild).
    all: Vec<String>,
}

/// Causes listed per adjustment at most; the rest are counted (`and:<n> more`).
const MAX_CAUSES: usize = 20;

impl Causes {
    /// The same cause for every employee.
    pub(crate) fn every(cause: impl Into<String>) -> Self {
        Causes {
            all: vec![cause.into()],
            ..Causes::default()
        }
    }

    /// Records `cause` for `employee`.
    pub(crate) fn add(&mut self, employee: &EmployeeKey, cause: String) {
        self.of.entry(employee.clone()).or_default().insert(cause);
    }

    pub(crate) fn list(&self, employee: &EmployeeKey) -> Vec<String> {
        let mut out: Vec<String> = self.all.clone();
        out.extend(self.of.get(employee).into_iter().flatten().cloned());
        if out.len() > MAX_CAUSES {
            let more = out.len() - (MAX_CAUSES - 1);
            out.truncate(MAX_CAUSES - 1);
            out.push(format!("and:{more} more"));
        }
        out
    }
}

/// Each figure of `a` combined with the same figure of `b`.
fn combine(a: &MonthFigures, b: &MonthFigures, op: fn(i64, i64) -> i64) -> MonthFigures {
    MonthFigures {
        days_worked: op(a.days_worked, b.days_worked),
        anomaly_days: op(a.anomaly_days, b.anomaly_days),
        worked_seconds: op(a.worked_seconds, b.worked_seconds),
        break_seconds: op(a.break_seconds, b.break_seconds),
        night_seconds: op(a.night_seconds, b.night_seconds),
        holiday_seconds: op(a.holiday_seconds, b.holiday_seconds),
        within_statutory_seconds: op(a.within_statutory_seconds, b.within_statutory_seconds),
        overtime_seconds: op(a.overtime_seconds, b.overtime_seconds),
        overtime_over60_seconds: op(a.overtime_over60_seconds, b.overtime_over60_seconds),
        worked_minutes: op(a.worked_minutes, b.worked_minutes),
        overtime_minutes: op(a.overtime_minutes, b.overtime_minutes),
        overtime_over60_minutes: op(a.overtime_over60_minutes, b.overtime_over60_minutes),
        night_minutes: op(a.night_minutes, b.night_minutes),
        holiday_minutes: op(a.holiday_minutes, b.holiday_minutes),
    }
}

/// The adjustment that brings `paid` (plus the adjustments already made) to `now`; `None`
/// when nothing differs.
pub(crate) fn difference(now: &MonthFigures, paid: &MonthFigures) -> Option<MonthFigures> {
    let diff = combine(now, paid, |a, b| a - b);
    (diff != MonthFigures::default()).then_some(diff)
}

/// The first month after `month` that is not in `closed`: the export that pays the change.
pub(crate) fn export_month(month: Month, closed: &HashSet<Month>) -> Month {
    let mut next = month.next();
    while closed.contains(&next) {
        next = next.next();
    }
    next
}

/// Per (tenant, employee, month) of the write that is closed: the paid figures plus the sums of
/// the live adjustments, and the highest adjustment seq so far.
fn sql_closed() -> String {
    let sums: Vec<String> = MONTH_FIELDS
        .iter()
        .map(|f| {
            let cast = if matches!(f.name, "days_worked" | "anomaly_days") {
                "int"
            } else {
                "bigint"
            };
            format!(
                "(SELECT COALESCE(sum(a.{n}), 0)::{cast} FROM attendance_adjustments a \
                 WHERE a.tenant_id = k.t AND a.employee_id = k.e AND a.month = k.m \
                 AND a.superseded_at IS NULL)",
                n = f.name
            )
        })
        .collect();
    let paid: Vec<String> = MONTH_FIELDS
        .iter()
        .map(|f| {
            let zero = if matches!(f.name, "days_worked" | "anomaly_days") {
                "0::int"
            } else {
                "0::bigint"
            };
            format!("COALESCE(p.{}, {zero})", f.name)
        })
        .collect();
    format!(
        "SELECT k.i, (SELECT COALESCE(max(a.seq), 0) FROM attendance_adjustments a \
         WHERE a.tenant_id = k.t AND a.employee_id = k.e AND a.month = k.m), {paid}, {sums} \
         FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(t, e, m, i) \
         JOIN closed_months c ON c.tenant_id = k.t AND c.month = k.m \
         LEFT JOIN paid_months p ON p.tenant_id = k.t AND p.employee_id = k.e AND p.month = k.m",
        paid = paid.join(", "),
        sums = sums.join(", "),
    )
}

const SQL_CLOSED_OF_TENANTS: &str =
    "SELECT tenant_id, month FROM closed_months WHERE tenant_id = ANY($1)";

fn sql_insert_adjustment() -> String {
    let names: Vec<&str> = MONTH_FIELDS.iter().map(|f| f.name).collect();
    let params: Vec<String> = (0..names.len())
        .map(|i| {
            let cast = if matches!(names[i], "days_worked" | "anomaly_days") {
                "::int"
            } else {
                "::bigint"
            };
            format!("${}{cast}", 14 + i)
        })
        .collect();
    format!(
        "INSERT INTO attendance_adjustments (tenant_id, employee_id, month, seq, group_id, \
         export_month, causes, first_day, last_day, rules_version, computed_at, batch_seq, \
         superseded_at, {names}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, {params})",
        names = names.join(", "),
        params = params.join(", "),
    )
}

/// The lookup of which of a write's months are closed (with what was paid and adjusted), as
/// one statement a caller can pipeline with its writes: it reads nothing they write.
pub(crate) struct ClosedLookup {
    sql: String,
    tenants: Vec<String>,
    employees: Vec<String>,
    labels: Vec<String>,
}

impl ClosedLookup {
    pub(crate) fn of(months: &[MonthWrite]) -> Self {
        ClosedLookup {
            sql: sql_closed(),
            tenants: months.iter().map(|m| m.key.tenant.clone()).collect(),
            employees: months.iter().map(|m| m.key.employee.clone()).collect(),
            labels: months.iter().map(|m| m.month.to_string()).collect(),
        }
    }

    /// The statement, to pipeline; its rows go to [`settle_rows`].
    pub(crate) fn pending<'t>(&'t self, tx: &'t Transaction<'_>) -> Pending<'t> {
        Box::pin(async move {
            tx.query(&self.sql, &[&self.tenants, &self.employees, &self.labels])
                .await
        })
    }
}

/// Settles the closed months among `months` (the write's changed months): stores an adjustment
/// for each one whose figures now differ from what was paid plus the earlier adjustments, with
/// `causes`, in batch `batch_seq`.
pub(crate) async fn settle(
    tx: &Transaction<'_>,
    group: &str,
    months: &[MonthWrite],
    causes: impl FnOnce() -> Causes,
    now: DateTime<Utc>,
    batch_seq: i64,
) -> Result<Settled, StoreError> {
    if months.is_empty() {
        return Ok(Settled::default());
    }
    let lookup = ClosedLookup::of(months);
    let rows = lookup.pending(tx).await?;
    settle_rows(tx, group, months, &rows, causes, now, batch_seq).await
}

/// As [`settle`], with the rows of the write's [`ClosedLookup`] already read (nothing more is
/// read or written when none of its months is closed).
pub(crate) async fn settle_rows(
    tx: &Transaction<'_>,
    group: &str,
    months: &[MonthWrite],
    rows: &[Row],
    causes: impl FnOnce() -> Causes,
    now: DateTime<Utc>,
    batch_seq: i64,
) -> Result<Settled, StoreError> {
    let mut settled = Settled::default();
    if rows.is_empty() {
        return Ok(settled);
    }
    let mut distinct: Vec<&str> = months.iter().map(|m| m.key.tenant.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let mut closed_of: HashMap<String, HashSet<Month>> = HashMap::new();
    for row in tx.query(SQL_CLOSED_OF_TENANTS, &[&distinct]).await? {
        if let Some(month) = Month::parse(row.get(1)) {
            closed_of.entry(row.get(0)).or_default().insert(month);
        }
    }
    let causes = causes();
    let n = MONTH_FIELDS.len();
    let insert = sql_insert_adjustment();
    for row in rows {
        let index: i64 = row.get(0);
        let Some(write) = usize::try_from(index - 1).ok().and_then(|i| months.get(i)) else {
            continue;
        };
        settled.closed.insert((write.key.clone(), write.month));
        let last_seq: i64 = row.get(1);
        let paid = month_figures_of(row, 2);
        let adjusted = month_figures_of(row, 2 + n);
        let Some(diff) = difference(&write.figures, &combine(&paid, &adjusted, |a, b| a + b))
        else {
            continue;
        };
        let closed = closed_of
            .get(&write.key.tenant)
            .cloned()
            .unwrap_or_default();
        let export = export_month(write.month, &closed).to_string();
        let seq = last_seq + 1;
        let cause_list = causes.list(&write.key);
        let month = write.month.to_string();
        let values: Vec<i64> = MONTH_FIELDS.iter().map(|f| (f.get)(&diff)).collect();
        let ints: Vec<i32> = values
            .iter()
            .map(|v| i32::try_from(*v).unwrap_or(i32::MAX))
            .collect();
        let superseded: Option<DateTime<Utc>> = None;
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![
            &write.key.tenant,
            &write.key.employee,
            &month,
            &seq,
            &group,
            &export,
            &cause_list,
            &write.first_day,
            &write.last_day,
            &write.rules_version,
            &now,
            &batch_seq,
            &superseded,
        ];
        for (i, f) in MONTH_FIELDS.iter().enumerate() {
            if matches!(f.name, "days_worked" | "anomaly_days") {
                params.push(&ints[i]);
            } else {
                params.push(&values[i]);
            }
        }
        tx.execute(&insert, &params).await?;
        settled.adjustments.push(adjustment_record(
            write, &diff, seq, &export, cause_list, now,
        ));
    }
    Ok(settled)
}

/// The group's closes and reopens not yet served, oldest first (after the lock).
pub(super) const SQL_UNSERVED: &str = "SELECT mc.closing_id, mc.tenant_id, mc.month \
     FROM month_closings mc JOIN tenants t ON t.tenant_id = mc.tenant_id \
     WHERE t.group_id = $1 AND mc.served_at IS NULL ORDER BY mc.closing_id LIMIT 100";
/// Puts a month's records in batch `$3` so the outbox publishes them (as paid while closed).
pub(super) const SQL_REPUBLISH: &str =
    "UPDATE attendance_months SET batch_seq = $3 WHERE tenant_id = $1 AND month = $2";
/// Served.
pub(super) const SQL_SERVED: &str =
    "UPDATE month_closings SET served_at = now() WHERE closing_id = ANY($1)";

/// An adjustment as published on `payroll.monthly.<group>`.
pub(crate) fn adjustment_record(
    write: &MonthWrite,
    diff: &MonthFigures,
    seq: i64,
    export_month: &str,
    causes: Vec<String>,
    now: DateTime<Utc>,
) -> MonthlyAttendance {
    let tenant_id = TenantId::try_from(write.key.tenant.as_str())
        .unwrap_or_else(|_| panic!("attendance holds an invalid tenant id"));
    let employee_id = EmployeeId::try_from(write.key.employee.as_str())
        .unwrap_or_else(|_| panic!("attendance holds an invalid employee id"));
    let int = |v: i64| i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX });
    MonthlyAttendance {
        tenant_id,
        employee_id,
        month: write.month.to_string(),
        first_day: to_epoch_days(write.first_day),
        last_day: to_epoch_days(write.last_day),
        days_worked: int(diff.days_worked),
        anomaly_days: int(diff.anomaly_days),
        worked_seconds: diff.worked_seconds,
        break_seconds: diff.break_seconds,
        night_seconds: diff.night_seconds,
        holiday_seconds: diff.holiday_seconds,
        within_statutory_seconds: diff.within_statutory_seconds,
        overtime_seconds: diff.overtime_seconds,
        overtime_over60_seconds: diff.overtime_over60_seconds,
        worked_minutes: diff.worked_minutes,
        overtime_minutes: diff.overtime_minutes,
        overtime_over60_minutes: diff.overtime_over60_minutes,
        night_minutes: diff.night_minutes,
        holiday_minutes: diff.holiday_minutes,
        rules_version: write.rules_version,
        revision: seq,
        computed_at: now.timestamp_millis(),
        record: MonthlyRecordKind::Adjustment,
        adjustment_seq: Some(seq),
        export_month: Some(export_month.to_owned()),
        causes,
    }
}

/// A row of `sql::unpublished_adjustments` as the adjustment to publish and its batch
/// sequence; `None` for a month text this build cannot read.
pub(super) fn unpublished_adjustment(row: &Row) -> Option<(MonthlyAttendance, i64)> {
    let figures = month_figures_of(row, 9);
    let after = 9 + MONTH_FIELDS.len();
    let write = MonthWrite {
        key: EmployeeKey {
            tenant: row.get(0),
            employee: row.get(1),
        },
        month: Month::parse(row.get(2))?,
        first_day: row.get(3),
        last_day: row.get(4),
        figures: figures.clone(),
        revision: row.get(5),
        rules_version: row.get(7),
    };
    let export: String = row.get(after);
    let record = adjustment_record(
        &write,
        &figures,
        row.get(5),
        &export,
        row.get(after + 1),
        row.get(6),
    );
    Some((record, row.get(8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(worked: i64) -> MonthFigures {
        MonthFigures {
            days_worked: 1,
            worked_seconds: worked,
            worked_minutes: worked / 60,
            ..MonthFigures::default()
        }
    }

    #[test]
    fn the_difference_is_each_figure_now_less_as_paid() {
        let diff = difference(&figures(3_600), &figures(600)).expect("differs");
        assert_eq!(diff.worked_seconds, 3_000);
        assert_eq!(diff.worked_minutes, 50);
        assert_eq!(diff.days_worked, 0);
        // Going down is a negative adjustment, not nothing.
        let back = difference(&figures(600), &figures(3_600)).expect("differs");
        assert_eq!(back.worked_seconds, -3_000);
        assert_eq!(difference(&figures(600), &figures(600)), None);
    }

    #[test]
    fn combine_covers_every_month_figure() {
        let ones = MonthFigures {
            days_worked: 1,
            anomaly_days: 2,
            worked_seconds: 3,
            break_seconds: 4,
            night_seconds: 5,
            holiday_seconds: 6,
            within_statutory_seconds: 7,
            overtime_seconds: 8,
            overtime_over60_seconds: 9,
            worked_minutes: 10,
            overtime_minutes: 11,
            overtime_over60_minutes: 12,
            night_minutes: 13,
            holiday_minutes: 14,
        };
        let doubled = combine(&ones, &ones, |a, b| a + b);
        for f in MONTH_FIELDS {
            assert_eq!((f.get)(&doubled), 2 * (f.get)(&ones), "{}", f.name);
        }
    }

    #[test]
    fn the_export_is_the_first_month_after_that_is_still_open() {
        let m = |s: &str| Month::parse(s).expect("month");
        let closed: HashSet<Month> = [m("2026-11"), m("2026-12")].into();
        assert_eq!(export_month(m("2026-11"), &closed), m("2027-01"));
        assert_eq!(export_month(m("2026-10"), &HashSet::new()), m("2026-11"));
    }

    #[test]
    fn causes_are_listed_and_capped() {
        let key = EmployeeKey {
            tenant: "t".into(),
            employee: "e".into(),
        };
        let mut causes = Causes::every("rebuild");
        for i in 0..30 {
            causes.add(&key, format!("punch:{i:02}"));
        }
        let list = causes.list(&key);
        assert_eq!(list.len(), MAX_CAUSES);
        assert_eq!(list[0], "rebuild");
        assert_eq!(list.last().map(String::as_str), Some("and:12 more"));
    }
}
