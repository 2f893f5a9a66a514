//! `punchctl attendance compute`: the attendance engine on files (CONTRACT §4.8), so payroll
//! staff can check the rules and preview a rules change without Kafka or Postgres.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::ops::compute::{ComputeError, compute_files_to};

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
}

/// Runs an `attendance` verb: records to `out`; bad input to `err` with exit status 2.
pub fn run(
    command: AttendanceCommand,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let AttendanceCommand::Compute {
        rules,
        punches,
        corrections,
    } = command;
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
