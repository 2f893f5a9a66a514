//! `punchctl employee`: register an employee and their card, change their active range or
//! licence seat, list a tenant's employees.

use std::io::Write;
use std::str::FromStr;

use chrono::SecondsFormat;
use clap::Subcommand;
use dakoku_schemas::{CardId, EmployeeId, TenantId};
use dakoku_store::master::employees::{
    self, Employee, EmployeeChange, Moment, NewEmployee, RangeRecord,
};
use dakoku_store::master::grants::{GrantRecord, grant_history};
use dakoku_store::master::licences::LicenceError;
use dakoku_store::master::outcome::{Added, Changed};

use crate::output::write_table;

#[derive(Debug, Subcommand)]
pub enum EmployeeCommand {
    /// Register an employee and the card they punch with.
    ///
    /// Idempotent: the same employee again reports "unchanged" and writes nothing. An employee
    /// that exists with other values is refused, naming the fields that differ (change them
    /// with `employee set`). `--licensed` takes a licence seat and is refused when none is free.
    /// licence-check picks the change up within moments; earlier rejected punches are judged
    /// again only by `punchctl recheck`.
    Add {
        /// The tenant (must exist: `punchctl tenant add`).
        #[arg(long)]
        tenant: TenantId,
        /// The employee id (1 to 64 characters [A-Za-z0-9_.-]).
        #[arg(long)]
        employee: EmployeeId,
        /// The card (IC card IDm or employee code) the employee punches with, unique per tenant.
        #[arg(long)]
        card: CardId,
        /// Display name.
        #[arg(long, default_value = "", hide_default_value = true)]
        name: String,
        /// Active from (inclusive): RFC 3339, or YYYY-MM-DD for 00:00 in the tenant's time
        /// zone. Default: always.
        #[arg(long)]
        active_from: Option<Moment>,
        /// Active until (exclusive): RFC 3339, or YYYY-MM-DD for 00:00 in the tenant's time
        /// zone, i.e. give the day after the last working day. Default: open.
        #[arg(long)]
        active_until: Option<Moment>,
        /// Give the employee a licence seat from its active-from on (a grant, as `licence set
        /// --employee E --from <active-from>` records; refused when the tenant has none free).
        #[arg(long)]
        licensed: bool,
    },
    /// Change an employee's active range or licence; says "unchanged" when nothing changes.
    Set {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// The employee.
        #[arg(long)]
        employee: EmployeeId,
        /// New active-from (RFC 3339 or YYYY-MM-DD), or `always`.
        #[arg(long)]
        active_from: Option<ActiveFrom>,
        /// New active-until (RFC 3339 or YYYY-MM-DD, exclusive), or `open`.
        #[arg(long)]
        active_until: Option<ActiveUntil>,
        /// Take (`true`) or free (`false`) a licence seat from now on; earlier instants keep
        /// their licence (for a dated change use `licence set --employee E --from D`).
        #[arg(long)]
        licensed: Option<bool>,
    },
    /// List a tenant's employees as a table (LICENSED: licensed now).
    List {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// Also list every recorded active range and licence grant, oldest first.
        #[arg(long)]
        history: bool,
    },
}

/// `--active-from` of `employee set`: a moment, or `always` (unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveFrom(pub Option<Moment>);

impl FromStr for ActiveFrom {
    type Err = LicenceError;

    fn from_str(s: &str) -> Result<Self, LicenceError> {
        if s == "always" {
            return Ok(Self(None));
        }
        s.parse().map(|m| Self(Some(m)))
    }
}

/// `--active-until` of `employee set`: a moment, or `open` (unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveUntil(pub Option<Moment>);

impl FromStr for ActiveUntil {
    type Err = LicenceError;

    fn from_str(s: &str) -> Result<Self, LicenceError> {
        if s == "open" {
            return Ok(Self(None));
        }
        s.parse().map(|m| Self(Some(m)))
    }
}

/// Runs `punchctl employee ...`.
pub async fn run(
    command: EmployeeCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut client = dakoku_store::connect(database_url).await?;
    match command {
        EmployeeCommand::Add {
            tenant,
            employee,
            card,
            name,
            active_from,
            active_until,
            licensed,
        } => {
            let new = NewEmployee {
                tenant,
                employee,
                card,
                name,
                active_from,
                active_until,
                licensed,
            };
            let (added, stored) = employees::add_employee(&mut client, &new).await?;
            write_added(out, added, &stored)?;
        }
        EmployeeCommand::Set {
            tenant,
            employee,
            active_from,
            active_until,
            licensed,
        } => {
            let change = EmployeeChange {
                active_from: active_from.map(|b| b.0),
                active_until: active_until.map(|b| b.0),
                licensed,
            };
            match employees::set_employee(&mut client, &tenant, &employee, &change).await? {
                Changed::Updated { before, after } => writeln!(
                    out,
                    "employee {tenant}/{employee}: updated: active {} to {} -> {} to {}, licensed {} -> {}",
                    before.active_from_text(),
                    before.active_until_text(),
                    after.active_from_text(),
                    after.active_until_text(),
                    before.licensed,
                    after.licensed
                )?,
                Changed::Unchanged(_) => {
                    writeln!(out, "employee {tenant}/{employee}: unchanged")?;
                }
            }
        }
        EmployeeCommand::List { tenant, history } => {
            let employees = employees::list_employees(&client, &tenant).await?;
            write_list(out, &tenant, &employees)?;
            if history {
                for employee in &employees {
                    let (tenant, id) = (&employee.tenant, &employee.employee);
                    let ranges = employees::range_history(&client, tenant, id).await?;
                    let grants = grant_history(&client, tenant, id).await?;
                    write_history(out, employee, &ranges, &grants)?;
                }
            }
        }
    }
    Ok(())
}

/// What `employee add` did, and how to recheck earlier rejections after a new employee.
fn write_added(
    out: &mut (dyn Write + Send),
    added: Added,
    stored: &Employee,
) -> std::io::Result<()> {
    writeln!(
        out,
        "employee {}/{}: {} (card {}, active {} to {}, {})",
        stored.tenant,
        stored.employee,
        added,
        stored.card,
        stored.active_from_text(),
        stored.active_until_text(),
        if stored.licensed {
            "licensed"
        } else {
            "not licensed"
        }
    )?;
    if added == Added::Created {
        writeln!(
            out,
            "punches rejected before this change are judged again by `punchctl recheck --tenant {}`",
            stored.tenant
        )?;
    }
    Ok(())
}

/// An employee's recorded ranges and grants, oldest first (where rows overlap, the later
/// one holds).
fn write_history(
    out: &mut (dyn Write + Send),
    employee: &Employee,
    ranges: &[RangeRecord],
    grants: &[GrantRecord],
) -> std::io::Result<()> {
    let id = &employee.employee;
    let stamp = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
    for row in ranges {
        writeln!(out, "{id}: recorded {}: {row}", stamp(row.recorded_at))?;
    }
    for row in grants {
        writeln!(out, "{id}: recorded {}: {row}", stamp(row.recorded_at))?;
    }
    Ok(())
}

/// A tenant's employees as a table.
fn write_list(
    out: &mut (dyn Write + Send),
    tenant: &TenantId,
    employees: &[Employee],
) -> std::io::Result<()> {
    if employees.is_empty() {
        writeln!(out, "no employees for tenant {tenant}")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = employees
        .iter()
        .map(|e| {
            vec![
                e.employee.to_string(),
                e.card.to_string(),
                e.active_from_text(),
                e.active_until_text(),
                if e.licensed { "yes" } else { "no" }.to_owned(),
                e.name.clone(),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "EMPLOYEE",
            "CARD",
            "ACTIVE FROM",
            "ACTIVE UNTIL",
            "LICENSED",
            "NAME",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_a_moment_or_their_own_word_for_unbounded() {
        assert_eq!("always".parse::<ActiveFrom>().ok(), Some(ActiveFrom(None)));
        assert_eq!("open".parse::<ActiveUntil>().ok(), Some(ActiveUntil(None)));
        assert!("open".parse::<ActiveFrom>().is_err());
        assert!("always".parse::<ActiveUntil>().is_err());
        let date = "2020-12-04".parse::<ActiveUntil>().expect("date");
        assert_eq!(date.0, "2020-12-04".parse::<Moment>().ok());
        let error = "tomorrow".parse::<ActiveFrom>().expect_err("not a time");
        assert!(error.to_string().contains("is not a time"), "{error}");
    }
}
