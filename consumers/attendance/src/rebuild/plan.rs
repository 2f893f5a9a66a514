//! What a rebuild is asked to do, what it will do (the plan, read before anything changes)
//! and what each step did.

use std::collections::BTreeMap;
use std::time::Duration;

use dakoku_schemas::GroupId;

use crate::counts::Counts;
use crate::store::marker::{Scope, UnfinishedRebuild};

/// What to rebuild, and where.
#[derive(Debug, Clone)]
pub struct RebuildRequest {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Postgres URL of the projection.
    pub database_url: String,
    /// The tenant group (its `punches.checked.<group>` is replayed).
    pub group: GroupId,
    /// The whole group or one tenant.
    pub scope: Scope,
    /// Longest wait for one Kafka or Postgres operation; also how long the replay may see no
    /// record at all before it gives up.
    pub timeout: Duration,
}

/// Progress callbacks, e.g. for a progress bar.
pub trait Progress: Sync {
    /// A stage starts, with `total` units of work (records, days).
    fn stage(&self, name: &str, total: u64);
    /// `n` more units are done.
    fn advance(&self, n: u64);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// One partition of the checked topic, at the start of the rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionPlan {
    /// The partition.
    pub partition: i32,
    /// Its first offset: the replay starts here. Above 0, records before it were deleted.
    pub low: i64,
    /// Its end at the start: the replay reads up to here.
    pub end: i64,
    /// The projection's next offset before the rebuild (`None`: never stored).
    pub stored: Option<i64>,
}

impl PartitionPlan {
    /// Records the replay reads from this partition.
    pub fn records(&self) -> u64 {
        u64::try_from(self.end - self.low).unwrap_or(0)
    }
}

/// Rows of the scope in the projection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeRows {
    /// Rows of `punches` (withdrawn ones included).
    pub punches: u64,
    /// Of which withdrawn.
    pub withdrawn: u64,
    /// Rows of `punch_rejections`.
    pub rejections: u64,
    /// Rows of `punch_conflicts`.
    pub conflicts: u64,
    /// Rows of `attendance_days`.
    pub days: u64,
}

/// What a rebuild will do: read before anything is changed (the dry run shows it).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The tenant group.
    pub group: GroupId,
    /// The scope.
    pub scope: Scope,
    /// `punches.checked.<group>`.
    pub topic: String,
    /// `attendance.<group>`.
    pub consumer_group: String,
    /// Every partition of the topic.
    pub partitions: Vec<PartitionPlan>,
    /// The scope's rows before.
    pub rows: ScopeRows,
    /// An earlier rebuild of the group that did not finish: this one finishes it if its scope
    /// covers it ([`Plan::blocked_by`]), else it is refused.
    pub unfinished: Option<UnfinishedRebuild>,
}

impl Plan {
    /// Records the replay reads.
    pub fn records(&self) -> u64 {
        self.partitions.iter().map(PartitionPlan::records).sum()
    }

    /// The unfinished rebuild this one's scope does not cover: this rebuild is refused until
    /// that one is finished (or a whole-group rebuild covers it).
    pub fn blocked_by(&self) -> Option<&UnfinishedRebuild> {
        self.unfinished
            .as_ref()
            .filter(|u| !self.scope.covers_scope(&u.scope))
    }

    /// Partitions whose first records were deleted (retention): a rebuild cannot bring back
    /// the punches they held.
    pub fn truncated(&self) -> Vec<PartitionPlan> {
        self.partitions
            .iter()
            .filter(|p| p.low > 0)
            .copied()
            .collect()
    }
}

/// What the replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Records read and applied.
    pub records: u64,
    /// The batches' counts, summed.
    pub counts: Counts,
    /// Invalid records quarantined now (never seen by the service).
    pub quarantined: u64,
    /// Batches (transactions).
    pub batches: u64,
}

/// What the recompute did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recomputed {
    /// Employees recomputed in full (every employee of the scope with a punch or a record).
    pub employees: u64,
    /// Days and months whose figures changed, new and emptied ones included: written with a
    /// new revision; the attendance service publishes them when it starts (its outbox).
    pub changed: u64,
    /// Days and months whose rows were already right: left exactly as they were.
    pub unchanged: u64,
    /// Rows of the scope in `attendance_days` afterwards.
    pub rows_after: u64,
}

/// How a rebuild ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// The stored next offsets, partition -> offset.
    pub offsets: BTreeMap<i32, i64>,
    /// Why the advisory Kafka commit of those offsets failed, if it did (lag monitoring shows
    /// the old offsets until the service commits).
    pub kafka_commit_failed: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use dakoku_schemas::TenantId;

    #[test]
    fn a_tenant_scope_covers_only_that_tenant() {
        let acme: TenantId = "acme".parse().expect("tenant");
        assert!(Scope::Group.covers("anyone"));
        assert!(Scope::Tenant(acme.clone()).covers("acme"));
        assert!(!Scope::Tenant(acme).covers("other"));
    }

    #[test]
    fn the_plan_counts_records_and_names_truncated_partitions() {
        let plan = Plan {
            group: "g".parse().expect("group"),
            scope: Scope::Group,
            topic: "punches.checked.g".into(),
            consumer_group: "attendance.g".into(),
            partitions: vec![
                PartitionPlan {
                    partition: 0,
                    low: 0,
                    end: 10,
                    stored: Some(10),
                },
                PartitionPlan {
                    partition: 1,
                    low: 4,
                    end: 6,
                    stored: None,
                },
            ],
            rows: ScopeRows::default(),
            unfinished: None,
        };
        assert_eq!(plan.records(), 12);
        assert_eq!(
            plan.truncated()
                .iter()
                .map(|p| p.partition)
                .collect::<Vec<_>>(),
            vec![1]
        );
    }
}
