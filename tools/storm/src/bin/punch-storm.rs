//! `punch-storm`: simulated recorders sending punches to a running recorder API (for example
//! the one `scripts/start` runs), then a summary and, with `--audit`, the check that every
//! acked punch is stored exactly once.
//!
//! It registers its own recorders (tenants `<prefix>-tNNNN`, devices `PT-NNNNNN`, licensed
//! employees) in `DATABASE_URL` with `dakoku_store::master` (what `punchctl` uses) and signs
//! their tokens with `DAKOKU_TOKEN_KEYS`, which must be the target acceptor's keys
//! (`eval "$(scripts/stack env)"`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use dakoku_schemas::GroupId;
use dakoku_storm::audit::{self, StoredIn};
use dakoku_storm::provision::{self, Fleet, FleetSpec};
use dakoku_storm::sim::{self, Behaviour, Outcome, StormConfig};
use dakoku_token::TokenKeys;

#[derive(Debug, Parser)]
#[command(
    name = "punch-storm",
    version,
    about = "Simulated recorders storming the recorder API"
)]
struct Cli {
    /// The recorder API's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// The tenant group the recorders' tenants join (its topics must exist and its consumers
    /// run for `--audit`).
    #[arg(long, default_value = "demo")]
    group: GroupId,
    /// Recorders.
    #[arg(long, default_value_t = 10)]
    devices: usize,
    /// Tenants.
    #[arg(long, default_value_t = 2)]
    tenants: usize,
    /// Employees (cards) per recorder.
    #[arg(long, default_value_t = 50)]
    employees: usize,
    /// Pending punches per recorder at the start.
    #[arg(long, default_value_t = 10_000)]
    pool: u64,
    /// Resend behaviour.
    #[arg(long, value_enum, default_value_t = Behaviour::Contract)]
    behaviour: Behaviour,
    /// Punches per request (contract).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Seconds between new punches per recorder (0: none).
    #[arg(long, default_value_t = 10.0)]
    trickle_every_s: f64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 300)]
    max_duration_s: u64,
    /// Stop as soon as every initial pool is drained.
    #[arg(long)]
    stop_when_drained: bool,
    /// After the storm, wait up to this many seconds for the acked punches to be stored in
    /// `punches`, then audit them (0: no audit).
    #[arg(long, default_value_t = 0)]
    audit_wait_s: u64,
    /// Prefix of the tenant ids and cards (default: `ps-<random>`).
    #[arg(long)]
    prefix: Option<String>,
    /// Postgres with the master data.
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    database_url: String,
    /// The target acceptor's token keys.
    #[arg(long, env = "DAKOKU_TOKEN_KEYS", hide_env_values = true)]
    token_keys: String,
    /// Write the outcome (per recorder: acked seq ranges, pending) as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let keys = TokenKeys::parse(&cli.token_keys).context("DAKOKU_TOKEN_KEYS")?;
    let prefix = cli
        .prefix
        .clone()
        .unwrap_or_else(|| format!("ps-{:08x}", rand::random::<u32>()));
    let mut client = dakoku_store::connect(&cli.database_url)
        .await
        .context("connecting to Postgres (is the stack up? `scripts/stack up`)")?;
    let fleet = provision::provision(
        &mut client,
        &FleetSpec {
            group: cli.group.clone(),
            prefix,
            devices: cli.devices,
            tenants: cli.tenants,
            employees_per_device: cli.employees,
        },
        &keys,
    )
    .await?;
    // The acceptor learns new devices from its master-data snapshot (LISTEN/NOTIFY, polled
    // every few seconds at worst).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let config = storm_config(&cli, &fleet);
    let outcome = sim::run(config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    print_outcome(&outcome, &fleet);
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_vec_pretty(&outcome.recorders)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if cli.audit_wait_s == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    wait_stored(
        &client,
        &fleet,
        &outcome,
        Duration::from_secs(cli.audit_wait_s),
    )
    .await?;
    let audit = audit::audit(&client, StoredIn::Punches, &outcome).await?;
    println!("audit: {audit:?}");
    Ok(if audit.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The simulator's configuration from the command line.
fn storm_config(cli: &Cli, fleet: &Fleet) -> StormConfig {
    let mut config = StormConfig::new(cli.target, fleet.recorders.clone(), cli.behaviour);
    config.pool = cli.pool;
    config.batch = cli.batch;
    config.trickle_every =
        (cli.trickle_every_s > 0.0).then(|| Duration::from_secs_f64(cli.trickle_every_s));
    config.max_duration = Some(Duration::from_secs(cli.max_duration_s));
    config.stop_when_drained = cli.stop_when_drained;
    config
}

/// The one-line summary of the storm.
fn print_outcome(outcome: &Outcome, fleet: &Fleet) {
    let l = &outcome.latency;
    println!(
        "{} recorders, {}: {:.0} s ({:?}); {} requests {:?}; {} punches acked ({} pending); latency p50 {:.1} ms p99 {:.1} ms max {:.0} ms; tenants {}",
        outcome.recorders.len(),
        outcome.behaviour.as_str(),
        outcome.elapsed.as_secs_f64(),
        outcome.stopped_because,
        outcome.totals.requests,
        outcome.totals.statuses,
        outcome.acked_distinct(),
        outcome.pending(),
        l.value_at_quantile(0.5) as f64 / 1000.0,
        l.value_at_quantile(0.99) as f64 / 1000.0,
        l.max() as f64 / 1000.0,
        fleet
            .tenants
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    );
}

/// Waits until every acked punch is stored, or `wait` has passed.
async fn wait_stored(
    client: &tokio_postgres::Client,
    fleet: &Fleet,
    outcome: &Outcome,
    wait: Duration,
) -> anyhow::Result<()> {
    let tenants: Vec<&str> = fleet.tenants.iter().map(|t| t.as_str()).collect();
    let want = i64::try_from(outcome.acked_distinct())?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        let stored: i64 = client
            .query_one(
                "SELECT count(*) FROM punches WHERE tenant_id = ANY($1)",
                &[&tenants],
            )
            .await?
            .get(0);
        if stored >= want || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
