//! `punchctl close`: close a tenant's payroll month (CONTRACT §4.7), freezing each employee's
//! monthly record as paid; later changes to its days become adjustments.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use dakoku_admin::Admin;
use dakoku_kafka::KafkaArgs;
use dakoku_schemas::TenantId;

use crate::output::{admin_refusal, cli_actor, timestamp};

/// Flags of `punchctl close`.
#[derive(Debug, Args)]
pub struct CloseArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: TenantId,
    /// The payroll month, YYYY-MM.
    #[arg(long)]
    pub month: String,
    /// Who closes it; recorded as `cli:<actor>`. Default: $USER, else `punchctl`.
    #[arg(long)]
    pub actor: Option<String>,
}

/// Runs `close`: what was frozen to `out`; a refusal (already closed: exit 2) to `err`.
pub async fn run(
    args: CloseArgs,
    kafka: &KafkaArgs,
    database_url: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let actor = cli_actor(args.actor.as_deref());
    let closed = match Admin::connect(database_url, kafka).await {
        Ok(admin) => admin.close_month(&args.tenant, &args.month, &actor).await,
        Err(error) => Err(error),
    };
    match closed {
        Ok(c) => {
            writeln!(
                out,
                "closed {} {} (closing {}, by {} at {}): {} employees' months frozen as paid",
                c.tenant_id,
                c.month,
                c.closing_id,
                c.actor,
                timestamp(c.at),
                c.employees_frozen
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(admin_refusal(err, &error)?),
    }
}
