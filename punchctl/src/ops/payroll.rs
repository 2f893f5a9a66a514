//! The data behind `punchctl payroll export`: a tenant's payroll month as CSV, one row per
//! employee, read from the monthly records (`attendance_months`, CONTRACT §4.4 and §5) that the
//! attendance consumer keeps, or, for a closed month, as it was paid (`paid_months`); then one
//! row per adjustment that this month pays for a closed earlier month (§4.7). Nothing is summed
//! or rounded here: the figures are those the rules engine computed and stored. The columns
//! are documented in `docs/payroll.md`.

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

/// What a row is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKind {
    /// The employee's monthly record (as paid, if the month is closed).
    Month,
    /// A change to a closed month, paid with this month: each figure's difference.
    Adjustment {
        /// The closed month it changes.
        month: String,
        /// 1, 2, 3... per employee and closed month.
        seq: i64,
        /// Why: `punch:<id>`, `correction:<id>`, `rules:<version>`, `rebuild`.
        causes: Vec<String>,
    },
}

impl RowKind {
    /// The `kind` column's value.
    pub fn as_str(&self) -> &'static str {
        match self {
            RowKind::Month => "month",
            RowKind::Adjustment { .. } => "adjustment",
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
    /// Within-statutory and break minutes: the seconds rounded down; for an adjustment, the
    /// difference of the rounded-down totals with and without it (so the rows of a month add
    /// up to the month's minutes).
    pub floor_minutes: [i64; 2],
    /// The rules version whose monthly rounding was applied.
    pub rules_version: i64,
    /// The record's revision (it grows each time the month is recomputed and changes).
    pub revision: i64,
}

/// The CSV header, in column order (documented in `docs/payroll.md`).
pub const HEADER: [&str; 28] = [
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
    "adjusted_month",
    "adjustment_seq",
    "causes",
];

/// The figure columns every query below selects, from index 4 on, with alias `m`.
const FIGURES: &str = "m.first_day, m.last_day, m.days_worked, m.anomaly_days, \
     m.worked_minutes, m.overtime_minutes, m.overtime_over60_minutes, m.night_minutes, \
     m.holiday_minutes, m.worked_seconds, m.overtime_seconds, m.overtime_over60_seconds, \
     m.within_statutory_seconds, m.night_seconds, m.holiday_seconds, m.break_seconds, \
     m.rules_version";

/// The month records: `employee, name, revision, -, ` then [`FIGURES`]. A closed month's
/// come from `paid_months` (as paid), an open one's from `attendance_months`.
fn sql_months(closed: bool) -> String {
    let table = if closed {
        "paid_months"
    } else {
        "attendance_months"
    };
    format!(
        "SELECT m.employee_id, COALESCE(e.name, ''), m.revision, NULL::text, {FIGURES} \
         FROM {table} m LEFT JOIN employees e \
             ON e.tenant_id = m.tenant_id AND e.employee_id = m.employee_id \
         WHERE m.tenant_id = $1 AND m.month = $2 \
         ORDER BY m.employee_id COLLATE \"C\""
    )
}

/// The adjustments this month pays: `employee, name, seq, month, ` then [`FIGURES`], then
/// `causes` and the within-statutory and break seconds paid before each adjustment.
fn sql_adjustments() -> String {
    let before = |column: &str| {
        format!(
            "COALESCE(p.{column}, 0) + COALESCE((SELECT sum(b.{column}) \
             FROM attendance_adjustments b WHERE b.tenant_id = m.tenant_id \
             AND b.employee_id = m.employee_id AND b.month = m.month AND b.seq < m.seq \
             AND b.superseded_at IS NULL), 0)::bigint"
        )
    };
    format!(
        "SELECT m.employee_id, COALESCE(e.name, ''), m.seq, m.month, {FIGURES}, m.causes, \
             {within}, {breaks} \
         FROM attendance_adjustments m LEFT JOIN employees e \
             ON e.tenant_id = m.tenant_id AND e.employee_id = m.employee_id \
         LEFT JOIN paid_months p ON p.tenant_id = m.tenant_id \
             AND p.employee_id = m.employee_id AND p.month = m.month \
         WHERE m.tenant_id = $1 AND m.export_month = $2 AND m.superseded_at IS NULL \
         ORDER BY m.employee_id COLLATE \"C\", m.month, m.seq",
        within = before("within_statutory_seconds"),
        breaks = before("break_seconds"),
    )
}

fn row_of(row: &tokio_postgres::Row, kind: RowKind) -> PayrollRow {
    let seconds: [i64; 7] = [13, 14, 15, 16, 17, 18, 19].map(|i| row.get(i));
    PayrollRow {
        employee_id: row.get(0),
        employee_name: row.get(1),
        kind,
        first_day: row.get(4),
        last_day: row.get(5),
        days_worked: i64::from(row.get::<_, i32>(6)),
        anomaly_days: i64::from(row.get::<_, i32>(7)),
        minutes: [8, 9, 10, 11, 12].map(|i| row.get(i)),
        seconds,
        floor_minutes: [seconds[3].div_euclid(60), seconds[6].div_euclid(60)],
        rules_version: row.get(20),
        revision: row.get(2),
    }
}

/// The month's rows of `tenant`: one per employee with a monthly record (as paid if the month
/// is closed), by employee id (byte order, whatever the database's collation); then the
/// adjustments of closed months that this month pays, by employee, month and sequence.
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
    let label = month.to_string();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant.as_str(), &label];
    let closed = client
        .query_opt(
            "SELECT 1 FROM closed_months WHERE tenant_id = $1 AND month = $2",
            &params,
        )
        .await?
        .is_some();
    let mut out: Vec<PayrollRow> = client
        .query(&sql_months(closed), &params)
        .await?
        .iter()
        .map(|row| row_of(row, RowKind::Month))
        .collect();
    for row in client.query(&sql_adjustments(), &params).await? {
        let kind = RowKind::Adjustment {
            month: row.get(3),
            seq: row.get(2),
            causes: row.get(21),
        };
        let mut adjustment = row_of(&row, kind);
        let before: [i64; 2] = [row.get(22), row.get(23)];
        let diff = [adjustment.seconds[3], adjustment.seconds[6]];
        adjustment.floor_minutes = [0, 1].map(|i| adjustment_minutes(before[i], diff[i]));
        out.push(adjustment);
    }
    Ok(out)
}

/// The minutes an adjustment of `diff` seconds adds to a total that was `before` seconds, both
/// rounded down: a month and its adjustments then add up to the month's rounded-down total.
fn adjustment_minutes(before: i64, diff: i64) -> i64 {
    (before + diff).div_euclid(60) - before.div_euclid(60)
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
        let [within_m, breaks_m] = r.floor_minutes;
        let numbers = [
            r.days_worked,
            r.anomaly_days,
            worked_m,
            overtime_m,
            over60_m,
            within_m,
            night_m,
            holiday_m,
            breaks_m,
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
        let adjustment = match &r.kind {
            RowKind::Month => ",,".to_owned(),
            // Causes hold no commas or quotes (ids and versions).
            RowKind::Adjustment { month, seq, causes } => {
                format!("{month},{seq},{}", causes.join(";"))
            }
        };
        writeln!(
            out,
            "{tenant},{month},{},{},{},{},{},{},{adjustment}",
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
            floor_minutes: [30, 120],
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
                 961,60,0,30,420,0,120,57690,3630,0,1859,25200,0,7259,3,4,,,\n",
                HEADER.join(",")
            )
        );
    }

    #[test]
    fn an_adjustment_row_names_the_closed_month_its_sequence_and_causes() {
        let tenant: TenantId = "acme".parse().expect("tenant");
        let mut adjustment = row("Sato Hanako");
        adjustment.kind = RowKind::Adjustment {
            month: "2026-11".into(),
            seq: 2,
            causes: vec!["punch:p1".into(), "correction:c1".into()],
        };
        adjustment.days_worked = -1;
        adjustment.minutes = [-90, 0, 0, 0, 0];
        adjustment.seconds = [-5_400, 0, 0, 0, 0, 0, 0];
        adjustment.floor_minutes = [0, 0];
        let mut out = Vec::new();
        let month = "2026-12".parse().expect("month");
        write_csv(&mut out, &tenant, month, &[adjustment]).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        let line = text.lines().nth(1).expect("a row");
        assert!(line.starts_with("acme,2026-12,adjustment,E1,"), "{line}");
        assert!(
            line.ends_with(",2026-11,2,punch:p1;correction:c1"),
            "{line}"
        );
        assert!(line.contains(",-1,1,-90,"), "{line}");
        assert_eq!(line.split(',').count(), HEADER.len());
    }

    #[test]
    fn adjustment_minutes_keep_the_rounded_down_total() {
        // Paid 59 s, then +2 s: the total crosses a minute although 2 s floor to 0.
        assert_eq!(adjustment_minutes(59, 2), 1);
        assert_eq!(adjustment_minutes(60, -1), -1);
        assert_eq!(adjustment_minutes(120, 30), 0);
        for before in 0i64..200 {
            for diff in -150..150 {
                if before + diff >= 0 {
                    let paid = before.div_euclid(60);
                    assert_eq!(
                        paid + adjustment_minutes(before, diff),
                        (before + diff) / 60
                    );
                }
            }
        }
    }

    #[test]
    fn names_with_commas_quotes_or_line_breaks_are_quoted() {
        assert_eq!(field("佐藤 花子"), "佐藤 花子");
        assert_eq!(field("Sato, Hanako"), "\"Sato, Hanako\"");
        assert_eq!(field("Hanako \"Hana\""), "\"Hanako \"\"Hana\"\"\"");
        assert_eq!(field("a\nb"), "\"a\nb\"");
    }
}
