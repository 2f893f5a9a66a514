//! `punchctl replay`: refuse while the consumer group is live, show the plan per partition,
//! apply it unless `--dry-run`, and summarise.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use dakoku_kafka::ClientFactory;
use dakoku_schemas::GroupId;

use crate::ops::replay::{
    ConsumerKind, ReplayFrom, ReplayPlan, ReplayRequest, apply, ensure_idle, plan,
};
use crate::output::write_table;
use crate::progress::Summary;

/// `punchctl replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The consumer to replay: licence-check (raw punches -> verdicts) or attendance
    /// (verdicts -> Postgres).
    #[arg(long, value_enum)]
    pub consumer: ConsumerKind,
    /// The tenant group ([a-z0-9-]{1,32}).
    #[arg(long)]
    pub group: GroupId,
    /// Where to replay from: `earliest` (the start of the log) or a moment in RFC 3339, e.g.
    /// 2020-12-04T08:45:00+09:00 (records produced at or after it are processed again).
    #[arg(long, value_name = "earliest|RFC 3339")]
    pub from: ReplayFrom,
    /// Show, per partition, the current and the new offset and the records to process again;
    /// change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Longest wait for any one Kafka or Postgres operation, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
}

/// Runs `punchctl replay`: checks the group is idle, plans, prints the plan, applies it
/// (unless a dry run) and writes the summary.
pub async fn run(
    args: ReplayArgs,
    kafka: &ClientFactory,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ReplayPlan> {
    let mut summary = Summary::start(format!(
        "replay of {} from {}",
        args.consumer.consumer_group(&args.group),
        args.from
    ));
    let request = ReplayRequest {
        consumer: args.consumer,
        group: args.group.clone(),
        from: args.from,
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
    };
    ensure_idle(kafka, args.consumer, &args.group, request.timeout).await?;
    let plan = plan(&request, kafka, database_url).await?;
    write_plan(&plan, out)?;
    if !args.dry_run {
        apply(&plan, kafka, database_url, request.timeout).await?;
    }
    let moved = plan.moves().len();
    let records = plan.records();
    summary.line(
        "topic",
        format!("{}, {} partitions", plan.topic, plan.partitions.len()),
    );
    let when = if args.dry_run {
        "(dry run: nothing changed)".to_owned()
    } else {
        format!(
            "when {} of group {} starts again",
            plan.consumer, plan.group
        )
    };
    summary.line(
        "process again",
        format!("{records} records on {moved} partitions {when}"),
    );
    summary.line(
        "unchanged",
        format!(
            "{} partitions (nothing committed yet, or not past the target)",
            plan.partitions.len() - moved
        ),
    );
    summary.write(out)?;
    Ok(plan)
}

fn write_plan(plan: &ReplayPlan, out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = plan
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.to_string(),
                format!("{}..{}", p.low, p.end),
                p.current
                    .map_or_else(|| "none".to_owned(), |c| c.to_string()),
                p.new_offset()
                    .map_or_else(|| "unchanged".to_owned(), |n| n.to_string()),
                p.records().to_string(),
            ]
        })
        .collect();
    write_table(
        out,
        &["PARTITION", "LOG", "CURRENT", "NEW", "PROCESS AGAIN"],
        &rows,
    )
}
