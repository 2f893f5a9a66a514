//! Scripted fault injection: a contract-mode storm against the whole pipeline, one fault
//! injected in the middle of it, and the end state audited: every acked punch stored exactly
//! once, the consumers caught up, and `punchctl audit` of the group clean.
//!
//! Each run gets a **private stack** (`scripts/stack` with `DAKOKU_STACK_DIR` and free ports),
//! so killing its broker or restarting its Postgres disturbs nobody else, and runs every
//! service as a child process (`storm serve <service>`) so it can be killed with SIGKILL, as
//! a crash would. The recorders keep resending through every fault, as real ones do.

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use dakoku_ingest_api::token::TokenKeys;
use dakoku_schemas::GroupId;
use punchctl::lag::{LagRequest, measure};
use punchctl::topics::{TopicSettings, Topics};
use serde::Serialize;
use tokio::process::{Child, Command};

use crate::audit::{self, Audit, StoredIn};
use crate::provision::{self, FleetSpec};
use crate::sim::{self, Behaviour, Live, StormConfig};

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

/// A stack of our own: `scripts/stack` in its own directory on free ports.
#[derive(Debug)]
pub struct PrivateStack {
    repo: PathBuf,
    dir: PathBuf,
    kafka_port: u16,
    controller_port: u16,
    pg_port: u16,
}

/// A free TCP port on loopback (free now; the stack binds it right after).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PrivateStack {
    /// Starts Kafka and PostgreSQL under `dir` on free ports.
    pub async fn up(repo: &Path, dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Canonical: the stack recognises its processes by the paths in their command lines.
        let dir = std::fs::canonicalize(&dir)?;
        let stack = Self {
            repo: repo.to_owned(),
            dir,
            kafka_port: free_port()?,
            controller_port: free_port()?,
            pg_port: free_port()?,
        };
        stack.run(&["up"]).await?;
        Ok(stack)
    }

    /// Runs `scripts/stack <args>` against this stack.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let output = Command::new(self.repo.join("scripts/stack"))
            .args(args)
            .env("DAKOKU_STACK_DIR", &self.dir)
            .env("KAFKA_PORT", self.kafka_port.to_string())
            .env("KAFKA_CONTROLLER_PORT", self.controller_port.to_string())
            .env("PG_PORT", self.pg_port.to_string())
            .env("KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .await
            .context("running scripts/stack")?;
        if !output.status.success() {
            bail!(
                "scripts/stack {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Its Kafka bootstrap servers.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    /// Its Postgres URL.
    pub fn database_url(&self) -> String {
        format!("postgres://dakoku:dakoku@127.0.0.1:{}/dakoku", self.pg_port)
    }

    /// Stops everything and, unless `keep`, deletes its directory.
    pub async fn destroy(self, keep: bool) -> anyhow::Result<()> {
        self.run(&["down"]).await?;
        if !keep {
            std::fs::remove_dir_all(&self.dir).ok();
        }
        Ok(())
    }
}

/// The services of the run, each a child process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Svc {
    IngestApi,
    LicenceCheck,
    Attendance,
}

impl Svc {
    fn name(self) -> &'static str {
        match self {
            Svc::IngestApi => "ingest-api",
            Svc::LicenceCheck => "licence-check",
            Svc::Attendance => "attendance",
        }
    }
}

/// A service child process and how to start it again.
#[derive(Debug)]
struct Running {
    svc: Svc,
    child: Child,
    ready_url: String,
    started: u32,
}

/// Everything one run shares.
#[derive(Debug)]
struct Run<'a> {
    options: &'a FaultOptions,
    stack: &'a PrivateStack,
    group: GroupId,
    token_keys: String,
    acceptor: SocketAddr,
    licence_metrics: SocketAddr,
    attendance_metrics: SocketAddr,
    logs: PathBuf,
}

impl Run<'_> {
    async fn spawn(&self, svc: Svc, started: u32, fault: Fault) -> anyhow::Result<Running> {
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

async fn wait_ready(http: &reqwest::Client, running: &mut Running) -> anyhow::Result<()> {
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
async fn kill9(running: &mut Running) -> anyhow::Result<()> {
    running.child.start_kill()?;
    running.child.wait().await?;
    Ok(())
}

/// SIGTERM and wait for the graceful exit.
async fn terminate(running: &mut Running) -> anyhow::Result<()> {
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

/// Runs `fault` with `options` from scratch: private stack, services, storm, fault, audit.
pub async fn run_fault(options: &FaultOptions, fault: Fault) -> anyhow::Result<FaultResult> {
    let run_dir = options
        .work_dir
        .join(format!("{fault}-{:08x}", rand::random::<u32>()));
    let stack = PrivateStack::up(&options.repo, run_dir.join("stack")).await?;
    let result = with_stack(options, fault, &stack, &run_dir).await;
    let keep = options.keep || !result.as_ref().is_ok_and(FaultResult::passed);
    stack.destroy(keep).await?;
    if !keep {
        std::fs::remove_dir_all(&run_dir).ok();
    }
    result
}

async fn with_stack(
    options: &FaultOptions,
    fault: Fault,
    stack: &PrivateStack,
    run_dir: &Path,
) -> anyhow::Result<FaultResult> {
    let logs = run_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let group: GroupId = "faults".parse()?;
    let mut client = dakoku_store::connect(&stack.database_url()).await?;
    dakoku_store::migrate(&mut client).await?;
    Topics::connect(&stack.brokers())?
        .create_for_group(
            &group,
            &TopicSettings {
                partitions: 3,
                ..TopicSettings::default()
            },
        )
        .await?;
    let token_keys = TokenKeys::generate_entry("faults");
    let keys = TokenKeys::parse(&token_keys)?;
    let fleet = provision::provision(
        &mut client,
        &FleetSpec {
            group: group.clone(),
            prefix: "flt".into(),
            devices: options.devices,
            tenants: options.devices.div_ceil(10),
            employees_per_device: 5,
        },
        &keys,
    )
    .await?;
    let tenants: Vec<String> = fleet.tenants.iter().map(ToString::to_string).collect();
    let port =
        || -> anyhow::Result<SocketAddr> { Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?))) };
    let run = Run {
        options,
        stack,
        group: group.clone(),
        token_keys,
        acceptor: port()?,
        licence_metrics: port()?,
        attendance_metrics: port()?,
        logs,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut acceptor = run.spawn(Svc::IngestApi, 0, fault).await?;
    let mut licence = run.spawn(Svc::LicenceCheck, 0, fault).await?;
    let mut attendance = run.spawn(Svc::Attendance, 0, fault).await?;
    for running in [&mut acceptor, &mut licence, &mut attendance] {
        wait_ready(&http, running).await?;
    }

    let mut config = StormConfig::new(run.acceptor, fleet.recorders.clone(), Behaviour::Contract);
    config.pool = options.pool;
    config.batch = options.batch;
    config.trickle_every = None;
    config.stop_when_drained = true;
    config.max_duration = Some(options.deadline);
    // Recover quickly once the fault is over: the contract's 1 s base, a 5 s cap.
    config.backoff_cap = Duration::from_secs(5);
    config.request_timeout = Duration::from_secs(10);
    let total = options.pool * options.devices as u64;
    let live = Arc::new(Live::default());
    let started = Instant::now();
    let storm = tokio::spawn(sim::run_with(config, Arc::clone(&live), async {
        std::future::pending::<()>().await
    }));
    let mut steps = Vec::new();
    let at = |started: Instant| format!("{:6.1} s", started.elapsed().as_secs_f64());
    steps.push(format!(
        "{} storm: {} contract recorders x {} pooled punches, batches of {}",
        at(started),
        options.devices,
        options.pool,
        options.batch
    ));

    // Inject once the storm is well under way.
    let threshold = (total as f64 * options.inject_at) as u64;
    while live.acked.load(Ordering::Relaxed) < threshold {
        if storm.is_finished() || started.elapsed() > options.deadline {
            bail!("the storm ended or stalled before the fault could be injected");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    steps.push(format!(
        "{} {} of {total} punches acked: injecting {fault}",
        at(started),
        live.acked.load(Ordering::Relaxed)
    ));
    match fault {
        Fault::BrokerKill => {
            stack.run(&["kill", "kafka"]).await?;
            steps.push(format!("{} SIGKILL to the Kafka broker", at(started)));
            tokio::time::sleep(options.down_for).await;
            stack.run(&["up"]).await?;
            steps.push(format!(
                "{} broker restarted and serving metadata",
                at(started)
            ));
        }
        Fault::PostgresRestart => {
            stack.run(&["down", "postgres"]).await?;
            steps.push(format!("{} PostgreSQL stopped", at(started)));
            tokio::time::sleep(options.down_for).await;
            stack.run(&["up"]).await?;
            steps.push(format!("{} PostgreSQL started again", at(started)));
        }
        Fault::LicenceCheckKill | Fault::AttendanceKill | Fault::AcceptorKill => {
            let (running, svc) = match fault {
                Fault::LicenceCheckKill => (&mut licence, Svc::LicenceCheck),
                Fault::AttendanceKill => (&mut attendance, Svc::Attendance),
                _ => (&mut acceptor, Svc::IngestApi),
            };
            let in_flight = live.requests.load(Ordering::Relaxed);
            kill9(running).await?;
            steps.push(format!(
                "{} SIGKILL to {} ({} requests sent so far)",
                at(started),
                svc.name(),
                in_flight
            ));
            tokio::time::sleep(Duration::from_millis(500)).await;
            let started_count = running.started;
            *running = run.spawn(svc, started_count, fault).await?;
            wait_ready(&http, running).await?;
            steps.push(format!(
                "{} {} restarted and ready",
                at(started),
                svc.name()
            ));
        }
    }

    let outcome = storm.await??;
    steps.push(format!(
        "{} storm over: {} acked, pools drained: {}",
        at(started),
        outcome.totals.acked,
        outcome.pools_remaining() == 0
    ));

    // Wait for the pipeline: everything acked stored, both consumers at the end of their input.
    let lag_request = LagRequest {
        brokers: stack.brokers(),
        database_url: stack.database_url(),
        groups: vec![group.clone()],
        timeout: Duration::from_secs(10),
    };
    let mut audit_result;
    let mut caught_up = false;
    // A fresh connection: the set-up's may not have survived the fault (Postgres restart).
    drop(client);
    let mut client = None;
    loop {
        if client.is_none() {
            client = dakoku_store::connect(&stack.database_url()).await.ok();
        }
        let Some(connected) = &client else {
            if started.elapsed() > options.deadline {
                bail!("Postgres unreachable after the fault until the deadline");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        audit_result = match audit::audit(connected, StoredIn::Punches, &outcome).await {
            Ok(audit) => audit,
            Err(error) if started.elapsed() < options.deadline => {
                tracing::warn!(%error, "audit query failed; reconnecting");
                client = None;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        if audit_result.lost == 0 {
            caught_up = match measure(&lag_request).await {
                Ok(report) => {
                    let consumers: Vec<_> = report.consumers().collect();
                    consumers.len() == 2 && consumers.iter().all(|(_, c)| c.total_lag == 0)
                }
                Err(_) => false,
            };
            if caught_up {
                break;
            }
        }
        if started.elapsed() > options.deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seconds_to_consistent = started.elapsed().as_secs_f64();
    steps.push(format!(
        "{} audit: {} acked, {} stored rows for tenants {}..",
        at(started),
        audit_result.acked,
        audit_result.stored_rows,
        tenants.first().map_or("", String::as_str)
    ));
    // The operator's audit of the whole group: raw log, verdicts, stored punches, days.
    let mut audit_request =
        punchctl::audit::AuditRequest::new(&stack.brokers(), &stack.database_url(), group.clone());
    audit_request.timeout = Duration::from_secs(60);
    let punchctl_audit =
        match punchctl::audit::run(&audit_request, Arc::new(punchctl::audit::NoProgress)).await {
            Ok(report) => Ok(report.problems()),
            Err(error) => Err(error.to_string()),
        };
    steps.push(format!(
        "{} punchctl audit of group {group}: {}",
        at(started),
        match &punchctl_audit {
            Ok(problems) => format!("{problems} problems"),
            Err(error) => format!("failed: {error}"),
        }
    ));
    let mut problems = Vec::new();
    match &punchctl_audit {
        Ok(0) => {}
        Ok(found) => problems.push(format!("punchctl audit found {found} problems")),
        Err(error) => problems.push(format!("punchctl audit could not run: {error}")),
    }
    if audit_result.lost > 0 {
        problems.push(format!(
            "{} acked punches lost (e.g. {:?})",
            audit_result.lost, audit_result.lost_examples
        ));
    }
    if audit_result.doubled > 0 {
        problems.push(format!("{} punches stored twice", audit_result.doubled));
    }
    if !caught_up {
        problems.push("the consumers did not catch up before the deadline".into());
    }
    if outcome.pools_remaining() > 0 {
        problems.push(format!(
            "{} recorders still had pooled punches at the deadline",
            outcome.pools_remaining()
        ));
    }
    for running in [&mut acceptor, &mut licence, &mut attendance] {
        terminate(running).await?;
    }
    Ok(FaultResult {
        fault,
        steps,
        acked: audit_result.acked,
        transport_failures: live.failures.load(Ordering::Relaxed),
        audit: audit_result,
        caught_up,
        punchctl_audit,
        seconds_to_consistent,
        problems,
    })
}
