//! `punchctl audit`: one audit of a tenant group (see [`crate::ops::audit`]) with a progress
//! bar, the report as text or JSON, and exit status 0 clean, 1 off, 2 could not run.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use clap::Args;
use dakoku_kafka::ClientFactory;
use dakoku_schemas::{GroupId, TenantId};

use crate::ops::audit::{self, AuditProgress, AuditRequest};
use crate::output::write_json;
use crate::progress::Bar;

/// `punchctl audit` flags.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// The tenant group to audit.
    #[arg(long)]
    pub group: GroupId,
    /// Only this tenant's punches and days.
    #[arg(long)]
    pub tenant: Option<TenantId>,
    /// First work date in scope (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<NaiveDate>,
    /// Last work date in scope (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: Option<NaiveDate>,
    /// Examples shown per kind of finding (all are counted).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Print the report as JSON (one object) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Longest wait for one Kafka operation, and longest stall of a topic scan, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
}

/// The shared progress bar (drawn on stderr only when it is a terminal).
impl AuditProgress for Bar {
    fn phase(&self, what: &str, total: u64) {
        self.stage(what, total);
    }

    fn advance(&self, n: u64) {
        Bar::advance(self, n);
    }
}

/// Runs `punchctl audit`: the report on `out`; exit 0 when clean, 1 when anything is off,
/// 2 when the audit could not be done (the error on `err`).
pub async fn run(
    args: AuditArgs,
    kafka: &ClientFactory,
    database_url: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let request = AuditRequest {
        kafka: kafka.clone(),
        database_url: database_url.to_owned(),
        group: args.group,
        tenant: args.tenant,
        from: args.from,
        to: args.to,
        limit: args.limit,
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
    };
    let bar = Bar::new();
    let report = audit::run(&request, Arc::new(bar.clone())).await;
    bar.finish();
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            writeln!(err, "punchctl: error: {error}")?;
            return Ok(ExitCode::from(2));
        }
    };
    if args.json {
        write_json(out, &report)?;
    } else {
        audit::write_report(&report, out)?;
    }
    Ok(audit::exit_code(&report))
}
