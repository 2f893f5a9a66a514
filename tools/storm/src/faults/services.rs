//! The run's services as child processes (`storm serve <service>`): spawned, waited for,
//! killed with SIGKILL as a crash would, or stopped with SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use dakoku_schemas::GroupId;
use tokio::process::{Child, Command};

use super::fault::{Fault, FaultOptions};
use super::stack::PrivateStack;

/// The services of the run, each a child process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Svc {
    IngestApi,
    LicenceCheck,
    Attendance,
}

impl Svc {
    pub(super) fn name(self) -> &'static str {
        match self {
            Svc::IngestApi => "ingest-api",
            Svc::LicenceCheck => "licence-check",
            Svc::Attendance => "attendance",
        }
    }
}

/// A service child process and how to start it again.
#[derive(Debug)]
pub(super) struct Running {
    pub(super) svc: Svc,
    pub(super) child: Child,
    pub(super) ready_url: String,
    pub(super) started: u32,
}

/// Everything one run shares.
#[derive(Debug)]
pub(super) struct Run<'a> {
    pub(super) options: &'a FaultOptions,
    pub(super) stack: &'a PrivateStack,
    pub(super) group: GroupId,
    pub(super) token_keys: String,
    pub(super) acceptor: SocketAddr,
    pub(super) licence_metrics: SocketAddr,
    pub(super) attendance_metrics: SocketAddr,
    pub(super) logs: PathBuf,
}

impl Run<'_> {
    pub(super) async fn spawn(
        &self,
        svc: Svc,
        started: u32,
        fault: Fault,
    ) -> anyhow::Result<Running> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{}.log", svc.name())))?;
        let mut command = Command::new(&self.options.storm_exe);
        command
            .arg("serve")
            .arg(svc.name())
            .env("KAFKA_BROKERS", self.stack.brokers())
            .env("DATABASE_URL", self.stack.database_url())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let ready_url = match svc {
            Svc::IngestApi => {
                command
                    .env("INGEST_LISTEN", self.acceptor.to_string())
                    .env("DAKOKU_TOKEN_KEYS", &self.token_keys)
                    .env("INGEST_SNAPSHOT_POLL_MS", "500")
                    .env("INGEST_KAFKA_CHECK_MS", "500")
                    // The storm's recorders send as fast as they are let: the per-device limit
                    // is not what this harness tests.
                    .env("INGEST_DEVICE_RATE_PER_SEC", "1000")
                    .env("INGEST_DEVICE_BURST", "1000");
                format!("http://{}/readyz", self.acceptor)
            }
            Svc::LicenceCheck => {
                command
                    .arg("--group")
                    .arg(self.group.as_str())
                    .arg("--instance-id")
                    .arg("faults-0")
                    .arg("--metrics-listen")
                    .arg(self.licence_metrics.to_string())
                    .env("LICENCE_CHECK_SESSION_TIMEOUT_MS", "10000")
                    .env("LICENCE_CHECK_SHUTDOWN_TIMEOUT_MS", "5000");
                if fault == Fault::LicenceCheckKill && started == 0 {
                    // Each transaction stays open a while, so the SIGKILL lands mid-batch:
                    // verdicts produced, offsets not committed.
                    command.env("LICENCE_CHECK_DEBUG_BATCH_DELAY_MS", "300");
                }
                format!("http://{}/readyz", self.licence_metrics)
            }
            Svc::Attendance => {
                command
                    .arg("--group")
                    .arg(self.group.as_str())
                    .env(
                        "ATTENDANCE_METRICS_LISTEN",
                        self.attendance_metrics.to_string(),
                    )
                    .env("ATTENDANCE_SESSION_TIMEOUT_MS", "10000")
                    .env("ATTENDANCE_DRAIN_TIMEOUT_MS", "5000");
                if fault == Fault::AttendanceKill && started == 0 {
                    // Each Postgres transaction stays open a while before COMMIT, so the
                    // SIGKILL lands mid-batch.
                    command.env("ATTENDANCE_DEBUG_BATCH_DELAY_MS", "300");
                }
                format!("http://{}/readyz", self.attendance_metrics)
            }
        };
        let child = command.spawn().with_context(|| {
            format!(
                "starting {} serve {}",
                self.options.storm_exe.display(),
                svc.name()
            )
        })?;
        Ok(Running {
            svc,
            child,
            ready_url,
            started: started + 1,
        })
    }
}

pub(super) async fn wait_ready(
    http: &reqwest::Client,
    running: &mut Running,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = running.child.try_wait()? {
            bail!("{} exited while starting: {status}", running.svc.name());
        }
        if let Ok(response) = http.get(&running.ready_url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} not ready within 90 s ({})",
                running.svc.name(),
                running.ready_url
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGKILL, as a crash would: no drain, no flush, no commit.
pub(super) async fn kill9(running: &mut Running) -> anyhow::Result<()> {
    running.child.start_kill()?;
    running.child.wait().await?;
    Ok(())
}

/// SIGTERM and wait for the graceful exit.
pub(super) async fn terminate(running: &mut Running) -> anyhow::Result<()> {
    if let Some(pid) = running.child.id() {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid)?),
            nix::sys::signal::Signal::SIGTERM,
        )?;
    }
    if tokio::time::timeout(Duration::from_secs(30), running.child.wait())
        .await
        .is_err()
    {
        kill9(running).await?;
    }
    Ok(())
}
