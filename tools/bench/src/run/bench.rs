//! The whole run: build checks, set-up of the bench group, measuring, stopping the servers,
//! removing the group, and the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::context::{BARE, BENCH, INGEST, KAFKA, ingest_config, producer_settings};
use super::measure::{Servers, measure};
use crate::cli::RunArgs;
use crate::report::{Machine, PhaseReport, Report, Setup};
use crate::setup;

/// Time ingest-api gets to drain after SIGTERM before it is killed (its drain budget is 15 s).
const STOP_GRACE: Duration = Duration::from_secs(20);

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
