//! licence-check's metrics, named in one place, exported in Prometheus text format on
//! `/metrics`. Every per-group series carries a `group` label.

use std::sync::OnceLock;
use std::time::Duration;

use dakoku_schemas::{GroupId, RejectReason, Verdict};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::PrometheusHandle;

/// Metric names: the only place they are spelled.
pub mod name {
    /// Verdicts committed, by group, verdict and reason (`none` when accepted).
    pub const VERDICTS: &str = "licence_check_verdicts_total";
    /// Undecodable records committed to quarantine, by group.
    pub const QUARANTINED: &str = "licence_check_quarantined_total";
    /// Records copied unchanged (passthrough mode, benchmarks only), by group.
    pub const PASSED_THROUGH: &str = "licence_check_passthrough_records_total";
    /// Punches published with their stored first verdict (resends, replays), by group.
    pub const VERDICTS_REUSED: &str = "licence_check_verdicts_reused_total";
    /// Transactions by group and outcome (`committed`, `aborted`).
    pub const TRANSACTIONS: &str = "licence_check_transactions_total";
    /// From a transaction's first record to its commit, seconds, by group.
    pub const BATCH_LATENCY: &str = "licence_check_batch_seconds";
    /// Records per committed transaction, by group.
    pub const BATCH_RECORDS: &str = "licence_check_batch_records";
    /// Records not yet checked, by group and partition: last stable offset minus the
    /// committed position.
    pub const LAG: &str = "licence_check_lag_records";
    /// Invalid fraction of the circuit breaker's window, by group.
    pub const BREAKER_RATIO: &str = "licence_check_breaker_invalid_ratio";
    /// 1 while a group's loop runs, 0 once it stopped (breaker, fencing, shutdown).
    pub const GROUP_UP: &str = "licence_check_group_up";
    /// Seconds since the master-data snapshot was last confirmed current.
    pub const SNAPSHOT_AGE: &str = "licence_check_snapshot_age_seconds";
    /// `master_data_version` of the snapshot in use.
    pub const SNAPSHOT_VERSION: &str = "licence_check_snapshot_version";
    /// 1 if the last contact with Postgres worked, else 0.
    pub const SNAPSHOT_DATABASE_OK: &str = "licence_check_snapshot_database_ok";
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = dakoku_service::install_prometheus();
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        name::VERDICTS,
        "Verdicts committed, by verdict and reason (none when accepted)."
    );
    describe_counter!(
        name::QUARANTINED,
        "Undecodable raw records committed to punches.quarantine."
    );
    describe_counter!(
        name::PASSED_THROUGH,
        "Records copied unchecked (passthrough benchmark mode)."
    );
    describe_counter!(name::TRANSACTIONS, "Kafka transactions by outcome.");
    describe_counter!(
        name::VERDICTS_REUSED,
        "Punches published with their stored first verdict instead of being judged again."
    );
    describe_histogram!(
        name::BATCH_LATENCY,
        metrics::Unit::Seconds,
        "From a transaction's first record to its commit."
    );
    describe_histogram!(name::BATCH_RECORDS, "Records per committed transaction.");
    describe_gauge!(
        name::LAG,
        "Records not yet checked: last stable offset minus committed position."
    );
    describe_gauge!(
        name::BREAKER_RATIO,
        "Invalid fraction of the circuit breaker's window."
    );
    describe_gauge!(name::GROUP_UP, "1 while the group's loop runs.");
    describe_gauge!(
        name::SNAPSHOT_AGE,
        metrics::Unit::Seconds,
        "Since the master-data snapshot was last confirmed current."
    );
    describe_gauge!(
        name::SNAPSHOT_VERSION,
        "master_data_version of the snapshot in use."
    );
    describe_gauge!(
        name::SNAPSHOT_DATABASE_OK,
        "1 if the last contact with Postgres worked."
    );
}

/// Verdict tallies of one transaction, published when it commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    accepted: u64,
    rejected: [u64; 5],
    quarantined: u64,
    passed_through: u64,
}

impl Tally {
    /// Counts one verdict.
    pub fn verdict(&mut self, reason: Option<RejectReason>) {
        match reason {
            None => self.accepted += 1,
            Some(reason) => self.rejected[reason_index(reason)] += 1,
        }
    }

    /// Counts one quarantined record.
    pub fn quarantined(&mut self) {
        self.quarantined += 1;
    }

    /// Counts one copied record.
    pub fn passed_through(&mut self) {
        self.passed_through += 1;
    }

    /// Records handled in the transaction.
    pub fn records(&self) -> u64 {
        self.accepted + self.rejected.iter().sum::<u64>() + self.quarantined + self.passed_through
    }

    /// Publishes the tallies of a committed transaction.
    pub fn publish(&self, group: &GroupId, latency: Duration) {
        let group = group.to_string();
        if self.accepted > 0 {
            counter!(name::VERDICTS, "group" => group.clone(), "verdict" => Verdict::Accepted.as_str(), "reason" => "none")
                .increment(self.accepted);
        }
        for reason in RejectReason::ALL {
            let n = self.rejected[reason_index(*reason)];
            if n > 0 {
                counter!(name::VERDICTS, "group" => group.clone(), "verdict" => Verdict::Rejected.as_str(), "reason" => reason.as_str())
                    .increment(n);
            }
        }
        if self.quarantined > 0 {
            counter!(name::QUARANTINED, "group" => group.clone()).increment(self.quarantined);
        }
        if self.passed_through > 0 {
            counter!(name::PASSED_THROUGH, "group" => group.clone()).increment(self.passed_through);
        }
        counter!(name::TRANSACTIONS, "group" => group.clone(), "outcome" => "committed")
            .increment(1);
        histogram!(name::BATCH_LATENCY, "group" => group.clone()).record(latency.as_secs_f64());
        histogram!(name::BATCH_RECORDS, "group" => group).record(self.records() as f64);
    }
}

fn reason_index(reason: RejectReason) -> usize {
    match reason {
        RejectReason::UnknownCard => 0,
        RejectReason::EmployeeInactive => 1,
        RejectReason::NotLicensed => 2,
        RejectReason::LicenceExpired => 3,
        RejectReason::UnknownTenant => 4,
    }
}

/// `count` punches of `group` were published with their stored first verdict (resends,
/// replays) instead of being judged again.
pub fn verdicts_reused(group: &GroupId, count: u64) {
    if count > 0 {
        counter!(name::VERDICTS_REUSED, "group" => group.to_string()).increment(count);
    }
}

/// A transaction of `group` was aborted.
pub fn transaction_aborted(group: &GroupId) {
    counter!(name::TRANSACTIONS, "group" => group.to_string(), "outcome" => "aborted").increment(1);
}

/// The lag of one partition of `group`.
pub fn lag(group: &GroupId, partition: i32, records: i64) {
    gauge!(name::LAG, "group" => group.to_string(), "partition" => partition.to_string())
        .set(records as f64);
}

/// The breaker's current ratio for `group`.
pub fn breaker_ratio(group: &GroupId, ratio: f64) {
    gauge!(name::BREAKER_RATIO, "group" => group.to_string()).set(ratio);
}

/// Whether `group`'s loop runs.
pub fn group_up(group: &GroupId, up: bool) {
    gauge!(name::GROUP_UP, "group" => group.to_string()).set(if up { 1.0 } else { 0.0 });
}

/// A snapshot at `version` was loaded.
pub fn snapshot_loaded(version: i64) {
    gauge!(name::SNAPSHOT_VERSION).set(version as f64);
    snapshot_database_ok(true);
}

/// Whether Postgres answered.
pub fn snapshot_database_ok(ok: bool) {
    gauge!(name::SNAPSHOT_DATABASE_OK).set(if ok { 1.0 } else { 0.0 });
}

/// The snapshot's age.
pub fn snapshot_age(age: Duration) {
    gauge!(name::SNAPSHOT_AGE).set(age.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_each_kind_once() {
        let mut t = Tally::default();
        t.verdict(None);
        t.verdict(Some(RejectReason::UnknownCard));
        t.verdict(Some(RejectReason::UnknownTenant));
        t.quarantined();
        assert_eq!(t.records(), 4);
        let indices: std::collections::BTreeSet<usize> =
            RejectReason::ALL.iter().map(|r| reason_index(*r)).collect();
        assert_eq!(indices.len(), RejectReason::ALL.len());
    }
}
