//! `storm`: run a scenario, faults or probes against the local stack and report.
//!
//! `storm run --scenario incident --target both` replays the 2020 incident against the
//! pipeline and against the synchronous control and prints them side by side; the JSON
//! reports and SVG plots go to `--out` (default `target/storm`). See `STORM.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use dakoku_storm::control::{self, ControlConfig};
use dakoku_storm::scenario::{self, ScenarioConfig, ScenarioName, Target};

#[derive(Debug, Parser)]
#[command(
    name = "storm",
    version,
    about = "Storm the local stack: the incident replayed, with a synchronous control"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a named scenario against the pipeline, the synchronous control, or both.
    ///
    /// Starts its own processes from the release binaries (`cargo build --release --workspace
    /// --bins`) on free ports, with its own database, tenant group, topics and recorders, and
    /// removes them afterwards. Writes `<scenario>-<target>.json` and `.svg` to `--out`.
    Run(RunArgs),
    /// Serve the synchronous control (started by `storm run --target control`).
    #[command(hide = true)]
    ControlServer(ControlConfig),
    /// Run one Dakoku service in this process: the fault harness's killable children.
    #[command(subcommand, hide = true)]
    Serve(dakoku_storm::serve::ServeCommand),
    /// Fault injection: for each fault, a private stack, a contract storm, the fault in the
    /// middle of it, and the audit: every acked punch stored exactly once.
    Faults(FaultsArgs),
    /// Security probes against a running acceptor: forged, cross-tenant, expired and revoked
    /// tokens, oversized and slow requests, malformed JSON, wrong types in every field.
    Probes(ProbesArgs),
}

#[derive(Debug, Args)]
struct FaultsArgs {
    /// Only these faults (repeat the flag); all of them by default.
    #[arg(long = "fault", value_enum)]
    faults: Vec<dakoku_storm::faults::Fault>,
    /// Recorders.
    #[arg(long, default_value_t = 50)]
    devices: usize,
    /// Pooled punches per recorder.
    #[arg(long, default_value_t = 2_000)]
    pool: u64,
    /// Punches per request.
    #[arg(long, default_value_t = 200)]
    batch: usize,
    /// Seconds a stopped broker or Postgres stays down.
    #[arg(long, default_value_t = 5)]
    down_for_s: u64,
    /// Seconds one fault run may take before it is declared failed.
    #[arg(long, default_value_t = 300)]
    deadline_s: u64,
    /// The repository (its scripts/stack runs the private stacks).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Keep each run's private stack directory (logs, data).
    #[arg(long)]
    keep: bool,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ProbesArgs {
    /// The acceptor.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A tenant group whose topics exist (the probe tenants are created in it).
    #[arg(long, default_value = "demo")]
    group: String,
    /// The acceptor's token keys (valid and expired tokens are minted with them).
    #[arg(long, env = "DAKOKU_TOKEN_KEYS", hide_env_values = true)]
    token_keys: String,
    /// The acceptor's INGEST_MAX_BODY_BYTES.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// The acceptor's INGEST_MAX_PUNCHES.
    #[arg(long, default_value_t = 1000)]
    max_punches: usize,
    /// Seconds the acceptor may take to drop a slow client (its header timeout plus margin).
    #[arg(long, default_value_t = 10)]
    slow_deadline_s: u64,
    /// Kafka.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Postgres of the acceptor's master data.
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    database_url: String,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Targets {
    Pipeline,
    Control,
    /// The pipeline, then the control, with the same settings; side by side.
    Both,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The scenario (its values: STORM.md); the flags below override them.
    #[arg(long, value_enum)]
    scenario: ScenarioName,
    /// What to storm.
    #[arg(long, value_enum, default_value_t = Targets::Pipeline)]
    target: Targets,
    /// Recorders.
    #[arg(long)]
    devices: Option<usize>,
    /// Pooled punches per recorder.
    #[arg(long)]
    pool: Option<u64>,
    /// Employees (cards) per recorder.
    #[arg(long)]
    employees: Option<usize>,
    /// Tenants.
    #[arg(long)]
    tenants: Option<usize>,
    /// Seconds between new punches per recorder (0: none).
    #[arg(long)]
    trickle_every_s: Option<f64>,
    /// Punches per request (contract recorders).
    #[arg(long)]
    batch: Option<usize>,
    /// The slow licence check, µs per punch.
    #[arg(long)]
    check_delay_us: Option<u64>,
    /// Stop the storm after this many seconds.
    #[arg(long)]
    max_duration_s: Option<u64>,
    /// Seconds the consumers get to catch up after the storm.
    #[arg(long)]
    catch_up_timeout_s: Option<u64>,
    /// Partitions of the storm group's topics.
    #[arg(long)]
    partitions: Option<i32>,
    /// Run licence-check and attendance at this niceness (0-19), as a shared host should, so
    /// the acceptor's answers never wait for CPU behind a consumer's backlog.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=19))]
    consumers_nice: Option<u8>,
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Where reports, plots and process logs go.
    #[arg(long, default_value = "target/storm")]
    out: PathBuf,
    /// Kafka.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Postgres (a role that may create databases).
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    database_url: String,
    /// Keep the storm's database and topics.
    #[arg(long)]
    keep: bool,
}

impl RunArgs {
    fn config(&self) -> ScenarioConfig {
        let mut c = ScenarioConfig::named(self.scenario);
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = self.$field { c.$field = v; })* };
        }
        set!(
            devices,
            pool,
            tenants,
            trickle_every_s,
            batch,
            check_delay_us,
            max_duration_s,
            catch_up_timeout_s,
            partitions,
            consumers_nice
        );
        if let Some(v) = self.employees {
            c.employees_per_device = v;
        }
        c.bin_dir = self.bin_dir.clone();
        c.out_dir = self.out.clone();
        c.brokers = self.brokers.clone();
        c.admin_database_url = self.database_url.clone();
        c.keep = self.keep;
        c
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    init_tracing();
    match Cli::parse().command {
        Command::Run(args) => {
            let config = args.config();
            let targets: &[Target] = match args.target {
                Targets::Pipeline => &[Target::Pipeline],
                Targets::Control => &[Target::Control],
                Targets::Both => &[Target::Pipeline, Target::Control],
            };
            let mut reports = Vec::new();
            for &target in targets {
                reports.push(scenario::run(config.clone(), target).await?);
            }
            let refs: Vec<&scenario::Report> = reports.iter().collect();
            println!("{}", scenario::summary_table(&refs));
            // Exit status: the pipeline must lose and double nothing.
            let clean = reports
                .iter()
                .filter(|r| r.target == Target::Pipeline)
                .all(|r| {
                    r.audit.is_clean() && r.punchctl_audit.as_ref().is_none_or(|a| a.problems == 0)
                });
            Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Serve(service) => {
            service.run().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Faults(args) => faults(args).await,
        Command::Probes(args) => probes(args).await,
        Command::ControlServer(config) => {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            control::serve(config, listener, async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn faults(args: FaultsArgs) -> anyhow::Result<ExitCode> {
    use dakoku_storm::faults::{Fault, FaultOptions, run_fault};
    let exe = std::env::current_exe().context("locating the storm executable")?;
    let repo = std::fs::canonicalize(&args.repo)
        .with_context(|| format!("repository {}", args.repo.display()))?;
    let mut options = FaultOptions::new(repo, exe);
    options.devices = args.devices;
    options.pool = args.pool;
    options.batch = args.batch;
    options.down_for = std::time::Duration::from_secs(args.down_for_s);
    options.deadline = std::time::Duration::from_secs(args.deadline_s);
    options.keep = args.keep;
    let faults = if args.faults.is_empty() {
        Fault::ALL.to_vec()
    } else {
        args.faults
    };
    let mut results = Vec::new();
    for fault in faults {
        let result = run_fault(&options, fault).await?;
        println!("{result}");
        results.push(result);
    }
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_vec_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let passed = results.iter().filter(|r| r.passed()).count();
    println!("{passed} of {} fault runs clean", results.len());
    Ok(if passed == results.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn probes(args: ProbesArgs) -> anyhow::Result<ExitCode> {
    use dakoku_storm::probes::{self, ProbeEnv};
    let env = ProbeEnv {
        base_url: args.url,
        brokers: args.brokers,
        database_url: args.database_url,
        group: args.group.parse()?,
        keys: dakoku_token::TokenKeys::parse(&args.token_keys)?,
        max_body_bytes: args.max_body_bytes,
        max_punches: args.max_punches,
        slow_client_deadline: std::time::Duration::from_secs(args.slow_deadline_s),
    };
    let suffix = format!("{:08x}", rand::random::<u32>());
    let fixture = probes::provision(&env, &suffix).await?;
    let report = probes::run(&env, &fixture).await;
    probes::remove(&env, &fixture).await?;
    let report = report?;
    print!("{report}");
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
