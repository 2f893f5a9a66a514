//! `punchctl reopen`: lift the freeze of a closed payroll month (CONTRACT §4.7), with a reason
//! kept in the closing history.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use dakoku_admin::Admin;
use dakoku_kafka::KafkaArgs;
use dakoku_schemas::TenantId;

use crate::output::{admin_refusal, cli_actor, timestamp};

/// Flags of `punchctl reopen`.
#[derive(Debug, Args)]
pub struct ReopenArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: TenantId,
    /// The payroll month, YYYY-MM.
    #[arg(long)]
    pub month: String,
    /// Why it is reopened (required, at most 500 characters).
    #[arg(long)]
    pub reason: String,
    /// Who reopens it; recorded as `cli:<actor>`. Default: $USER, else `punchctl`.
    #[arg(long)]
    pub actor: Option<String>,
}

/// Runs `reopen`: what was undone to `out`; a refusal (not closed: exit 2) to `err`.
pub async fn run(
    args: ReopenArgs,
    kafka: &KafkaArgs,
    database_url: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let actor = cli_actor(args.actor.as_deref());
    let reopened = match Admin::connect(database_url, kafka).await {
        Ok(admin) => {
            admin
                .reopen_month(&args.tenant, &args.month, &actor, &args.reason)
                .await
        }
        Err(error) => Err(error),
    };
    match reopened {
        Ok(r) => {
            writeln!(
                out,
                "reopened {} {} (closing {}, by {} at {}: {}): {} paid months dropped, {} \
                 adjustments superseded; the month is published again whole",
                r.tenant_id,
                r.month,
                r.closing_id,
                r.actor,
                timestamp(r.at),
                r.reason,
                r.employees_unfrozen,
                r.adjustments_superseded
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(admin_refusal(err, &error)?),
    }
}
