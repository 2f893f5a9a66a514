//! The command line of `punchctl employee`, `punchctl licence` and `punchctl recheck`, and
//! their dispatch. The work lives in [`crate::licence`] (master data) and in
//! `dakoku_licence_check::recheck` (the recheck itself).

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use dakoku_licence_check::Snapshot;
use dakoku_licence_check::recheck::{self, RecheckRequest, RecheckSummary};
use dakoku_schemas::{CardId, EmployeeId, GroupId, TenantId, Topic};

use crate::licence::{
    self, Changed, EmployeeChange, LicenceError, LicenceTerms, Moment, NewEmployee,
};
use crate::master::Added;
use crate::progress::{Bar, Summary, per_second};

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
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
        /// The employee id (1 to 64 characters [A-Za-z0-9_.-]).
        #[arg(long, value_parser = parse_employee)]
        employee: EmployeeId,
        /// The card (IC card IDm or employee code) the employee punches with, unique per tenant.
        #[arg(long, value_parser = parse_card)]
        card: CardId,
        /// Display name.
        #[arg(long, default_value = "", hide_default_value = true)]
        name: String,
        /// Active from (inclusive): RFC 3339, or YYYY-MM-DD for 00:00 in the tenant's time
        /// zone. Default: always.
        #[arg(long, value_parser = parse_moment)]
        active_from: Option<Moment>,
        /// Active until (exclusive): RFC 3339, or YYYY-MM-DD for 00:00 in the tenant's time
        /// zone, i.e. give the day after the last working day. Default: open.
        #[arg(long, value_parser = parse_moment)]
        active_until: Option<Moment>,
        /// Give the employee a licence seat (refused when the tenant has none free).
        #[arg(long)]
        licensed: bool,
    },
    /// Change an employee's active range or licence; says "unchanged" when nothing changes.
    Set {
        /// The tenant.
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
        /// The employee.
        #[arg(long, value_parser = parse_employee)]
        employee: EmployeeId,
        /// New active-from (RFC 3339 or YYYY-MM-DD), or `always`.
        #[arg(long, value_parser = parse_bound_from)]
        active_from: Option<Bound>,
        /// New active-until (RFC 3339 or YYYY-MM-DD, exclusive), or `open`.
        #[arg(long, value_parser = parse_bound_until)]
        active_until: Option<Bound>,
        /// Take (`true`) or free (`false`) a licence seat.
        #[arg(long)]
        licensed: Option<bool>,
    },
    /// List a tenant's employees as a table.
    List {
        /// The tenant.
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
    },
}

/// A bound given to `employee set`: a moment, or unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound(Option<Moment>);

#[derive(Debug, Subcommand)]
pub enum LicenceCommand {
    /// Set a tenant's licence: seats and the work dates it is valid on.
    ///
    /// Sets all terms at once: an omitted bound is open. Refused when more employees are
    /// licensed now than the seats asked for. Work dates follow the tenant's time zone and day
    /// change (a 02:00 punch with day change 05:00 belongs to the previous date). Idempotent.
    Set {
        /// The tenant.
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
        /// Seats: how many employees may be licensed at once (0 = no licence).
        #[arg(long)]
        seats: u32,
        /// First valid work date (YYYY-MM-DD), inclusive. Default: always.
        #[arg(long, value_parser = parse_date)]
        valid_from: Option<NaiveDate>,
        /// Last valid work date (YYYY-MM-DD), inclusive. Default: open.
        #[arg(long, value_parser = parse_date)]
        valid_until: Option<NaiveDate>,
    },
    /// Show a tenant's licence and the seats in use.
    Show {
        /// The tenant.
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
    },
}

/// `punchctl recheck`.
#[derive(Debug, Args)]
pub struct RecheckArgs {
    #[command(flatten)]
    pub scope: RecheckScope,
    /// Report what would be accepted; publish nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Longest wait for any one Kafka operation, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
}

/// Exactly one of a tenant or a group.
#[derive(Debug, Clone, Args)]
#[group(id = "scope", required = true, multiple = false)]
pub struct RecheckScope {
    /// Recheck one tenant's rejected punches (in its group's topic).
    #[arg(long, value_parser = parse_tenant)]
    pub tenant: Option<TenantId>,
    /// Recheck every rejected punch of a tenant group.
    #[arg(long, value_parser = parse_group)]
    pub group: Option<GroupId>,
}

fn parse_tenant(s: &str) -> Result<TenantId, String> {
    s.parse()
        .map_err(|e: dakoku_schemas::IdError| e.to_string())
}

fn parse_group(s: &str) -> Result<GroupId, String> {
    s.parse()
        .map_err(|e: dakoku_schemas::IdError| e.to_string())
}

fn parse_employee(s: &str) -> Result<EmployeeId, String> {
    s.parse()
        .map_err(|e: dakoku_schemas::IdError| e.to_string())
}

fn parse_card(s: &str) -> Result<CardId, String> {
    s.parse()
        .map_err(|e: dakoku_schemas::IdError| e.to_string())
}

fn parse_moment(s: &str) -> Result<Moment, String> {
    Moment::parse(s).map_err(|e| e.to_string())
}

fn parse_bound_from(s: &str) -> Result<Bound, String> {
    if s == "always" {
        return Ok(Bound(None));
    }
    parse_moment(s).map(|m| Bound(Some(m)))
}

fn parse_bound_until(s: &str) -> Result<Bound, String> {
    if s == "open" {
        return Ok(Bound(None));
    }
    parse_moment(s).map(|m| Bound(Some(m)))
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("{s:?} is not a date YYYY-MM-DD"))
}

async fn connect_db(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    Ok(dakoku_store::connect(url).await?)
}

/// Runs `punchctl employee ...`.
pub async fn employee(
    command: EmployeeCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut client = connect_db(database_url).await?;
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
            let (added, stored) = licence::add_employee(&mut client, &new).await?;
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
            match licence::set_employee(&mut client, &tenant, &employee, &change).await? {
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
        EmployeeCommand::List { tenant } => {
            let employees = licence::list_employees(&client, &tenant).await?;
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
            crate::cli::write_table(
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
            )?;
        }
    }
    Ok(())
}

/// Runs `punchctl licence ...`.
pub async fn licence(
    command: LicenceCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut client = connect_db(database_url).await?;
    match command {
        LicenceCommand::Set {
            tenant,
            seats,
            valid_from,
            valid_until,
        } => {
            let terms = LicenceTerms {
                seats,
                valid_from,
                valid_until,
            };
            match licence::set_licence(&mut client, &tenant, terms).await? {
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
        LicenceCommand::Show { tenant } => {
            let now = licence::show_licence(&mut client, &tenant).await?;
            writeln!(
                out,
                "licence of {tenant}: {} ({} in use; work dates in {})",
                now.terms, now.licensed, now.time_zone
            )?;
        }
    }
    Ok(())
}

/// Runs `punchctl recheck`; returns the summary (also written to `out`).
pub async fn recheck(
    args: RecheckArgs,
    brokers: &str,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<RecheckSummary> {
    let mut report = Summary::start("recheck");
    let mut client = connect_db(database_url).await?;
    let snapshot = Snapshot::load(&mut client)
        .await
        .map_err(LicenceError::from)
        .context("loading the master data")?;
    let group = match (&args.scope.tenant, args.scope.group) {
        (Some(tenant), _) => snapshot
            .tenant(tenant.as_str())
            .map(|t| t.group.clone())
            .ok_or_else(|| LicenceError::TenantNotFound(tenant.clone()))?,
        (None, Some(group)) => group,
        (None, None) => anyhow::bail!("give --tenant or --group"),
    };
    let request = RecheckRequest {
        brokers: brokers.to_owned(),
        group: group.clone(),
        tenant: args.scope.tenant.clone(),
        dry_run: args.dry_run,
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
    };
    let bar = Bar::new();
    let progress = bar.clone();
    let summary =
        tokio::task::spawn_blocking(move || recheck::recheck(&request, &snapshot, &progress))
            .await
            .context("the recheck task")??;
    bar.finish();
    let scope = match &args.scope.tenant {
        Some(tenant) => format!("tenant {tenant} (group {group})"),
        None => format!("group {group}"),
    };
    report.set_title(format!("recheck of {scope}"));
    report.line("master-data version", summary.master_data_version);
    report.line(
        "scanned",
        format!(
            "{} verdicts of {} punches ({}/s){}",
            summary.records_scanned,
            summary.punches,
            per_second(summary.records_scanned, report.elapsed()),
            if summary.undecodable > 0 {
                format!(", {} undecodable records skipped", summary.undecodable)
            } else {
                String::new()
            }
        ),
    );
    report.line("already accepted", summary.already_accepted);
    let still: Vec<String> = summary
        .still_rejected
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    report.line(
        "still rejected",
        if still.is_empty() {
            "none".to_owned()
        } else {
            still.join(", ")
        },
    );
    if args.dry_run {
        report.line(
            "now accepted",
            format!("{} (dry run: nothing published)", summary.now_accepted),
        );
        for punch in summary.accepted_punches.iter().take(20) {
            report.line("would accept", punch);
        }
        if summary.accepted_punches.len() > 20 {
            report.line(
                "would accept",
                format!("... and {} more", summary.accepted_punches.len() - 20),
            );
        }
    } else {
        report.line(
            "now accepted",
            format!(
                "{}; published {} new verdicts to {}",
                summary.now_accepted,
                summary.published,
                Topic::Checked(group.clone()).name()
            ),
        );
    }
    report.write(out)?;
    Ok(summary)
}
