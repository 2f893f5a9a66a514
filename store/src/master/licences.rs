//! Each tenant's licence (seats and the work dates it is valid on) and the seat accounting
//! that employees' licensing is checked against, under a lock on the tenant row.

use std::fmt;

use chrono::NaiveDate;
use chrono_tz::Tz;
use dakoku_schemas::{CardId, EmployeeId, TenantId};
use tokio_postgres::GenericClient;

use super::outcome::{Changed, Difference};
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

/// A tenant's licence as stored, with its seats in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantLicence {
    /// The tenant.
    pub tenant: TenantId,
    /// Its terms.
    pub terms: LicenceTerms,
    /// Employees licensed now.
    pub licensed: u32,
    /// The tenant's time zone (work dates are in it).
    pub time_zone: String,
}

/// Locks the tenant row for the rest of the transaction (serialising seat accounting) and
/// returns its time zone and licence terms.
pub(crate) async fn lock_tenant(
    tx: &impl GenericClient,
    tenant: &TenantId,
) -> Result<(Tz, LicenceTerms), LicenceError> {
    let row = tx
        .query_opt(
            "SELECT time_zone, licence_seats,
                    CASE WHEN isfinite(licence_valid_from) THEN licence_valid_from END,
                    CASE WHEN isfinite(licence_valid_until) THEN licence_valid_until END
             FROM tenants WHERE tenant_id = $1 FOR UPDATE",
            &[&tenant.as_str()],
        )
        .await?
        .ok_or_else(|| LicenceError::TenantNotFound(tenant.clone()))?;
    let zone: String = row.get(0);
    let seats: i32 = row.get(1);
    Ok((
        zone.parse().unwrap_or(DEFAULT_TIME_ZONE),
        LicenceTerms {
            seats: u32::try_from(seats).unwrap_or(0),
            valid_from: row.get(2),
            valid_until: row.get(3),
        },
    ))
}

pub(crate) async fn licensed_count(
    tx: &impl GenericClient,
    tenant: &TenantId,
) -> Result<u32, LicenceError> {
    let n: i64 = tx
        .query_one(
            "SELECT count(*) FROM employees WHERE tenant_id = $1 AND licensed",
            &[&tenant.as_str()],
        )
        .await?
        .get(0);
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

pub(crate) async fn require_seat(
    tx: &impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
    terms: &LicenceTerms,
) -> Result<(), LicenceError> {
    let licensed = licensed_count(tx, tenant).await?;
    if licensed >= terms.seats {
        return Err(LicenceError::NoFreeSeat {
            tenant: tenant.clone(),
            employee: employee.clone(),
            seats: terms.seats,
            licensed,
        });
    }
    Ok(())
}

/// Sets a tenant's licence: seats and validity (inclusive work dates, `None` = open).
///
/// Refuses to go below the employees licensed now ([`LicenceError::SeatsBelowLicensed`]).
/// Writes nothing when the terms are already these.
pub async fn set_licence(
    client: &mut impl GenericClient,
    tenant: &TenantId,
    terms: LicenceTerms,
) -> Result<Changed<TenantLicence>, LicenceError> {
    if let (Some(from), Some(until)) = (terms.valid_from, terms.valid_until)
        && from > until
    {
        return Err(LicenceError::InvalidRange {
            what: "licence validity",
            from: from.to_string(),
            until: until.to_string(),
        });
    }
    let tx = client.transaction().await?;
    let (tz, before_terms) = lock_tenant(&tx, tenant).await?;
    let licensed = licensed_count(&tx, tenant).await?;
    let licence = |terms| TenantLicence {
        tenant: tenant.clone(),
        terms,
        licensed,
        time_zone: tz.name().to_owned(),
    };
    if before_terms == terms {
        return Ok(Changed::Unchanged(licence(terms)));
    }
    if licensed > terms.seats {
        return Err(LicenceError::SeatsBelowLicensed {
            tenant: tenant.clone(),
            seats: terms.seats,
            licensed,
        });
    }
    let seats = i32::try_from(terms.seats).unwrap_or(i32::MAX);
    tx.execute(
        "UPDATE tenants SET licence_seats = $2, licence_valid_from = $3,
             licence_valid_until = $4, updated_at = now()
         WHERE tenant_id = $1",
        &[
            &tenant.as_str(),
            &seats,
            &terms.valid_from,
            &terms.valid_until,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Changed::Updated {
        before: licence(before_terms),
        after: licence(terms),
    })
}

/// A tenant's licence with its seats in use.
pub async fn show_licence(
    client: &mut impl GenericClient,
    tenant: &TenantId,
) -> Result<TenantLicence, LicenceError> {
    // A read-only transaction, so terms and count agree.
    let tx = client.transaction().await?;
    let (tz, terms) = lock_tenant(&tx, tenant).await?;
    let licensed = licensed_count(&tx, tenant).await?;
    tx.commit().await?;
    Ok(TenantLicence {
        tenant: tenant.clone(),
        terms,
        licensed,
        time_zone: tz.name().to_owned(),
    })
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
