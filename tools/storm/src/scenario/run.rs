//! One run from start to end: its own database, group, fleet and topics, the storm, the
//! clean-up, and the report written as JSON and SVG.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use dakoku_schemas::GroupId;
use dakoku_store::ScratchDatabase;
use dakoku_token::TokenKeys;

use super::config::{ScenarioConfig, Target};
use super::report::Report;
use super::services::Services;
use super::storm::storm;
use crate::provision::{self, FleetSpec};
use crate::topics;

/// How long dropping the run's database waits for autovacuum, which a storm's fresh punches
/// and days set to work and which `DROP DATABASE .. WITH (FORCE)` cannot end.
const DROP_WAIT: Duration = Duration::from_secs(60);

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
        if let Err(error) = topics::delete(&config.brokers, &group).await {
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
        topics::create(&config.brokers, group, config.partitions)
            .await
            .context("creating the storm group's topics (is Kafka up? `scripts/stack up`)")?;
    }

    // The processes.
    let services = Services::start(config, target, group, db, &key).await?;
    storm(config, target, group, db, &fleet, services, wall).await
}
