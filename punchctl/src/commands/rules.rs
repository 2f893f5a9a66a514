//! `punchctl rules`: a tenant's effective-dated work rules (CONTRACT §4.1): record a version
//! from a date, show the versions (as a table, or as the rules file `attendance compute` reads).

use std::io::Write;

use chrono::NaiveDate;
use clap::Subcommand;
use dakoku_rules::v2::rulebook::RuleChange;
use dakoku_schemas::TenantId;
use dakoku_store::master::rules::{self, RulesSet};

use crate::ops::rules::{rules_file, write_recorded, write_versions};

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Record a new version of a tenant's work rules, in force from 00:00 of --from.
    ///
    /// The new version is the one in force on --from with the rules given changed; a version
    /// recorded earlier for the same date is superseded. The whole set is checked before
    /// anything is written (unknown rules and bad values are refused, naming the rule;
    /// `closing_day` must be the same in every version). Setting what is already in force
    /// records nothing. The attendance consumer then recomputes the tenant's days and months
    /// from --from and publishes those that change.
    ///
    /// Rules: time_zone, day_change, max_shift_minutes, double_tap_seconds, night_start,
    /// night_end, daily_limit_minutes, weekly_limit_minutes, week_start, legal_holiday,
    /// scheduled_daily_minutes, closing_day, agreement_start_month,
    /// agreement_monthly_limit_minutes, agreement_yearly_limit_minutes, monthly_rounding.
    /// Times are HH:MM, weekdays lower-case English names, `null` clears legal_holiday or
    /// closing_day.
    Set {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// The first date (the tenant's wall clock) the new version holds.
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: NaiveDate,
        /// Why, kept with the version.
        #[arg(long, default_value = "")]
        reason: String,
        /// The rules to change, e.g. daily_limit_minutes=420 legal_holiday=sunday.
        #[arg(value_name = "KEY=VALUE", required = true)]
        changes: Vec<RuleChange>,
    },
    /// Show a tenant's rules versions and every rule of each.
    Show {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// Print the versions in force as the rules file `punchctl attendance compute --rules`
        /// reads, to preview a change with the stored rules.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `punchctl rules ...`.
pub async fn run(
    command: RulesCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut client = dakoku_store::connect(database_url).await?;
    match command {
        RulesCommand::Set {
            tenant,
            from,
            reason,
            changes,
        } => match rules::set_rules(&mut client, &tenant, from, &changes, &reason).await? {
            RulesSet::Recorded(recorded) => write_recorded(out, &tenant, &recorded)?,
            RulesSet::Unchanged {
                version,
                effective_from,
            } => writeln!(
                out,
                "rules of {tenant}: unchanged: version {version} (from {effective_from}) is in force on {from} with these values; nothing recorded"
            )?,
        },
        RulesCommand::Show { tenant, json } => {
            let stored = rules::show_rules(&client, &tenant).await?;
            if json {
                out.write_all(rules_file(&stored).as_bytes())?;
            } else {
                write_versions(out, &stored)?;
            }
        }
    }
    Ok(())
}
