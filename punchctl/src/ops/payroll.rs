//! The data behind `punchctl payroll export`: a tenant's payroll month as CSV, one row per
//! employee, read from the monthly records (`attendance_months`, CONTRACT §4.4 and §5) that the
//! attendance consumer keeps. Nothing is summed or rounded here: the figures are those the
//! rules engine computed and stored. The columns are documented in `docs/payroll.md`.

use std::io::Write;
use std::str::FromStr;

use chrono::{Datelike as _, NaiveDate};
use dakoku_schemas::TenantId;
use tokio_postgres::GenericClient;

/// Errors of `payroll export`.
#[derive(Debug, thiserror::Error)]
pub enum PayrollError {
    /// The month is not `YYYY-MM`.
    #[error("--month {0:?} is not YYYY-MM, e.g. 2026-12")]
    InvalidMonth(String),
    /// The tenant is not in the master data.
    #[error("--tenant {0}: unknown tenant; see `punchctl tenant list`")]
    UnknownTenant(TenantId),
    /// `--round-minutes` of v1: monthly rounding is now a tenant rule, applied by the engine.
    #[error(
        "--round-minutes is gone: monthly rounding is the tenant's `monthly_rounding` rule and \
         the exported minutes are already rounded by it; set it with `punchctl rules set \
         --tenant T --from DATE monthly_rounding=half_hour_to_hour`"
    )]
    RoundingIsARule,
    /// Postgres refused or failed a query.
    #[error(
        "Postgres query failed: {0}; is the server up and the schema migrated (`punchctl db migrate`)?"
    )]
    Db(#[from] tokio_postgres::Error),
}

/// A payroll month, `YYYY-MM`: the month a closing period ends in (the tenant's `closing_day`
/// is resolved by the consumer when it stores the month).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    /// The first calendar day of the month named.
    pub first: NaiveDate,
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

/// What a row is. Only monthly records today; the adjustments of closed months (CONTRACT §4.7)
/// will be rows of their own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// The employee's monthly record.
    Month,
}

impl RowKind {
    /// The `kind` column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Month => "month",
        }
    }
}

/// One employee's payroll month, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayrollRow {
    /// The employee.
    pub employee_id: String,
    /// The employee's name from the master data (empty if none).
    pub employee_name: String,
    /// Month record (or, later, adjustment).
    pub kind: RowKind,
    /// First work date of the payroll month.
    pub first_day: NaiveDate,
    /// Last work date of the payroll month.
    pub last_day: NaiveDate,
    /// Work dates with worked time.
    pub days_worked: i64,
    /// Work dates with an anomaly (`break_short` included).
    pub anomaly_days: i64,
    /// Payable minutes as stored: worked, overtime, over-60 h, night, holiday.
    pub minutes: [i64; 5],
    /// Exact seconds as stored: worked, overtime, over-60 h, within-statutory, night, holiday,
    /// break.
    pub seconds: [i64; 7],
    /// The rules version whose monthly rounding was applied.
    pub rules_version: i64,
    /// The record's revision (it grows each time the month is recomputed and changes).
    pub revision: i64,
}

/// The CSV header, in column order (documented in `docs/payroll.md`).
pub const HEADER: [&str; 25] = [
    "tenant_id",
    "month",
    "kind",
    "employee_id",
    "employee_name",
    "first_day",
    "last_day",
    "days_worked",
    "anomaly_days",
    "worked_minutes",
    "overtime_minutes",
    "overtime_over60_minutes",
    "within_statutory_minutes",
    "night_minutes",
    "holiday_minutes",
    "break_minutes",
    "worked_seconds",
    "overtime_seconds",
    "overtime_over60_seconds",
    "within_statutory_seconds",
    "night_seconds",
    "holiday_seconds",
    "break_seconds",
    "rules_version",
    "revision",
];

/// The month's rows of `tenant`, one per employee with a monthly record, by employee id (byte
/// order, whatever the database's collation).
pub async fn export(
    client: &impl GenericClient,
    tenant: &TenantId,
    month: Month,
) -> Result<Vec<PayrollRow>, PayrollError> {
    client
        .query_opt(
            "SELECT 1 FROM tenants WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await?
        .ok_or_else(|| PayrollError::UnknownTenant(tenant.clone()))?;
    let rows = client
        .query(
            "SELECT m.employee_id, COALESCE(e.name, ''), m.first_day, m.last_day, \
                 m.days_worked, m.anomaly_days, \
                 m.worked_minutes, m.overtime_minutes, m.overtime_over60_minutes, \
                 m.night_minutes, m.holiday_minutes, \
                 m.worked_seconds, m.overtime_seconds, m.overtime_over60_seconds, \
                 m.within_statutory_seconds, m.night_seconds, m.holiday_seconds, \
                 m.break_seconds, m.rules_version, m.revision \
             FROM attendance_months m LEFT JOIN employees e \
                 ON e.tenant_id = m.tenant_id AND e.employee_id = m.employee_id \
             WHERE m.tenant_id = $1 AND m.month = $2 \
             ORDER BY m.employee_id COLLATE \"C\"",
            &[&tenant.as_str(), &month.to_string()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| PayrollRow {
            employee_id: row.get(0),
            employee_name: row.get(1),
            kind: RowKind::Month,
            first_day: row.get(2),
            last_day: row.get(3),
            days_worked: i64::from(row.get::<_, i32>(4)),
            anomaly_days: i64::from(row.get::<_, i32>(5)),
            minutes: [6, 7, 8, 9, 10].map(|i| row.get(i)),
            seconds: [11, 12, 13, 14, 15, 16, 17].map(|i| row.get(i)),
            rules_version: row.get(18),
            revision: row.get(19),
        })
        .collect())
}

/// A field as RFC 4180 wants it: quoted (quotes doubled) when it holds a comma, a quote or a
/// line break. Only names can; ids are restricted to `[A-Za-z0-9_.-]`.
fn field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

/// Writes the CSV: the header, then one line per row (`\n` line ends).
pub fn write_csv(
    out: &mut dyn Write,
    tenant: &TenantId,
    month: Month,
    rows: &[PayrollRow],
) -> std::io::Result<()> {
    writeln!(out, "{}", HEADER.join(","))?;
    for r in rows {
        let [worked_m, overtime_m, over60_m, night_m, holiday_m] = r.minutes;
        let [worked, overtime, over60, within, night, holiday, breaks] = r.seconds;
        let numbers = [
            r.days_worked,
            r.anomaly_days,
            worked_m,
            overtime_m,
            over60_m,
            within.div_euclid(60),
            night_m,
            holiday_m,
            breaks.div_euclid(60),
            worked,
            overtime,
            over60,
            within,
            night,
            holiday,
            breaks,
            r.rules_version,
            r.revision,
        ]
        .map(|n| n.to_string());
        writeln!(
            out,
            "{tenant},{month},{},{},{},{},{},{}",
            r.kind.as_str(),
            r.employee_id,
            field(&r.employee_name),
            r.first_day,
            r.last_day,
            numbers.join(",")
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
        assert_eq!(m.to_string(), "2020-12");
        for bad in ["2020-13", "2020-1", "20-12", "2020/12", "", "2020-12-01"] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
    }

    fn row(name: &str) -> PayrollRow {
        PayrollRow {
            employee_id: "E1".into(),
            employee_name: name.into(),
            kind: RowKind::Month,
            first_day: NaiveDate::from_ymd_opt(2026, 11, 21).expect("date"),
            last_day: NaiveDate::from_ymd_opt(2026, 12, 20).expect("date"),
            days_worked: 2,
            anomaly_days: 1,
            minutes: [961, 60, 0, 420, 0],
            seconds: [57_690, 3_630, 0, 1_859, 25_200, 0, 7_259],
            rules_version: 3,
            revision: 4,
        }
    }

    #[test]
    fn csv_has_the_header_then_one_line_per_row_with_stored_minutes_and_seconds() {
        let tenant: TenantId = "acme".parse().expect("tenant");
        let mut out = Vec::new();
        let month = "2026-12".parse().expect("month");
        write_csv(&mut out, &tenant, month, &[row("Sato Hanako")]).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            format!(
                "{}\nacme,2026-12,month,E1,Sato Hanako,2026-11-21,2026-12-20,2,1,\
                 961,60,0,30,420,0,120,57690,3630,0,1859,25200,0,7259,3,4\n",
                HEADER.join(",")
            )
        );
    }

    #[test]
    fn names_with_commas_quotes_or_line_breaks_are_quoted() {
        assert_eq!(field("佐藤 花子"), "佐藤 花子");
        assert_eq!(field("Sato, Hanako"), "\"Sato, Hanako\"");
        assert_eq!(field("Hanako \"Hana\""), "\"Hanako \"\"Hana\"\"\"");
        assert_eq!(field("a\nb"), "\"a\nb\"");
    }
}
