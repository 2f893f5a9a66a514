//! The data behind `punchctl payroll export`: a tenant's month of attendance as CSV for payroll (CONTRACT §5).
//!
//! One row per employee, a header row first. The month is a month of **work dates** (the
//! tenant's time zone and day-change time decide them, CONTRACT §4). Employees active at any
//! time during the month appear even with no attendance (all zeros), as does anyone with
//! attendance rows in the month.
//!
//! # Columns
//! | column | meaning |
//! |---|---|
//! | `tenant_id` | the tenant |
//! | `employee_id` | the employee |
//! | `month` | `YYYY-MM` of the work dates |
//! | `days_worked` | work dates with `worked_minutes > 0` |
//! | `worked_minutes` | sum of the days' `worked_minutes` |
//! | `overtime_minutes` | sum of the days' `overtime_minutes` (beyond 480 per day) |
//! | `night_minutes` | sum of the days' `night_minutes` (22:00-05:00 local) |
//! | `break_minutes` | sum of the days' `break_minutes` |
//! | `anomaly_days` | work dates with at least one anomaly: check them before paying |
//!
//! The minute columns are exact sums of the days' whole minutes (each day is the contract's
//! sum of seconds rounded down once). Rounding is never applied per day; the only rounding is
//! the optional **monthly** one of `--round-minutes N --round-mode down|half-up|up`, applied to
//! each minute column of the month's totals (e.g. `--round-minutes 30 --round-mode half-up`,
//! the monthly rounding Japanese labour administration accepts for overtime totals). Without
//! `--round-minutes`, nothing is rounded.

use std::io::Write;
use std::str::FromStr;

use chrono::{Datelike as _, NaiveDate, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use clap::ValueEnum;
use dakoku_schemas::TenantId;
use tokio_postgres::GenericClient;

/// Errors of `payroll export`.
#[derive(Debug, thiserror::Error)]
pub enum PayrollError {
    /// The month is not `YYYY-MM`.
    #[error("month {0:?} is not YYYY-MM, e.g. 2020-12")]
    InvalidMonth(String),
    /// The tenant is not in the master data.
    #[error("unknown tenant {0}: see `punchctl tenant list`")]
    UnknownTenant(TenantId),
    /// The rounding unit is not 1 to 1440 minutes.
    #[error("--round-minutes must be 1 to 1440, got {0}")]
    InvalidRounding(u32),
    /// Postgres refused or failed a query.
    #[error("Postgres query failed: {0}; is the server up and the schema migrated?")]
    Db(#[from] tokio_postgres::Error),
}

/// A calendar month of work dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    /// First work date of the month.
    pub first: NaiveDate,
}

impl Month {
    /// The first work date after the month.
    pub fn next(self) -> NaiveDate {
        self.first
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(NaiveDate::MAX)
    }
}

impl FromStr for Month {
    type Err = PayrollError;

    fn from_str(s: &str) -> Result<Self, PayrollError> {
        let invalid = || PayrollError::InvalidMonth(s.to_owned());
        let (year, month) = s.split_once('-').ok_or_else(invalid)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(invalid());
        }
        let year: i32 = year.parse().map_err(|_| invalid())?;
        let month: u32 = month.parse().map_err(|_| invalid())?;
        NaiveDate::from_ymd_opt(year, month, 1)
            .map(|first| Month { first })
            .ok_or_else(invalid)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.first.year(), self.first.month())
    }
}

/// How a monthly total is rounded to the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoundMode {
    /// Down to the unit (in the employee's disfavour: use with care).
    Down,
    /// A remainder below half the unit down, from half up.
    HalfUp,
    /// Up to the unit.
    Up,
}

/// Monthly rounding of the minute columns; a unit of 1 rounds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounding {
    /// Unit in minutes (1 to 1440).
    pub unit_minutes: u32,
    /// Direction.
    pub mode: RoundMode,
}

impl Rounding {
    /// No rounding.
    pub const NONE: Rounding = Rounding {
        unit_minutes: 1,
        mode: RoundMode::Down,
    };

    /// `minutes` rounded to the unit.
    pub fn apply(self, minutes: i64) -> i64 {
        let unit = i64::from(self.unit_minutes.max(1));
        let rest = minutes.rem_euclid(unit);
        let down = minutes - rest;
        match self.mode {
            RoundMode::Down => down,
            RoundMode::Up if rest > 0 => down + unit,
            RoundMode::Up => down,
            RoundMode::HalfUp if 2 * rest >= unit => down + unit,
            RoundMode::HalfUp => down,
        }
    }
}

/// One employee's month.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayrollRow {
    /// The employee.
    pub employee_id: String,
    /// Work dates with worked minutes.
    pub days_worked: i64,
    /// Sum of worked minutes.
    pub worked_minutes: i64,
    /// Sum of overtime minutes.
    pub overtime_minutes: i64,
    /// Sum of night minutes.
    pub night_minutes: i64,
    /// Sum of break minutes.
    pub break_minutes: i64,
    /// Work dates with anomalies.
    pub anomaly_days: i64,
}

/// The CSV header, in column order.
pub const HEADER: [&str; 9] = [
    "tenant_id",
    "employee_id",
    "month",
    "days_worked",
    "worked_minutes",
    "overtime_minutes",
    "night_minutes",
    "break_minutes",
    "anomaly_days",
];

/// The month's rows of `tenant`, one per employee, sorted by employee id, unrounded.
pub async fn export(
    client: &impl GenericClient,
    tenant: &TenantId,
    month: Month,
) -> Result<Vec<PayrollRow>, PayrollError> {
    let calendar = client
        .query_opt(
            "SELECT time_zone, day_change_time FROM tenants WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await?
        .ok_or_else(|| PayrollError::UnknownTenant(tenant.clone()))?;
    let zone: String = calendar.get(0);
    let tz: Tz = zone.parse().unwrap_or(chrono_tz::Asia::Tokyo);
    let day_change: NaiveTime = calendar.get(1);
    // The instants the month's work dates span, for "active during the month".
    let instant = |date: NaiveDate| {
        tz.from_local_datetime(&date.and_time(day_change))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| date.and_time(day_change).and_utc())
    };
    let (from, until) = (instant(month.first), instant(month.next()));
    let rows = client
        .query(
            "WITH staff AS ( \
                 SELECT employee_id FROM employees WHERE tenant_id = $1 \
                   AND active_from < $3 AND (active_until IS NULL OR active_until > $2) \
                 UNION \
                 SELECT employee_id FROM attendance_days WHERE tenant_id = $1 \
                   AND work_date >= $4 AND work_date < $5 ) \
             SELECT s.employee_id, \
                 count(d.work_date) FILTER (WHERE d.worked_minutes > 0), \
                 COALESCE(sum(d.worked_minutes), 0)::bigint, \
                 COALESCE(sum(d.overtime_minutes), 0)::bigint, \
                 COALESCE(sum(d.night_minutes), 0)::bigint, \
                 COALESCE(sum(d.break_minutes), 0)::bigint, \
                 count(d.work_date) FILTER (WHERE cardinality(d.anomalies) > 0) \
             FROM staff s LEFT JOIN attendance_days d ON d.tenant_id = $1 \
                 AND d.employee_id = s.employee_id AND d.work_date >= $4 AND d.work_date < $5 \
             GROUP BY s.employee_id ORDER BY s.employee_id",
            &[&tenant.as_str(), &from, &until, &month.first, &month.next()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| PayrollRow {
            employee_id: row.get(0),
            days_worked: row.get(1),
            worked_minutes: row.get(2),
            overtime_minutes: row.get(3),
            night_minutes: row.get(4),
            break_minutes: row.get(5),
            anomaly_days: row.get(6),
        })
        .collect())
}

/// Writes the CSV: the header, then one line per row with `rounding` applied to the minute
/// columns. Ids are restricted to `[A-Za-z0-9_.-]`, so no field needs quoting.
pub fn write_csv(
    out: &mut dyn Write,
    tenant: &TenantId,
    month: Month,
    rows: &[PayrollRow],
    rounding: Rounding,
) -> std::io::Result<()> {
    writeln!(out, "{}", HEADER.join(","))?;
    for r in rows {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            tenant,
            r.employee_id,
            month,
            r.days_worked,
            rounding.apply(r.worked_minutes),
            rounding.apply(r.overtime_minutes),
            rounding.apply(r.night_minutes),
            rounding.apply(r.break_minutes),
            r.anomaly_days
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_strictly() {
        let m: Month = "2020-12".parse().expect("month");
        assert_eq!(m.first, NaiveDate::from_ymd_opt(2020, 12, 1).expect("date"));
        assert_eq!(m.next(), NaiveDate::from_ymd_opt(2021, 1, 1).expect("date"));
        assert_eq!(m.to_string(), "2020-12");
        for bad in ["2020-13", "2020-1", "20-12", "2020/12", "", "2020-12-01"] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rounding_applies_to_totals_only_as_asked() {
        assert_eq!(Rounding::NONE.apply(1234), 1234);
        let half_up = Rounding {
            unit_minutes: 30,
            mode: RoundMode::HalfUp,
        };
        assert_eq!(half_up.apply(614), 600);
        assert_eq!(half_up.apply(615), 630);
        assert_eq!(half_up.apply(630), 630);
        let up = Rounding {
            unit_minutes: 15,
            mode: RoundMode::Up,
        };
        assert_eq!((up.apply(0), up.apply(1), up.apply(15)), (0, 15, 15));
        let down = Rounding {
            unit_minutes: 15,
            mode: RoundMode::Down,
        };
        assert_eq!(down.apply(29), 15);
    }

    #[test]
    fn csv_has_a_header_and_one_line_per_employee() {
        let tenant: TenantId = "acme".parse().expect("tenant");
        let rows = vec![PayrollRow {
            employee_id: "E1".into(),
            days_worked: 2,
            worked_minutes: 961,
            overtime_minutes: 1,
            night_minutes: 0,
            break_minutes: 120,
            anomaly_days: 1,
        }];
        let mut out = Vec::new();
        write_csv(
            &mut out,
            &tenant,
            "2020-12".parse().expect("month"),
            &rows,
            Rounding::NONE,
        )
        .expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "tenant_id,employee_id,month,days_worked,worked_minutes,overtime_minutes,night_minutes,break_minutes,anomaly_days\n\
             acme,E1,2020-12,2,961,1,0,120,1\n"
        );
    }
}
