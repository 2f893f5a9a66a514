//! `punchctl rebuild`: the attendance projection of a group or tenant recomputed from the log
//! (see [`crate::ops::rebuild`]), with the plan, a progress bar and a summary.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use dakoku_attendance::rebuild::{Plan, Scope};
use dakoku_kafka::ClientFactory;
use dakoku_schemas::{GroupId, TenantId, Topic};

use crate::ops::rebuild::{
    Executed, RebuildError, RebuildOutcome, RebuildTarget, check_plan, execute, prepare, resolve,
};
use crate::output::write_table;
use crate::progress::{Bar, Summary, human, per_second};

/// `punchctl rebuild`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub scope: RebuildScope,
    /// Show what would be cleared and replayed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Records per replay batch (one Postgres transaction each).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_records: u32,
    /// Employees recomputed (in full) per transaction at the end.
    #[arg(long, alias = "days-per-transaction", default_value_t = 200,
        value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub employees_per_transaction: u32,
    /// Rebuild even though records at the start of the log were deleted (retention): the
    /// punches they held are then gone from the projection for good.
    #[arg(long)]
    pub allow_truncated_log: bool,
    /// Longest wait for any one Kafka or Postgres operation, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
}

/// Exactly one of a group or a tenant.
#[derive(Debug, Clone, Args)]
#[group(id = "rebuild_scope", required = true, multiple = false)]
pub struct RebuildScope {
    /// Rebuild every tenant of this group.
    #[arg(long)]
    pub group: Option<GroupId>,
    /// Rebuild one tenant (its group's log is replayed; other tenants' rows are untouched).
    #[arg(long)]
    pub tenant: Option<TenantId>,
}

/// Runs `punchctl rebuild`.
pub async fn run(
    args: RebuildArgs,
    kafka: &ClientFactory,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> Result<RebuildOutcome, RebuildError> {
    let mut summary = Summary::start("rebuild");
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let target = match (args.scope.group, args.scope.tenant) {
        (Some(group), _) => RebuildTarget::Group(group),
        (None, Some(tenant)) => RebuildTarget::Tenant(tenant),
        (None, None) => return Err(RebuildError::NoScope),
    };
    let (group, scope) = resolve(database_url, target).await?;
    let what = match &scope {
        Scope::Group => format!("group {group}"),
        Scope::Tenant(tenant) => format!("tenant {tenant} (group {group})"),
    };
    summary.set_title(format!("rebuild of {what}"));
    let rebuild = prepare(kafka, database_url, &group, scope, timeout).await?;
    let plan = rebuild.plan().clone();
    write_plan(&plan, out)?;
    check_plan(&plan, args.allow_truncated_log)?;
    if let Some(unfinished) = &plan.unfinished {
        summary.line(
            "unfinished",
            format!(
                "{} was interrupted; this rebuild finishes it (until then the attendance service refuses the group)",
                unfinished.describe()
            ),
        );
    }
    if args.dry_run {
        write_dry_run(&mut summary, &plan);
        summary.write(out)?;
        return Ok(RebuildOutcome {
            plan,
            cleared: None,
            replayed: None,
            recomputed: None,
        });
    }
    let bar = Bar::new();
    let done = execute(
        rebuild,
        args.batch_records as usize,
        args.employees_per_transaction as usize,
        &bar,
    )
    .await?;
    write_done(&mut summary, &plan, &done, &group);
    summary.write(out)?;
    Ok(RebuildOutcome {
        plan,
        cleared: Some(done.cleared),
        replayed: Some(done.replayed),
        recomputed: Some(done.recomputed),
    })
}

fn write_dry_run(summary: &mut Summary, plan: &Plan) {
    summary.line(
        "would clear",
        format!(
            "{} punches ({} withdrawn), {} rejections, {} conflicts",
            plan.rows.punches, plan.rows.withdrawn, plan.rows.rejections, plan.rows.conflicts
        ),
    );
    summary.line(
        "would replay",
        format!("{} records of {}", plan.records(), plan.topic),
    );
    summary.line(
        "would recompute",
        format!(
            "every day of the scope ({} rows now); unchanged days keep their rows",
            plan.rows.days
        ),
    );
    summary.line("dry run", "nothing changed");
}

/// What the rebuild did: rows cleared, records replayed, punches and days.
fn write_done(summary: &mut Summary, plan: &Plan, done: &Executed, group: &GroupId) {
    let (cleared, replayed, recomputed) = (&done.cleared, &done.replayed, &done.recomputed);
    summary.line(
        "cleared",
        format!(
            "{} punches, {} rejections, {} conflicts in {}",
            cleared.punches,
            cleared.rejections,
            cleared.conflicts,
            human(done.clear_took)
        ),
    );
    summary.line(
        "replayed",
        format!(
            "{} records of {} in {} ({}/s, {} batches)",
            replayed.records,
            plan.topic,
            human(done.replay_took),
            per_second(replayed.records, done.replay_took),
            replayed.batches
        ),
    );
    let c = &replayed.counts;
    summary.line(
        "punches",
        format!(
            "{} stored, {} duplicates, {} withdrawn, {} reinstated, {} rejected, {} superseded, {} conflicts",
            c.stored, c.duplicates, c.withdrawn, c.reinstated, c.rejected, c.superseded, c.conflicts
        ),
    );
    if c.invalid > 0 {
        summary.line(
            "invalid records",
            format!(
                "{} skipped ({} quarantined now; the others were when the service first read them)",
                c.invalid, replayed.quarantined
            ),
        );
    }
    summary.line(
        "days",
        format!(
            "{} employees recomputed in {} ({}/s): {} days and months changed, {} unchanged; \
             {} day rows (were {})",
            recomputed.employees,
            human(done.recompute_took),
            per_second(recomputed.employees, done.recompute_took),
            recomputed.changed,
            recomputed.unchanged,
            recomputed.rows_after,
            plan.rows.days
        ),
    );
    write_after(summary, plan, done, group);
}

/// What happens next: days changed elsewhere, what gets published, where the service resumes.
fn write_after(summary: &mut Summary, plan: &Plan, done: &Executed, group: &GroupId) {
    let (c, recomputed) = (&done.replayed.counts, &done.recomputed);
    if c.days_changed > 0 {
        summary.line(
            "other tenants",
            format!(
                "{} days changed by verdicts the service had not applied yet",
                c.days_changed
            ),
        );
    }
    let changed = recomputed.changed + c.days_changed + c.months_changed;
    summary.line(
        "publish",
        if changed == 0 {
            "nothing changed, nothing to publish".to_owned()
        } else {
            format!(
                "{changed} changed days and months go to {} and {} when the attendance service \
                 of group {group} starts",
                Topic::AttendanceDaily(group.clone()).name(),
                Topic::PayrollMonthly(group.clone()).name()
            )
        },
    );
    summary.line(
        "offsets",
        format!(
            "{} at {} (the service continues from there)",
            plan.consumer_group,
            done.finished
                .offsets
                .iter()
                .map(|(p, o)| format!("{p}:{o}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    if let Some(error) = &done.finished.kafka_commit_failed {
        summary.line(
            "warning",
            format!("the advisory Kafka commit failed ({error}); lag shows old offsets until the service commits"),
        );
    }
}

fn write_plan(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = plan
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.to_string(),
                format!("{}..{}", p.low, p.end),
                p.stored
                    .map_or_else(|| "none".to_owned(), |s| s.to_string()),
                p.records().to_string(),
            ]
        })
        .collect();
    write_table(out, &["PARTITION", "LOG", "STORED", "REPLAY"], &rows)
}
