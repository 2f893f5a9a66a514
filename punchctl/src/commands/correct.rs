//! `punchctl correct add|void`: an administrator's correction of one employee's punches
//! (CONTRACT §4.6), checked and appended by `dakoku_admin`; the attendance consumer applies it.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, FixedOffset, Utc};
use clap::{Subcommand, ValueEnum};
use dakoku_admin::{Admin, CorrectionAction, CorrectionRequest, PunchKind};
use dakoku_kafka::KafkaArgs;
use dakoku_schemas::{Correction, EmployeeId, PunchId, TenantId};

use crate::output::{admin_refusal, cli_actor, timestamp};

/// The `correct` verbs.
#[derive(Debug, Subcommand)]
pub enum CorrectCommand {
    /// Add a punch the recorder did not take (a forgotten clock-out, say). The raw log is not
    /// touched: the added punch counts like a recorded one, and the day shows as corrected.
    ///
    /// Prints the correction id (the added punch's id, which a later `correct void` can name).
    /// Months already closed are corrected too: their changes become adjustments in the next
    /// export. Exit status 2 on bad input (named), 1 when Postgres or Kafka is unavailable.
    Add {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// The employee whose punch is added.
        #[arg(long)]
        employee: EmployeeId,
        /// The punch kind.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// The instant, RFC 3339 with its offset, e.g. 2026-11-03T18:00:00+09:00 (seconds;
        /// fractions are dropped).
        #[arg(long)]
        at: DateTime<FixedOffset>,
        /// Why (required, at most 500 characters); kept with the correction for audit.
        #[arg(long)]
        reason: String,
        /// Who is correcting; recorded as `cli:<actor>`. Default: $USER, else `punchctl`.
        #[arg(long)]
        actor: Option<String>,
    },
    /// Void a punch so it no longer counts: a raw punch (by punch id) or an earlier add (by
    /// correction id). The punch stays in the log and in `attendance show`, marked voided.
    ///
    /// The target must be stored already (a punch or add submitted moments ago may not be
    /// yet); a target voided before is refused. Exit status 2 on bad input, 1 when Postgres or
    /// Kafka is unavailable.
    Void {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// The punch id or correction id to void.
        #[arg(long)]
        target: PunchId,
        /// Why (required, at most 500 characters).
        #[arg(long)]
        reason: String,
        /// Who is correcting; recorded as `cli:<actor>`. Default: $USER, else `punchctl`.
        #[arg(long)]
        actor: Option<String>,
    },
}

/// A punch kind as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum KindArg {
    /// Start of work.
    ClockIn,
    /// End of work.
    ClockOut,
    /// Start of a break.
    BreakStart,
    /// End of a break.
    BreakEnd,
}

impl From<KindArg> for PunchKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::ClockIn => PunchKind::ClockIn,
            KindArg::ClockOut => PunchKind::ClockOut,
            KindArg::BreakStart => PunchKind::BreakStart,
            KindArg::BreakEnd => PunchKind::BreakEnd,
        }
    }
}

/// Runs a `correct` verb: the correction to `out`, a refusal to `err` with its exit status.
pub async fn run(
    command: CorrectCommand,
    kafka: &KafkaArgs,
    database_url: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let (tenant, request) = match command {
        CorrectCommand::Add {
            tenant,
            employee,
            kind,
            at,
            reason,
            actor,
        } => (
            tenant,
            CorrectionRequest {
                employee_id: Some(employee.to_string()),
                action: CorrectionAction::Add,
                kind: Some(kind.into()),
                at: Some(at.with_timezone(&Utc)),
                target_id: None,
                actor: cli_actor(actor.as_deref()),
                reason,
            },
        ),
        CorrectCommand::Void {
            tenant,
            target,
            reason,
            actor,
        } => (
            tenant,
            CorrectionRequest {
                employee_id: None,
                action: CorrectionAction::Void,
                kind: None,
                at: None,
                target_id: Some(target.to_string()),
                actor: cli_actor(actor.as_deref()),
                reason,
            },
        ),
    };
    let submitted = match Admin::connect(database_url, kafka).await {
        Ok(admin) => admin.submit_correction(&tenant, request).await,
        Err(error) => Err(error),
    };
    match submitted {
        Ok(correction) => {
            describe(out, &correction)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(admin_refusal(err, &error)?),
    }
}

/// The correction id on the first line (for scripts), then what it does.
fn describe(out: &mut dyn Write, c: &Correction) -> std::io::Result<()> {
    writeln!(out, "{}", c.correction_id)?;
    match c.action {
        CorrectionAction::Add => writeln!(
            out,
            "adds {} at {} for {}/{} (by {}: {})",
            c.kind.map_or("?", PunchKind::as_str),
            c.at_utc().map(timestamp).unwrap_or_default(),
            c.tenant_id,
            c.employee_id,
            c.actor,
            c.reason
        ),
        CorrectionAction::Void => writeln!(
            out,
            "voids {} of {}/{} (by {}: {})",
            c.target_id.map(|t| t.to_string()).unwrap_or_default(),
            c.tenant_id,
            c.employee_id,
            c.actor,
            c.reason
        ),
    }?;
    writeln!(
        out,
        "appended; the attendance consumer applies it shortly (`punchctl attendance show`)"
    )
}
