//! `punchctl tenant`: add a tenant (idempotent, conflicts named) and list tenants.

use std::io::Write;

use chrono::NaiveTime;
use chrono_tz::Tz;
use clap::Subcommand;
use dakoku_schemas::{GroupId, TenantId};
use dakoku_store::master::tenants::{self, NewTenant, parse_day_change, parse_time_zone};

use crate::output::{timestamp, write_table};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Add a tenant (and its group, when new).
    ///
    /// Idempotent: the same tenant again reports "unchanged" and writes nothing. A tenant that
    /// exists with other values is refused, naming the fields that differ; nothing is changed.
    /// The group's topics are created separately: `punchctl topics create --group <group>`.
    Add {
        /// The tenant id (1 to 64 characters [A-Za-z0-9_-]).
        #[arg(long)]
        tenant: TenantId,
        /// Display name.
        #[arg(long)]
        name: String,
        /// The tenant group ([a-z0-9-]{1,32}); created when missing.
        #[arg(long)]
        group: GroupId,
        /// IANA time zone of the tenant's work dates, e.g. Asia/Tokyo, Europe/Berlin.
        #[arg(long, default_value = "Asia/Tokyo", value_parser = parse_time_zone)]
        time_zone: Tz,
        /// Local time (HH:MM) at which a work date starts; punches before it belong to the
        /// previous work date.
        #[arg(long, default_value = "05:00", value_parser = parse_day_change)]
        day_change: NaiveTime,
    },
    /// List tenants as a table.
    List {
        /// Only the tenants of this group.
        #[arg(long)]
        group: Option<GroupId>,
    },
}

/// Runs `punchctl tenant ...`.
pub async fn run(
    command: TenantCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut client = dakoku_store::connect(database_url).await?;
    match command {
        TenantCommand::Add {
            tenant,
            name,
            group,
            time_zone,
            day_change,
        } => {
            let new = NewTenant {
                tenant,
                name,
                group,
                time_zone,
                day_change,
            };
            let added = tenants::add_tenant(&mut client, &new).await?;
            let stored = &added.tenant;
            writeln!(
                out,
                "tenant {}: {} (group {}, time zone {}, day change {})",
                stored.tenant,
                added.outcome,
                stored.group,
                stored.time_zone,
                stored.day_change.format("%H:%M")
            )?;
            if added.group_created {
                writeln!(
                    out,
                    "group {0}: created; create its topics with `punchctl topics create --group {0}`",
                    stored.group
                )?;
            }
        }
        TenantCommand::List { group } => {
            let tenants = tenants::list_tenants(&client, group.as_ref()).await?;
            if tenants.is_empty() {
                writeln!(out, "no tenants")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = tenants
                .iter()
                .map(|t| {
                    vec![
                        t.tenant.to_string(),
                        t.group.to_string(),
                        t.time_zone.clone(),
                        t.day_change.format("%H:%M").to_string(),
                        timestamp(t.created_at),
                        t.name.clone(),
                    ]
                })
                .collect();
            write_table(
                out,
                &[
                    "TENANT",
                    "GROUP",
                    "TIME ZONE",
                    "DAY CHANGE",
                    "CREATED",
                    "NAME",
                ],
                &rows,
            )?;
        }
    }
    Ok(())
}
