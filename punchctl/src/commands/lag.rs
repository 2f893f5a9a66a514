//! `punchctl lag`: consumer positions, lag and the oldest waiting record per group, as a table
//! or JSON, with exit status 1 past `--max-lag`/`--max-age` (for cron).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use dakoku_kafka::ClientFactory;
use dakoku_schemas::GroupId;

use crate::ops::lag::{LagReport, LagRequest, PositionSource, breaches, measure_with};
use crate::output::{human_duration, write_json, write_table};

/// `punchctl lag` flags.
#[derive(Debug, Clone, Args)]
pub struct LagArgs {
    /// Only this tenant group; repeat for several. Default: every group in master data.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<GroupId>,
    /// Print the report as JSON (one object) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when any consumer of a group is more than this many records behind (summed over
    /// its partitions).
    #[arg(long, value_name = "RECORDS")]
    pub max_lag: Option<i64>,
    /// Exit 1 when any unprocessed record has waited longer than this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub max_age: Option<f64>,
    /// Longest wait for one Kafka operation, in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
}

/// Runs `punchctl lag`: the report on `out`; exit 0, 1 when a threshold is exceeded, 2 when
/// Kafka or Postgres cannot be read (the error on `err`).
pub async fn run(
    args: LagArgs,
    kafka: &ClientFactory,
    database_url: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let request = LagRequest {
        brokers: kafka.brokers().to_owned(),
        database_url: database_url.to_owned(),
        groups: args.groups.clone(),
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
    };
    let report = match measure_with(kafka, &request).await {
        Ok(report) => report,
        Err(error) => {
            writeln!(err, "punchctl: error: {error}")?;
            return Ok(ExitCode::from(2));
        }
    };
    let breaches = breaches(&report, args.max_lag, args.max_age);
    if args.json {
        write_json(out, &report)?;
    } else {
        write_report(&report, out)?;
    }
    for breach in &breaches {
        writeln!(err, "{breach}")?;
    }
    let failed = breaches.len() + report.groups.iter().filter(|g| g.error.is_some()).count();
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_report(report: &LagReport, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
    let mut rows = Vec::new();
    for group in &report.groups {
        for consumer in &group.consumers {
            for p in &consumer.partitions {
                rows.push(vec![
                    group.group.to_string(),
                    consumer.stage.as_str().to_owned(),
                    consumer.topic.clone(),
                    p.partition.to_string(),
                    p.position
                        .map_or_else(|| format!("- (from {})", p.low), |o| o.to_string()),
                    p.high.to_string(),
                    p.lag.to_string(),
                    age_text(p.oldest_age_seconds, p.oldest_at),
                ]);
            }
        }
    }
    write_table(
        out,
        &[
            "GROUP",
            "CONSUMER",
            "TOPIC",
            "PARTITION",
            "POSITION",
            "END",
            "LAG",
            "OLDEST WAITING",
        ],
        &rows,
    )?;
    writeln!(out)?;
    for group in &report.groups {
        if let Some(error) = &group.error {
            writeln!(out, "group {}: {error}", group.group)?;
            continue;
        }
        for consumer in &group.consumers {
            let source = match consumer.positions_from {
                PositionSource::Kafka => "Kafka commits",
                PositionSource::Postgres => "Postgres consumer_offsets",
            };
            let state = if consumer.total_lag == 0 {
                "caught up".to_owned()
            } else {
                format!(
                    "{} behind, oldest waiting {}",
                    consumer.total_lag,
                    age_text(consumer.oldest_age_seconds, None)
                )
            };
            writeln!(
                out,
                "group {}: {} ({}, positions from {source}): {state}",
                group.group,
                consumer.stage.as_str(),
                consumer.consumer_group
            )?;
        }
    }
    writeln!(
        out,
        "measured at {}",
        report.taken_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

fn age_text(age: Option<f64>, at: Option<DateTime<Utc>>) -> String {
    match (age, at) {
        (Some(age), Some(at)) => format!(
            "{} (since {})",
            human_duration(Duration::from_secs_f64(age)),
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        (Some(age), None) => human_duration(Duration::from_secs_f64(age)),
        _ => "-".to_owned(),
    }
}
