//! `punchctl anomalies`: the anomaly queue of a tenant's payroll month, the days an
//! administrator should look at (and usually correct) before closing the month.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use dakoku_admin::{Admin, AnomalyDay};
use dakoku_kafka::KafkaArgs;
use dakoku_schemas::TenantId;

use crate::output::{admin_refusal, write_json};

/// Flags of `punchctl anomalies`.
#[derive(Debug, Args)]
pub struct AnomaliesArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: TenantId,
    /// The payroll month, YYYY-MM (its work dates follow the tenant's closing_day rule).
    #[arg(long)]
    pub month: String,
    /// `csv`: a header, then one row per anomalous day: work_date, employee_id, anomalies
    /// joined by `;`, and the punches that count from the day before through the day after as
    /// `kind@HH:MM:SS` (tenant's clock) joined by spaces. `json`: every day with all its raw
    /// punches (verdicts, withdrawn and voided ones included).
    #[arg(long, value_enum, default_value_t = AnomalyFormat::Csv)]
    pub format: AnomalyFormat,
}

/// Output formats of `anomalies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnomalyFormat {
    /// One CSV row per day.
    Csv,
    /// The days as a JSON array.
    Json,
}

/// Runs `anomalies`: the queue to `out`, a count to `err`.
pub async fn run(
    args: AnomaliesArgs,
    kafka: &KafkaArgs,
    database_url: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let queue = match Admin::connect(database_url, kafka).await {
        Ok(admin) => admin.anomalies(&args.tenant, &args.month).await,
        Err(error) => Err(error),
    };
    let days = match queue {
        Ok(days) => days,
        Err(error) => return Ok(admin_refusal(err, &error)?),
    };
    match args.format {
        AnomalyFormat::Json => write_json(out, &days)?,
        AnomalyFormat::Csv => write_csv(out, &days)?,
    }
    writeln!(
        err,
        "anomalies {} {}: {} days",
        args.tenant,
        args.month,
        days.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The queue as CSV (see [`AnomaliesArgs::format`]).
pub fn write_csv(out: &mut dyn Write, days: &[AnomalyDay]) -> std::io::Result<()> {
    writeln!(out, "work_date,employee_id,anomalies,punches")?;
    for day in days {
        let punches: Vec<String> = day
            .punches
            .iter()
            .filter(|p| !p.withdrawn && !p.voided)
            // at_local is RFC 3339 on the tenant's clock: its time of day is characters 11..19.
            .map(|p| format!("{}@{}", p.kind, p.at_local.get(11..19).unwrap_or("?")))
            .collect();
        writeln!(
            out,
            "{},{},{},{}",
            day.work_date,
            day.employee_id,
            day.anomalies.join(";"),
            punches.join(" ")
        )?;
    }
    Ok(())
}
