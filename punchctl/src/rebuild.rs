//! `punchctl rebuild`: recompute the attendance projection of a tenant group, or of one tenant,
//! from the log, and return when it has caught up with the log's end at the start.
//!
//! punchctl does the work itself, in-process, with the attendance consumer's own code
//! ([`dakoku_attendance::rebuild`]: clear, replay through the batch transaction, recompute each
//! day once). The alternative, resetting the offsets and waiting for the running service to
//! catch up, was rejected: the service must be stopped anyway (its batches recompute days from
//! half-replayed punches and publish them), its progress can only be guessed from the outside,
//! and a rebuild that fails would leave the service running on a half-cleared projection.
//! In-process there is one owner for the whole rebuild, a real progress bar (records applied
//! against the end offsets taken at the start), and typed errors at the step that failed.
//!
//! So: refused while the attendance consumer group has live members (stop the service: the
//! error names the members); a dry run prints what would be cleared and replayed and changes
//! nothing; a log whose first records were deleted by retention is refused (those punches
//! cannot come back) unless `--allow-truncated-log`. Afterwards, start the attendance service
//! again: it continues from the rebuilt offsets and publishes the days that changed.
//!
//! An interrupted rebuild (Ctrl-C, killed, Postgres gone after the clear) stays recorded in
//! `attendance_rebuilds` until a rebuild covering it finishes: meanwhile the attendance
//! service refuses the group, naming this command. The same rebuild again, or a whole-group
//! rebuild, finishes it; a rebuild of another tenant is refused ("finish it first: ..."); the
//! dry run says which of the two it would be.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use dakoku_attendance::rebuild::{self, Plan, Rebuild, RebuildRequest, Scope};
use dakoku_schemas::{GroupId, TenantId, Topic};

use crate::progress::{Bar, Summary, human, per_second};
use crate::replay::{self, ConsumerKind, ReplayError};

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
    /// Days recomputed per transaction at the end.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub days_per_transaction: u32,
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
    #[arg(long, value_parser = parse_group)]
    pub group: Option<GroupId>,
    /// Rebuild one tenant (its group's log is replayed; other tenants' rows are untouched).
    #[arg(long, value_parser = parse_tenant)]
    pub tenant: Option<TenantId>,
}

fn parse_group(s: &str) -> Result<GroupId, String> {
    s.parse::<GroupId>().map_err(|e| e.to_string())
}

fn parse_tenant(s: &str) -> Result<TenantId, String> {
    s.parse::<TenantId>().map_err(|e| e.to_string())
}

/// Why `punchctl rebuild` refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Neither `--group` nor `--tenant` was given.
    #[error("give --group or --tenant")]
    NoScope,
    /// The tenant is not in the master data.
    #[error("tenant {0} does not exist (see `punchctl tenant list`)")]
    UnknownTenant(TenantId),
    /// Records at the start of the log were deleted.
    #[error(
        "{topic} no longer starts at offset 0 ({}): the punches of the deleted records cannot be rebuilt. Pass --allow-truncated-log to rebuild from what is left",
        .partitions.iter().map(|(p, low)| format!("partition {p} starts at {low}")).collect::<Vec<_>>().join(", ")
    )]
    TruncatedLog {
        /// The topic.
        topic: String,
        /// (partition, first offset) of each truncated partition.
        partitions: Vec<(i32, i64)>,
    },
    /// The attendance consumer group is not idle (or could not be checked).
    #[error(transparent)]
    Group(#[from] ReplayError),
    /// The rebuild itself failed.
    #[error(transparent)]
    Rebuild(#[from] rebuild::RebuildError),
    /// Postgres failed while looking up the tenant.
    #[error("Postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// Connecting to Postgres failed.
    #[error(transparent)]
    Connect(#[from] dakoku_store::StoreError),
    /// The output could not be written.
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// What a rebuild did (for tests and tools).
#[derive(Debug, Clone)]
pub struct RebuildOutcome {
    /// The plan, as read before anything changed.
    pub plan: Plan,
    /// Rows deleted (`None` on a dry run).
    pub cleared: Option<rebuild::ScopeRows>,
    /// The replay (`None` on a dry run).
    pub replayed: Option<rebuild::Replayed>,
    /// The recompute (`None` on a dry run).
    pub recomputed: Option<rebuild::Recomputed>,
}

/// Runs `punchctl rebuild`.
pub async fn run(
    args: RebuildArgs,
    brokers: &str,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> Result<RebuildOutcome, RebuildError> {
    let mut summary = Summary::start("rebuild");
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let (group, scope) = match (args.scope.group, args.scope.tenant) {
        (Some(group), _) => (group, Scope::Group),
        (None, Some(tenant)) => (
            tenant_group(database_url, &tenant).await?,
            Scope::Tenant(tenant),
        ),
        (None, None) => return Err(RebuildError::NoScope),
    };
    let what = match &scope {
        Scope::Group => format!("group {group}"),
        Scope::Tenant(tenant) => format!("tenant {tenant} (group {group})"),
    };
    summary.set_title(format!("rebuild of {what}"));
    replay::ensure_idle(brokers, ConsumerKind::Attendance, &group, timeout).await?;
    let mut rebuild = Rebuild::prepare(RebuildRequest {
        brokers: brokers.to_owned(),
        database_url: database_url.to_owned(),
        group: group.clone(),
        scope,
        timeout,
    })
    .await?;
    let plan = rebuild.plan().clone();
    write_plan(&plan, out)?;
    if let Some(blocking) = plan.blocked_by() {
        // Refused before anything changes, dry run included: it could not run either.
        return Err(rebuild::RebuildError::Unfinished {
            unfinished: blocking.clone(),
        }
        .into());
    }
    if let Some(unfinished) = &plan.unfinished {
        summary.line(
            "unfinished",
            format!(
                "{} was interrupted; this rebuild finishes it (until then the attendance service refuses the group)",
                unfinished.describe()
            ),
        );
    }
    let truncated = plan.truncated();
    if !truncated.is_empty() && !args.allow_truncated_log {
        return Err(RebuildError::TruncatedLog {
            topic: plan.topic.clone(),
            partitions: truncated.iter().map(|p| (p.partition, p.low)).collect(),
        });
    }
    if args.dry_run {
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
        summary.write(out)?;
        return Ok(RebuildOutcome {
            plan,
            cleared: None,
            replayed: None,
            recomputed: None,
        });
    }

    let bar = Bar::new();
    let clear_started = Instant::now();
    let cleared = rebuild.clear().await?;
    let clear_took = clear_started.elapsed();
    let replay_started = Instant::now();
    let replayed = rebuild.replay(args.batch_records as usize, &bar).await;
    let replay_took = replay_started.elapsed();
    let replayed = replayed.inspect_err(|_| bar.finish())?;
    let recompute_started = Instant::now();
    let recomputed = rebuild
        .recompute(args.days_per_transaction as usize, &bar)
        .await
        .inspect_err(|_| bar.finish())?;
    let recompute_took = recompute_started.elapsed();
    bar.finish();
    let finished = rebuild.finish().await?;

    summary.line(
        "cleared",
        format!(
            "{} punches, {} rejections, {} conflicts in {}",
            cleared.punches,
            cleared.rejections,
            cleared.conflicts,
            human(clear_took)
        ),
    );
    summary.line(
        "replayed",
        format!(
            "{} records of {} in {} ({}/s, {} batches)",
            replayed.records,
            plan.topic,
            human(replay_took),
            per_second(replayed.records, replay_took),
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
            "{} recomputed in {} ({}/s): {} changed, {} unchanged; {} rows (were {})",
            recomputed.days,
            human(recompute_took),
            per_second(recomputed.days, recompute_took),
            recomputed.changed,
            recomputed.unchanged,
            recomputed.rows_after,
            plan.rows.days
        ),
    );
    if c.days_changed > 0 {
        summary.line(
            "other tenants",
            format!(
                "{} days changed by verdicts the service had not applied yet",
                c.days_changed
            ),
        );
    }
    let changed = recomputed.changed + c.days_changed;
    summary.line(
        "publish",
        if changed == 0 {
            "nothing changed, nothing to publish".to_owned()
        } else {
            format!(
                "{changed} changed days go to {} when the attendance service of group {group} starts",
                Topic::AttendanceDaily(group.clone()).name()
            )
        },
    );
    summary.line(
        "offsets",
        format!(
            "{} at {} (the service continues from there)",
            plan.consumer_group,
            finished
                .offsets
                .iter()
                .map(|(p, o)| format!("{p}:{o}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    if let Some(error) = &finished.kafka_commit_failed {
        summary.line(
            "warning",
            format!("the advisory Kafka commit failed ({error}); lag shows old offsets until the service commits"),
        );
    }
    summary.write(out)?;
    Ok(RebuildOutcome {
        plan,
        cleared: Some(cleared),
        replayed: Some(replayed),
        recomputed: Some(recomputed),
    })
}

async fn tenant_group(database_url: &str, tenant: &TenantId) -> Result<GroupId, RebuildError> {
    let client = dakoku_store::connect(database_url).await?;
    let row = client
        .query_opt(
            "SELECT group_id FROM tenants WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await?;
    let group: String = row
        .map(|r| r.get(0))
        .ok_or_else(|| RebuildError::UnknownTenant(tenant.clone()))?;
    group
        .parse()
        .map_err(|_| RebuildError::UnknownTenant(tenant.clone()))
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
    crate::cli::write_table(out, &["PARTITION", "LOG", "STORED", "REPLAY"], &rows)
}
