//! Each tenant's licence (seats and the work dates it is valid on) as recorded rows, and the
//! seat accounting that grants are checked against, under a lock on the tenant row: seats in
//! use at an instant are the grants in force then (CONTRACT §3).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use dakoku_schemas::{CardId, EmployeeId, TenantId};
use tokio_postgres::GenericClient;

use super::history::{self, Grant, Grants, LicenceRow};
use super::outcome::{Changed, Difference};
use super::recorded;
use super::tenants::DEFAULT_TIME_ZONE;

/// Longest employee display name, in characters.
pub const MAX_EMPLOYEE_NAME_CHARS: usize = 200;

/// Errors of the employee and licence verbs; each says what the operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum LicenceError {
    /// The tenant does not exist. Add it first with `punchctl tenant add`.
    #[error(
        "unknown tenant {0}: add it first with `punchctl tenant add --tenant {0} --name <name> --group <group>`"
    )]
    TenantNotFound(TenantId),
    /// The employee does not exist. Add it with `punchctl employee add`.
    #[error(
        "unknown employee {tenant}/{employee}: see `punchctl employee list --tenant {tenant}`, or add it with `punchctl employee add`"
    )]
    EmployeeNotFound {
        /// The tenant.
        tenant: TenantId,
        /// The employee.
        employee: EmployeeId,
    },
    /// The employee exists with other values; nothing was changed. Use `punchctl employee set`
    /// to change the active range or licence, or re-run with the stored values.
    #[error(
        "employee {tenant}/{employee} already exists with different values, nothing changed: {}; use `punchctl employee set` to change it",
        differences.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    EmployeeConflict {
        /// The tenant.
        tenant: TenantId,
        /// The employee.
        employee: EmployeeId,
        /// The fields whose stored value differs from the given one.
        differences: Vec<Difference>,
    },
    /// Another employee of the tenant has this card. Cards are unique per tenant.
    #[error("card {card} of tenant {tenant} already belongs to employee {holder}; nothing changed")]
    CardInUse {
        /// The tenant.
        tenant: TenantId,
        /// The card.
        card: CardId,
        /// Who has it.
        holder: EmployeeId,
    },
    /// Licensing the employee would use more seats than the tenant's licence has. Raise the
    /// seats first (`punchctl licence set`) or unlicense someone (`punchctl employee set
    /// --licensed false`).
    #[error(
        "tenant {tenant} has {seats} licence seats and {licensed} are in use: cannot license {employee}; raise the seats with `punchctl licence set` or unlicense someone with `punchctl employee set --licensed false`"
    )]
    NoFreeSeat {
        /// The tenant.
        tenant: TenantId,
        /// The employee that was to be licensed.
        employee: EmployeeId,
        /// Seats of the licence.
        seats: u32,
        /// Employees licensed now.
        licensed: u32,
    },
    /// The new seat count is below the employees licensed now. Unlicense some first.
    #[error(
        "tenant {tenant} has {licensed} licensed employees, more than the {seats} seats asked for; nothing changed. Unlicense employees first (`punchctl employee set --licensed false`)"
    )]
    SeatsBelowLicensed {
        /// The tenant.
        tenant: TenantId,
        /// Seats asked for.
        seats: u32,
        /// Employees licensed now.
        licensed: u32,
    },
    /// A range ends before it starts.
    #[error("{what}: {from} is after {until}")]
    InvalidRange {
        /// Which range.
        what: &'static str,
        /// Its start.
        from: String,
        /// Its end.
        until: String,
    },
    /// The display name is too long.
    #[error("employee name must be at most {MAX_EMPLOYEE_NAME_CHARS} characters")]
    InvalidName,
    /// A licence date is not `YYYY-MM-DD`.
    #[error("{0:?} is not a date YYYY-MM-DD")]
    InvalidDate(String),
    /// A time is neither RFC 3339 nor `YYYY-MM-DD`.
    #[error(
        "{0:?} is not a time: give an RFC 3339 time such as 2020-12-04T09:00:00+09:00, or a date YYYY-MM-DD (00:00 in the tenant's time zone)"
    )]
    InvalidMoment(String),
    /// Postgres refused or failed a query. Check that the server is up (`scripts/stack status`)
    /// and the schema migrated (`punchctl db migrate`).
    #[error(
        "Postgres query failed: {0}; is the server up (`scripts/stack status`) and the schema migrated (`punchctl db migrate`)?"
    )]
    Db(#[from] tokio_postgres::Error),
}

/// A tenant's licence terms: what `licence set` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LicenceTerms {
    /// Seats: employees that may be licensed at once. 0 = no licence.
    pub seats: u32,
    /// First work date the licence is valid on; `None` = open.
    pub valid_from: Option<NaiveDate>,
    /// Last work date the licence is valid on, inclusive; `None` = open.
    pub valid_until: Option<NaiveDate>,
}

impl fmt::Display for LicenceTerms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = |d: Option<NaiveDate>, open: &'static str| {
            d.map_or_else(|| open.to_owned(), |d| d.format("%Y-%m-%d").to_string())
        };
        write!(
            f,
            "{} seats, valid {} to {}",
            self.seats,
            date(self.valid_from, "always"),
            date(self.valid_until, "open")
        )
    }
}

/// One recorded licence row, as `licence show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceRecord {
    /// What it says.
    pub terms: LicenceTerms,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// A tenant's licence as stored, with its seats in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantLicence {
    /// The tenant.
    pub tenant: TenantId,
    /// Its terms: the row recorded last (0 seats, open, when none was).
    pub terms: LicenceTerms,
    /// Employees licensed now (grants in force now).
    pub licensed: u32,
    /// The tenant's time zone (work dates are in it).
    pub time_zone: String,
    /// Every row recorded, oldest first; where rows overlap, the later one holds.
    pub history: Vec<LicenceRecord>,
}

const NO_LICENCE: LicenceTerms = LicenceTerms {
    seats: 0,
    valid_from: None,
    valid_until: None,
};

impl From<LicenceRow> for LicenceTerms {
    fn from(row: LicenceRow) -> Self {
        Self {
            seats: row.seats,
            valid_from: row.valid_from,
            valid_until: row.valid_until,
        }
    }
}

/// Locks the tenant row for the rest of the transaction (serialising seat accounting) and
/// returns its time zone and current licence terms (the row recorded last).
pub(crate) async fn lock_tenant(
    tx: &impl GenericClient,
    tenant: &TenantId,
) -> Result<(Tz, LicenceTerms), LicenceError> {
    let row = tx
        .query_opt(
            "SELECT time_zone FROM tenants WHERE tenant_id = $1 FOR UPDATE",
            &[&tenant.as_str()],
        )
        .await?
        .ok_or_else(|| LicenceError::TenantNotFound(tenant.clone()))?;
    let zone: String = row.get(0);
    let terms = recorded::licences(tx, Some(tenant.as_str()))
        .await?
        .remove(tenant.as_str())
        .and_then(|rows| rows.latest().copied())
        .map_or(NO_LICENCE, LicenceTerms::from);
    Ok((zone.parse().unwrap_or(DEFAULT_TIME_ZONE), terms))
}

/// The tenant's grants by employee.
pub(crate) async fn tenant_grants(
    tx: &impl GenericClient,
    tenant: &TenantId,
) -> Result<HashMap<String, Grants>, LicenceError> {
    Ok(recorded::grants(tx, Some(tenant.as_str()))
        .await?
        .into_iter()
        .map(|((_, employee), grants)| (employee, grants))
        .collect())
}

/// Employees licensed now.
pub(crate) async fn licensed_count(
    tx: &impl GenericClient,
    tenant: &TenantId,
) -> Result<u32, LicenceError> {
    let grants = tenant_grants(tx, tenant).await?;
    Ok(history::licensed_at(grants.values(), now_millis()))
}

pub(crate) fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// Refuses `grant` for `employee` if, with it, more employees would be licensed at some
/// instant from now on than the tenant has seats. Grants that ended before now use no seat.
pub(crate) async fn require_seat(
    tx: &impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
    terms: &LicenceTerms,
    grant: Grant,
) -> Result<(), LicenceError> {
    let mut grants = tenant_grants(tx, tenant).await?;
    let now = now_millis();
    let before = history::peak_licensed(grants.values(), now);
    grants
        .entry(employee.as_str().to_owned())
        .or_default()
        .0
        .push(grant);
    if history::peak_licensed(grants.values(), now) > terms.seats {
        return Err(LicenceError::NoFreeSeat {
            tenant: tenant.clone(),
            employee: employee.clone(),
            seats: terms.seats,
            licensed: before,
        });
    }
    Ok(())
}

/// Appends one grant row.
pub(crate) async fn record_grant(
    tx: &impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
    grant: Grant,
) -> Result<(), LicenceError> {
    let at = |ms: Option<i64>| ms.and_then(DateTime::<Utc>::from_timestamp_millis);
    tx.execute(
        "INSERT INTO licence_grants (tenant_id, employee_id, granted, valid_from, valid_until)
         VALUES ($1, $2, $3, COALESCE($4, '-infinity'::timestamptz), $5)",
        &[
            &tenant.as_str(),
            &employee.as_str(),
            &grant.granted,
            &at(grant.range.from),
            &at(grant.range.until),
        ],
    )
    .await?;
    Ok(())
}

/// Records a tenant's licence: seats on the work dates `valid_from..=valid_until` (`None` =
/// open). A new row, never an update: where it overlaps earlier rows it holds, elsewhere they
/// still do (so a renewal leaves the dates of the old licence valid; `seats 0` from a date
/// ends a licence).
///
/// Refuses seats below the most employees licensed at once from now on
/// ([`LicenceError::SeatsBelowLicensed`]). Writes nothing when the row recorded last is
/// already these terms.
pub async fn set_licence(
    client: &mut impl GenericClient,
    tenant: &TenantId,
    terms: LicenceTerms,
) -> Result<Changed<TenantLicence>, LicenceError> {
    if let (Some(from), Some(until)) = (terms.valid_from, terms.valid_until)
        && from > until
    {
        return Err(LicenceError::InvalidRange {
            what: "licence validity (--valid-from after --valid-until)",
            from: from.to_string(),
            until: until.to_string(),
        });
    }
    let tx = client.transaction().await?;
    let (_, before_terms) = lock_tenant(&tx, tenant).await?;
    if before_terms == terms {
        let now = read_licence(&tx, tenant).await?;
        return Ok(Changed::Unchanged(now));
    }
    let grants = tenant_grants(&tx, tenant).await?;
    let peak = history::peak_licensed(grants.values(), now_millis());
    if peak > terms.seats {
        return Err(LicenceError::SeatsBelowLicensed {
            tenant: tenant.clone(),
            seats: terms.seats,
            licensed: peak,
        });
    }
    let before = read_licence(&tx, tenant).await?;
    let seats = i32::try_from(terms.seats).unwrap_or(i32::MAX);
    tx.execute(
        "INSERT INTO tenant_licences (tenant_id, seats, valid_from, valid_until)
         VALUES ($1, $2, $3, $4)",
        &[
            &tenant.as_str(),
            &seats,
            &terms.valid_from,
            &terms.valid_until,
        ],
    )
    .await?;
    let after = read_licence(&tx, tenant).await?;
    tx.commit().await?;
    Ok(Changed::Updated { before, after })
}

async fn read_licence(
    tx: &impl GenericClient,
    tenant: &TenantId,
) -> Result<TenantLicence, LicenceError> {
    let (tz, terms) = lock_tenant(tx, tenant).await?;
    let licensed = licensed_count(tx, tenant).await?;
    let history = tx
        .query(
            "SELECT seats, valid_from, valid_until, recorded_at FROM tenant_licences
             WHERE tenant_id = $1 ORDER BY seq",
            &[&tenant.as_str()],
        )
        .await?
        .iter()
        .map(|row| LicenceRecord {
            terms: LicenceTerms {
                seats: u32::try_from(row.get::<_, i32>(0)).unwrap_or(0),
                valid_from: row.get(1),
                valid_until: row.get(2),
            },
            recorded_at: row.get(3),
        })
        .collect();
    Ok(TenantLicence {
        tenant: tenant.clone(),
        terms,
        licensed,
        time_zone: tz.name().to_owned(),
        history,
    })
}

/// A tenant's licence with its seats in use and its recorded rows.
pub async fn show_licence(
    client: &mut impl GenericClient,
    tenant: &TenantId,
) -> Result<TenantLicence, LicenceError> {
    // One transaction, so terms and count agree.
    let tx = client.transaction().await?;
    let licence = read_licence(&tx, tenant).await?;
    tx.commit().await?;
    Ok(licence)
}

/// Parses a licence's work date, `YYYY-MM-DD`.
pub fn parse_date(value: &str) -> Result<NaiveDate, LicenceError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| LicenceError::InvalidDate(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_read_like_a_sentence() {
        let terms = LicenceTerms {
            seats: 3,
            valid_from: NaiveDate::from_ymd_opt(2020, 1, 1),
            valid_until: None,
        };
        assert_eq!(terms.to_string(), "3 seats, valid 2020-01-01 to open");
    }

    #[test]
    fn licence_dates_are_strict() {
        assert_eq!(
            parse_date("2020-01-31").ok(),
            NaiveDate::from_ymd_opt(2020, 1, 31)
        );
        let error = parse_date("31.01.2020").expect_err("not ISO");
        assert_eq!(error.to_string(), "\"31.01.2020\" is not a date YYYY-MM-DD");
    }
}
