//! Named storm scenarios against the local stack, and the report they produce.
//!
//! A run is self-contained: its own database (`dakoku_storm_<suffix>`, migrated), its own
//! tenant group (`storm-<suffix>`) with its topics, tenants, licensed employees and recorders
//! (tokens signed with a key of its own), and its own processes started from the release
//! binaries on free ports: `ingest-api`, `licence-check` (with the scenario's per-punch
//! delay) and `attendance` for the pipeline, or `storm control-server` for the synchronous
//! control. While the simulator storms, a sampler records once a second the acceptor's RSS and
//! CPU (`/proc`), the consumers' lag (high watermarks against licence-check's committed group
//! offsets and attendance's offsets in Postgres), and the storm's counters; a separate probe
//! times `GET /healthz` every 100 ms on a connection and a thread of its own. After the storm it waits for
//! the consumers to catch up, stops the processes, audits acked against stored, and removes
//! the topics and the database (unless `keep`).
//!
//! - `incident`: the 2020 month-start replayed: legacy recorders (one punch per request,
//!   resend every second, `Retry-After` ignored) with full pools, a month-start trickle, and a
//!   slowed licence check. Capped in time: legacy pools drain at the per-device rate limit by
//!   design, so what is left is reported.
//! - `contract`: the same fleet with contract recorders (batches, `Retry-After`, backoff with
//!   full jitter), no delay, until every pool is drained.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dakoku_bench::process::{self, Server};
use dakoku_ingest_api::token::TokenKeys;
use dakoku_schemas::{GroupId, Topic};
use dakoku_store::ScratchDatabase;
use hdrhistogram::Histogram;
use punchctl::topics::{TopicSettings, Topics};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use tokio::sync::watch;

use crate::audit::{self, Audit, StoredIn};
use crate::http::Client;
use crate::provision::{self, Fleet, FleetSpec};
use crate::sim::{self, Behaviour, Live, StormConfig, Tally};

/// Timeout of Kafka metadata, offset and admin calls.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the health probe asks.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How long dropping the run's database waits for autovacuum, which a storm's fresh punches
/// and days set to work and which `DROP DATABASE .. WITH (FORCE)` cannot end.
const DROP_WAIT: Duration = Duration::from_secs(60);

/// A named scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioName {
    /// Month-start peak, legacy recorders with full pools, a slow licence check.
    Incident,
    /// The same fleet with contract recorders and no delay, until every pool is drained.
    Contract,
}

/// What the storm is aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// ingest-api -> Kafka -> licence-check -> attendance -> Postgres.
    Pipeline,
    /// The synchronous control (licence check and Postgres write inside the request).
    Control,
}

impl Target {
    /// `pipeline` or `control`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pipeline => "pipeline",
            Self::Control => "control",
        }
    }
}

/// Everything a scenario run is told; [`ScenarioConfig::named`] gives each scenario's values.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioConfig {
    /// The scenario.
    pub scenario: ScenarioName,
    /// Recorders.
    pub devices: usize,
    /// Pooled punches per recorder at the start.
    pub pool: u64,
    /// Employees (cards) per recorder.
    pub employees_per_device: usize,
    /// Tenants the recorders are spread over.
    pub tenants: usize,
    /// Resend behaviour.
    pub behaviour: Behaviour,
    /// A new punch per recorder this often (seconds; 0 = none).
    pub trickle_every_s: f64,
    /// Punches per request (contract).
    pub batch: usize,
    /// The slow licence check: µs per punch (licence-check, or the control's request).
    pub check_delay_us: u64,
    /// The storm stops after this long (seconds) whatever is left.
    pub max_duration_s: u64,
    /// The storm stops once every pool is drained.
    pub stop_when_drained: bool,
    /// After the storm, how long the consumers get to catch up (seconds).
    pub catch_up_timeout_s: u64,
    /// Partitions of the group's topics.
    pub partitions: i32,
    /// Niceness of licence-check and attendance (0: as the acceptor). On a shared host the
    /// acceptor's answers should not wait for CPU behind a consumer's backlog.
    #[serde(default)]
    pub consumers_nice: u8,
    /// Where the release binaries are.
    #[serde(skip)]
    pub bin_dir: PathBuf,
    /// Where the report, plot and logs go.
    #[serde(skip)]
    pub out_dir: PathBuf,
    /// Kafka.
    #[serde(skip)]
    pub brokers: String,
    /// A Postgres URL whose role may create databases.
    #[serde(skip)]
    pub admin_database_url: String,
    /// Keep the database and topics afterwards.
    #[serde(skip)]
    pub keep: bool,
}

impl ScenarioConfig {
    /// The scenario's documented values (`STORM.md`), for the local stack.
    pub fn named(scenario: ScenarioName) -> Self {
        let base = Self {
            scenario,
            devices: 1_000,
            pool: 10_000,
            employees_per_device: 50,
            tenants: 20,
            behaviour: Behaviour::Legacy,
            trickle_every_s: 10.0,
            batch: 500,
            check_delay_us: 0,
            max_duration_s: 180,
            stop_when_drained: false,
            catch_up_timeout_s: 600,
            partitions: 4,
            consumers_nice: 0,
            bin_dir: PathBuf::from("target/release"),
            out_dir: PathBuf::from("target/storm"),
            brokers: "127.0.0.1:9092".into(),
            admin_database_url: dakoku_store::DEFAULT_DATABASE_URL.into(),
            keep: false,
        };
        match scenario {
            ScenarioName::Incident => Self {
                behaviour: Behaviour::Legacy,
                // Month-start morning: every employee's punch arrives within the storm.
                trickle_every_s: 2.0,
                check_delay_us: 250,
                ..base
            },
            ScenarioName::Contract => Self {
                behaviour: Behaviour::Contract,
                max_duration_s: 900,
                stop_when_drained: true,
                ..base
            },
        }
    }
}

/// One second of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Seconds since the storm started.
    pub t_s: f64,
    /// Punches acked in this second.
    pub acked_per_s: f64,
    /// `429` and `503` answers in this second.
    pub refused_per_s: f64,
    /// Other non-`200` outcomes (other statuses, timeouts, connection failures).
    pub failed_per_s: f64,
    /// licence-check's lag: raw records not yet committed by `licence-check.<group>`.
    pub lag_raw: i64,
    /// attendance's lag: checked-topic offsets not yet stored in `consumer_offsets` (includes
    /// up to one transaction marker per partition when idle).
    pub lag_checked: i64,
    /// The target process's resident memory, MiB.
    pub rss_mib: f64,
    /// Its CPU use over the last second, in cores.
    pub cpu_cores: f64,
    /// The slowest `/healthz` answer that completed in this second, ms.
    pub health_max_ms: f64,
    /// Punches pending in the recorders.
    pub pending: u64,
}

/// Latency figures, milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// The storm's own figures.
#[derive(Debug, Clone, Serialize)]
pub struct StormFigures {
    /// How long the storm ran, seconds.
    pub elapsed_s: f64,
    /// Why it stopped.
    pub stopped_because: sim::StopReason,
    /// Requests, acks, statuses over the whole storm.
    pub totals: Tally,
    /// Distinct punches acked.
    pub acked_distinct: u64,
    /// Punches created (pools plus trickle).
    pub created: u64,
    /// Punches still pending in the recorders at the end.
    pub pending_at_end: u64,
    /// Recorders whose initial pool was not empty at the end.
    pub pools_remaining: usize,
    /// Seconds until every initial pool was empty (`None` if some was not).
    pub all_pools_drained_after_s: Option<f64>,
    /// `429`/`503` answers without `Retry-After`.
    pub missing_retry_after: u64,
    /// Latency of the storm's requests as the recorders saw it.
    pub request_latency: Latency,
    /// Answers that were neither `200` nor `429`/`503`: timeouts, connection failures, 5xx.
    pub undocumented_answers: u64,
}

/// The target process's resources.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resources {
    /// Peak resident set (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
    /// CPU time used during the storm, seconds.
    pub cpu_s: f64,
    /// Average CPU use during the storm, cores.
    pub avg_cores: f64,
    /// Highest one-second CPU use, cores.
    pub peak_cores: f64,
}

/// Lag figures (pipeline only).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LagFigures {
    /// Highest total lag (licence-check + attendance), records.
    pub peak: i64,
    /// When, seconds since the storm started.
    pub peak_at_s: f64,
    /// Seconds from the storm's end until both consumers had caught up (`None`: not within
    /// the catch-up timeout).
    pub caught_up_after_storm_s: Option<f64>,
    /// Seconds from the storm's start until then.
    pub caught_up_at_s: Option<f64>,
}

/// The summary of `punchctl audit` on the storm's group.
#[derive(Debug, Clone, Serialize)]
pub struct PunchctlAudit {
    /// Findings of every kind, summed: 0 is clean.
    pub problems: u64,
    /// Seconds it took.
    pub duration_s: f64,
    /// The whole report.
    pub report: serde_json::Value,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario's configuration.
    pub config: ScenarioConfig,
    /// What was stormed.
    pub target: Target,
    /// When the storm started.
    pub started_at: String,
    /// The storm.
    pub storm: StormFigures,
    /// `/healthz` latency measured by the separate probe during the storm.
    pub health: Latency,
    /// Probes that failed (timeout, refused, non-200).
    pub health_failures: u64,
    /// The target process.
    pub resources: Resources,
    /// The consumers' lag (pipeline).
    pub lag: Option<LagFigures>,
    /// Acked against stored.
    pub audit: Audit,
    /// `punchctl audit` of the storm's group (pipeline): raw log vs verdicts vs stored punches
    /// vs attendance days. `None` for the control, or if it could not run (see the log).
    pub punchctl_audit: Option<PunchctlAudit>,
    /// Wall-clock time of the whole run, set-up and clean-up included, seconds.
    pub wall_clock_s: f64,
    /// One sample per second.
    pub samples: Vec<Sample>,
    /// Status mix per second, from the recorders' side.
    pub status_timeline: Vec<Tally>,
}

/// Runs `config` against `target` and returns the report (also written as JSON and SVG into
/// `config.out_dir`).
pub async fn run(config: ScenarioConfig, target: Target) -> anyhow::Result<Report> {
    let wall = Instant::now();
    std::fs::create_dir_all(&config.out_dir)
        .with_context(|| format!("creating {}", config.out_dir.display()))?;
    let suffix = format!("{:08x}", rand::random::<u32>());
    let group: GroupId = format!("storm-{suffix}").parse()?;
    let db = ScratchDatabase::create(
        &config.admin_database_url,
        &format!("dakoku_storm_{suffix}"),
    )
    .await
    .context("the storm's own database (is the stack up? `scripts/stack up`)")?;
    let result = run_in(&config, target, &group, &db, wall).await;
    if config.keep {
        tracing::warn!(database = db.name(), %group, "kept the storm's database and topics (--keep)");
    } else {
        if let Err(error) = delete_topics(&config.brokers, &group).await {
            tracing::warn!(%error, %group, "could not delete the storm's topics");
        }
        let name = db.name().to_owned();
        if let Err(error) = db.drop(DROP_WAIT).await {
            tracing::warn!(%error, database = name, "could not drop the storm's database");
        }
    }
    let report = result?;
    let stem = config.out_dir.join(format!(
        "{}-{}",
        serde_json::to_value(config.scenario)?
            .as_str()
            .unwrap_or("storm"),
        target.as_str()
    ));
    let json = stem.with_extension("json");
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let svg = stem.with_extension("svg");
    crate::plot::draw(
        &svg,
        &format!(
            "storm {} against the {} ({} recorders x {} pooled, {})",
            json.file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default(),
            target.as_str(),
            config.devices,
            config.pool,
            config.behaviour.as_str()
        ),
        &report.samples,
    )?;
    tracing::info!(json = %json.display(), svg = %svg.display(), "report written");
    Ok(report)
}

async fn run_in(
    config: &ScenarioConfig,
    target: Target,
    group: &GroupId,
    db: &ScratchDatabase,
    wall: Instant,
) -> anyhow::Result<Report> {
    // The fleet and its topics.
    let key = TokenKeys::generate_entry("storm");
    let keys = TokenKeys::parse(&key)?;
    let mut client = dakoku_store::connect(db.url()).await?;
    tracing::info!(
        devices = config.devices,
        employees = config.devices * config.employees_per_device,
        "provisioning the fleet"
    );
    let fleet = provision::provision(
        &mut client,
        &FleetSpec {
            group: group.clone(),
            prefix: group.to_string(),
            devices: config.devices,
            tenants: config.tenants,
            employees_per_device: config.employees_per_device,
        },
        &keys,
    )
    .await?;
    if target == Target::Pipeline {
        Topics::connect(&config.brokers)?
            .create_for_group(
                group,
                &TopicSettings {
                    partitions: config.partitions,
                    ..TopicSettings::default()
                },
            )
            .await
            .context("creating the storm group's topics (is Kafka up? `scripts/stack up`)")?;
    }

    // The processes.
    let services = Services::start(config, target, group, db, &key).await?;
    storm(config, target, group, db, &fleet, services, wall).await
}

/// The processes of a run.
struct Services {
    target_addr: SocketAddr,
    target_pid: u32,
    servers: Vec<Server>,
}

impl Services {
    async fn start(
        config: &ScenarioConfig,
        target: Target,
        group: &GroupId,
        db: &ScratchDatabase,
        key: &str,
    ) -> anyhow::Result<Self> {
        let bin = |name: &str| -> anyhow::Result<PathBuf> {
            let path = config.bin_dir.join(name);
            anyhow::ensure!(
                path.exists(),
                "{} not found: build it first with `cargo build --release --workspace --bins`",
                path.display()
            );
            Ok(path)
        };
        let log = |name: &str| config.out_dir.join(format!("{name}.log"));
        let common = vec![
            ("KAFKA_BROKERS", config.brokers.clone()),
            ("DATABASE_URL", db.url().to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        let mut servers = Vec::new();
        let target_addr = process::free_addr()?;
        match target {
            Target::Pipeline => {
                let mut env = common.clone();
                env.push(("INGEST_LISTEN", target_addr.to_string()));
                env.push(("DAKOKU_TOKEN_KEYS", key.to_owned()));
                env.push(("INGEST_ACCEPTOR_ID", format!("{group}-acceptor")));
                let mut acceptor = Server::start(
                    "ingest-api",
                    &bin("ingest-api")?,
                    &[],
                    &env,
                    target_addr,
                    log("ingest-api"),
                )?;
                acceptor
                    .wait_ready("/readyz", Duration::from_secs(60))
                    .await?;
                servers.push(acceptor);

                let addr = process::free_addr()?;
                let mut env = common.clone();
                env.push(("DAKOKU_CHECK_DELAY_US", config.check_delay_us.to_string()));
                let licence_bin = bin("licence-check")?;
                let instance = format!("{group}-0");
                let metrics_listen = addr.to_string();
                let (program, args) = niced(
                    config.consumers_nice,
                    &licence_bin,
                    &[
                        "--group",
                        group.as_str(),
                        "--instance-id",
                        &instance,
                        "--metrics-listen",
                        &metrics_listen,
                    ],
                );
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let mut licence = Server::start(
                    "licence-check",
                    &program,
                    &args,
                    &env,
                    addr,
                    log("licence-check"),
                )?;
                licence
                    .wait_ready("/readyz", Duration::from_secs(60))
                    .await?;
                servers.push(licence);

                let addr = process::free_addr()?;
                let mut env = common.clone();
                env.push(("ATTENDANCE_METRICS_LISTEN", addr.to_string()));
                let attendance_bin = bin("attendance")?;
                let (program, args) = niced(
                    config.consumers_nice,
                    &attendance_bin,
                    &["--group", group.as_str()],
                );
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let mut attendance =
                    Server::start("attendance", &program, &args, &env, addr, log("attendance"))?;
                attendance
                    .wait_ready("/readyz", Duration::from_secs(60))
                    .await?;
                servers.push(attendance);
            }
            Target::Control => {
                let mut env = common.clone();
                env.push(("DAKOKU_TOKEN_KEYS", key.to_owned()));
                env.push(("DAKOKU_CHECK_DELAY_US", config.check_delay_us.to_string()));
                let mut control = Server::start(
                    "storm control-server",
                    &bin("storm")?,
                    &["control-server", "--listen", &target_addr.to_string()],
                    &env,
                    target_addr,
                    log("control-server"),
                )?;
                control
                    .wait_ready("/healthz", Duration::from_secs(60))
                    .await?;
                servers.push(control);
            }
        }
        let target_pid = servers[0].pid();
        Ok(Self {
            target_addr,
            target_pid,
            servers,
        })
    }

    async fn stop(self) {
        for server in self.servers.into_iter().rev() {
            let log = server.log().display().to_string();
            match server.stop(Duration::from_secs(30)).await {
                Ok(status) if status.success() => {}
                Ok(status) => tracing::warn!(%status, log, "a storm process exited badly"),
                Err(error) => tracing::warn!(%error, log, "could not stop a storm process"),
            }
        }
    }
}

/// The `/healthz` probe's results.
#[derive(Debug)]
struct Probe {
    histogram: Histogram<u64>,
    /// Slowest answer per second of the storm, µs.
    per_second_max: Vec<u64>,
    failures: u64,
}

async fn probe(
    addr: SocketAddr,
    started: Instant,
    probe: Arc<Mutex<Probe>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut client = Client::new(addr, Duration::from_secs(5));
    let mut ticker = tokio::time::interval(PROBE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = ticker.tick() => {}
        }
        let sent = Instant::now();
        let answer = client.get("/healthz").await;
        let micros = u64::try_from(sent.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let second = started.elapsed().as_secs() as usize;
        let mut probe = probe.lock().unwrap_or_else(|e| e.into_inner());
        // A stalled probe would otherwise record one slow answer where a steady prober saw
        // many: fill in the missed ticks (no coordinated omission).
        let _ = probe.histogram.record_correct(
            micros.min(120_000_000),
            u64::try_from(PROBE_EVERY.as_micros()).unwrap_or(100_000),
        );
        if probe.per_second_max.len() <= second {
            probe.per_second_max.resize(second + 1, 0);
        }
        probe.per_second_max[second] = probe.per_second_max[second].max(micros);
        if !matches!(&answer, Ok(a) if a.status == 200) {
            probe.failures += 1;
        }
    }
}

/// Reads the consumers' lag: the raw topic's end offsets against licence-check's committed
/// offsets, and the checked topic's against attendance's offsets in Postgres.
struct LagReader {
    consumer: BaseConsumer,
    raw_topic: String,
    checked_topic: String,
    partitions: i32,
    attendance_group: String,
}

impl LagReader {
    fn new(brokers: &str, group: &GroupId, partitions: i32) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            // Only to read that group's committed offsets; this client never joins it.
            .set(
                "group.id",
                dakoku_licence_check::Config::consumer_group(group),
            )
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Self {
            consumer,
            raw_topic: Topic::Raw(group.clone()).name(),
            checked_topic: Topic::Checked(group.clone()).name(),
            partitions,
            attendance_group: dakoku_attendance::store::consumer_group(group),
        })
    }

    fn ends(&self, topic: &str) -> anyhow::Result<Vec<i64>> {
        (0..self.partitions)
            .map(|p| Ok(self.consumer.fetch_watermarks(topic, p, KAFKA_TIMEOUT)?.1))
            .collect()
    }

    /// `(licence-check lag, attendance lag)`.
    async fn read(self: &Arc<Self>, db: &tokio_postgres::Client) -> anyhow::Result<(i64, i64)> {
        let this = Arc::clone(self);
        let (raw_ends, checked_ends, committed) = tokio::task::spawn_blocking(move || {
            let raw_ends = this.ends(&this.raw_topic)?;
            let checked_ends = this.ends(&this.checked_topic)?;
            let mut tpl = TopicPartitionList::new();
            for p in 0..this.partitions {
                tpl.add_partition(&this.raw_topic, p);
            }
            let committed = this.consumer.committed_offsets(tpl, KAFKA_TIMEOUT)?;
            let committed: Vec<i64> = (0..this.partitions)
                .map(|p| {
                    committed
                        .find_partition(&this.raw_topic, p)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        })
                        .unwrap_or(0)
                })
                .collect();
            anyhow::Ok((raw_ends, checked_ends, committed))
        })
        .await??;
        let stored = db
            .query(
                "SELECT partition, next_offset FROM consumer_offsets \
                 WHERE consumer_group = $1 AND topic = $2",
                &[&self.attendance_group, &self.checked_topic],
            )
            .await?;
        let mut stored_by_partition = vec![0i64; checked_ends.len()];
        for row in stored {
            let p: i32 = row.get(0);
            if let Some(slot) = usize::try_from(p)
                .ok()
                .and_then(|p| stored_by_partition.get_mut(p))
            {
                *slot = row.get(1);
            }
        }
        let raw_lag = raw_ends
            .iter()
            .zip(&committed)
            .map(|(end, c)| (end - c).max(0))
            .sum();
        let checked_lag = checked_ends
            .iter()
            .zip(&stored_by_partition)
            .map(|(end, s)| (end - s).max(0))
            .sum();
        Ok((raw_lag, checked_lag))
    }
}

/// Storms, samples, waits for the catch-up, stops the processes, audits.
async fn storm(
    config: &ScenarioConfig,
    target: Target,
    group: &GroupId,
    db: &ScratchDatabase,
    fleet: &Fleet,
    services: Services,
    wall: Instant,
) -> anyhow::Result<Report> {
    let mut storm_config = StormConfig::new(
        services.target_addr,
        fleet.recorders.clone(),
        config.behaviour,
    );
    storm_config.pool = config.pool;
    storm_config.batch = config.batch;
    storm_config.trickle_every =
        (config.trickle_every_s > 0.0).then(|| Duration::from_secs_f64(config.trickle_every_s));
    storm_config.max_duration = Some(Duration::from_secs(config.max_duration_s));
    storm_config.stop_when_drained = config.stop_when_drained;

    let live = Arc::new(Live::default());
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let probe_state = Arc::new(Mutex::new(Probe {
        histogram: Histogram::new_with_max(120_000_000, 3)?,
        per_second_max: Vec::new(),
        failures: 0,
    }));
    // Its own thread and runtime: on the simulator's runtime, the time the probe waits to be
    // scheduled among a thousand busy recorder tasks would be counted as acceptor latency.
    let probe_thread = {
        let (addr, state, stop) = (
            services.target_addr,
            Arc::clone(&probe_state),
            stop_rx.clone(),
        );
        std::thread::Builder::new()
            .name("healthz-probe".into())
            .spawn(move || -> std::io::Result<()> {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(probe(addr, started, state, stop));
                Ok(())
            })?
    };
    let lag_reader = match target {
        Target::Pipeline => Some(Arc::new(LagReader::new(
            &config.brokers,
            group,
            config.partitions,
        )?)),
        Target::Control => None,
    };
    let lag_db = dakoku_store::connect(db.url()).await?;
    let (latest_tx, latest_rx) = watch::channel(None);
    let sampler = Sampler {
        live: Arc::clone(&live),
        pid: services.target_pid,
        started,
        samples: Vec::new(),
        last_acked: 0,
        last_refused: 0,
        last_failed: 0,
        last_cpu: process::usage(services.target_pid).map_or(0.0, |u| u.cpu_secs),
        cpu_at_start: process::usage(services.target_pid).map_or(0.0, |u| u.cpu_secs),
        lag_reader,
        peak_cores: 0.0,
        latest: latest_tx,
    };
    let (sampler_tx, sampler_rx) = watch::channel(false);
    let sampler_task = tokio::spawn(sampler.run(lag_db, sampler_rx));

    tracing::info!(
        target = target.as_str(),
        devices = config.devices,
        pool = config.pool,
        "storm starting"
    );
    let outcome = sim::run_with(storm_config, Arc::clone(&live), std::future::pending()).await?;
    let storm_end = started.elapsed();
    let _ = stop_tx.send(true);
    let _ = tokio::task::spawn_blocking(move || probe_thread.join()).await;
    let acceptor_cpu_storm = process::usage(services.target_pid).map(|u| u.cpu_secs);
    tracing::info!(
        acked = outcome.acked_distinct(),
        elapsed_s = storm_end.as_secs_f64(),
        "storm over; waiting for the consumers to catch up"
    );

    // Catch-up: the sampler goes on until the lag is gone (pipeline) or at once (control).
    let caught_up_at = match target {
        Target::Pipeline => {
            let deadline = Instant::now() + Duration::from_secs(config.catch_up_timeout_s);
            let partitions = i64::from(config.partitions);
            let mut seen = None;
            // Sampling goes on in the sampler; read its latest sample.
            while Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let latest = latest_rx.borrow().clone();
                if let Some(sample) = latest
                    && sample.t_s >= storm_end.as_secs_f64()
                    && sample.lag_raw == 0
                    && sample.lag_checked <= partitions
                {
                    seen = Some(sample.t_s);
                    break;
                }
            }
            seen
        }
        Target::Control => Some(storm_end.as_secs_f64()),
    };
    let _ = sampler_tx.send(true);
    let sampler = sampler_task.await??;
    let peak_rss_mib =
        process::usage(services.target_pid).map_or(0.0, |u| u.peak_rss_kib as f64 / 1024.0);
    services.stop().await;

    let client = dakoku_store::connect(db.url()).await?;
    let stored_in = match target {
        Target::Pipeline => StoredIn::Punches,
        Target::Control => StoredIn::Control,
    };
    let audit = audit::audit(&client, stored_in, &outcome).await?;
    let punchctl_audit = match target {
        Target::Pipeline => {
            let request =
                punchctl::audit::AuditRequest::new(&config.brokers, db.url(), group.clone());
            match punchctl::audit::run(&request, Arc::new(punchctl::audit::NoProgress)).await {
                Ok(report) => Some(PunchctlAudit {
                    problems: report.problems(),
                    duration_s: report.duration_seconds,
                    report: serde_json::to_value(&report)?,
                }),
                Err(error) => {
                    tracing::warn!(%error, "punchctl audit could not run");
                    None
                }
            }
        }
        Target::Control => None,
    };

    let probe = std::mem::replace(
        &mut *probe_state.lock().unwrap_or_else(|e| e.into_inner()),
        Probe {
            histogram: Histogram::new(3)?,
            per_second_max: Vec::new(),
            failures: 0,
        },
    );
    let mut samples = sampler.samples;
    for sample in &mut samples {
        let second = sample.t_s.floor() as usize;
        sample.health_max_ms = probe
            .per_second_max
            .get(second.saturating_sub(1))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0;
    }
    let cpu_s = acceptor_cpu_storm.unwrap_or(sampler.last_cpu) - sampler.cpu_at_start;
    let lag = (target == Target::Pipeline).then(|| {
        let (peak, peak_at_s) = samples
            .iter()
            .map(|s| (s.lag_raw + s.lag_checked, s.t_s))
            .fold((0, 0.0), |best, x| if x.0 > best.0 { x } else { best });
        LagFigures {
            peak,
            peak_at_s,
            caught_up_after_storm_s: caught_up_at.map(|t| (t - storm_end.as_secs_f64()).max(0.0)),
            caught_up_at_s: caught_up_at,
        }
    });
    let storm = StormFigures {
        elapsed_s: outcome.elapsed.as_secs_f64(),
        stopped_because: outcome.stopped_because,
        acked_distinct: outcome.acked_distinct(),
        created: outcome.recorders.iter().map(|r| r.created).sum(),
        pending_at_end: outcome.pending(),
        pools_remaining: outcome.pools_remaining(),
        all_pools_drained_after_s: outcome.all_drained_after_secs(),
        missing_retry_after: outcome.missing_retry_after,
        request_latency: Latency::of(&outcome.latency),
        undocumented_answers: outcome.totals.undocumented(),
        totals: outcome.totals.clone(),
    };
    Ok(Report {
        config: config.clone(),
        target,
        started_at: started_at.to_rfc3339(),
        storm,
        health: Latency::of(&probe.histogram),
        health_failures: probe.failures,
        resources: Resources {
            peak_rss_mib,
            cpu_s,
            avg_cores: cpu_s / storm_end.as_secs_f64().max(0.001),
            peak_cores: sampler.peak_cores,
        },
        lag,
        audit,
        punchctl_audit,
        wall_clock_s: wall.elapsed().as_secs_f64(),
        samples,
        status_timeline: outcome.timeline,
    })
}

/// Takes one [`Sample`] a second.
struct Sampler {
    live: Arc<Live>,
    pid: u32,
    started: Instant,
    samples: Vec<Sample>,
    last_acked: u64,
    last_refused: u64,
    last_failed: u64,
    last_cpu: f64,
    cpu_at_start: f64,
    lag_reader: Option<Arc<LagReader>>,
    peak_cores: f64,
    /// The latest sample, for the catch-up wait.
    latest: watch::Sender<Option<Sample>>,
}

impl Sampler {
    async fn run(
        mut self,
        db: tokio_postgres::Client,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                _ = ticker.tick() => {}
            }
            let sample = self.sample(&db).await;
            let _ = self.latest.send(Some(sample.clone()));
            self.samples.push(sample);
        }
        Ok(self)
    }

    async fn sample(&mut self, db: &tokio_postgres::Client) -> Sample {
        let acked = self.live.acked.load(Ordering::Relaxed);
        let refused = self.live.refusals.load(Ordering::Relaxed);
        let failed = self.live.failures.load(Ordering::Relaxed);
        let usage = process::usage(self.pid);
        let cpu = usage.map_or(self.last_cpu, |u| u.cpu_secs);
        let cores = cpu - self.last_cpu;
        self.peak_cores = self.peak_cores.max(cores);
        let (lag_raw, lag_checked) = match &self.lag_reader {
            Some(reader) => match reader.read(db).await {
                Ok(lag) => lag,
                Err(error) => {
                    tracing::warn!(%error, "could not read the lag this second");
                    self.samples
                        .last()
                        .map_or((0, 0), |s| (s.lag_raw, s.lag_checked))
                }
            },
            None => (0, 0),
        };
        let sample = Sample {
            t_s: self.started.elapsed().as_secs_f64(),
            acked_per_s: (acked - self.last_acked) as f64,
            refused_per_s: (refused - self.last_refused) as f64,
            failed_per_s: (failed - self.last_failed) as f64,
            lag_raw,
            lag_checked,
            rss_mib: usage.map_or(0.0, |u| u.rss_kib as f64 / 1024.0),
            cpu_cores: cores,
            health_max_ms: 0.0,
            pending: self.live.pending.load(Ordering::Relaxed),
        };
        self.last_acked = acked;
        self.last_refused = refused;
        self.last_failed = failed;
        self.last_cpu = cpu;
        sample
    }
}

async fn delete_topics(brokers: &str, group: &GroupId) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let names: Vec<String> = Topic::for_group(group).iter().map(Topic::name).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    admin
        .delete_topics(
            &names,
            &AdminOptions::new().operation_timeout(Some(KAFKA_TIMEOUT)),
        )
        .await?;
    Ok(())
}

/// The human summary of one report.
pub fn summary(report: &Report) -> String {
    summary_table(&[report])
}

/// A row of the summary: its name and how to tell a report's value.
type SummaryRow = (&'static str, Box<dyn Fn(&Report) -> String>);

/// Reports side by side, one column each.
pub fn summary_table(reports: &[&Report]) -> String {
    use std::fmt::Write as _;
    let opt = |v: Option<f64>| v.map_or_else(|| "not reached".to_owned(), |v| format!("{v:.0} s"));
    let rows: Vec<SummaryRow> = vec![
        ("target", Box::new(|r| r.target.as_str().to_owned())),
        (
            "recorders x pool",
            Box::new(|r| {
                format!(
                    "{} x {} ({})",
                    r.config.devices,
                    r.config.pool,
                    r.config.behaviour.as_str()
                )
            }),
        ),
        (
            "licence-check delay",
            Box::new(|r| format!("{} µs/punch", r.config.check_delay_us)),
        ),
        (
            "consumers' niceness",
            Box::new(|r| r.config.consumers_nice.to_string()),
        ),
        (
            "storm ran",
            Box::new(|r| format!("{:.0} s ({:?})", r.storm.elapsed_s, r.storm.stopped_because)),
        ),
        (
            "requests",
            Box::new(|r| r.storm.totals.requests.to_string()),
        ),
        (
            "status mix",
            Box::new(|r| {
                r.storm
                    .totals
                    .statuses
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
        ),
        (
            "429/503 without Retry-After",
            Box::new(|r| r.storm.missing_retry_after.to_string()),
        ),
        (
            "punches acked (distinct)",
            Box::new(|r| r.storm.acked_distinct.to_string()),
        ),
        (
            "acked/s (mean)",
            Box::new(|r| {
                format!(
                    "{:.0}",
                    r.storm.acked_distinct as f64 / r.storm.elapsed_s.max(0.001)
                )
            }),
        ),
        (
            "pools drained",
            Box::new(move |r| match r.storm.all_pools_drained_after_s {
                Some(s) => format!("all after {s:.0} s"),
                None => format!(
                    "{} of {} pools remaining; {} punches pending",
                    r.storm.pools_remaining, r.config.devices, r.storm.pending_at_end
                ),
            }),
        ),
        (
            "request latency p50/p99/max",
            Box::new(|r| {
                let l = &r.storm.request_latency;
                format!("{:.1} / {:.1} / {:.0} ms", l.p50_ms, l.p99_ms, l.max_ms)
            }),
        ),
        (
            "/healthz p50/p99/max",
            Box::new(|r| {
                format!(
                    "{:.1} / {:.1} / {:.0} ms ({} probes, {} failed)",
                    r.health.p50_ms,
                    r.health.p99_ms,
                    r.health.max_ms,
                    r.health.count,
                    r.health_failures
                )
            }),
        ),
        (
            "peak RSS",
            Box::new(|r| format!("{:.0} MiB", r.resources.peak_rss_mib)),
        ),
        (
            "CPU avg / peak",
            Box::new(|r| {
                format!(
                    "{:.2} / {:.2} cores",
                    r.resources.avg_cores, r.resources.peak_cores
                )
            }),
        ),
        (
            "lag peak",
            Box::new(|r| {
                r.lag.as_ref().map_or("none (synchronous)".into(), |l| {
                    format!("{} records at {:.0} s", l.peak, l.peak_at_s)
                })
            }),
        ),
        (
            "caught up after the storm",
            Box::new(move |r| {
                r.lag
                    .as_ref()
                    .map_or("n/a".into(), |l| opt(l.caught_up_after_storm_s))
            }),
        ),
        (
            "audit",
            Box::new(|r| {
                format!(
                    "{} acked, {} stored, {} lost, {} doubled, {} stored unacked",
                    r.audit.acked,
                    r.audit.stored_rows,
                    r.audit.lost,
                    r.audit.doubled,
                    r.audit.unacked_stored
                )
            }),
        ),
        (
            "punchctl audit",
            Box::new(|r| {
                r.punchctl_audit.as_ref().map_or("n/a".into(), |a| {
                    format!("{} problems ({:.0} s)", a.problems, a.duration_s)
                })
            }),
        ),
        (
            "wall clock",
            Box::new(|r| format!("{:.0} s", r.wall_clock_s)),
        ),
    ];
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, cell) in &rows {
        let _ = write!(out, "{name:<width$}");
        for report in reports {
            let _ = write!(out, " | {:<40}", cell(report));
        }
        out.push('\n');
    }
    out
}

/// Where a run's files go by default.
pub fn default_out_dir() -> PathBuf {
    Path::new("target").join("storm")
}

/// The program and arguments that run `bin` with `args` at niceness `nice`: through `nice(1)`,
/// which execs it, so the process keeps the pid the harness measures.
fn niced(nice: u8, bin: &Path, args: &[&str]) -> (PathBuf, Vec<String>) {
    let args = args.iter().map(|a| (*a).to_owned());
    if nice == 0 {
        return (bin.to_path_buf(), args.collect());
    }
    let mut all = vec!["-n".to_owned(), nice.to_string(), bin.display().to_string()];
    all.extend(args);
    (PathBuf::from("nice"), all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_have_their_documented_shape() {
        let incident = ScenarioConfig::named(ScenarioName::Incident);
        assert_eq!(incident.behaviour, Behaviour::Legacy);
        assert!(incident.check_delay_us > 0 && !incident.stop_when_drained);
        assert!(incident.devices >= 1_000 && incident.pool >= 10_000);
        let contract = ScenarioConfig::named(ScenarioName::Contract);
        assert_eq!(contract.behaviour, Behaviour::Contract);
        assert!(contract.stop_when_drained && contract.check_delay_us == 0);
    }
}
