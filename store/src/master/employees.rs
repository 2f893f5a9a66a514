//! Employees of a tenant: the card they punch with, their active range (a history row per
//! change, the one recorded last holds) and whether they hold a licence seat now (from the
//! grants of `grants`; CONTRACT §3). Writes lock the tenant row so seats are never oversold.

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, SecondsFormat, TimeZone as _, Utc};
use chrono_tz::Tz;
use dakoku_schemas::{CardId, EmployeeId, TenantId};
use tokio_postgres::GenericClient;

use super::history::{ActiveRange, Grant};
use super::licences::{
    LicenceError, MAX_EMPLOYEE_NAME_CHARS, lock_tenant, now_millis, record_grant, require_seat,
};
use super::outcome::{Added, Changed, Difference};
use super::recorded;

/// A point in time as an operator writes it: an instant, or a date meaning 00:00 that day in
/// the tenant's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// An instant.
    At(DateTime<FixedOffset>),
    /// 00:00 of this date in the tenant's time zone.
    Date(NaiveDate),
}

impl FromStr for Moment {
    type Err = LicenceError;

    fn from_str(value: &str) -> Result<Self, LicenceError> {
        Self::parse(value)
    }
}

impl Moment {
    /// Parses RFC 3339 or `YYYY-MM-DD`.
    pub fn parse(value: &str) -> Result<Self, LicenceError> {
        if let Ok(at) = DateTime::parse_from_rfc3339(value) {
            return Ok(Self::At(at));
        }
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(Self::Date)
            .map_err(|_| LicenceError::InvalidMoment(value.to_owned()))
    }

    /// The instant, resolving a date in `tz` (a midnight skipped by a DST change resolves to
    /// the first instant of that date).
    pub fn resolve(self, tz: Tz) -> DateTime<Utc> {
        match self {
            Self::At(at) => at.with_timezone(&Utc),
            Self::Date(date) => {
                let mut local = date.and_time(NaiveTime::MIN);
                loop {
                    if let Some(at) = tz.from_local_datetime(&local).earliest() {
                        return at.with_timezone(&Utc);
                    }
                    local += chrono::TimeDelta::minutes(15);
                }
            }
        }
    }
}

/// An employee as `employee add` creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmployee {
    /// The tenant.
    pub tenant: TenantId,
    /// The employee id.
    pub employee: EmployeeId,
    /// The card the employee punches with.
    pub card: CardId,
    /// Display name (may be empty).
    pub name: String,
    /// Active from (inclusive); `None` = always was.
    pub active_from: Option<Moment>,
    /// Active until (exclusive); `None` = open.
    pub active_until: Option<Moment>,
    /// Takes a licence seat.
    pub licensed: bool,
}

/// An employee as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    /// The tenant.
    pub tenant: TenantId,
    /// The employee id.
    pub employee: EmployeeId,
    /// The card.
    pub card: CardId,
    /// Display name.
    pub name: String,
    /// Active from (inclusive); `None` = always was.
    pub active_from: Option<DateTime<Utc>>,
    /// Active until (exclusive); `None` = open.
    pub active_until: Option<DateTime<Utc>>,
    /// Takes a licence seat.
    pub licensed: bool,
}

fn moment_text(at: Option<DateTime<Utc>>, open: &str) -> String {
    at.map_or_else(
        || open.to_owned(),
        |at| at.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

impl Employee {
    fn differences(&self, given: &Employee) -> Vec<Difference> {
        Difference::between([
            ("card", self.card.to_string(), given.card.to_string()),
            ("name", self.name.clone(), given.name.clone()),
            (
                "active-from",
                moment_text(self.active_from, "always"),
                moment_text(given.active_from, "always"),
            ),
            (
                "active-until",
                moment_text(self.active_until, "open"),
                moment_text(given.active_until, "open"),
            ),
            (
                "licensed",
                self.licensed.to_string(),
                given.licensed.to_string(),
            ),
        ])
    }

    /// `active_from` as text (`always` when unbounded).
    pub fn active_from_text(&self) -> String {
        moment_text(self.active_from, "always")
    }

    /// `active_until` as text (`open` when unbounded).
    pub fn active_until_text(&self) -> String {
        moment_text(self.active_until, "open")
    }
}

fn instant(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
}

fn millis(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(|at| at.timestamp_millis())
}

/// The employees of `tenant` (one, or all), with their range as recorded last and whether
/// they are licensed now.
pub(crate) async fn load_employees(
    tx: &impl GenericClient,
    tenant: &TenantId,
    employee: Option<&EmployeeId>,
) -> Result<Vec<Employee>, LicenceError> {
    let rows = tx
        .query(
            "SELECT employee_id, card_id, name FROM employees
             WHERE tenant_id = $1 AND ($2::text IS NULL OR employee_id = $2)
             ORDER BY employee_id",
            &[&tenant.as_str(), &employee.map(EmployeeId::as_str)],
        )
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ranges = recorded::ranges(tx, Some(tenant.as_str())).await?;
    let grants = recorded::grants(tx, Some(tenant.as_str())).await?;
    let now = now_millis();
    Ok(rows
        .iter()
        .map(|row| {
            let id: String = row.get(0);
            let key = (tenant.as_str().to_owned(), id.clone());
            let range = ranges.get(&key).copied().unwrap_or_default();
            Employee {
                tenant: tenant.clone(),
                employee: EmployeeId::try_from(id)
                    .expect("employees.employee_id CHECK matches EmployeeId"),
                card: CardId::try_from(row.get::<_, String>(1))
                    .expect("employees.card_id CHECK matches CardId"),
                name: row.get(2),
                active_from: instant(range.from),
                active_until: instant(range.until),
                licensed: grants.get(&key).is_some_and(|g| g.licensed_at(now)),
            }
        })
        .collect())
}

async fn employee_row(
    tx: &impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
) -> Result<Option<Employee>, LicenceError> {
    Ok(load_employees(tx, tenant, Some(employee)).await?.pop())
}

/// Appends the employee's active range.
async fn record_range(tx: &impl GenericClient, employee: &Employee) -> Result<(), LicenceError> {
    tx.execute(
        "INSERT INTO employee_ranges (tenant_id, employee_id, active_from, active_until)
         VALUES ($1, $2, COALESCE($3, '-infinity'::timestamptz), $4)",
        &[
            &employee.tenant.as_str(),
            &employee.employee.as_str(),
            &employee.active_from,
            &employee.active_until,
        ],
    )
    .await?;
    Ok(())
}

fn check_range(
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<(), LicenceError> {
    match (from, until) {
        (Some(from), Some(until)) if from > until => Err(LicenceError::InvalidRange {
            what: "active range",
            from: moment_text(Some(from), ""),
            until: moment_text(Some(until), ""),
        }),
        _ => Ok(()),
    }
}

/// Adds an employee, in one transaction with the tenant row locked.
///
/// Idempotent: the same employee again is [`Added::Unchanged`] and writes nothing; an employee
/// that exists with other values is refused ([`LicenceError::EmployeeConflict`]); a card held
/// by another employee too ([`LicenceError::CardInUse`]); `licensed` needs a free seat
/// ([`LicenceError::NoFreeSeat`]).
pub async fn add_employee(
    client: &mut impl GenericClient,
    new: &NewEmployee,
) -> Result<(Added, Employee), LicenceError> {
    let name = new.name.trim().to_owned();
    if name.chars().count() > MAX_EMPLOYEE_NAME_CHARS {
        return Err(LicenceError::InvalidName);
    }
    let tx = client.transaction().await?;
    let (tz, terms) = lock_tenant(&tx, &new.tenant).await?;
    let given = Employee {
        tenant: new.tenant.clone(),
        employee: new.employee.clone(),
        card: new.card.clone(),
        name,
        active_from: new.active_from.map(|m| m.resolve(tz)),
        active_until: new.active_until.map(|m| m.resolve(tz)),
        licensed: new.licensed,
    };
    check_range(given.active_from, given.active_until)?;
    if let Some(stored) = employee_row(&tx, &new.tenant, &new.employee).await? {
        let differences = stored.differences(&given);
        if differences.is_empty() {
            return Ok((Added::Unchanged, stored));
        }
        return Err(LicenceError::EmployeeConflict {
            tenant: new.tenant.clone(),
            employee: new.employee.clone(),
            differences,
        });
    }
    if let Some(row) = tx
        .query_opt(
            "SELECT employee_id FROM employees WHERE tenant_id = $1 AND card_id = $2",
            &[&new.tenant.as_str(), &new.card.as_str()],
        )
        .await?
    {
        return Err(LicenceError::CardInUse {
            tenant: new.tenant.clone(),
            card: new.card.clone(),
            holder: EmployeeId::try_from(row.get::<_, String>(0))
                .expect("employees.employee_id CHECK matches EmployeeId"),
        });
    }
    // A licence given with `add` has no date of its own: it holds over the active range.
    let grant = Grant {
        granted: true,
        range: ActiveRange {
            from: millis(given.active_from),
            until: None,
        },
    };
    if given.licensed {
        require_seat(&tx, &new.tenant, &new.employee, &terms, grant).await?;
    }
    tx.execute(
        "INSERT INTO employees (tenant_id, employee_id, card_id, name) VALUES ($1, $2, $3, $4)",
        &[
            &given.tenant.as_str(),
            &given.employee.as_str(),
            &given.card.as_str(),
            &given.name,
        ],
    )
    .await?;
    record_range(&tx, &given).await?;
    if given.licensed {
        record_grant(&tx, &given.tenant, &given.employee, grant).await?;
    }
    let stored = employee_row(&tx, &new.tenant, &new.employee)
        .await?
        .expect("inserted in this transaction");
    tx.commit().await?;
    Ok((Added::Created, stored))
}

/// A change to an employee; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmployeeChange {
    /// New active-from; `Some(None)` = always was.
    pub active_from: Option<Option<Moment>>,
    /// New active-until; `Some(None)` = open.
    pub active_until: Option<Option<Moment>>,
    /// New licensed flag.
    pub licensed: Option<bool>,
}

/// Changes an employee's active range or licence, in one transaction with the tenant row
/// locked; writes nothing when nothing changes. Licensing needs a free seat.
pub async fn set_employee(
    client: &mut impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
    change: &EmployeeChange,
) -> Result<Changed<Employee>, LicenceError> {
    let tx = client.transaction().await?;
    let (tz, terms) = lock_tenant(&tx, tenant).await?;
    let before = employee_row(&tx, tenant, employee).await?.ok_or_else(|| {
        LicenceError::EmployeeNotFound {
            tenant: tenant.clone(),
            employee: employee.clone(),
        }
    })?;
    let mut after = before.clone();
    if let Some(from) = change.active_from {
        after.active_from = from.map(|m| m.resolve(tz));
    }
    if let Some(until) = change.active_until {
        after.active_until = until.map(|m| m.resolve(tz));
    }
    if let Some(licensed) = change.licensed {
        after.licensed = licensed;
    }
    check_range(after.active_from, after.active_until)?;
    if after == before {
        return Ok(Changed::Unchanged(before));
    }
    let now = now_millis();
    // `--licensed` has no date: it changes the licence from now on; dated grants are
    // `licence set --employee`.
    let grant = Grant {
        granted: after.licensed,
        range: ActiveRange {
            from: Some(now),
            until: None,
        },
    };
    if after.licensed && !before.licensed {
        require_seat(&tx, tenant, employee, &terms, grant).await?;
    }
    if (after.active_from, after.active_until) != (before.active_from, before.active_until) {
        record_range(&tx, &after).await?;
    }
    if after.licensed != before.licensed {
        record_grant(&tx, tenant, employee, grant).await?;
    }
    let stored = employee_row(&tx, tenant, employee)
        .await?
        .expect("read in this transaction");
    tx.commit().await?;
    Ok(Changed::Updated {
        before,
        after: stored,
    })
}

/// The employees of `tenant`, sorted by id; an unknown tenant is an error.
pub async fn list_employees(
    client: &impl GenericClient,
    tenant: &TenantId,
) -> Result<Vec<Employee>, LicenceError> {
    if client
        .query_opt(
            "SELECT 1 FROM tenants WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await?
        .is_none()
    {
        return Err(LicenceError::TenantNotFound(tenant.clone()));
    }
    load_employees(client, tenant, None).await
}

/// One recorded active range of an employee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRecord {
    /// Active from (inclusive); `None` = always was.
    pub active_from: Option<DateTime<Utc>>,
    /// Active until (exclusive); `None` = open.
    pub active_until: Option<DateTime<Utc>>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

impl std::fmt::Display for RangeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "active {} to {}",
            moment_text(self.active_from, "always"),
            moment_text(self.active_until, "open")
        )
    }
}

/// The employee's recorded active ranges, oldest first (the last one holds).
pub async fn range_history(
    client: &impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
) -> Result<Vec<RangeRecord>, LicenceError> {
    let rows = client
        .query(
            "SELECT CASE WHEN isfinite(active_from) THEN active_from END,
                    CASE WHEN isfinite(active_until) THEN active_until END, recorded_at
             FROM employee_ranges WHERE tenant_id = $1 AND employee_id = $2 ORDER BY seq",
            &[&tenant.as_str(), &employee.as_str()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| RangeRecord {
            active_from: row.get(0),
            active_until: row.get(1),
            recorded_at: row.get(2),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_instants_or_local_midnights() {
        let tokyo = chrono_tz::Asia::Tokyo;
        let at = Moment::parse("2020-12-04T09:00:00+09:00").expect("rfc3339");
        assert_eq!(at.resolve(tokyo).to_rfc3339(), "2020-12-04T00:00:00+00:00");
        let date = Moment::parse("2020-12-04").expect("date");
        assert_eq!(
            date.resolve(tokyo).to_rfc3339(),
            "2020-12-03T15:00:00+00:00"
        );
        assert!(Moment::parse("2020-13-01").is_err());
        assert!(Moment::parse("tomorrow").is_err());
        // Midnight that does not exist (Sao Paulo 2018-11-04 jumped 00:00 -> 01:00).
        let sp = chrono_tz::America::Sao_Paulo;
        let gap = Moment::parse("2018-11-04").expect("date").resolve(sp);
        assert_eq!(gap.to_rfc3339(), "2018-11-04T03:00:00+00:00");
    }
}
