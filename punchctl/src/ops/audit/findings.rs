//! The audit's report: counts and examples of what is missing, doubled or unexpected per stage,
//! and the days whose figures differ from a recomputation. Plain data, serialisable as JSON.

use chrono::{DateTime, NaiveDate, Utc};
use dakoku_rules::v2::DayFigures;
use dakoku_rules::v2::figures::DAY_FIELDS;
use dakoku_schemas::{GroupId, TenantId};
use serde::Serialize;
use uuid::Uuid;

/// A count of findings of one kind, with the first few as examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Findings<T> {
    /// How many were found.
    pub count: u64,
    /// Up to the request's `limit` of them, in (tenant, employee or device, date or seq) order.
    pub examples: Vec<T>,
}

impl<T> Default for Findings<T> {
    fn default() -> Self {
        Self {
            count: 0,
            examples: Vec::new(),
        }
    }
}

impl<T> Findings<T> {
    pub(crate) fn push(&mut self, item: T, limit: usize) {
        self.count += 1;
        if self.examples.len() < limit {
            self.examples.push(item);
        }
    }
}

impl Findings<PunchFinding> {
    /// Keeps the `limit` smallest by their order, amortised.
    pub(crate) fn offer(&mut self, item: PunchFinding, limit: usize) {
        self.count += 1;
        self.examples.push(item);
        if self.examples.len() > limit.max(1) * 4 {
            self.trim(limit);
        }
    }

    pub(crate) fn trim(&mut self, limit: usize) {
        self.examples.sort_by(|a, b| a.order().cmp(&b.order()));
        self.examples.truncate(limit);
    }
}

/// One punch the audit has something to say about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PunchFinding {
    /// The punch.
    pub punch_id: Uuid,
    /// Its tenant.
    pub tenant: String,
    /// Its recorder.
    pub device: String,
    /// The recorder's sequence number.
    pub seq: u64,
    /// The employee, when known.
    pub employee: Option<String>,
    /// `clock_in`, ...
    pub kind: String,
    /// The punch instant.
    pub at: Option<DateTime<Utc>>,
    /// Its work date.
    pub work_date: NaiveDate,
    /// What is wrong, in words.
    pub detail: String,
}

impl PunchFinding {
    fn order(&self) -> (&str, &str, u64, Uuid) {
        (&self.tenant, &self.device, self.seq, self.punch_id)
    }
}

/// The stage raw -> checked (licence-check).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckedStage {
    /// Raw records in scope read (up to the end at the audit's start).
    pub raw_records: u64,
    /// Distinct punches among them.
    pub raw_punches: u64,
    /// Raw records licence-check had not committed a verdict for when the audit began (not
    /// judged: out of scope).
    pub raw_not_yet_checked: u64,
    /// Raw records that do not decode as `RawPunch` (licence-check quarantines those).
    pub raw_undecodable: u64,
    /// Verdicts in scope read.
    pub verdicts: u64,
    /// Of which accepted.
    pub accepted: u64,
    /// Of which rejected.
    pub rejected: u64,
    /// Checked records that do not decode as `CheckedPunch` (attendance quarantines those).
    pub verdicts_undecodable: u64,
    /// Punches with fewer verdicts than judged raw records.
    pub missing: Findings<PunchFinding>,
    /// Punches with more accepted (or rejected) verdicts than raw records.
    pub doubled: Findings<PunchFinding>,
    /// Punches with verdicts but no raw record.
    pub unexpected: Findings<PunchFinding>,
}

/// The stage checked -> Postgres `punches` (attendance).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoredStage {
    /// Punches whose latest verdict is accepted (applied by attendance): must be stored.
    pub expected: u64,
    /// Punches whose latest verdict is a rejection: must be absent or withdrawn.
    pub rejected: u64,
    /// Punches with verdicts attendance had not applied when the audit began (not judged).
    pub pending: u64,
    /// Rows of `punches` in scope.
    pub stored: u64,
    /// Of which withdrawn.
    pub withdrawn: u64,
    /// Verdicts left out like the consumer leaves them out: conflicts (`punch_conflicts`) and
    /// accepted verdicts naming no employee.
    pub set_aside: u64,
    /// Rows whose verdicts are no longer in the log (retention): not verifiable.
    pub unverifiable: u64,
    /// Expected but not stored (or withdrawn).
    pub missing: Findings<PunchFinding>,
    /// Stored (and counting) but not expected, phantoms, ids not matching tenant/device/seq.
    pub unexpected: Findings<PunchFinding>,
    /// The same punch (employee, card, kind, instant) counting under several ids.
    pub doubled: Findings<PunchFinding>,
}

/// The figures of a day, as stored or as recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Earliest kept clock-in.
    pub first_in: Option<DateTime<Utc>>,
    /// Latest kept clock-out.
    pub last_out: Option<DateTime<Utc>>,
    /// The integer figures (seconds, `punch_count`) by name, in the engine's order.
    pub figures: Vec<(String, i64)>,
    /// Anomaly codes, sorted.
    pub anomalies: Vec<String>,
    /// Whether a correction touched the day.
    pub corrected: bool,
}

impl From<&DayFigures> for Figures {
    fn from(f: &DayFigures) -> Self {
        Self {
            first_in: f.first_in.and_then(|s| DateTime::from_timestamp(s, 0)),
            last_out: f.last_out.and_then(|s| DateTime::from_timestamp(s, 0)),
            figures: DAY_FIELDS
                .iter()
                .map(|field| (field.name.to_owned(), (field.get)(f)))
                .collect(),
            anomalies: f.anomalies.iter().map(|a| a.as_str().to_owned()).collect(),
            corrected: f.corrected,
        }
    }
}

/// An attendance month whose stored figures differ from a recomputation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthFinding {
    /// The tenant.
    pub tenant: String,
    /// The employee.
    pub employee: String,
    /// The payroll month, `YYYY-MM`.
    pub month: String,
    /// The fields that differ, `name stored -> recomputed`, or why.
    pub detail: String,
}

/// An attendance day whose stored figures differ from a recomputation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayFinding {
    /// The tenant.
    pub tenant: String,
    /// The employee.
    pub employee: String,
    /// The work date.
    pub work_date: NaiveDate,
    /// The `attendance_days` row; `None` when there is none.
    pub stored: Option<Figures>,
    /// The figures recomputed from the stored, non-withdrawn punches.
    pub recomputed: Figures,
    /// Stored punches of the day that count (not withdrawn).
    pub counting_punches: u64,
    /// Withdrawn punches of the day.
    pub withdrawn_punches: u64,
    /// The fields that differ, `name stored -> recomputed`.
    pub detail: String,
}

/// The attendance days stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DaysStage {
    /// `attendance_days` rows in scope.
    pub rows: u64,
    /// Days recomputed (rows, and days with counting punches but no row).
    pub checked: u64,
    /// Days whose figures differ (or whose row is missing).
    pub differing: Findings<DayFinding>,
    /// Months recomputed (rows, and months with days but no row).
    pub months_checked: u64,
    /// Months whose figures differ (or whose row is missing).
    pub months_differing: Findings<MonthFinding>,
}

/// A correction the audit has something to say about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorrectionFinding {
    /// Its tenant.
    pub tenant: String,
    /// The correction.
    pub correction_id: Uuid,
    /// Where its first record is in the log (partition, offset), if it is there.
    pub log_position: Option<(i32, i64)>,
    /// What is off, in words.
    pub detail: String,
}

/// The corrections stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CorrectionsStage {
    /// Records of the corrections topic in scope.
    pub records: u64,
    /// Distinct corrections among them (the rest are resends).
    pub corrections: u64,
    /// Records that do not decode (quarantined by the consumer).
    pub undecodable: u64,
    /// Corrections past the consumer's stored offsets: not applied yet.
    pub pending: u64,
    /// Rows of `corrections` in scope.
    pub stored: u64,
    /// In the log below the offsets, not stored: lost.
    pub missing: Findings<CorrectionFinding>,
    /// Stored from a record other than the correction's first (a resend applied).
    pub misapplied: Findings<CorrectionFinding>,
    /// Stored, not in the log.
    pub unexpected: Findings<CorrectionFinding>,
    /// Whether the group has a corrections topic at all (created by `punchctl topics create`).
    pub topic_exists: bool,
}

impl CorrectionsStage {
    /// Findings of every kind.
    pub fn problems(&self) -> u64 {
        self.missing.count + self.misapplied.count + self.unexpected.count
    }
}

/// What an audit found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    /// The tenant group.
    pub group: GroupId,
    /// The tenant, when only one was audited.
    pub tenant: Option<TenantId>,
    /// First work date in scope.
    pub from: Option<NaiveDate>,
    /// Last work date in scope.
    pub to: Option<NaiveDate>,
    /// When the audit began: what was committed then is in scope.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_seconds: f64,
    /// raw -> checked.
    pub checked: CheckedStage,
    /// checked -> Postgres punches.
    pub stored: StoredStage,
    /// attendance days.
    pub days: DaysStage,
    /// corrections topic -> Postgres corrections.
    pub corrections: CorrectionsStage,
    /// Limits of what could be verified (e.g. retention), in words.
    pub notes: Vec<String>,
}

impl AuditReport {
    /// Findings of every kind, summed: 0 means clean.
    pub fn problems(&self) -> u64 {
        self.checked.missing.count
            + self.checked.doubled.count
            + self.checked.unexpected.count
            + self.stored.missing.count
            + self.stored.unexpected.count
            + self.stored.doubled.count
            + self.days.differing.count
            + self.days.months_differing.count
            + self.corrections.problems()
    }

    /// Whether nothing is off.
    pub fn is_clean(&self) -> bool {
        self.problems() == 0
    }
}

#[cfg(test)]
mod tests {
    use dakoku_schemas::{DeviceId, PunchId, TenantId};

    use super::*;

    fn finding(tenant: &str, seq: u64) -> PunchFinding {
        let t: TenantId = tenant.parse().expect("tenant");
        let d: DeviceId = "PT-1".parse().expect("device");
        PunchFinding {
            punch_id: *PunchId::derive(&t, &d, seq).as_uuid(),
            tenant: tenant.into(),
            device: "PT-1".into(),
            seq,
            employee: None,
            kind: "clock_in".into(),
            at: None,
            work_date: NaiveDate::from_ymd_opt(2020, 12, 1).expect("date"),
            detail: String::new(),
        }
    }

    #[test]
    fn findings_count_everything_and_keep_the_first_examples_in_order() {
        let mut findings = Findings::default();
        for seq in (0..100).rev() {
            findings.offer(finding("acme", seq), 3);
        }
        findings.trim(3);
        assert_eq!(findings.count, 100);
        let seqs: Vec<u64> = findings.examples.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [0, 1, 2]);
    }
}
