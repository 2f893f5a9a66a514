//! `punchctl licence`: set a tenant's licence (seats, valid work dates) and show it.

use std::io::Write;

use chrono::NaiveDate;
use clap::Subcommand;
use dakoku_schemas::TenantId;
use dakoku_store::master::licences::{self, LicenceTerms, parse_date};
use dakoku_store::master::outcome::Changed;

#[derive(Debug, Subcommand)]
pub enum LicenceCommand {
    /// Set a tenant's licence: seats and the work dates it is valid on.
    ///
    /// Sets all terms at once: an omitted bound is open. Refused when more employees are
    /// licensed now than the seats asked for. Work dates follow the tenant's time zone and day
    /// change (a 02:00 punch with day change 05:00 belongs to the previous date). Idempotent.
    Set {
        /// The tenant.
        #[arg(long)]
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
        #[arg(long)]
        tenant: TenantId,
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
            seats,
            valid_from,
            valid_until,
        } => {
            let terms = LicenceTerms {
                seats,
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
        LicenceCommand::Show { tenant } => {
            let now = licences::show_licence(&mut client, &tenant).await?;
            writeln!(
                out,
                "licence of {tenant}: {} ({} in use; work dates in {})",
                now.terms, now.licensed, now.time_zone
            )?;
        }
    }
    Ok(())
}
