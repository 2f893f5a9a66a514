//! The faults the harness injects, how a run is told, and what it found.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::audit::Audit;

/// The faults the harness can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL the Kafka broker during the storm, restart it after `down_for`.
    BrokerKill,
    /// SIGKILL licence-check mid-batch, restart it.
    LicenceCheckKill,
    /// SIGKILL attendance mid-batch, restart it.
    AttendanceKill,
    /// Stop PostgreSQL (fast shutdown, as a restart does), start it after `down_for`.
    PostgresRestart,
    /// SIGKILL the acceptor while requests are in flight, restart it.
    AcceptorKill,
}

impl Fault {
    /// Every fault, in the order `storm faults` runs them.
    pub const ALL: [Fault; 5] = [
        Fault::BrokerKill,
        Fault::LicenceCheckKill,
        Fault::AttendanceKill,
        Fault::PostgresRestart,
        Fault::AcceptorKill,
    ];
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::BrokerKill => "broker-kill",
            Fault::LicenceCheckKill => "licence-check-kill",
            Fault::AttendanceKill => "attendance-kill",
            Fault::PostgresRestart => "postgres-restart",
            Fault::AcceptorKill => "acceptor-kill",
        })
    }
}

/// How to run the faults.
#[derive(Debug, Clone)]
pub struct FaultOptions {
    /// The repository (for `scripts/stack`).
    pub repo: PathBuf,
    /// The `storm` executable (`storm serve <service>` runs each service).
    pub storm_exe: PathBuf,
    /// Where private stacks and service logs go (one subdirectory per run).
    pub work_dir: PathBuf,
    /// Recorders.
    pub devices: usize,
    /// Pooled punches per recorder.
    pub pool: u64,
    /// Punches per request.
    pub batch: usize,
    /// The fault is injected once this share of all pooled punches is acked.
    pub inject_at: f64,
    /// How long a stopped broker or Postgres stays down.
    pub down_for: Duration,
    /// Longest a run may take (storm, recovery and catch-up), before it is declared failed.
    pub deadline: Duration,
    /// Keep the private stack's directory (logs) after the run.
    pub keep: bool,
}

impl FaultOptions {
    /// Defaults for a full run from `repo` with the `storm` at `storm_exe`.
    pub fn new(repo: PathBuf, storm_exe: PathBuf) -> Self {
        Self {
            work_dir: repo.join(".stack").join("faults"),
            repo,
            storm_exe,
            devices: 50,
            pool: 2_000,
            batch: 200,
            inject_at: 0.3,
            down_for: Duration::from_secs(5),
            deadline: Duration::from_secs(300),
            keep: false,
        }
    }
}

/// What one fault run did and found.
#[derive(Debug, Clone, Serialize)]
pub struct FaultResult {
    /// The fault.
    pub fault: Fault,
    /// What the harness did, with seconds since the storm started.
    pub steps: Vec<String>,
    /// Punches acked to the recorders.
    pub acked: u64,
    /// Requests that failed at the transport (connection refused or reset, timeout) and were
    /// resent.
    pub transport_failures: u64,
    /// Acked punches vs stored punches.
    pub audit: Audit,
    /// Both consumers reached the end of their input.
    pub caught_up: bool,
    /// `punchctl audit` of the group afterwards: problems found (raw log vs verdicts vs stored
    /// punches vs attendance days), or why it could not run.
    pub punchctl_audit: Result<u64, String>,
    /// Seconds from the start of the storm until everything was stored and caught up.
    pub seconds_to_consistent: f64,
    /// Why the run is not clean, if it is not.
    pub problems: Vec<String>,
}

impl FaultResult {
    /// Nothing lost, nothing doubled, consumers caught up.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for FaultResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fault {}:", self.fault)?;
        for step in &self.steps {
            writeln!(f, "  {step}")?;
        }
        writeln!(
            f,
            "  verified: {} acked, {} stored rows, lost {}, doubled {}, stored-but-unacked {}, \
             consumers caught up: {}, consistent after {:.1} s, {} resent transport failures, \
             punchctl audit: {}",
            self.acked,
            self.audit.stored_rows,
            self.audit.lost,
            self.audit.doubled,
            self.audit.unacked_stored,
            self.caught_up,
            self.seconds_to_consistent,
            self.transport_failures,
            match &self.punchctl_audit {
                Ok(0) => "clean".to_owned(),
                Ok(problems) => format!("{problems} problems"),
                Err(error) => format!("could not run: {error}"),
            },
        )?;
        if self.passed() {
            writeln!(f, "  PASS")
        } else {
            writeln!(f, "  FAIL: {}", self.problems.join("; "))
        }
    }
}
