//! `punchctl licence`: record a tenant's licence (seats, valid work dates) or an employee's
//! licence grant as history, and show them.

use std::io::Write;

use chrono::{NaiveDate, SecondsFormat};
use clap::Subcommand;
use dakoku_schemas::{EmployeeId, TenantId};
use dakoku_store::master::employees::Moment;
use dakoku_store::master::grants::{self, GrantChange};
use dakoku_store::master::licences::{self, LicenceTerms, parse_date};
use dakoku_store::master::outcome::{Added, Changed};

use super::employee::ActiveFrom;

#[derive(Debug, Subcommand)]
pub enum LicenceCommand {
    /// Record a tenant's licence (`--seats`), or an employee's licence grant (`--employee`).
    ///
    /// Master data is history: each call records a row from when it holds and never rewrites
    /// the past, so punches already judged keep their verdicts and a late punch is judged by
    /// what was in force at its time (`punchctl recheck` re-judges on request).
    ///
    /// Tenant licence (`--tenant T --seats N [--valid-from D] [--valid-until D]`): N seats on
    /// those work dates (inclusive, omitted = open; the tenant's time zone and day change).
    /// Where it overlaps earlier rows it holds, elsewhere they still do (a renewal keeps the
    /// old dates valid; `--seats 0 --valid-from D` ends a licence). Refused when more
    /// employees are licensed at some instant from now on than N.
    ///
    /// Employee grant (`--tenant T --employee E --from D [--until D] [--revoke]`): E holds a
    /// seat (or, with `--revoke`, does not) from D (inclusive) until D (exclusive, omitted =
    /// open); D is an RFC 3339 time or a date (00:00 in the tenant's zone). A grant needs a
    /// free seat at every instant it covers from now on. Idempotent: the same call twice
    /// records one row.
    Set {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// Seats of the tenant's licence: employees licensed at once (0 = no licence).
        #[arg(
            long,
            required_unless_present = "employee",
            conflicts_with = "employee"
        )]
        seats: Option<u32>,
        /// First valid work date (YYYY-MM-DD), inclusive. Default: always.
        #[arg(long, value_parser = parse_date, requires = "seats")]
        valid_from: Option<NaiveDate>,
        /// Last valid work date (YYYY-MM-DD), inclusive. Default: open.
        #[arg(long, value_parser = parse_date, requires = "seats")]
        valid_until: Option<NaiveDate>,
        /// The employee whose licence grant is recorded.
        #[arg(long, requires = "from")]
        employee: Option<EmployeeId>,
        /// Grant (or revocation) holds from this time on: RFC 3339 or YYYY-MM-DD, or
        /// `always`.
        #[arg(long, requires = "employee")]
        from: Option<ActiveFrom>,
        /// ... until this time (exclusive): RFC 3339 or YYYY-MM-DD. Default: open.
        #[arg(long, requires = "employee")]
        until: Option<Moment>,
        /// Record that the employee holds no licence on the range.
        #[arg(long, requires = "employee")]
        revoke: bool,
    },
    /// Show a tenant's licence, the seats in use now and every recorded row; with
    /// `--employee`, that employee's grant history.
    Show {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// Show this employee's grants instead.
        #[arg(long)]
        employee: Option<EmployeeId>,
    },
}

/// Runs `punchctl licence ...`.
pub async fn run(
    command: LicenceCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut client = dakoku_store::connect(database_url).await?;
    match command {
        LicenceCommand::Set {
            tenant,
            employee: Some(employee),
            from,
            until,
            revoke,
            ..
        } => {
            let change = GrantChange {
                granted: !revoke,
                from: from.and_then(|f| f.0),
                until,
            };
            let (added, row) = grants::set_grant(&mut client, &tenant, &employee, change).await?;
            let what = match added {
                Added::Created => "recorded",
                Added::Unchanged => "unchanged",
            };
            writeln!(out, "licence of {tenant}/{employee}: {what}: {row}")?;
            if added == Added::Created {
                writeln!(
                    out,
                    "punches already judged keep their verdicts; `punchctl recheck --tenant {tenant}{}` judges them again with this history",
                    if revoke { " --include-accepted" } else { "" }
                )?;
            }
        }
        LicenceCommand::Set {
            tenant,
            seats,
            valid_from,
            valid_until,
            ..
        } => {
            let terms = LicenceTerms {
                seats: seats.unwrap_or(0),
                valid_from,
                valid_until,
            };
            match licences::set_licence(&mut client, &tenant, terms).await? {
                Changed::Updated { before, after } => writeln!(
                    out,
                    "licence of {tenant}: updated: {} -> {} ({} in use); punches rejected before this change are judged again by `punchctl recheck --tenant {tenant}`",
                    before.terms, after.terms, after.licensed
                )?,
                Changed::Unchanged(now) => writeln!(
                    out,
                    "licence of {tenant}: unchanged, {} ({} in use)",
                    now.terms, now.licensed
                )?,
            }
        }
        LicenceCommand::Show {
            tenant,
            employee: Some(employee),
        } => {
            let rows = grants::grant_history(&client, &tenant, &employee).await?;
            if rows.is_empty() {
                writeln!(out, "licence of {tenant}/{employee}: no grant recorded")?;
            }
            for row in rows {
                writeln!(
                    out,
                    "licence of {tenant}/{employee}: {row} (recorded {})",
                    row.recorded_at.to_rfc3339_opts(SecondsFormat::Secs, true)
                )?;
            }
        }
        LicenceCommand::Show {
            tenant,
            employee: None,
        } => {
            let now = licences::show_licence(&mut client, &tenant).await?;
            writeln!(
                out,
                "licence of {tenant}: {} ({} in use; work dates in {})",
                now.terms, now.licensed, now.time_zone
            )?;
            for row in &now.history {
                writeln!(
                    out,
                    "  recorded {}: {}",
                    row.recorded_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    row.terms
                )?;
            }
        }
    }
    Ok(())
}
