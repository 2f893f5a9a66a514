//! The run: checks, setup, the servers, the phases in order, resources, cleanup.
//!
//! Phases, each with its warm-up:
//! 1. batch throughput, closed loop: ingest-api and the raw producer, alternating in
//!    `--rounds` rounds; then ingest-api's raw topic end offsets are checked against its acks;
//! 2. single-punch throughput, closed loop: ingest-api and the bare endpoint, alternating;
//! 3. latency, open loop at `--latency-load` of each ingest-api peak: batch, then single punch;
//! 4. ingest-api's peak RSS and CPU time, read from `/proc` before it is stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use dakoku_ingest_api::Config as IngestConfig;
use dakoku_ingest_api::publisher::Publisher;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::RunArgs;
use crate::load::{self, Fleet, HttpSender, KafkaSender, Outcome, Pace, Sender, Spec, Window};
use crate::process::{self, Server};
use crate::report::{
    self, Comparison, LatencyAtLoad, LogCheck, Machine, PhaseReport, ProcessReport, Report, Setup,
};
use crate::setup::{self, BenchGroup};

/// Goal: batch punches/s through ingest-api over raw producer records/s.
pub const BATCH_GOAL: f64 = 0.8;
/// Goal: single-punch requests/s of ingest-api over the bare endpoint's.
pub const SINGLE_GOAL: f64 = 0.5;
/// Goal: ingest-api's peak RSS, MiB.
pub const RSS_GOAL_MIB: f64 = 256.0;
/// Time ingest-api gets to drain after SIGTERM before it is killed (its drain budget is 15 s).
const STOP_GRACE: Duration = Duration::from_secs(20);

/// Process names used in the CPU accounting.
const INGEST: &str = "ingest-api";
const BARE: &str = "bare-endpoint";
const BENCH: &str = "ingest-bench";
const KAFKA: &str = "kafka";

/// The two servers under test.
#[derive(Debug, Default)]
struct Servers {
    ingest: Option<Server>,
    bare: Option<Server>,
}

/// What every phase needs.
#[derive(Debug)]
struct Context {
    args: RunArgs,
    fleet: Arc<Fleet>,
    /// Processes whose CPU time is measured per phase.
    pids: Vec<(&'static str, u32)>,
}

/// Runs the whole benchmark and returns its report.
pub async fn run(args: RunArgs) -> anyhow::Result<Report> {
    let args = args.effective();
    args.validate().map_err(anyhow::Error::msg)?;
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ingest_bin = ingest_api_bin(&args)?;
    let mut warnings = build_warnings(&args, &ingest_bin)?;

    let group = args.group.clone().unwrap_or_else(setup::fresh_group_id);
    eprintln!(
        "ingest-bench: setting up group {group} ({} devices, {} partitions)",
        args.devices, args.partitions
    );
    let bench = setup::prepare(
        &args.database_url,
        &args.brokers,
        &group,
        args.devices,
        args.partitions,
    )
    .await?;

    let mut servers = Servers::default();
    let outcome = tokio::select! {
        outcome = measure(&args, &bench, &ingest_bin, &mut servers, &mut warnings) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };

    for server in [servers.ingest.take(), servers.bare.take()]
        .into_iter()
        .flatten()
    {
        if let Err(error) = server.stop(STOP_GRACE).await {
            warnings.push(format!("stopping a server: {error:#}"));
        }
    }
    if args.keep {
        eprintln!("ingest-bench: keeping group {group} (--keep)");
    } else {
        eprintln!("ingest-bench: removing group {group}");
        warnings.extend(setup::remove(&args.database_url, &args.brokers, &bench).await);
    }

    let (phases, comparisons, latency, log_checks, ingest_api, bare_endpoint) = outcome?;
    let cpu_us_per_unit = cpu_per_unit(&phases);
    Ok(Report {
        bench_version: env!("CARGO_PKG_VERSION"),
        started_at,
        machine: Machine::detect(),
        setup: Setup {
            group,
            devices: args.devices,
            partitions: args.partitions,
            ingest_api_bin: ingest_bin.display().to_string(),
            device_rate_limit: {
                let c = ingest_config(&args, &bench);
                format!(
                    "{}/s, burst {} (defaults)",
                    c.device_rate_per_sec, c.device_burst
                )
            },
            producer: producer_settings(&ingest_config(&args, &bench)),
            scrape_secs: args.scrape_secs,
            kept: args.keep,
        },
        phases,
        comparisons,
        latency,
        log_checks,
        ingest_api,
        bare_endpoint,
        cpu_us_per_unit,
        warnings,
    })
}

type Measured = (
    Vec<PhaseReport>,
    Vec<Comparison>,
    Vec<LatencyAtLoad>,
    Vec<LogCheck>,
    ProcessReport,
    ProcessReport,
);

/// Starts the servers and runs the phases.
async fn measure(
    args: &RunArgs,
    bench: &BenchGroup,
    ingest_bin: &Path,
    servers: &mut Servers,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Measured> {
    let logs = std::env::temp_dir().join(format!("ingest-bench-{}", bench.group));
    std::fs::create_dir_all(&logs)
        .with_context(|| format!("creating log directory {}", logs.display()))?;
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
    let (ingest_pid, bare_pid) = (ingest.pid(), bare.pid());

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

    let batch = Spec {
        punches_per_request: args.batch_size,
        pace: Pace::Closed,
    };
    let single = Spec {
        punches_per_request: 1,
        pace: Pace::Closed,
    };
    let (bc, sc) = (args.batch_connections, args.single_connections);
    let fleet = &cx.fleet;
    let rounds = args.rounds;

    // 1. Batch throughput: ingest-api and the raw producer, alternating (A B, B A, ...).
    let publisher = Publisher::new(&ingest_config(args, bench))
        .context("creating the raw producer (ingest-api's Publisher)")?;
    let baseline_topic = bench.baseline_topic();
    // Prime the raw producer (metadata, idempotent producer id) as ingest-api's was by its
    // readiness check, so its first batch does not carry a one-off second of set-up.
    let primed = prime(fleet, &publisher, &baseline_topic).await?;
    let mut batch_http = Rounds::new("batch/ingest-api", "HTTP batches to ingest-api", bc, batch);
    let mut batch_raw = Rounds::new(
        "batch/raw-producer",
        "raw rdkafka producer with ingest-api's settings",
        bc,
        batch,
    );
    for r in 0..rounds {
        let secs = args.batch_secs / f64::from(rounds);
        for ours in ordered(r) {
            if ours {
                let senders = HttpSender::many(fleet, ingest_addr, bc);
                batch_http.add(round(&cx, &batch_http, r, senders, secs).await);
            } else {
                let senders = KafkaSender::many(fleet, &publisher, &baseline_topic, bc);
                batch_raw.add(round(&cx, &batch_raw, r, senders, secs).await);
            }
        }
    }
    drop(publisher);
    let batch_http = batch_http.report();
    let batch_raw = batch_raw.report();
    if batch_http.punches == 0 {
        bail!(
            "ingest-api acked nothing in the batch phase ({:?}); see {}",
            batch_http.failure_examples,
            logs.join("ingest-api.log").display()
        );
    }
    let mut log_checks = vec![
        log_check(
            "ingest-api's raw topic after the batch phase",
            &args.brokers,
            &bench.raw_topic(),
            batch_http.punches_total,
        )
        .await?,
    ];

    // 2. Single-punch throughput: ingest-api and the bare endpoint, alternating.
    let mut single_http = Rounds::new(
        "single/ingest-api",
        "one punch per request to ingest-api",
        sc,
        single,
    );
    let mut single_bare = Rounds::new(
        "single/bare-endpoint",
        "one punch per request to the bare endpoint",
        sc,
        single,
    );
    for r in 0..rounds {
        let secs = args.single_secs / f64::from(rounds);
        for ours in ordered(r) {
            let (phase, addr) = if ours {
                (&mut single_http, ingest_addr)
            } else {
                (&mut single_bare, bare_addr)
            };
            let senders = HttpSender::many(fleet, addr, sc);
            let result = round(&cx, phase, r, senders, secs).await;
            phase.add(result);
        }
    }
    let single_http = single_http.report();
    let single_bare = single_bare.report();

    // 3. Latency at a fraction of each peak, open loop.
    let batch_rate = args.latency_load * batch_http.requests_per_sec;
    let single_rate = args.latency_load * single_http.requests_per_sec;
    if batch_rate <= 0.0 || single_rate <= 0.0 {
        bail!("a peak rate was zero; nothing to derive the latency load from");
    }
    let mut latency_batch = Rounds::new(
        "latency/batch",
        "HTTP batches to ingest-api at a fixed rate",
        bc,
        Spec {
            pace: Pace::Open {
                requests_per_sec: batch_rate,
            },
            ..batch
        },
    );
    let senders = HttpSender::many(fleet, ingest_addr, bc);
    latency_batch.add(round(&cx, &latency_batch, 0, senders, args.latency_secs).await);
    let mut latency_single = Rounds::new(
        "latency/single",
        "single punches to ingest-api at a fixed rate",
        sc,
        Spec {
            pace: Pace::Open {
                requests_per_sec: single_rate,
            },
            ..single
        },
    );
    let senders = HttpSender::many(fleet, ingest_addr, sc);
    latency_single.add(round(&cx, &latency_single, 0, senders, args.latency_secs).await);
    let latency_batch = latency_batch.report();
    let latency_single = latency_single.report();
    if let Some(scraper) = scraper {
        scraper.abort();
    }

    // 4. Resources, before the processes stop.
    let ingest_api = process_report(ingest_pid, Some(RSS_GOAL_MIB))?;
    let bare_endpoint = process_report(bare_pid, None)?;

    let phases = vec![
        batch_http,
        batch_raw,
        single_http,
        single_bare,
        latency_batch,
        latency_single,
    ];
    let ingest_acked: u64 = phases
        .iter()
        .filter(|p| p.name != "batch/raw-producer" && p.name != "single/bare-endpoint")
        .map(|p| p.punches_total)
        .sum();
    log_checks.push(
        log_check(
            "ingest-api's raw topic at the end",
            &args.brokers,
            &bench.raw_topic(),
            ingest_acked,
        )
        .await?,
    );
    log_checks.push(
        log_check(
            "the raw producer's topic at the end",
            &args.brokers,
            &baseline_topic,
            phases[1].punches_total + primed,
        )
        .await?,
    );

    for p in &phases {
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
    let [
        batch_http,
        batch_raw,
        single_http,
        single_bare,
        latency_batch,
        latency_single,
    ] = &phases[..]
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
    Ok((
        phases,
        comparisons,
        latency,
        log_checks,
        ingest_api,
        bare_endpoint,
    ))
}

/// Sends one record through the raw producer and waits for it; returns how many were acked.
async fn prime(fleet: &Arc<Fleet>, publisher: &Publisher, topic: &str) -> anyhow::Result<u64> {
    let mut sender = KafkaSender::many(fleet, publisher, topic, 1);
    let Some(sender) = sender.first_mut() else {
        unreachable!("one sender")
    };
    sender
        .send(0, fleet.take_seqs(0, 1), 1)
        .await
        .map_err(|f| anyhow::anyhow!("raw producer cannot write to {topic}: {}", f.detail))
}

/// Round `r` runs ingest-api first (`true`) on even rounds and its baseline first on odd ones,
/// so a linear drift of the machine's speed favours neither.
fn ordered(r: u32) -> [bool; 2] {
    if r.is_multiple_of(2) {
        [true, false]
    } else {
        [false, true]
    }
}

/// Sums a topic's end offsets and compares them with what was acked into it.
async fn log_check(what: &str, brokers: &str, topic: &str, acked: u64) -> anyhow::Result<LogCheck> {
    let (brokers_owned, topic_owned) = (brokers.to_owned(), topic.to_owned());
    let end_offsets_sum =
        tokio::task::spawn_blocking(move || setup::end_offsets_sum(&brokers_owned, &topic_owned))
            .await??;
    let check = LogCheck {
        what: what.to_owned(),
        topic: topic.to_owned(),
        acked,
        end_offsets_sum,
        holds: u64::try_from(end_offsets_sum).unwrap_or(0) >= acked,
    };
    eprintln!(
        "ingest-bench: log check, {what}: end offsets {} vs {} acked: {}",
        check.end_offsets_sum,
        check.acked,
        if check.holds { "ok" } else { "FAILED" }
    );
    Ok(check)
}

/// A phase accumulated over its rounds.
#[derive(Debug)]
struct Rounds {
    name: &'static str,
    target: &'static str,
    workers: usize,
    spec: Spec,
    rounds: u32,
    outcome: Outcome,
    cpu: BTreeMap<String, f64>,
    measured: Duration,
    warmup: Duration,
}

impl Rounds {
    fn new(name: &'static str, target: &'static str, workers: usize, spec: Spec) -> Self {
        Self {
            name,
            target,
            workers,
            spec,
            rounds: 0,
            outcome: Outcome::new(),
            cpu: BTreeMap::new(),
            measured: Duration::ZERO,
            warmup: Duration::ZERO,
        }
    }

    fn add(&mut self, (outcome, cpu, window): (Outcome, BTreeMap<String, f64>, Window)) {
        self.rounds += 1;
        self.outcome.merge(outcome);
        for (process, secs) in cpu {
            *self.cpu.entry(process).or_default() += secs;
        }
        self.measured += window.measured();
        self.warmup += window.from - window.start;
    }

    fn report(self) -> PhaseReport {
        let mut report = PhaseReport::new(
            self.name,
            self.target,
            self.workers,
            self.spec,
            self.measured,
            self.warmup,
            &self.outcome,
            self.cpu,
        );
        report.rounds = self.rounds;
        report
    }
}

/// Runs one round of a phase with a progress bar and per-process CPU accounting.
async fn round<S: Sender>(
    cx: &Context,
    phase: &Rounds,
    r: u32,
    senders: Vec<S>,
    measure_secs: f64,
) -> (Outcome, BTreeMap<String, f64>, Window) {
    let spec = phase.spec;
    let window = Window::starting_now(
        Duration::from_secs_f64(cx.args.warmup_secs),
        Duration::from_secs_f64(measure_secs),
    );
    let label = if cx.args.rounds > 1 && !matches!(spec.pace, Pace::Open { .. }) {
        format!("{} {}/{}", phase.name, r + 1, cx.args.rounds)
    } else {
        phase.name.to_owned()
    };
    let acked = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(&label, window, Arc::clone(&acked), spec.punches_per_request);
    let meter = tokio::spawn(cpu_over(cx.pids.clone(), window));
    let outcome = load::drive(senders, &cx.fleet, spec, window, &acked).await;
    progress.finish();
    let cpu = meter.await.unwrap_or_default();
    let secs = window.measured().as_secs_f64();
    let failed: u64 = outcome.failures.values().sum();
    let latency = &outcome.latency_us;
    eprintln!(
        "  {label:<26} {:>10.0} req/s {:>10.0} punches/s  p50 {:.2} ms  p99 {:.2} ms{}",
        outcome.requests as f64 / secs,
        outcome.punches as f64 / secs,
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        if failed > 0 {
            format!("  ({failed} failed: {:?})", outcome.failures)
        } else {
            String::new()
        }
    );
    (outcome, cpu, window)
}

/// CPU seconds each process used between `window.from` and `window.until`.
async fn cpu_over(pids: Vec<(&'static str, u32)>, window: Window) -> BTreeMap<String, f64> {
    let sample = |pids: &[(&'static str, u32)]| -> Vec<Option<f64>> {
        pids.iter()
            .map(|&(_, pid)| process::usage(pid).map(|u| u.cpu_secs))
            .collect()
    };
    tokio::time::sleep_until(window.from.into()).await;
    let before = sample(&pids);
    tokio::time::sleep_until(window.until.into()).await;
    let after = sample(&pids);
    pids.iter()
        .zip(before.into_iter().zip(after))
        .filter_map(|(&(name, _), (b, a))| Some((name.to_owned(), a? - b?)))
        .collect()
}

/// A phase's progress bar: elapsed time against the phase's length, and the current rate.
struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(name: &str, window: Window, acked: Arc<AtomicU64>, per_request: usize) -> Self {
        let total = window.until - window.start;
        let bar = ProgressBar::new(total.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template("  {prefix:<24} [{bar:16}] {elapsed:>4}/{len_secs} {msg}")
                .map(|style| {
                    style.progress_chars("=> ").with_key(
                        "len_secs",
                        move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{}s", total.as_secs());
                        },
                    )
                })
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(name.to_owned());
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let tick = Duration::from_millis(250);
                let mut last = 0;
                loop {
                    tokio::time::sleep(tick).await;
                    let now = acked.load(Ordering::Relaxed);
                    let rate = (now - last) as f64 / tick.as_secs_f64();
                    last = now;
                    let phase = if std::time::Instant::now() < window.from {
                        "warm-up"
                    } else {
                        "measuring"
                    };
                    bar.set_position(window.start.elapsed().as_millis() as u64);
                    let unit = if per_request > 1 {
                        "punches/s"
                    } else {
                        "req/s"
                    };
                    bar.set_message(format!("{phase} {} {unit}", report::thousands(rate)));
                }
            })
        };
        Self { bar, ticker }
    }

    fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

/// The configuration ingest-api runs with (its defaults plus the bench's connection settings);
/// the raw producer is built from the same one.
fn ingest_config(args: &RunArgs, bench: &BenchGroup) -> IngestConfig {
    IngestConfig::new(&args.brokers, &args.database_url, &bench.token_keys)
}

fn producer_settings(config: &IngestConfig) -> BTreeMap<String, String> {
    [
        ("acks", "all".to_owned()),
        ("enable.idempotence", "true".to_owned()),
        ("compression.type", "lz4".to_owned()),
        ("linger.ms", config.linger_ms.to_string()),
        ("message.timeout.ms", config.message_timeout_ms.to_string()),
        (
            "queue.buffering.max.messages",
            config.producer_queue_messages.to_string(),
        ),
        (
            "queue.buffering.max.kbytes",
            config.producer_queue_kbytes.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
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

/// CPU microseconds per acked punch (batch) or per request (single) of the process doing the
/// work in each throughput phase, and the broker's.
fn cpu_per_unit(phases: &[PhaseReport]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let per = |cpu: f64, units: u64| {
        if units == 0 {
            0.0
        } else {
            cpu * 1e6 / units as f64
        }
    };
    for p in phases {
        let (process, unit) = match p.name.as_str() {
            "batch/ingest-api" => (INGEST, "punch"),
            "batch/raw-producer" => (BENCH, "record"),
            "single/ingest-api" => (INGEST, "request"),
            "single/bare-endpoint" => (BARE, "request"),
            _ => continue,
        };
        let units = if unit == "request" {
            p.requests
        } else {
            p.punches
        };
        out.insert(
            format!("{}: {process} per {unit}", p.name),
            per(p.cpu(process), units),
        );
        if p.cpu_secs.contains_key(KAFKA) {
            out.insert(
                format!("{}: kafka broker per {unit}", p.name),
                per(p.cpu(KAFKA), units),
            );
        }
    }
    out
}

/// The ingest-api binary: `--ingest-api-bin`, else next to this executable.
fn ingest_api_bin(args: &RunArgs) -> anyhow::Result<PathBuf> {
    let path = match &args.ingest_api_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("locating this executable")?
            .with_file_name("ingest-api"),
    };
    if !path.is_file() {
        bail!(
            "no ingest-api binary at {}: build it with `cargo build --release -p dakoku-ingest-api -p dakoku-bench` (or pass --ingest-api-bin)",
            path.display()
        );
    }
    Ok(path)
}

/// Refuses debug builds (of the bench or of ingest-api) unless `--allow-debug`.
fn build_warnings(args: &RunArgs, ingest_bin: &Path) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut debug = Vec::new();
    if cfg!(debug_assertions) {
        debug.push("ingest-bench itself is a debug build".to_owned());
    }
    if ingest_bin.components().any(|c| c.as_os_str() == "debug") {
        debug.push(format!("{} looks like a debug build", ingest_bin.display()));
    }
    if !debug.is_empty() {
        let what = debug.join("; ");
        if !args.allow_debug {
            bail!(
                "{what}: figures from debug builds are meaningless. Build with `cargo build --release -p dakoku-ingest-api -p dakoku-bench` and run target/release/ingest-bench (or pass --allow-debug for a smoke test)"
            );
        }
        eprintln!("ingest-bench: WARNING: {what}; figures are NOT representative (--allow-debug)");
        warnings.push(format!("{what}: figures are not representative"));
    }
    Ok(warnings)
}
