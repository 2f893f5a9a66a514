//! `punchctl payroll export`: a tenant's month as CSV on stdout or a file, a summary on stderr.

use std::io::Write;

use clap::Subcommand;
use dakoku_schemas::TenantId;

use crate::ops::payroll::{Month, PayrollError, RoundMode, Rounding, export, write_csv};

/// The `payroll` verbs.
#[derive(Debug, Subcommand)]
pub enum PayrollCommand {
    /// Export a tenant's month as CSV: one row per employee (days worked; worked, overtime,
    /// night and break minutes; days with anomalies), with a header row. Columns are documented
    /// in `punchctl/src/ops/payroll.rs`. Nothing is rounded unless `--round-minutes` is given, and
    /// then only the monthly totals, never a day.
    Export {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// The month of work dates, YYYY-MM.
        #[arg(long)]
        month: Month,
        /// Round each monthly minute total to this many minutes (e.g. 30); default: none.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1440))]
        round_minutes: Option<u32>,
        /// Direction of the monthly rounding.
        #[arg(long, value_enum, default_value_t = RoundMode::HalfUp, requires = "round_minutes")]
        round_mode: RoundMode,
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
    let client = dakoku_store::connect(database_url).await?;
    match command {
        PayrollCommand::Export {
            tenant,
            month,
            round_minutes,
            round_mode,
            output,
        } => {
            let rounding = match round_minutes {
                Some(unit) if (1..=1440).contains(&unit) => Rounding {
                    unit_minutes: unit,
                    mode: round_mode,
                },
                Some(unit) => return Err(PayrollError::InvalidRounding(unit).into()),
                None => Rounding::NONE,
            };
            let rows = export(&client, &tenant, month).await?;
            match &output {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
                    write_csv(&mut file, &tenant, month, &rows, rounding)?;
                    file.flush()?;
                }
                None => write_csv(out, &tenant, month, &rows, rounding)?,
            }
            let anomalies: i64 = rows.iter().map(|r| r.anomaly_days).sum();
            writeln!(
                err,
                "payroll {tenant} {month}: {} employees, {anomalies} days with anomalies{}{}",
                rows.len(),
                if rounding == Rounding::NONE {
                    String::new()
                } else {
                    format!(
                        ", monthly totals rounded {:?} to {} min",
                        rounding.mode, rounding.unit_minutes
                    )
                },
                output
                    .map(|p| format!(", written to {}", p.display()))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}
