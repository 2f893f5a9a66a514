//! `punchctl payroll export`: a tenant's payroll month as CSV on stdout or a file, a summary on
//! stderr.

use std::io::Write;

use clap::Subcommand;
use dakoku_schemas::TenantId;

use crate::ops::payroll::{Month, PayrollError, RowKind, export, write_csv};

/// The `payroll` verbs.
#[derive(Debug, Subcommand)]
pub enum PayrollCommand {
    /// Export a tenant's payroll month as CSV from the monthly attendance records: a header
    /// line, then one row per employee with a record for the month, by employee id.
    ///
    /// Columns, in this order: tenant_id, month, kind (`month`; adjustments of closed months
    /// will come as their own kind), employee_id, employee_name, first_day, last_day (the work
    /// dates the payroll month covers), days_worked, anomaly_days; payable minutes
    /// worked_minutes, overtime_minutes (daily + weekly), overtime_over60_minutes,
    /// within_statutory_minutes, night_minutes, holiday_minutes, break_minutes; the same
    /// figures in exact seconds (worked_seconds, overtime_seconds, overtime_over60_seconds,
    /// within_statutory_seconds, night_seconds, holiday_seconds, break_seconds); rules_version
    /// and revision of the record. Overtime, over-60, night and holiday minutes are rounded by
    /// the tenant's `monthly_rounding` rule; the other minutes are the seconds rounded down.
    /// See docs/payroll.md.
    #[command(verbatim_doc_comment)]
    Export {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// The payroll month, YYYY-MM: the month a closing period ends in (with closing day 20,
        /// 2026-12 is the work dates 2026-11-21 to 2026-12-20).
        #[arg(long)]
        month: Month,
        /// Gone: monthly rounding is the tenant's `monthly_rounding` rule (`punchctl rules
        /// set`); given, the export stops with an error rather than round twice.
        #[arg(long, hide = true)]
        round_minutes: Option<u32>,
        /// Gone with --round-minutes.
        #[arg(long, hide = true)]
        round_mode: Option<String>,
        /// Write the CSV to this file instead of stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

/// Runs a `payroll` verb: the CSV to `out` (or the `--output` file), a summary to `err`.
pub async fn run(
    command: PayrollCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match command {
        PayrollCommand::Export {
            tenant,
            month,
            round_minutes,
            round_mode,
            output,
        } => {
            if round_minutes.is_some() || round_mode.is_some() {
                return Err(PayrollError::RoundingIsARule.into());
            }
            let client = dakoku_store::connect(database_url).await?;
            let rows = export(&client, &tenant, month).await?;
            match &output {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
                    write_csv(&mut file, &tenant, month, &rows)?;
                    file.flush()?;
                }
                None => write_csv(out, &tenant, month, &rows)?,
            }
            let months: Vec<_> = rows.iter().filter(|r| r.kind == RowKind::Month).collect();
            let anomalies: i64 = months.iter().map(|r| r.anomaly_days).sum();
            let adjustments = rows.len() - months.len();
            writeln!(
                err,
                "payroll {tenant} {month}: {} employees, {anomalies} days with anomalies{}{}",
                months.len(),
                if adjustments > 0 {
                    format!(", {adjustments} adjustments of closed months")
                } else {
                    String::new()
                },
                output
                    .map(|p| format!(", written to {}", p.display()))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}
