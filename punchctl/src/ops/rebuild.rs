//! The operation behind `punchctl rebuild`: recompute the attendance projection of a tenant group, or of one tenant,
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

use std::time::{Duration, Instant};

use dakoku_attendance::rebuild::{
    self, Finished, Plan, Rebuild, RebuildRequest, Recomputed, Replayed, Scope, ScopeRows,
};
use dakoku_kafka::ClientFactory;
use dakoku_schemas::{GroupId, TenantId};
use dakoku_store::master::tenants::{MasterError, find_tenant};

use crate::ops::replay::{self, ConsumerKind, ReplayError};
use crate::progress::Bar;

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
    #[error(transparent)]
    Master(#[from] MasterError),
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
    pub cleared: Option<ScopeRows>,
    /// The replay (`None` on a dry run).
    pub replayed: Option<Replayed>,
    /// The recompute (`None` on a dry run).
    pub recomputed: Option<Recomputed>,
}

/// What to rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildTarget {
    /// Every tenant of a group.
    Group(GroupId),
    /// One tenant (its group's log is replayed; other tenants' rows are untouched).
    Tenant(TenantId),
}

/// The target's group and the attendance scope within it (a tenant's group from master data).
pub async fn resolve(
    database_url: &str,
    target: RebuildTarget,
) -> Result<(GroupId, Scope), RebuildError> {
    Ok(match target {
        RebuildTarget::Group(group) => (group, Scope::Group),
        RebuildTarget::Tenant(tenant) => (
            tenant_group(database_url, &tenant).await?,
            Scope::Tenant(tenant),
        ),
    })
}

/// Refuses while the attendance consumer group has live members, then reads the plan.
/// Changes nothing.
pub async fn prepare(
    kafka: &ClientFactory,
    database_url: &str,
    group: &GroupId,
    scope: Scope,
    timeout: Duration,
) -> Result<Rebuild, RebuildError> {
    replay::ensure_idle(kafka, ConsumerKind::Attendance, group, timeout).await?;
    let request = RebuildRequest {
        brokers: kafka.brokers().to_owned(),
        database_url: database_url.to_owned(),
        group: group.clone(),
        scope,
        timeout,
    };
    Ok(Rebuild::prepare_with(kafka.clone(), request).await?)
}

/// Whether `plan` may run: not while another scope's rebuild is unfinished, and not over a
/// log truncated by retention unless `allow_truncated_log`. Checked before anything changes,
/// dry run included.
pub fn check_plan(plan: &Plan, allow_truncated_log: bool) -> Result<(), RebuildError> {
    if let Some(blocking) = plan.blocked_by() {
        return Err(rebuild::RebuildError::Unfinished {
            unfinished: blocking.clone(),
        }
        .into());
    }
    let truncated = plan.truncated();
    if !truncated.is_empty() && !allow_truncated_log {
        return Err(RebuildError::TruncatedLog {
            topic: plan.topic.clone(),
            partitions: truncated.iter().map(|p| (p.partition, p.low)).collect(),
        });
    }
    Ok(())
}

/// What [`execute`] did, with how long each step took.
#[derive(Debug, Clone)]
pub struct Executed {
    /// Rows deleted.
    pub cleared: ScopeRows,
    /// How long the clear took.
    pub clear_took: Duration,
    /// The replay.
    pub replayed: Replayed,
    /// How long the replay took.
    pub replay_took: Duration,
    /// The recompute.
    pub recomputed: Recomputed,
    /// How long the recompute took.
    pub recompute_took: Duration,
    /// The offsets the service continues from.
    pub finished: Finished,
}

/// Clears the scope, replays the log through the attendance consumer's batch transaction and
/// recomputes every day once, showing progress on `bar`.
pub async fn execute(
    mut rebuild: Rebuild,
    batch_records: usize,
    employees_per_transaction: usize,
    bar: &Bar,
) -> Result<Executed, RebuildError> {
    let clear_started = Instant::now();
    let cleared = rebuild.clear().await?;
    let clear_took = clear_started.elapsed();
    let replay_started = Instant::now();
    let replayed = rebuild.replay(batch_records, bar).await;
    let replay_took = replay_started.elapsed();
    let replayed = replayed.inspect_err(|_| bar.finish())?;
    let recompute_started = Instant::now();
    let recomputed = rebuild
        .recompute(employees_per_transaction, bar)
        .await
        .inspect_err(|_| bar.finish())?;
    let recompute_took = recompute_started.elapsed();
    bar.finish();
    let finished = rebuild.finish().await?;
    Ok(Executed {
        cleared,
        clear_took,
        replayed,
        replay_took,
        recomputed,
        recompute_took,
        finished,
    })
}

async fn tenant_group(database_url: &str, tenant: &TenantId) -> Result<GroupId, RebuildError> {
    let client = dakoku_store::connect(database_url).await?;
    find_tenant(&client, tenant)
        .await?
        .map(|stored| stored.group)
        .ok_or_else(|| RebuildError::UnknownTenant(tenant.clone()))
}
