//! One fault run: the private stack, set-up, the storm, the fault injected mid-storm, the wait
//! until the pipeline is consistent, and the audits.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;
use dakoku_schemas::GroupId;
use dakoku_token::TokenKeys;
use punchctl::ops::audit::{self as operator_audit, AuditRequest, NoProgress};

use super::fault::{Fault, FaultOptions, FaultResult};
use super::services::{Run, Running, Svc, kill9, terminate, wait_ready};
use super::stack::{PrivateStack, free_port};
use crate::audit::{self, Audit, StoredIn};
use crate::lag::LagReader;
use crate::provision::{self, Fleet, FleetSpec};
use crate::sim::{self, Behaviour, Live, Outcome, SimError, StormConfig};
use crate::topics;

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

/// The three services of a run.
struct Services {
    acceptor: Running,
    licence: Running,
    attendance: Running,
}

/// The run's log of what happened when, seconds since the storm started.
struct Steps {
    started: Instant,
    list: Vec<String>,
}

impl Steps {
    fn push(&mut self, what: impl std::fmt::Display) {
        self.list.push(format!(
            "{:6.1} s {what}",
            self.started.elapsed().as_secs_f64()
        ));
    }
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
    let (client, fleet, token_keys) = set_up(options, stack, &group).await?;
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
    let mut services = Services {
        acceptor: run.spawn(Svc::IngestApi, 0, fault).await?,
        licence: run.spawn(Svc::LicenceCheck, 0, fault).await?,
        attendance: run.spawn(Svc::Attendance, 0, fault).await?,
    };
    for running in services.all() {
        wait_ready(&http, running).await?;
    }

    let live = Arc::new(Live::default());
    let started = Instant::now();
    let storm = tokio::spawn(sim::run_with(
        storm_config(options, &run, &fleet),
        Arc::clone(&live),
        async { std::future::pending::<()>().await },
    ));
    let mut steps = Steps {
        started,
        list: Vec::new(),
    };
    steps.push(format!(
        "storm: {} contract recorders x {} pooled punches, batches of {}",
        options.devices, options.pool, options.batch
    ));
    wait_to_inject(options, fault, &live, &storm, &mut steps).await?;
    inject(&run, fault, &mut services, &http, &live, &mut steps).await?;

    let outcome = storm.await??;
    steps.push(format!(
        "storm over: {} acked, pools drained: {}",
        outcome.totals.acked,
        outcome.pools_remaining() == 0
    ));
    // A fresh connection: the set-up's may not have survived the fault (Postgres restart).
    drop(client);
    let (audit_result, caught_up) =
        wait_consistent(options, stack, &group, &outcome, started).await?;
    let seconds_to_consistent = started.elapsed().as_secs_f64();
    steps.push(format!(
        "audit: {} acked, {} stored rows for tenants {}..",
        audit_result.acked,
        audit_result.stored_rows,
        tenants.first().map_or("", String::as_str)
    ));
    let punchctl_audit = punchctl_audit(stack, &group).await;
    steps.push(format!(
        "punchctl audit of group {group}: {}",
        match &punchctl_audit {
            Ok(problems) => format!("{problems} problems"),
            Err(error) => format!("failed: {error}"),
        }
    ));
    let problems = problems(&punchctl_audit, &audit_result, caught_up, &outcome);
    for running in services.all() {
        terminate(running).await?;
    }
    Ok(FaultResult {
        fault,
        steps: steps.list,
        acked: audit_result.acked,
        transport_failures: live.failures.load(Ordering::Relaxed),
        audit: audit_result,
        caught_up,
        punchctl_audit,
        seconds_to_consistent,
        problems,
    })
}

impl Services {
    fn all(&mut self) -> [&mut Running; 3] {
        [&mut self.acceptor, &mut self.licence, &mut self.attendance]
    }
}

/// The run's database migrated, the group's topics, and the fleet with its token key entry.
async fn set_up(
    options: &FaultOptions,
    stack: &PrivateStack,
    group: &GroupId,
) -> anyhow::Result<(tokio_postgres::Client, Fleet, String)> {
    let mut client = dakoku_store::connect(&stack.database_url()).await?;
    dakoku_store::migrate(&mut client).await?;
    topics::create(&stack.brokers(), group, 3).await?;
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
    Ok((client, fleet, token_keys))
}

/// A contract storm that drains its pools, recovering quickly once the fault is over.
fn storm_config(options: &FaultOptions, run: &Run<'_>, fleet: &Fleet) -> StormConfig {
    let mut config = StormConfig::new(run.acceptor, fleet.recorders.clone(), Behaviour::Contract);
    config.pool = options.pool;
    config.batch = options.batch;
    config.trickle_every = None;
    config.stop_when_drained = true;
    config.max_duration = Some(options.deadline);
    // Recover quickly once the fault is over: the contract's 1 s base, a 5 s cap.
    config.backoff_cap = Duration::from_secs(5);
    config.request_timeout = Duration::from_secs(10);
    config
}

/// Waits until the storm is well under way (`inject_at` of every punch acked).
async fn wait_to_inject(
    options: &FaultOptions,
    fault: Fault,
    live: &Live,
    storm: &tokio::task::JoinHandle<Result<Outcome, SimError>>,
    steps: &mut Steps,
) -> anyhow::Result<()> {
    let total = options.pool * options.devices as u64;
    let threshold = (total as f64 * options.inject_at) as u64;
    while live.acked.load(Ordering::Relaxed) < threshold {
        if storm.is_finished() || steps.started.elapsed() > options.deadline {
            bail!("the storm ended or stalled before the fault could be injected");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    steps.push(format!(
        "{} of {total} punches acked: injecting {fault}",
        live.acked.load(Ordering::Relaxed)
    ));
    Ok(())
}

/// Injects `fault` and brings the killed part back.
async fn inject(
    run: &Run<'_>,
    fault: Fault,
    services: &mut Services,
    http: &reqwest::Client,
    live: &Live,
    steps: &mut Steps,
) -> anyhow::Result<()> {
    let (stack, options) = (run.stack, run.options);
    match fault {
        Fault::BrokerKill => {
            stack.run(&["kill", "kafka"]).await?;
            steps.push("SIGKILL to the Kafka broker");
            tokio::time::sleep(options.down_for).await;
            stack.run(&["up"]).await?;
            steps.push("broker restarted and serving metadata");
        }
        Fault::PostgresRestart => {
            stack.run(&["down", "postgres"]).await?;
            steps.push("PostgreSQL stopped");
            tokio::time::sleep(options.down_for).await;
            stack.run(&["up"]).await?;
            steps.push("PostgreSQL started again");
        }
        Fault::LicenceCheckKill | Fault::AttendanceKill | Fault::AcceptorKill => {
            let (running, svc) = match fault {
                Fault::LicenceCheckKill => (&mut services.licence, Svc::LicenceCheck),
                Fault::AttendanceKill => (&mut services.attendance, Svc::Attendance),
                _ => (&mut services.acceptor, Svc::IngestApi),
            };
            let in_flight = live.requests.load(Ordering::Relaxed);
            kill9(running).await?;
            steps.push(format!(
                "SIGKILL to {} ({} requests sent so far)",
                svc.name(),
                in_flight
            ));
            tokio::time::sleep(Duration::from_millis(500)).await;
            let started_count = running.started;
            *running = run.spawn(svc, started_count, fault).await?;
            wait_ready(http, running).await?;
            steps.push(format!("{} restarted and ready", svc.name()));
        }
    }
    Ok(())
}

/// Waits for the pipeline: everything acked stored, both consumers at the end of their input
/// (or the deadline). The last audit, and whether the consumers caught up.
async fn wait_consistent(
    options: &FaultOptions,
    stack: &PrivateStack,
    group: &GroupId,
    outcome: &Outcome,
    started: Instant,
) -> anyhow::Result<(Audit, bool)> {
    let lag_reader = Arc::new(LagReader::new(
        &stack.brokers(),
        group,
        Duration::from_secs(10),
    )?);
    let mut audit_result;
    let mut caught_up = false;
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
        audit_result = match audit::audit(connected, StoredIn::Punches, outcome).await {
            Ok(audit) => audit,
            Err(error) if started.elapsed() < options.deadline => {
                tracing::warn!(%error, "audit query failed; reconnecting");
                client = None;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        if audit_result.lost == 0 {
            caught_up = match lag_reader.read(connected).await {
                Ok(lag) => {
                    lag_reader.caught_up(&lag.licence_check).await
                        && lag_reader.caught_up(&lag.attendance).await
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
    Ok((audit_result, caught_up))
}

/// The operator's audit of the whole group: raw log, verdicts, stored punches, days.
///
/// Called as a library (`punchctl::ops::audit`, what the `punchctl audit` verb runs) rather
/// than as a `punchctl` child process: `cargo test -p dakoku-storm` builds only storm's own
/// binaries, so a `punchctl` executable is not guaranteed to exist next to `storm`.
async fn punchctl_audit(stack: &PrivateStack, group: &GroupId) -> Result<u64, String> {
    let mut audit_request =
        AuditRequest::new(&stack.brokers(), &stack.database_url(), group.clone());
    audit_request.timeout = Duration::from_secs(60);
    match operator_audit::run(&audit_request, Arc::new(NoProgress)).await {
        Ok(report) => Ok(report.problems()),
        Err(error) => Err(error.to_string()),
    }
}

/// Everything that makes the run fail.
fn problems(
    punchctl_audit: &Result<u64, String>,
    audit_result: &Audit,
    caught_up: bool,
    outcome: &Outcome,
) -> Vec<String> {
    let mut problems = Vec::new();
    match punchctl_audit {
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
    problems
}
