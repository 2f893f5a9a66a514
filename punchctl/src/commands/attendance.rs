//! `punchctl attendance compute`: the attendance engine on files (CONTRACT §4.8), so payroll
//! staff can check the rules and preview a rules change without Kafka or Postgres; and
//! `punchctl attendance show`: one employee's stored day with the raw punches and corrections
//! behind it (CONTRACT §4.6), for administrators and auditors.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Subcommand, ValueEnum};
use dakoku_admin::format::{hms, local_rfc3339, zone};
use dakoku_admin::{Admin, DayFigures, DayView};
use dakoku_kafka::KafkaArgs;
use dakoku_schemas::{EmployeeId, TenantId};

use crate::ops::compute::{ComputeError, compute_files_to};
use crate::output::{admin_refusal, timestamp, write_json, write_table};

/// The `attendance` verbs.
#[derive(Debug, Subcommand)]
pub enum AttendanceCommand {
    /// Compute day and month records from files with the attendance engine, printed as JSON
    /// lines sorted by employee, then date (days), then month (months).
    ///
    /// RULES is `{"versions": [{"effective_from": "YYYY-MM-DD", <rules>}]}` (missing rules take
    /// their defaults); PUNCHES has one punch per line (`employee_id`, `punch_id`, `seq`, `kind`,
    /// `at`), all treated as accepted; CORRECTIONS one correction per line (`correction_id`,
    /// `action` add|void, ...). A repeated `punch_id` or `correction_id` is a resend: the first
    /// stands. Exit status 2 on bad input, naming the file, line and field.
    Compute {
        /// The rules file (JSON).
        #[arg(long, value_name = "RULES.json")]
        rules: PathBuf,
        /// The punches (JSON lines).
        #[arg(long, value_name = "PUNCHES.jsonl")]
        punches: PathBuf,
        /// Administrators' corrections (JSON lines).
        #[arg(long, value_name = "CORRECTIONS.jsonl")]
        corrections: Option<PathBuf>,
    },
    /// Show one employee's work date as stored: the day's figures (h:mm:ss and seconds),
    /// anomalies, rules version and revision; the raw punches around it (the work date, the
    /// day before and after) with their verdicts, withdrawn or voided ones marked; and the
    /// corrections concerning them with actor and reason.
    ///
    /// Times are shown on the tenant's clock. Exit status 2 for an unknown tenant or
    /// employee, 1 when Postgres is unavailable.
    Show {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// The employee.
        #[arg(long)]
        employee: EmployeeId,
        /// The work date, YYYY-MM-DD.
        #[arg(long)]
        date: NaiveDate,
        /// `text` for people, `json` for programs (the admin API's day view).
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
}

/// Output formats of `attendance show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// Aligned text.
    Text,
    /// The day view as JSON.
    Json,
}

/// Runs an `attendance` verb: records to `out`; bad input to `err` with exit status 2.
pub async fn run(
    command: AttendanceCommand,
    kafka: &KafkaArgs,
    database_url: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let (rules, punches, corrections) = match command {
        AttendanceCommand::Compute {
            rules,
            punches,
            corrections,
        } => (rules, punches, corrections),
        AttendanceCommand::Show {
            tenant,
            employee,
            date,
            format,
        } => {
            let view = match Admin::connect(database_url, kafka).await {
                Ok(admin) => admin.day(&tenant, &employee, date).await,
                Err(error) => Err(error),
            };
            return match view {
                Ok(view) if format == ShowFormat::Json => {
                    write_json(out, &view)?;
                    Ok(ExitCode::SUCCESS)
                }
                Ok(view) => {
                    write_day(out, &view)?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => Ok(admin_refusal(err, &error)?),
            };
        }
    };
    // Streamed: a million punches' records are never one string in memory.
    match compute_files_to(&rules, &punches, corrections.as_deref(), out) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error @ (ComputeError::Input(_) | ComputeError::Read { .. })) => {
            writeln!(err, "punchctl: bad input: {error}")?;
            Ok(ExitCode::from(2))
        }
        Err(error @ ComputeError::Write(_)) => Err(error.into()),
    }
}

/// The day view as an administrator reads it.
pub fn write_day(out: &mut dyn Write, view: &DayView) -> std::io::Result<()> {
    let tz = zone(&view.time_zone);
    writeln!(
        out,
        "{} {} {} (times in {})",
        view.tenant_id, view.employee_id, view.work_date, view.time_zone
    )?;
    match &view.day {
        None => writeln!(out, "\nday: no record (no punch counted for this date)")?,
        Some(day) => write_figures(out, day, tz)?,
    }
    writeln!(out, "\npunches (raw, as recorded):")?;
    if view.punches.is_empty() {
        writeln!(out, "  none")?;
    } else {
        let rows: Vec<Vec<String>> = view
            .punches
            .iter()
            .map(|p| {
                let mut verdict = p.verdict.clone();
                if let Some(reason) = &p.reason {
                    verdict = format!("{verdict} ({reason})");
                }
                if p.voided {
                    verdict.push_str(", voided");
                }
                vec![
                    p.at_local.clone(),
                    p.kind.clone(),
                    p.work_date.to_string(),
                    p.device_id.clone(),
                    p.seq.to_string(),
                    verdict,
                    p.punch_id.clone(),
                ]
            })
            .collect();
        write_table(
            out,
            &[
                "at",
                "kind",
                "work_date",
                "device",
                "seq",
                "verdict",
                "punch_id",
            ],
            &rows,
        )?;
    }
    writeln!(out, "\ncorrections:")?;
    if view.corrections.is_empty() {
        return writeln!(out, "  none");
    }
    let rows: Vec<Vec<String>> = view
        .corrections
        .iter()
        .map(|c| {
            let what = match (&c.kind, &c.at_local, &c.target_id) {
                (Some(kind), Some(at), _) => format!("{kind} at {at}"),
                (_, _, Some(target)) => target.clone(),
                _ => String::new(),
            };
            let action = if c.voided {
                format!("{} (voided)", c.action)
            } else {
                c.action.clone()
            };
            vec![
                timestamp(c.created_at),
                action,
                what,
                c.actor.clone(),
                c.reason.clone(),
                c.correction_id.clone(),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "created_at",
            "action",
            "punch / target",
            "actor",
            "reason",
            "correction_id",
        ],
        &rows,
    )
}

fn write_figures(out: &mut dyn Write, day: &DayFigures, tz: chrono_tz::Tz) -> std::io::Result<()> {
    writeln!(
        out,
        "\nday: rules version {}, revision {}, computed {}{}",
        day.rules_version,
        day.revision,
        timestamp(day.computed_at),
        if day.corrected { ", corrected" } else { "" }
    )?;
    let local = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or_else(|| "-".to_owned(), |at| local_rfc3339(at, tz))
    };
    let figures = [
        ("worked", day.worked_seconds),
        ("break", day.break_seconds),
        ("night", day.night_seconds),
        ("holiday", day.holiday_seconds),
        ("overtime daily", day.overtime_daily_seconds),
        ("overtime weekly", day.overtime_weekly_seconds),
        ("within statutory", day.within_statutory_seconds),
    ];
    let mut rows: Vec<Vec<String>> = figures
        .iter()
        .map(|(name, seconds)| vec![(*name).to_owned(), hms(*seconds), format!("{seconds} s")])
        .collect();
    rows.push(vec!["first in".into(), local(day.first_in), String::new()]);
    rows.push(vec!["last out".into(), local(day.last_out), String::new()]);
    rows.push(vec![
        "punches counted".into(),
        day.punch_count.to_string(),
        format!("{} double taps ignored", day.double_taps),
    ]);
    rows.push(vec![
        "anomalies".into(),
        if day.anomalies.is_empty() {
            "none".into()
        } else {
            day.anomalies.join(", ")
        },
        String::new(),
    ]);
    write_table(out, &["figure", "value", ""], &rows)?;
    if !day.correction_ids.is_empty() {
        writeln!(out, "corrected by: {}", day.correction_ids.join(", "))?;
    }
    Ok(())
}
