//! Measuring: the two servers started, the phases run in order, the resources read before the
//! servers stop, the end checks of the topics, and the comparisons.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::context::{BARE, BATCH_GOAL, BENCH, Context, INGEST, KAFKA, RSS_GOAL_MIB, SINGLE_GOAL};
use super::phases::{self, log_check};
use crate::cli::RunArgs;
use crate::load::{self, Fleet};
use crate::process::{self, Server};
use crate::report::{Comparison, LatencyAtLoad, LogCheck, PhaseReport, ProcessReport};
use crate::setup::BenchGroup;

/// The two servers under test.
#[derive(Debug, Default)]
pub(super) struct Servers {
    pub(super) ingest: Option<Server>,
    pub(super) bare: Option<Server>,
}

pub(super) type Measured = (
    Vec<PhaseReport>,
    Vec<Comparison>,
    Vec<LatencyAtLoad>,
    Vec<LogCheck>,
    ProcessReport,
    ProcessReport,
);

/// Starts the servers and runs the phases.
pub(super) async fn measure(
    args: &RunArgs,
    bench: &BenchGroup,
    ingest_bin: &Path,
    servers: &mut Servers,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Measured> {
    let logs = std::env::temp_dir().join(format!("ingest-bench-{}", bench.group));
    std::fs::create_dir_all(&logs)
        .with_context(|| format!("creating log directory {}", logs.display()))?;
    let ((ingest_addr, ingest_pid), (bare_addr, bare_pid)) =
        start_servers(args, bench, ingest_bin, servers, &logs).await?;
    let mut pids = vec![
        (INGEST, ingest_pid),
        (BARE, bare_pid),
        (BENCH, std::process::id()),
    ];
    if let Some(kafka) = args.kafka_pid.or_else(process::stack_kafka_pid) {
        pids.push((KAFKA, kafka));
    }
    let cx = Context {
        args: args.clone(),
        fleet: Arc::new(Fleet::new(bench)),
        pids,
    };
    let scraper = (args.scrape_secs > 0.0).then(|| {
        let every = Duration::from_secs_f64(args.scrape_secs);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = load::get(ingest_addr, "/metrics").await;
            }
        })
    });

    // 1. Batch throughput: ingest-api and the raw producer, alternating (A B, B A, ...).
    let batch = phases::batch(&cx, bench, ingest_addr, &logs).await?;
    let mut log_checks = vec![
        log_check(
            "ingest-api's raw topic after the batch phase",
            &args.brokers,
            &bench.raw_topic(),
            batch.http.punches_total,
        )
        .await?,
    ];
    // 2. Single-punch throughput: ingest-api and the bare endpoint, alternating.
    let (single_http, single_bare) = phases::single(&cx, ingest_addr, bare_addr).await;
    // 3. Latency at a fraction of each peak, open loop.
    let (latency_batch, latency_single) =
        phases::latency(&cx, ingest_addr, &batch.http, &single_http).await?;
    if let Some(scraper) = scraper {
        scraper.abort();
    }

    // 4. Resources, before the processes stop.
    let ingest_api = process_report(ingest_pid, Some(RSS_GOAL_MIB))?;
    let bare_endpoint = process_report(bare_pid, None)?;

    let phases = vec![
        batch.http,
        batch.raw,
        single_http,
        single_bare,
        latency_batch,
        latency_single,
    ];
    log_checks
        .extend(end_log_checks(args, bench, &phases, &batch.baseline_topic, batch.primed).await?);
    warnings.extend(phase_warnings(&phases));
    let (comparisons, latency) = compare(args, &phases);
    Ok((
        phases,
        comparisons,
        latency,
        log_checks,
        ingest_api,
        bare_endpoint,
    ))
}

/// Starts ingest-api and the bare endpoint into `servers` and waits until both are ready;
/// returns their addresses and pids.
async fn start_servers(
    args: &RunArgs,
    bench: &BenchGroup,
    ingest_bin: &Path,
    servers: &mut Servers,
    logs: &Path,
) -> anyhow::Result<((SocketAddr, u32), (SocketAddr, u32))> {
    let ready_timeout = Duration::from_secs_f64(args.ready_timeout_secs);
    let ingest_addr = process::free_addr()?;
    let ingest = servers.ingest.insert(Server::start(
        INGEST,
        ingest_bin,
        &[],
        &[
            ("KAFKA_BROKERS", args.brokers.clone()),
            ("DATABASE_URL", args.database_url.clone()),
            ("DAKOKU_TOKEN_KEYS", bench.token_keys.clone()),
            ("INGEST_LISTEN", ingest_addr.to_string()),
            ("INGEST_ACCEPTOR_ID", "ingest-bench".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ],
        ingest_addr,
        logs.join("ingest-api.log"),
    )?);
    let bare_addr = process::free_addr()?;
    let me = std::env::current_exe().context("locating this executable")?;
    let bare = servers.bare.insert(Server::start(
        BARE,
        &me,
        &["bare-server", "--listen", &bare_addr.to_string()],
        &[("RUST_LOG", "warn".to_owned())],
        bare_addr,
        logs.join("bare-endpoint.log"),
    )?);
    ingest.wait_ready("/readyz", ready_timeout).await?;
    bare.wait_ready("/readyz", ready_timeout).await?;
    eprintln!(
        "ingest-bench: ingest-api pid {} on {} (log {}), bare endpoint pid {} on {}",
        ingest.pid(),
        ingest.addr(),
        ingest.log().display(),
        bare.pid(),
        bare.addr()
    );
    Ok(((ingest_addr, ingest.pid()), (bare_addr, bare.pid())))
}

fn process_report(pid: u32, goal_mib: Option<f64>) -> anyhow::Result<ProcessReport> {
    let usage = process::usage(pid).with_context(|| format!("process {pid} is gone"))?;
    let peak = usage.peak_rss_kib as f64 / 1024.0;
    Ok(ProcessReport {
        pid,
        peak_rss_mib: peak,
        rss_mib: usage.rss_kib as f64 / 1024.0,
        cpu_secs: usage.cpu_secs,
        rss_goal_mib: goal_mib,
        met: goal_mib.map(|goal| peak < goal),
    })
}

/// The topics' end offsets against everything acked into them over all phases.
async fn end_log_checks(
    args: &RunArgs,
    bench: &BenchGroup,
    phases: &[PhaseReport],
    baseline_topic: &str,
    primed: u64,
) -> anyhow::Result<Vec<LogCheck>> {
    let ingest_acked: u64 = phases
        .iter()
        .filter(|p| p.name != "batch/raw-producer" && p.name != "single/bare-endpoint")
        .map(|p| p.punches_total)
        .sum();
    Ok(vec![
        log_check(
            "ingest-api's raw topic at the end",
            &args.brokers,
            &bench.raw_topic(),
            ingest_acked,
        )
        .await?,
        log_check(
            "the raw producer's topic at the end",
            &args.brokers,
            baseline_topic,
            phases[1].punches_total + primed,
        )
        .await?,
    ])
}

/// What the report should warn about in the phases: failures, rate limiting, late starts.
fn phase_warnings(phases: &[PhaseReport]) -> Vec<String> {
    let mut warnings = Vec::new();
    for p in phases {
        if p.failed() > 0 {
            warnings.push(format!(
                "{}: {} failed requests {:?}, e.g. {:?}",
                p.name,
                p.failed(),
                p.failures,
                p.failure_examples
            ));
        }
        if p.failures.contains_key("http 429") {
            warnings.push(format!(
                "{}: rate limited per device; raise --devices so the load stays under the acceptor's per-device limit",
                p.name
            ));
        }
        if p.late_starts > p.requests / 10 {
            warnings.push(format!(
                "{}: {} of {} requests started more than 1 ms late because their connection was still busy; latency counts from the scheduled time, so it includes that wait",
                p.name, p.late_starts, p.requests
            ));
        }
    }
    warnings
}

/// ingest-api against its baselines, and its latency at load.
fn compare(args: &RunArgs, phases: &[PhaseReport]) -> (Vec<Comparison>, Vec<LatencyAtLoad>) {
    let [
        batch_http,
        batch_raw,
        single_http,
        single_bare,
        latency_batch,
        latency_single,
    ] = phases
    else {
        unreachable!("six phases")
    };
    let per_unit = |p: &PhaseReport, process: &str, units: u64| {
        if units == 0 {
            0.0
        } else {
            p.cpu(process) * 1e6 / units as f64
        }
    };
    let comparisons = vec![
        Comparison::new(
            "batch ingest",
            "punches/s",
            batch_http.punches_per_sec,
            batch_raw.punches_per_sec,
            "raw rdkafka producer with ingest-api's producer settings, records/s",
            BATCH_GOAL,
        )
        .with_cpu(
            per_unit(batch_http, INGEST, batch_http.punches),
            per_unit(batch_raw, BENCH, batch_raw.punches),
        ),
        Comparison::new(
            "single-punch requests",
            "requests/s",
            single_http.requests_per_sec,
            single_bare.requests_per_sec,
            "bare axum endpoint (separate process), requests/s",
            SINGLE_GOAL,
        )
        .with_cpu(
            per_unit(single_http, INGEST, single_http.requests),
            per_unit(single_bare, BARE, single_bare.requests),
        ),
    ];
    let latency = [(latency_batch, "batch"), (latency_single, "single punch")]
        .into_iter()
        .map(|(p, what)| LatencyAtLoad {
            what: what.to_owned(),
            load: args.latency_load,
            target_requests_per_sec: p.target_requests_per_sec.unwrap_or(0.0),
            punches_per_sec: p.punches_per_sec,
            latency_ms: p.latency_ms,
            late_starts: p.late_starts,
            failed: p.failed(),
        })
        .collect();
    (comparisons, latency)
}
